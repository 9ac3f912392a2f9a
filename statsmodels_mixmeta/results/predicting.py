"""
Predictions of a fit, as methods of the results: fitted values and
residuals, predictions at new data with their intervals (``predict``,
``get_prediction``), BLUPs and predicted random effects (``blup``,
``random_effects``; :mod:`statsmodels_mixmeta.results.prediction`), and
draws from the fitted model (``simulate``;
:mod:`statsmodels_mixmeta.results.simulation`).  A mixin of
:class:`~statsmodels_mixmeta.results.core.MixMetaResults`.
"""
import numpy as np
import pandas as pd

try:  # statsmodels >= 0.15
    from statsmodels.tools._decorators import cache_readonly
except ImportError:  # pragma: no cover
    from statsmodels.tools.decorators import cache_readonly

from . import prediction


class PredictionMethods:
    """Fitted values, predictions, BLUPs, random effects and simulation
    of a fit."""


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
