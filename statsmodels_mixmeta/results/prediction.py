"""
Predictions: the fixed part with standard errors, and best linear unbiased
predictions (BLUPs) of the random effects.

For outcome ``j`` of a row with predictors ``x`` the fixed-part prediction is
``x' beta_j`` with variance ``x' V_jj x`` (``V_jj`` the block of ``cov(beta)``
of outcome ``j``).  The random effects of group ``i`` are predicted by

.. math:: \\hat b_i = \\Psi Z_i' \\Sigma_i^{-1} (y_i - X_i \\hat\\beta)

and the BLUP of a row is ``x' beta + b_i``.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..design import formula as _formula
from ..design.core import expand_by_outcome
from ..kernels.likelihood import marginal_cov, whiten


@dataclass(frozen=True)
class PredictionResults:
    """
    Predicted means ``(n, k)`` with standard errors; intervals are normal,
    or t with ``df`` degrees of freedom when ``df`` is given (``use_t``).
    """

    predicted: pd.DataFrame
    se: pd.DataFrame
    alpha: float = 0.05
    df: float = None

    def conf_int(self, alpha=None):
        """Lower and upper ``1 - alpha`` limits, each ``(n, k)``."""
        alpha = self.alpha if alpha is None else alpha
        z = (stats.norm.isf(alpha / 2) if self.df is None
             else stats.t.isf(alpha / 2, self.df))
        return self.predicted - z * self.se, self.predicted + z * self.se

    def summary_frame(self, alpha=None):
        """
        One row per prediction: ``mean``, ``mean_se``, ``mean_ci_lower``,
        ``mean_ci_upper``; indexed by row, or by (row, outcome) when there
        are several outcomes.
        """
        lower, upper = self.conf_int(alpha)
        columns = {"mean": self.predicted, "mean_se": self.se,
                   "mean_ci_lower": lower, "mean_ci_upper": upper}
        if self.predicted.shape[1] == 1:
            return pd.DataFrame({name: frame.iloc[:, 0]
                                 for name, frame in columns.items()})
        return pd.DataFrame({name: frame.stack(future_stack=True)
                             for name, frame in columns.items()})


def new_design_rows(results, exog):
    """Predictor rows for prediction: the fit's, or rebuilt from new data."""
    model = results.model
    if exog is None:
        return model.design.exog, model.design.row_labels
    if model.formula_terms is not None and isinstance(exog, (pd.DataFrame,
                                                             dict)):
        frame = _formula.new_data_frame(exog)
        return model.formula_terms.exog(frame), list(frame.index)
    arr = np.atleast_2d(np.asarray(exog, dtype=float))
    if arr.shape[1] != model.design.n_terms:
        raise ValueError(
            f"exog needs {model.design.n_terms} columns "
            f"({', '.join(model.design.term_names)}), got {arr.shape[1]}")
    index = exog.index if isinstance(exog, pd.DataFrame) else range(len(arr))
    return arr, list(index)


def predict(results, exog=None, transform=True):
    """
    ``x' beta`` of every outcome at the rows of ``exog`` (see
    ``MixMetaResults.predict``): a Series for one outcome, a DataFrame by
    outcome for several, indexed as ``exog``.
    """
    if not transform and isinstance(exog, (pd.DataFrame, dict)):
        frame = _formula.new_data_frame(exog)
        rows = new_design_rows(results, frame.to_numpy(dtype=float))[0]
        labels = list(frame.index)
    else:
        rows, labels = new_design_rows(results, exog)
    values = results.model.predict(results.params, rows)
    names = list(results.model.design.outcome_names)
    if len(names) == 1:
        return pd.Series(values[:, 0], index=labels, name=names[0])
    return pd.DataFrame(values, index=labels, columns=names)


def fixed_prediction(results, exog=None, alpha=0.05):
    """Fixed-part predictions and their standard errors."""
    rows, labels = new_design_rows(results, exog)
    k = results.model.n_outcomes
    p = rows.shape[1]
    beta = np.asarray(results.params).reshape(k, p)
    cov = np.asarray(results.cov_params()).reshape(k, p, k, p)
    cov_blocks = cov[np.arange(k), :, np.arange(k), :]          # (k, p, p)
    mean = rows @ beta.T
    var = np.einsum("np,jpq,nq->nj", rows, cov_blocks, rows)
    names = list(results.model.design.outcome_names)
    frame = lambda values: pd.DataFrame(values, index=labels, columns=names)
    return PredictionResults(frame(mean), frame(np.sqrt(var)), alpha,
                             results.df_resid if results.use_t else None)


