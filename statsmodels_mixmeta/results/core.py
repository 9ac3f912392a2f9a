"""
Results of a fitted MixMeta model.

Everything the fit produced is passed to ``__init__``; every other quantity is
computed on first use and cached (``cache_readonly``).
"""
import numpy as np
import pandas as pd
from statsmodels.base.model import LikelihoodModelResults
from statsmodels.base.wrapper import populate_wrapper, union_dicts
from statsmodels.base.model import LikelihoodResultsWrapper

try:  # statsmodels >= 0.15
    from statsmodels.tools._decorators import cache_readonly
except ImportError:  # pragma: no cover
    from statsmodels.tools.decorators import cache_readonly

from . import inference as _inference
from . import prediction
from .diagnostics import DiagnosticMethods
from .hypotheses import HypothesisMethods
from .plotting import PlotMethods


class MixMetaResults(HypothesisMethods, DiagnosticMethods, PlotMethods,
                     LikelihoodModelResults):
    """
    Results of a mixed-effects meta-analysis.

    ``params`` are the fixed effects, ordered outcome-major and named
    ``"{outcome}:{term}"`` (``"{term}"`` for one outcome); ``bse``,
    ``tvalues``, ``pvalues``, ``conf_int()`` and ``cov_params()`` follow,
    normal-based (z and chi2), or with ``use_t`` t- and F-based on
    ``df_resid`` degrees of freedom.  The between-study covariance is
    ``psi``; its structure parameters, as optimised, are ``theta``.

    Parameters
    ----------
    model : MixMeta
    state : GLS state at the estimate (``beta``, ``cov_beta``, ``llf``,
        ``psis``)
    theta : array_like
    converged : bool
    retvals : dict
    cov_type : str
        Covariance of the fixed effects, a name in
        :data:`~statsmodels_mixmeta.results.inference.COV_TYPES`;
        "nonrobust" is ``(X' Sigma^-1 X)^-1`` with Psi treated as known.
    cov_kwds : dict, optional
        Options of ``cov_type`` (none for "nonrobust").
    use_t : bool
        Use t and F reference distributions for ``tvalues``/``pvalues``,
        ``conf_int``, ``t_test``, ``wald_test``, ``wald_test_terms`` and
        prediction intervals, on the degrees of freedom of ``df_method``.
    df_method : str, optional
        A name in :data:`~statsmodels_mixmeta.results.inference.DF_METHODS`
        (``use_t`` only); None takes the cov type's own rule, which for
        "nonrobust" is ``df_resid``.

    Attributes
    ----------
    psi : DataFrame
        Estimated Psi with outcome labels.
    theta : ndarray
        Structure parameters of Psi (empty for fixed effects, "mm" and "vc").
    llf : float
        (Restricted) log-likelihood; NaN for "mm" and "vc", which do not
        maximise one (as R's mixmeta).
    converged : bool
    nobs : float
        Number of observed outcome values.
    n_groups : int
        Number of independent (outer) groups.
    df_resid : float
        ``nobs - k_fe``: observed values minus fixed coefficients (the
        degrees of freedom of t and F with ``use_t``).
    k_constant : int
        1 when the predictors of each outcome include a constant.
    df_model : float
        Fixed coefficients that are not intercepts,
        ``k_fe - k * k_constant`` (with ``k`` outcomes, each has its own
        intercept), so that ``nobs = df_model + df_resid + k * k_constant``.
    mle_retvals : dict
        What the optimiser reported; ``mle_retvals["on_boundary"]`` has one
        flag per grouping level (see :attr:`on_boundary`).
    """

    def __init__(self, model, state, theta, converged, retvals,
                 cov_type="nonrobust", cov_kwds=None, use_t=False,
                 df_method=None):
        super().__init__(model, state.beta,
                         normalized_cov_params=state.cov_beta, scale=1.0)
        self._cache = {}
        self._state = state
        self.theta = np.asarray(theta, dtype=float)
        self.psis = state.psis
        self.converged = converged
        self.mle_retvals = retvals
        self.method = model.method
        self.bscov = None if model.random.n_levels == 0 else model.bscov
        self.nobs = model.nobs
        self.n_groups = model.n_groups
        self.k_fe = model.k_fe
        self.k_psi = model.k_psi
        # observed values minus fixed coefficients: the df of t and F
        self.df_resid = self.nobs - self.k_fe
        # fixed coefficients other than the outcomes' intercepts, so that
        # nobs = df_model + df_resid + k * k_constant
        self.df_model = self.k_fe - model.n_outcomes * self.k_constant
        options = _inference.check_inference(model, cov_type, cov_kwds,
                                             use_t, df_method)
        self.use_t = options["use_t"]
        self.cov_type = options["cov_type"]
        self.df_method = options["df_method"]
        self.cov_kwds = dict(
            options["cov_kwds"],
            description=_inference.COV_TYPES[self.cov_type].description)
        cov, self._df_rule = _inference.build_inference(
            self, self.cov_type, options["cov_kwds"], self.use_t,
            self.df_method)
        if cov is not state.cov_beta:
            self.cov_params_default = np.asarray(cov, dtype=float)

    @cache_readonly
    def llf(self):
        """(Restricted) log-likelihood; NaN for "mm" and "vc"."""
        if self.method in ("mm", "vc"):
            return np.nan
        return self._state.llf

    @cache_readonly
    def on_boundary(self):
        """
        Whether the estimated Psi (at any level) lies on the boundary of its
        parameter space: a variance at 0, a singular Psi, a correlation at
        +-1 (a standard deviation of a kinked structure at 0 included).
        There the usual standard errors and tests of Psi do not apply;
        ``summary()`` says so.  Per level in ``mle_retvals["on_boundary"]``.
        """
        return bool(any(self.boundary_levels))

    @cache_readonly
    def boundary_levels(self):
        """Per grouping level, outer first, whether its Psi is on the
        boundary (see :attr:`on_boundary`)."""
        flags = (self.mle_retvals or {}).get("on_boundary")
        return [False] * self.model.random.n_levels if flags is None \
            else list(flags)

    @cache_readonly
    def _batched_state(self):
        """The fit's GLS state on the stacked batches (for BLUPs)."""
        if hasattr(self._state, "whitened"):
            return self._state
        lik = self.model.profiled_likelihood(batched=True)
        return lik.evaluate(self._state.psis)

    # ---------------------------------------------------------------- Psi
    @cache_readonly
    def psi(self):
        """
        Estimated random-effects covariance.

        A DataFrame labelled by outcome (and random term) when the model has
        one grouping level; a dict of DataFrames keyed by grouping factor,
        outer to inner, when it has several.  A fixed-effects fit gives a
        zero ``k x k`` frame.
        """
        random = self.model.random
        if random.n_levels == 0:
            names = list(self.model.design.outcome_names)
            return pd.DataFrame(np.zeros((len(names), len(names))),
                                index=names, columns=names)
        frames = [pd.DataFrame(psi, index=labels, columns=labels)
                  for psi, labels in zip(self.psis, random.effect_names)]
        if random.n_levels == 1:
            return frames[0]
        return dict(zip(random.level_names, frames))

    # ---------------------------------------------------- fit statistics
    @cache_readonly
    def df_loglike(self):
        """Number of parameters: fixed effects plus Psi parameters."""
        return self.k_fe + self.k_psi

    @cache_readonly
    def aic(self):
        return -2 * self.llf + 2 * self.df_loglike

    @cache_readonly
    def bic(self):
        """BIC with ``N`` values (ML) or ``N - p`` (REML), as R's mixmeta."""
        n = self.nobs - (self.k_fe if self.method == "reml" else 0)
        return -2 * self.llf + np.log(n) * self.df_loglike

    # ------------------------------------------------------ heterogeneity
    def q_test(self):
        """
        Cochran's Q test of heterogeneity of the fixed-effects model.

        Returns
        -------
        QTestResult
            ``statistic``, ``df``, ``pvalue`` and ``names``: overall first,
            then per outcome when there are several.
        """
        return self._q_test

    @cache_readonly
    def _q_test(self):
        from . import heterogeneity
        model = self.model
        d = model.design
        model._singular_studies.require_positive_definite("Cochran's Q test")
        # the fixed-effects GLS (Psi = 0) on the model's own batches
        return heterogeneity.model_q_test(model._batches, d.basis,
                                          d.outcome_names, d.n_terms)

    @cache_readonly
    def i2(self):
        """I-squared of :meth:`q_test` as fractions, overall first."""
        from . import heterogeneity
        q = self._q_test
        return pd.Series(heterogeneity.i_squared(q), index=list(q.names),
                         name="I2")

    def heterogeneity(self):
        """
        Heterogeneity beyond Q in one table: Cochran's Q with H² and I²_H,
        the R² and I²_R of Jackson, White and Riley (2012), overall and per
        coefficient, and, for random intercepts with ``S`` per row, the
        share of variance at each level (level-specific I²) with the
        "typical" within-study variance, per outcome.

        Returns
        -------
        DataFrame
            Index ``(measure, scope)``, one column ``value``; shares are
            fractions.  The formulas are in
            :mod:`statsmodels_mixmeta.results.heterogeneity_measures`.
        """
        return self._heterogeneity.copy()

    @cache_readonly
    def _heterogeneity(self):
        from .heterogeneity_measures import heterogeneity_frame
        return heterogeneity_frame(self)

    # ------------------------------------------------------ predictions
    @cache_readonly
    def fittedvalues(self):
        """Fixed-part predictions ``(n, k)``; NaN where an outcome is missing."""
        d = self.model.design
        fitted = self.model.predict(self.params)
        fitted[~d.observed] = np.nan
        return self._frame(fitted)

    @cache_readonly
    def resid(self):
        """Observed minus fitted outcomes ``(n, k)``."""
        return self._frame(self.model.design.endog) - self.fittedvalues

    def _frame(self, values):
        d = self.model.design
        return pd.DataFrame(values, index=d.row_labels,
                            columns=list(d.outcome_names))

    def predict(self, exog=None, transform=True, *args, **kwargs):
        """
        Fixed-part predictions ``x' beta`` of every outcome.

        Parameters
        ----------
        exog : DataFrame, dict or array_like, optional
            New data: for a formula model a data frame (or dict) with the
            formula's variables, whose columns are rebuilt as in the fit
            (factor levels, transforms); otherwise, or with
            ``transform=False``, rows of the per-outcome design matrix.  The
            default is the rows used in the fit.
        transform : bool
            Rebuild the formula's columns from ``exog`` (statsmodels'
            meaning).

        Returns
        -------
        Series (one outcome) or DataFrame (one column per outcome), indexed
        as ``exog``: the ``predicted`` of :meth:`get_prediction`.
        """
        if args or kwargs:
            raise TypeError(f"predict takes exog and transform only; got "
                            f"{len(args)} more positional and "
                            f"{sorted(kwargs)} keyword arguments")
        return prediction.predict(self, exog, transform)

    def remove_data(self):
        """
        Remove the data from the results and the model, keeping what the
        summary, inference and predictions at new data need.

        Besides statsmodels' (``endog``, ``exog``, cached fitted values and
        residuals) this drops the design's arrays, the stacked batches and
        the data frame of a formula; ``params``, ``bse``, ``cov_params()``,
        ``psi``, ``q_test()``, ``llf``, ``summary()``, Wald tests and
        ``predict``/``get_prediction`` at new data keep working, and what
        needs the data (``fittedvalues``, ``resid``, ``blup()``,
        ``random_effects()``) raises an error saying so.  See
        :mod:`statsmodels_mixmeta.results.removal`.
        """
        from .removal import remove_data
        remove_data(self, super().remove_data)

    def get_prediction(self, exog=None, alpha=0.05, exog_re=None):
        """
        Predictions of the fixed part with standard errors, covariances and
        prediction intervals for a new study.

        Parameters
        ----------
        exog : array_like, DataFrame or dict, optional
            New predictor values: a data frame (or dict) with the formula's
            variables for a formula model, otherwise rows of the design
            matrix.  The default is the rows used in the fit.
        alpha : float
            Intervals are ``1 - alpha``.
        exog_re : array_like or list of array_like, optional
            The random predictors of the new rows (one array for all levels,
            or one per level), for the prediction intervals of a model with
            random predictors other than an intercept when they cannot be
            rebuilt from ``exog`` with the ``random=`` formulas.

        Returns
        -------
        PredictionResults
            ``summary_frame()`` with ``mean``, ``mean_se``,
            ``mean_ci_lower/upper`` and the prediction interval of a new
            study, ``obs_ci_lower/upper``, which adds the ``Psi`` of every
            level (a new study in new groups at every level); ``cov()`` the
            ``k x k`` covariance of each row's predictions
            (:mod:`statsmodels_mixmeta.results.intervals`).
        """
        return prediction.fixed_prediction(self, exog, alpha, exog_re)

    def blup(self, level=None, se=False, pi=False, alpha=0.05):
        """
        Best linear unbiased predictions of the rows used.

        ``x' beta`` plus the predicted random effects of the levels up to
        ``level``, for every outcome of every row (also outcomes that a
        row does not report).

        Parameters
        ----------
        level : int, optional
            Grouping levels to include, counted from the outermost (1); the
            default includes all (the innermost BLUPs).
        se : bool
            Also return the standard errors (R mixmeta's formula, see
            :func:`statsmodels_mixmeta.results.prediction.blup`).
        pi : bool
            Return a DataFrame with ``blup``, ``se`` (R mixmeta's),
            ``pi_se`` and the ``1 - alpha`` prediction interval
            ``pi_lower``/``pi_upper`` = ``blup -+ q pi_se`` of each row's
            true effect, ``pi_se`` the square root of the prediction error
            variance ``Var(blup - theta)`` with ``beta`` estimated (metafor's
            ``blup`` ``se``, ``pi.lb``, ``pi.ub`` for a univariate model);
            ``q`` normal, or t on ``df_resid`` with ``use_t``.  Indexed by
            row, or by (row, outcome) for several outcomes.
        alpha : float
            For ``pi``.

        Returns
        -------
        DataFrame ``(n, k)``, a pair (values, standard errors), or with
        ``pi`` the DataFrame above.
        """
        if pi:
            return prediction.blup_frame(self, level, alpha)
        values, errors = prediction.blup(self, level)
        if se:
            return self._frame(values), self._frame(errors)
        return self._frame(values)

    def simulate(self, nsim=1, seed=None, refit=False, fit_kwargs=None):
        """
        Outcomes drawn from the fitted marginal model, or their refits.

        ``y*_i ~ N(X_i beta_hat, Sigma_hat_i)`` per outer group, with the
        fit's Psi at every level, ``S_i`` or ``addS``, and the fit's missing
        pattern (see :mod:`statsmodels_mixmeta.results.simulation`).

        Parameters
        ----------
        nsim : int
            Number of draws.
        seed : None, int, SeedSequence or Generator
            Anything :func:`numpy.random.default_rng` accepts; the same
            seed gives the same draws.
        refit : bool
            Refit the model to every draw (a parametric bootstrap) and
            return the estimates instead of the draws.
        fit_kwargs : dict, optional
            Passed to ``fit`` of every refit.

        Returns
        -------
        ndarray ``(nsim, n_rows, k)`` in the row order of the fitted data,
        NaN where an outcome is missing; with ``refit``, a DataFrame with
        one row per draw (see
        :func:`statsmodels_mixmeta.results.simulation.bootstrap`).
        """
        from . import simulation
        if refit:
            return simulation.bootstrap(self, nsim, seed, fit_kwargs)
        return simulation.simulate_results(self, nsim, seed)

    def random_effects(self):
        """
        Predicted random effects of each group.

        A DataFrame (groups by random effects) for a model with one level; a
        dict of them keyed by grouping factor, outer to inner, for several;
        an empty DataFrame for a fixed-effects model, which has none.  Inner
        groups are labelled by the labels of all levels up to theirs.
        """
        model = self.model
        if model.random.n_levels == 0:
            return pd.DataFrame(columns=list(model.design.outcome_names),
                                dtype=float)
        levels = model.design.levels
        names = list(levels.names)
        frames = []
        for lev, effects in enumerate(prediction.random_effects(self)):
            first = np.unique(levels.codes[lev], return_index=True)[1]
            labels = levels.group_labels[first, :lev + 1]
            index = (pd.Index(labels[:, 0], name=names[0]) if lev == 0 else
                     pd.MultiIndex.from_arrays(labels.T.tolist(),
                                               names=names[:lev + 1]))
            frames.append(pd.DataFrame(effects, index=index,
                                       columns=model.random.effect_names[
                                           lev]))
        if len(frames) == 1:
            return frames[0]
        return dict(zip(names, frames))

    # ------------------------------------------------------ comparison
    def compare_lr_test(self, restricted):
        """
        Likelihood-ratio test of a fit nested in this one, as statsmodels'
        OLS ``compare_lr_test``: ``LR = 2 (llf - restricted.llf)`` on
        ``df_diff`` (the difference in ``df_loglike``) degrees of freedom.

        ML fits compare any nested pair of the same data; REML fits only
        with the same fixed-effects part; "mm"/"vc" fits have no
        likelihood.  For a variance tested at 0 the chi-square p-value is
        conservative.  See :mod:`statsmodels_mixmeta.results.comparison`.

        Returns
        -------
        lr_stat : float
        p_value : float
        df_diff : int

        Raises
        ------
        ValueError
            Saying why, when the fits are not comparable or the restricted
            one fits better (the full fit has not reached its maximum).
        """
        from .comparison import lr_test
        return lr_test(self, getattr(restricted, "_results", restricted))

    def drop1(self):
        """
        Likelihood-ratio test of dropping each fixed term, as R's
        ``drop1(fit, test="Chisq")``.

        A term's coefficients of every outcome go together; the intercept
        and terms contained in a higher-order term (marginality) are kept.
        Smaller models are refitted from the design without the term's
        columns, with the same Psi structure.  A REML fit is refitted by ML
        (full and smaller models), as lme4 does: REML likelihoods of
        different fixed parts do not compare; ``table.attrs["method"]``
        names the likelihood used.

        Returns
        -------
        DataFrame
            Indexed by ``"<none>"`` and the terms: ``df`` (coefficients
            dropped), ``aic`` (of the model without the term; the full
            model's for ``"<none>"``), ``lr`` and ``pvalue`` (chi2 on
            ``df``).
        """
        from .comparison import drop1
        return drop1(self)

    def initialize(self, model, params, **kwargs):
        """statsmodels' initializer; results are built once, by ``fit``."""
        if "_state" in self.__dict__:
            raise NotImplementedError(
                "MixMeta results cannot be re-initialised with other params: "
                "their standard errors, Psi and likelihood belong to the "
                "fit; fit the model again (start_params=...) instead")
        super().initialize(model, params, **kwargs)

    # --------------------------------------------------------- summary
    def summary(self, alpha=0.05):
        """A statsmodels-style summary of the fit."""
        from .summary import summarize
        return summarize(self, alpha)


class MixMetaResultsWrapper(LikelihoodResultsWrapper):
    # already labelled (n, k) frames: not to be squeezed into rows
    _attrs = {"fittedvalues": None, "resid": None}
    _wrap_attrs = union_dicts(LikelihoodResultsWrapper._wrap_attrs, _attrs)
    _methods = {}
    # cov_params is labelled below, only when it is the params' covariance
    _wrap_methods = {name: how for name, how in union_dicts(
        LikelihoodResultsWrapper._wrap_methods, _methods).items()
        if name != "cov_params"}

    def cov_params(self, *args, **kwargs):
        cov = self._results.cov_params(*args, **kwargs)
        if np.shape(cov) == (len(self._results.params),) * 2:
            return self.model.data.wrap_output(cov, how="cov")
        return cov

    cov_params.__doc__ = MixMetaResults.cov_params.__doc__


populate_wrapper(MixMetaResultsWrapper, MixMetaResults)
