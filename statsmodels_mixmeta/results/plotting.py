"""
The plotting methods of the results (``plot_forest``, ``plot_shrinkage``,
``plot_dose_response``): thin wrappers that hand the results to
:mod:`statsmodels_mixmeta.plots`, where the drawing lives.  A mixin of
:class:`~statsmodels_mixmeta.results.core.MixMetaResults`.
"""


class PlotMethods:
    """Plots of a fitted meta-analysis (matplotlib, the ``plot`` extra)."""

    def plot_forest(self, ax=None, labels=None, outcome=None, blup=False,
                    alpha=0.05, pi=None, refline=None, annotate=False,
                    figsize=None):
        """
        Forest plot: each study's estimate and ``1 - alpha`` interval from
        ``S``, the pooled estimate (a diamond over its confidence interval)
        and the prediction interval of a new study; one panel per outcome.

        A meta-regression has no single pooled estimate: each study's
        fitted value ``x_i' beta`` is drawn with its confidence interval
        instead.  Multilevel fits group the studies by the outer level.
        See :mod:`statsmodels_mixmeta.plots.forest` for what is drawn.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, optional
            One Axes per outcome panel; a new figure by default.
        labels : sequence, Series or str, optional
            Study labels (one per row used, a Series indexed like the
            data, or a column name of the formula's data).
        outcome : str or list of str, optional
            Outcomes to draw; all by default.
        blup : bool
            Also draw each study's BLUP with its prediction interval.
        alpha : float
            Intervals are ``1 - alpha``.
        pi : bool, optional
            Draw the prediction interval; by default for intercept-only
            random-effects fits.  ``True`` on a fixed-effects fit or a
            meta-regression is an error.
        refline : float, optional
            A vertical reference line (e.g. 0).
        annotate : bool
            Write each row's estimate and interval right of the panel.
        figsize : tuple, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plots.forest import plot_forest
        return plot_forest(self, ax=ax, labels=labels, outcome=outcome,
                           blup=blup, alpha=alpha, pi=pi, refline=refline,
                           annotate=annotate, figsize=figsize)

    def plot_shrinkage(self, ax=None, outcome=None, level=None,
                       figsize=None):
        """
        Shrinkage plot: each study's observed estimate joined to its BLUP,
        one panel per outcome, with the pooled estimate (or, for a
        meta-regression, each study's fitted value) the BLUPs shrink
        toward.  See :mod:`statsmodels_mixmeta.plots.shrinkage`.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, optional
            One Axes per outcome panel; a new figure by default.
        outcome : str or list of str, optional
            Outcomes to draw; all by default.
        level : int, optional
            BLUPs up to this grouping level (as :meth:`blup`).
        figsize : tuple, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plots.shrinkage import plot_shrinkage
        return plot_shrinkage(self, ax=ax, outcome=outcome, level=level,
                              figsize=figsize)

    def plot_dose_response(self, dose, grid=None, at=None, reference=None,
                           studies=False, alpha=0.05, exp=False, ax=None,
                           figsize=None):
        """
        Pooled dose-response curve ``x(d)' beta`` over a grid of doses with
        its ``1 - alpha`` confidence band (``get_prediction`` at the grid),
        optionally relative to a reference dose and with each study's BLUP
        curve.  For formula fits of one outcome on terms of a dose (e.g. a
        spline, with ``addS`` from ``greenland_longnecker_addS``); see
        :mod:`statsmodels_mixmeta.plots.dose`.

        Parameters
        ----------
        dose : str
            The dose variable of the formula's data.
        grid : array_like, optional
            Doses; by default 101 from the smallest to the largest used.
        at : dict, optional
            Values of the formula's other variables along the curve.
        reference : float, optional
            Draw ``f(d) - f(reference)`` and mark the reference dose.
        studies : bool
            Also draw the studies' BLUP curves and reported estimates
            (random effects on the fixed terms).
        alpha : float
        exp : bool
            Draw on the ratio scale, ``exp(f)``.
        ax : matplotlib Axes, optional
        figsize : tuple, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..plots.dose import plot_dose_response
        return plot_dose_response(self, dose, grid=grid, at=at,
                                  reference=reference, studies=studies,
                                  alpha=alpha, exp=exp, ax=ax,
                                  figsize=figsize)

    def plot_profile(self, params=None, ax=None, alpha=0.05, grid=None,
                     figsize=None):
        """
        Profile log-likelihood plot: one panel per parameter (every
        variance by default), the profile along a grid (others
        re-optimised), its maximum, the ``chi2_1(1 - alpha) / 2`` cut-off
        and the profile interval.  See
        :mod:`statsmodels_mixmeta.plots.profile`.

        Parameters
        ----------
        params : str or list of str, optional
            Names from ``conf_int_psi()``'s index; the variances by
            default.
        ax : matplotlib Axes or sequence of Axes, optional
        alpha : float
        grid : array_like, optional
            Values of the parameter, for one parameter.
        figsize : tuple, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .psi_intervals import profile_panels
        from ..plots.profile import plot_profile
        return plot_profile(profile_panels(self, params, alpha, grid),
                            ax=ax, figsize=figsize)
