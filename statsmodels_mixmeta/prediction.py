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

from . import formula as _formula


@dataclass(frozen=True)
class PredictionResults:
    """Predicted means ``(n, k)`` with standard errors."""

    predicted: pd.DataFrame
    se: pd.DataFrame
    alpha: float = 0.05

    def conf_int(self, alpha=None):
        """Lower and upper ``1 - alpha`` limits, each ``(n, k)``."""
        alpha = self.alpha if alpha is None else alpha
        z = stats.norm.isf(alpha / 2)
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
        return model.design.exog, list(model.design.row_labels)
    spec = getattr(model.data, "model_spec", None)
    if spec is not None and isinstance(exog, (pd.DataFrame, dict)):
        frame = pd.DataFrame(exog)
        namespace = getattr(model, "formula_namespace", None)
        return _formula.new_exog(spec, frame, namespace), list(frame.index)
    arr = np.atleast_2d(np.asarray(exog, dtype=float))
    if arr.shape[1] != model.design.n_terms:
        raise ValueError(
            f"exog needs {model.design.n_terms} columns "
            f"({', '.join(model.design.term_names)}), got {arr.shape[1]}")
    index = exog.index if isinstance(exog, pd.DataFrame) else range(len(arr))
    return arr, list(index)


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
    return PredictionResults(frame(mean), frame(np.sqrt(var)), alpha)


def random_effects(results):
    """Predicted random effects of each group (single-level model), (m, k)."""
    model = results.model
    k = model.n_outcomes
    effects = np.zeros((model.n_groups, k))
    state = results._batched_state
    if not state.psis:
        return effects
    psi = state.psis[0]
    for batch, wb, rw in zip(model._batches, state.whitened, state.resid_w):
        weighted = np.einsum("gmn,gm->gn", wb.inv_chol, rw)     # Sigma^-1 r
        effects[batch.groups] = np.einsum(
            "gnr,gn->gr", batch.Z[0], weighted) @ psi
    return effects


def blup(results):
    """
    BLUPs ``x' beta + b_i`` of every row and outcome, and their standard
    errors, for the single-level model.

    The standard errors are R mixmeta's: the variance of the fixed part,
    ``x' V(beta) x``, plus the conditional variance of the random effect,
    ``Psi - Psi Z' Sigma^{-1} Z Psi``.  (This leaves out the covariance
    between ``beta_hat`` and ``b_hat``, as R does.)
    """
    model = results.model
    fitted_all = model.predict(results.params)
    values = fitted_all + random_effects(results)
    errors = _blup_standard_errors(results)
    return values, errors


def _blup_standard_errors(results):
    """Prediction-error standard errors of the BLUPs, (n, k)."""
    model = results.model
    k, p = model.n_outcomes, model.design.n_terms
    state = results._batched_state
    cov_beta = state.cov_beta
    exog = model.design.exog
    rows_X = np.einsum("jc,np->njcp", np.eye(k), exog).reshape(-1, k, k * p)
    fixed_var = np.einsum("njc,cd,njd->nj", rows_X, cov_beta, rows_X)
    if not state.psis:
        return np.sqrt(fixed_var)
    psi = state.psis[0]
    out = np.empty((model.n_groups, k))
    for batch, wb in zip(model._batches, state.whitened):
        Zw = wb.Z[0]                                   # L^-1 Z, (g, n, k)
        ZWZ = np.swapaxes(Zw, 1, 2) @ Zw               # Z' W Z
        var_b = psi - psi @ ZWZ @ psi                  # (g, k, k)
        out[batch.groups] = np.sqrt(
            np.diagonal(var_b, axis1=1, axis2=2) + fixed_var[batch.groups])
    return out
