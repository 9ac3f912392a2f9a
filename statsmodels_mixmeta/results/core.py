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
from .diagnostics import DiagnosticMethods
from .hypotheses import HypothesisMethods
from .model_tests import ModelTestMethods
from .plotting import PlotMethods
from .predicting import PredictionMethods


class MixMetaResults(HypothesisMethods, DiagnosticMethods, PlotMethods,
                     PredictionMethods, ModelTestMethods,
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
