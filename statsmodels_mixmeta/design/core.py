"""
Validated model inputs: the missing-data rule, the checks of outcomes,
predictors and known covariances, and the estimability of the fixed effects.

:func:`build_design` turns arrays (already evaluated formulas included)
into a :class:`~.frozen.Design` (re-exported here with the helpers it
uses); :mod:`.builder` calls it from the model's arguments.
"""
import numpy as np

from .covariance import check_within_cov, within_cov_from_input
from .frozen import (  # noqa: F401  (the design and its helpers live there)
    Design, LongFormat, coefficient_names, conditioning_basis,
    expand_by_outcome)
from .labels import label_list

MISSING_OPTIONS = ("drop", "raise", "none")


def study_arrays(y, X, within_cov):
    """
    Float arrays ``y`` ``(m, k)``, ``X`` ``(m, p)`` and ``within_cov``
    ``(m, k, k)``; one-dimensional inputs are a single column (and, for
    ``within_cov``, a single variance).  Shapes are checked by the caller.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    within_cov = np.asarray(within_cov, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if X.ndim == 1:
        X = X[:, None]
    if within_cov.ndim == 1:
        within_cov = within_cov[:, None, None]
    return y, X, within_cov


def rows_to_keep(endog, exog, missing, row_labels, extra=()):
    """
    The missing-data rule.

    A row is unusable when a predictor (or an ``extra`` row-wise array, e.g.
    a grouping variable) is missing, or when all its outcomes are missing.
    Rows with some outcomes missing are kept.  ``missing="drop"`` drops
    unusable rows; ``"raise"`` raises naming them; ``"none"`` raises for
    missing predictors and keeps rows without outcomes (they contribute no
    values).
    """
    if missing not in MISSING_OPTIONS:
        raise ValueError(
            f"missing must be one of {MISSING_OPTIONS}, got {missing!r}")
    bad_pred = _rows_with_nan(exog)
    bad_group = np.zeros_like(bad_pred)
    for arr in extra:
        bad_group = bad_group | _row_has_nan(arr)
    no_outcome = (np.isnan(endog[:, 0]) if endog.shape[1] == 1
                  else np.isnan(endog).all(axis=1))
    if missing == "drop":
        keep = ~(bad_pred | bad_group | no_outcome)
        if not keep.any():
            raise ValueError(
                f"no rows are left: all {keep.size} rows have a missing "
                "predictor, grouping label or random predictor, or no "
                "observed outcome")
        return keep
    if bad_pred.any():
        raise ValueError(
            "missing values in predictors at rows "
            f"{label_list(bad_pred, row_labels)}; use missing='drop' to "
            "drop them")
    if bad_group.any():
        raise ValueError(
            "missing values in grouping variables or random predictors at "
            f"rows {label_list(bad_group, row_labels)}; use "
            "missing='drop' to drop them")
    if missing == "raise" and no_outcome.any():
        raise ValueError(
            "all outcomes are missing at rows "
            f"{label_list(no_outcome, row_labels)}; use missing='drop' to "
            "drop them")
    return np.ones(endog.shape[0], dtype=bool)


def build_design(endog, exog, S, Scor, outcome_names, term_names,
                 row_labels, known_cov_given=False, **parts):
    """
    Validate the rows kept and assemble a :class:`Design`.

    ``S`` and ``Scor`` are already restricted to the kept rows.  With
    ``known_cov_given`` the known covariance comes per group instead
    (``addS``), and ``within_cov`` is None.  ``parts`` are the other fields
    of :class:`Design` (``levels``, ``group_cov``, ...).
    """
    endog = np.asarray(endog, dtype=float)
    if endog.ndim == 1:
        endog = endog[:, None]
    exog = np.asarray(exog, dtype=float)
    n, k = endog.shape
    if exog.ndim != 2 or exog.shape[0] != n:
        raise ValueError(
            f"exog must have one row per outcome row: endog has {n} rows, "
            f"exog has shape {exog.shape}")
    if known_cov_given:
        return Design(endog, exog, None, tuple(outcome_names),
                      tuple(term_names), np.asarray(row_labels), **parts)
    if S is None:
        raise ValueError(
            "S, the known within-study (co)variances, is required (or addS, "
            "one covariance matrix per group)")
    within_cov = within_cov_from_input(S, k, Scor=Scor,
                                       row_labels=row_labels)
    if within_cov.shape[0] != n:
        raise ValueError(
            f"S must have one row per outcome row: endog has {n} rows, S has "
            f"{within_cov.shape[0]}")
    check_within_cov(within_cov, ~np.isnan(endog), row_labels=row_labels,
                     outcome_labels=outcome_names)
    return Design(endog, exog, within_cov, tuple(outcome_names),
                  tuple(term_names), np.asarray(row_labels), **parts)


def constant_column(exog):
    """
    Index of the first constant, non-zero column of ``exog``, or None.

    Read off the column sums and sums of squares (a column is constant
    when its sum of squares equals its squared sum over ``n``): products
    with a vector, not reductions along the slow axis.
    """
    n = exog.shape[0]
    if n == 0:
        return None
    ones = np.ones(n)
    sums = exog.T @ ones
    squares = (exog * exog).T @ ones
    spread = squares - sums ** 2 / n
    constant = (spread <= 1e-12 * np.maximum(squares, 1e-300)) & (sums != 0)
    hits = np.flatnonzero(constant)
    return int(hits[0]) if hits.size else None


def check_estimable(X_long, param_names, xtx=None):
    """
    Raise when the fixed effects cannot be estimated.

    Names the collinear coefficients of a rank-deficient design.  ``xtx``
    is ``X_long' X_long`` if the caller has it.
    """
    n_values, n_coef = X_long.shape
    if n_values < n_coef:
        raise ValueError(
            f"fewer observed outcome values ({n_values}) than fixed "
            f"coefficients ({n_coef}): {', '.join(param_names)}")
    if xtx is None:
        xtx = X_long.T @ X_long
    scale = np.sqrt(np.diag(xtx))
    scale[scale == 0] = 1.0
    xtx = xtx / np.outer(scale, scale)
    eigval, eigvec = np.linalg.eigh(xtx)
    null = eigval < 1e-10 * max(eigval.max(), 1.0)
    if null.any():
        involved = np.abs(eigvec[:, null]).max(axis=1) > 1e-6
        names = [name for name, hit in zip(param_names, involved) if hit]
        raise ValueError(
            "the fixed-effects design is rank deficient: these coefficients "
            f"are collinear (or never observed): {', '.join(names)}")


def _rows_with_nan(matrix):
    """Rows of a 2-D float array holding a NaN."""
    if matrix.shape[1] == 1:
        return np.isnan(matrix[:, 0])
    # a NaN makes its row's sum NaN (one matrix-vector product, not a
    # reduction across short rows); so does inf - inf, hence the check
    flagged = np.isnan(matrix @ np.ones(matrix.shape[1]))
    if flagged.any():
        rows = np.flatnonzero(flagged)
        flagged[rows] = np.isnan(matrix[rows]).any(axis=1)
    return flagged


def _row_has_nan(arr):
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        return _rows_with_nan(arr.reshape(arr.shape[0], -1))
    if arr.dtype.kind == "c":
        return np.isnan(arr.reshape(arr.shape[0], -1)).any(axis=1)
    if arr.dtype.kind == "O":
        flat = arr.reshape(arr.shape[0], -1)
        return np.array([any(v is None or v != v for v in r) for r in flat])
    return np.zeros(arr.shape[0], dtype=bool)


def constant_term(exog):
    """
    statsmodels' ``(k_constant, const_idx)`` of the per-outcome predictors.

    ``k_constant`` is 1 when a column of ``exog`` is a non-zero constant
    (``const_idx`` is its position) or when the columns span the constant
    without holding it (a full set of dummies; ``const_idx`` is None), and
    0 otherwise.  The span is checked through the column sums ``s = X'1``:
    ``1`` lies in the column space of ``X`` iff ``n - s' (X'X)^+ s = 0``.
    """
    exog = np.asarray(exog, dtype=float)
    n = exog.shape[0]
    if n == 0 or exog.shape[1] == 0:
        return 0, None
    column = constant_column(exog)
    if column is not None:
        return 1, column
    sums = np.ones(n) @ exog
    left = n - sums @ np.linalg.pinv(exog.T @ exog) @ sums
    return int(abs(left) <= 1e-8 * n), None
