"""
Diagnostics of a fit, as methods of the results: intervals and profiles of
Psi (``conf_int_psi``, ``profile_loglike``;
:mod:`statsmodels_mixmeta.results.psi_intervals`), leave-one-out refits and
influence statistics (``leave_one_out``, ``get_influence``;
:mod:`statsmodels_mixmeta.results.leave_one_out`,
:mod:`statsmodels_mixmeta.results.influence`).  A mixin of
:class:`~statsmodels_mixmeta.results.core.MixMetaResults`.
"""
try:  # statsmodels >= 0.15
    from statsmodels.tools._decorators import cache_readonly
except ImportError:  # pragma: no cover
    from statsmodels.tools.decorators import cache_readonly


class DiagnosticMethods:
    """Psi intervals, profiles and influence diagnostics of a fit."""

    def conf_int_psi(self, alpha=0.05, method="wald"):
        """
        Confidence intervals for Psi on its natural scale: one row per
        variance (and correlation, where the structure has one), as in
        :mod:`statsmodels_mixmeta.results.psi_intervals`.

        Parameters
        ----------
        alpha : float
            Intervals are ``1 - alpha``.
        method : {"wald", "profile", "qprofile"}
            ``"wald"``: delta method from the observed information of the
            structure parameters, symmetric on the log scale of a variance
            and the atanh (cs, hcs: scaled logit) scale of a correlation.
            ``"profile"``: profile-likelihood interval, the values whose
            profile (restricted) log-likelihood is within
            ``chi2_1(1 - alpha) / 2`` of the maximum (Hardy and Thompson
            1996).  ``"qprofile"``: the Q-profile interval of ``tau^2`` of
            a univariate model (Viechtbauer 2007).

        Returns
        -------
        DataFrame
            Columns ``estimate``, ``lower``, ``upper`` and ``note`` (why a
            bound is the edge of the parameter space, a variance at 0 or a
            correlation at its limit, or missing).

        Raises
        ------
        ValueError
            For ``method="fixed"`` fits and a Psi fixed at every level (no
            parameters); for "wald" and "profile" on "mm" and "vc" fits
            (moment estimates: no likelihood was maximised, so neither its
            curvature nor its cut-off is centred on them; refit by REML or
            ML, or use "qprofile" for one variance); for "qprofile" on a
            model with several outcomes, levels or random effects.

        References
        ----------
        Hardy RJ, Thompson SG (1996). A likelihood approach to
        meta-analysis with random effects. Statistics in Medicine 15,
        619-629.

        Viechtbauer W (2007). Confidence intervals for the amount of
        heterogeneity in meta-analysis. Statistics in Medicine 26, 37-52.
        """
        from .psi_intervals import conf_int_psi
        return conf_int_psi(self, alpha, method)

    def profile_loglike(self, param, grid=None):
        """
        Profile (restricted) log-likelihood of one natural Psi parameter
        (a name in ``conf_int_psi()``'s index, or its position): at each
        value of ``grid`` the maximum over the other Psi parameters
        (:mod:`statsmodels_mixmeta.fitting.profile`).  The default grid
        spans the 95% profile interval and a quarter of its width beyond.

        Returns
        -------
        DataFrame
            Columns ``value`` and ``llf``.
        """
        from .psi_intervals import profile_loglike
        return profile_loglike(self, param, grid)

    def leave_one_out(self):
        """
        The model refitted without each outer group.

        Each refit goes through ``design.subset`` and ``from_design`` with
        the fit's estimator and structures; ML/REML refits start from the
        fit's ``theta`` and are certified as a fit from scratch
        (:mod:`statsmodels_mixmeta.results.leave_one_out`).

        Returns
        -------
        DataFrame
            Indexed by the group left out: the coefficients (by name),
            their standard errors ``se:<name>``, the entries of every
            level's Psi on and below the diagonal (``psi:<a>,<b>``, or
            ``psi[<level>]:<a>,<b>``), Cochran's ``q``, ``q_df`` and ``i2``
            (then per outcome, ``q:<outcome>``, ...), ``llf`` and
            ``converged``.  ``attrs["messages"]`` counts the refits'
            warnings and errors (a group that cannot be left out gets NaN).
        """
        from .leave_one_out import leave_one_out_frame
        return leave_one_out_frame(self, self._leave_one_out)

    @cache_readonly
    def _leave_one_out(self):
        from .leave_one_out import refit_groups
        return refit_groups(self)

    def get_influence(self):
        """
        Outlier and influence diagnostics per outer group, from actual
        leave-one-out refits: ``summary_frame()`` with ``student_resid``,
        ``dffits``, ``cooks_d``, ``cov_ratio``, ``hat_diag``,
        ``dfb_<param>``, the deleted Psi and the deleted Q
        (:class:`statsmodels_mixmeta.results.influence.MixMetaInfluence`;
        metafor's ``influence.rma.uni`` for one value per group).
        """
        from .influence import MixMetaInfluence
        return MixMetaInfluence(self)
