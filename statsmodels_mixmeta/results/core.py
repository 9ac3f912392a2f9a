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

from . import prediction


class MixMetaResults(LikelihoodModelResults):
    """
    Results of a mixed-effects meta-analysis.

    ``params`` are the fixed effects, ordered outcome-major and named
    ``"{outcome}:{term}"`` (``"{term}"`` for one outcome); ``bse``,
    ``tvalues`` (z statistics), ``pvalues``, ``conf_int()`` and
    ``cov_params()`` follow, normal-based.  The between-study covariance is
    ``psi``; its structure parameters, as optimised, are ``theta``.

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
    mle_retvals : dict
        What the optimiser reported.
    """

    def __init__(self, model, state, theta, converged, retvals):
        super().__init__(model, state.beta,
                         normalized_cov_params=state.cov_beta, scale=1.0)
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
        self.use_t = False
        self.df_resid = self.nobs - self.k_fe
        self.df_model = self.k_fe - 1

    @cache_readonly
    def llf(self):
        """(Restricted) log-likelihood; NaN for "mm" and "vc"."""
        if self.method in ("mm", "vc"):
            return np.nan
        return self._state.llf

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

    def get_prediction(self, exog=None, alpha=0.05):
        """
        Predictions of the fixed part with standard errors.

        Parameters
        ----------
        exog : array_like or DataFrame, optional
            New predictor values: a data frame with the formula's variables
            for a formula model, otherwise rows of the design matrix.  The
            default is the rows used in the fit.
        alpha : float
            Confidence intervals are ``1 - alpha``.

        Returns
        -------
        PredictionResults
        """
        return prediction.fixed_prediction(self, exog, alpha)

    def blup(self, level=None, se=False):
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

        Returns
        -------
        DataFrame ``(n, k)``, or a pair (values, standard errors).
        """
        values, errors = prediction.blup(self, level)
        if se:
            return self._frame(values), self._frame(errors)
        return self._frame(values)

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
    _wrap_methods = union_dicts(LikelihoodResultsWrapper._wrap_methods,
                                _methods)


populate_wrapper(MixMetaResultsWrapper, MixMetaResults)