def random_effects(results):
    """
    Predicted random effects of every level, ``b = Psi_l sum z (Sigma^-1 r)``
    over the values of each level-``l`` group: a list of ``(groups_l, r_l)``
    arrays, groups in code order.
    """
    model = results.model
    state = results._batched_state
    batches = model._batches
    # Sigma^-1 r of every value, in long order
    weighted = batches.to_long(
        np.einsum("gmn,gm->gn", wb.inv_chol, rw)
        for wb, rw in zip(state.whitened, state.resid_w))
    return [batches.group_sums(z * weighted[:, None], lev,
                               model.design.levels.codes[lev].max() + 1) @ psi
            for lev, (z, psi) in enumerate(zip(batches.long.Z, state.psis))]


def blup(results, level=None):
    """
    BLUPs ``x' beta + sum_{l <= level} z_l' b_l`` of every row and outcome,
    and their standard errors, ``(n, k)`` each.

    With ``C`` the covariance between the random part at every (row,
    outcome) of a group and the group's observed values, the random part is
    predicted by ``C Sigma^-1 r`` with conditional variance
    ``Var(random part) - C Sigma^-1 C'``.  The standard errors are R
    mixmeta's: that variance plus the variance ``x' V(beta) x`` of the fixed
    part (leaving out their covariance, as R does).

    An outer-level BLUP (``level`` below the number of levels) is R
    mixmeta's: the prediction is recomputed with the marginal covariance of
    the levels up to ``level`` only, ``S + sum_{l <= level} Z Psi_l Z'``,
    as if the inner levels were absent (this is not the conditional mean of
    the outer effects under the full model).

    Parameters
    ----------
    level : int, optional
        Levels included, counted from the outermost (1); the default is all.
    """
    model = results.model
    n_levels = model.random.n_levels
    level = n_levels if level is None else int(level)
    if not 0 <= level <= n_levels or (level == 0 and n_levels):
        raise ValueError(
            f"level must be between 1 (outermost) and {n_levels}; got "
            f"{level}")
    k = model.n_outcomes
    n_rows = model.design.endog.shape[0]
    fixed = model.predict(results.params)
    fixed_se = fixed_prediction(results).se.to_numpy()
    random_part = np.zeros((n_rows, k))
    random_var = np.zeros((n_rows, k))
    state = results._batched_state
    whitened, residuals = state.whitened, state.resid_w
    if level < n_levels:
        psis = state.psis[:level] + tuple(np.zeros_like(p)
                                          for p in state.psis[level:])
        beta = np.asarray(results.params)
        whitened = [whiten(b, marginal_cov(b, psis)) for b in model._batches]
        residuals = [wb.resid(beta) for wb in whitened]
    batches = model._batches
    for batch, wb, rw, (rows, outcomes, valid), value_rows in zip(
            batches, whitened, residuals, batches.cells(k), batches.rows()):
        cross = np.zeros(rows.shape + (batch.size,))
        total = np.zeros(rows.shape)
        for lev in range(level):
            psi = state.psis[lev]
            Zf = _full_random_design(model, lev, rows, outcomes, k)
            part = (Zf @ psi) @ np.swapaxes(batch.Z[lev], 1, 2)
            if lev > 0:
                codes = model.design.levels.codes[lev]
                part = part * (codes[rows][:, :, None]
                               == codes[value_rows][:, None, :])
            cross += part
            total += np.einsum("gpr,rs,gps->gp", Zf, psi, Zf)
        W = wb.inv_chol @ np.swapaxes(cross, 1, 2)             # (g, n, P)
        predicted = np.einsum("gnp,gn->gp", W, rw)
        variance = total - (W ** 2).sum(axis=1)
        random_part[rows[valid], outcomes[valid]] = predicted[valid]
        random_var[rows[valid], outcomes[valid]] = variance[valid]
    return (fixed + random_part,
            np.sqrt(fixed_se ** 2 + np.maximum(random_var, 0.0)))


def _full_random_design(model, lev, rows, outcomes, k):
    """``kron(e_outcome, z_row)`` of level ``lev`` at every position."""
    z = model.design.levels.random_exog[lev][rows.ravel()]
    full = expand_by_outcome(z, outcomes.ravel(), k)
    return full.reshape(rows.shape + (full.shape[1],))
