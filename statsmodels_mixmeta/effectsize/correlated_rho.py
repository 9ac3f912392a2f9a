"""
The within-patient correlations of several outcomes, as given to
:func:`~statsmodels_mixmeta.escalc_correlated` (a number, a ``k x k``
matrix, or one per study), read into one ``(n, k, k)`` stack of correlation
matrices and checked: unit diagonal, symmetric, off-diagonal ``|rho| < 1``,
known wherever two outcomes are both observed, and positive semi-definite on
each study's observed outcomes.
"""
from __future__ import annotations

import numpy as np

from ..design.labels import describe_rows
from .checks import MISALIGNED, NO_DATA, NOT_IN_DATA, lookup

#: The forms ``rho`` may take, for error messages.
RHO_FORMS = ("a number, a k x k correlation matrix, a column name of data, "
             "an (n,) array (one correlation per study) or an (n, k, k) "
             "array (one matrix per study)")

#: How far below zero an eigenvalue may fall and still count as zero.
EIGEN_TOLERANCE = 1e-10


def correlation_stack(rho, data, n, k, index, name="rho"):
    """
    ``rho`` in any accepted form as an ``(n, k, k)`` float array.

    A single correlation (a number, a column of ``data`` or an ``(n,)``
    array) is the correlation of every pair of outcomes; matrices give
    one correlation per pair.  ``index`` labels the studies (the rows).
    """
    if rho is None:
        raise ValueError(f"{name} is required: the correlation of the "
                         f"outcomes within patients, as {RHO_FORMS}")
    rho, _ = lookup(rho, data, {
        NO_DATA: f"{name}={{column!r}} names no column of data (no data "
                 "were given)",
        NOT_IN_DATA: f"{name}={{column!r}} names no column of data (data "
                     "has columns {columns})",
        MISALIGNED: f"{name} as a Series must be indexed like data"})
    try:
        values = np.asarray(rho, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric: {RHO_FORMS}") from None
    if values.ndim == 0 or (values.ndim == 1 and values.shape == (n,)):
        common = np.broadcast_to(values, (n,))
        stack = np.repeat(common[:, None, None], k, axis=1).repeat(k, axis=2)
        stack = np.array(stack)
        stack[:, np.arange(k), np.arange(k)] = 1.0
        return stack
    if values.shape == (k, k):
        return np.broadcast_to(values, (n, k, k)).copy()
    if values.shape == (n, k, k):
        return values.copy()
    raise ValueError(f"{name} has shape {values.shape}; with {n} studies and "
                     f"{k} outcomes give {RHO_FORMS}, i.e. shape (), ({n},), "
                     f"({k}, {k}) or ({n}, {k}, {k})")


def check_correlations(stack, observed, index, name="rho"):
    """
    Raise ``ValueError`` naming the studies whose correlations are invalid.

    Parameters
    ----------
    stack : ndarray, ``(n, k, k)``
        Correlation matrices, one per study (NaN where not known).
    observed : ndarray of bool, ``(n, k)``
        Which outcomes each study reports; a correlation must be known for
        every pair of observed outcomes, and each study's matrix must be
        positive semi-definite on its observed outcomes.
    index : sequence
        The studies' labels.
    """
    labels = list(index)
    k = stack.shape[1]
    with np.errstate(invalid="ignore"):
        checks = _element_checks(stack, k)
    both = observed[:, :, None] & observed[:, None, :]
    checks.append(((np.isnan(stack) & both).any(axis=(1, 2)),
                   "are missing for outcomes the study reports"))
    for bad, what in checks:
        if bad.any():
            raise ValueError(f"{name}: the correlations of "
                             f"{describe_rows(bad, labels)} {what}")
    _check_semidefinite(stack, both, labels, name)


def _element_checks(stack, k):
    """``(bad rows, what is wrong)`` for the entries of the matrices."""
    diag = np.arange(k)
    off = ~np.eye(k, dtype=bool)
    return [
        (np.isinf(stack).any(axis=(1, 2)), "are infinite"),
        ((np.abs(stack[:, diag, diag] - 1.0) > 1e-12).any(axis=1),
         "have a diagonal other than 1 (a correlation matrix is needed)"),
        ((np.abs(stack - np.swapaxes(stack, 1, 2)) > 1e-12).any(axis=(1, 2)),
         "are not symmetric"),
        (((np.abs(stack) >= 1.0) & off).any(axis=(1, 2)),
         "are 1 or more in absolute value (|rho| < 1 is needed)"),
    ]


def _check_semidefinite(stack, both, labels, name):
    """Each matrix positive semi-definite on the observed outcomes."""
    k = stack.shape[1]
    diag = np.arange(k)
    # positive semi-definite on the observed outcomes: the rows and columns
    # of a missing outcome become those of the identity
    checked = np.where(both, stack, 0.0)
    checked[:, diag, diag] = 1.0
    smallest = np.linalg.eigvalsh(checked)[:, 0]
    bad = smallest < -EIGEN_TOLERANCE
    if bad.any():
        hint = (f"; a common correlation of {k} outcomes must be at least "
                f"-1/(k-1) = {-1 / (k - 1):.4g}" if k > 2 else "")
        raise ValueError(
            f"{name}: the correlation matrices of "
            f"{describe_rows(bad, labels)} are not positive semi-definite "
            f"(smallest eigenvalue {smallest[bad].min():.3g}){hint}")
