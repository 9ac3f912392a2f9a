"""
Within-study covariance matrices: the forms of ``S`` users give.

In a (multivariate) meta-analysis every study, or row, :math:`u = 1, \\dots, n`
reports :math:`k` outcomes :math:`y_u` (some possibly missing) together with a
*known* within-study covariance matrix :math:`S_u` (:math:`k \\times k`).
Users give :math:`S` in several forms, as in R's ``mixmeta`` (Sera et al.
2019); this module turns each of them into one array ``within_cov`` of shape
``(n, k, k)`` and checks it against the outcomes that are observed.

Forms of ``S`` accepted by :func:`within_cov_from_input`:

* ``(n,)`` or ``(n, 1)`` variances when :math:`k = 1`;
* ``(n, k)`` variances :math:`s^2_{u,a}`; the covariances are then built from
  correlations ``Scor`` as :math:`S_{u,ab} = r_{u,ab}\\, s_{u,a} s_{u,b}`
  (see :func:`inputcov`; default :math:`r = 0`);
* ``(n, k(k+1)/2)`` half-vectorised matrices, :math:`\\operatorname{vech}(S_u)`,
  the lower triangle taken column by column (for :math:`k = 2`: ``var1,
  cov12, var2``);
* ``(n, k, k)`` full matrices.

Missing values (NaN) propagate: a missing variance makes the whole row and
column of that outcome NaN.  That is harmless as long as the outcome is
missing too; :func:`check_within_cov` verifies, without a Python loop over
rows, that the sub-block of the observed outcomes is complete, has
non-negative variances and is positive semi-definite.

The parts live in modules of their own and are all importable from here:
:mod:`.halfvec` (:func:`vech`, :func:`unvech`), :mod:`.from_sds`
(:func:`inputcov`) and :mod:`.within_checks` (:func:`check_within_cov`).

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. *Statistics in Medicine* 38(29),
5429-5444.
"""

import numpy as np

from .from_sds import _cov_from_sds, _expand_correlations, inputcov
from .halfvec import _lower_indices, unvech, vech
from .labels import describe_rows
from .within_checks import _TOLERANCE, _row_labels, check_within_cov
from .within_checks import (  # noqa: F401  (tests import it from here)
    _smallest_observed_eigenvalues)

__all__ = [
    "vech",
    "unvech",
    "inputcov",
    "within_cov_from_input",
    "check_within_cov",
]


def _valid_forms(k):
    """Describe the accepted shapes of S for ``k`` outcomes."""
    if k == 1:
        return (
            "for k=1 outcome S must be a vector of variances, have 1 column "
            "(variances), or be an (n, 1, 1) array"
        )
    n_vech = k * (k + 1) // 2
    rows, cols = _lower_indices(k)
    names = ", ".join(
        f"var{r + 1}" if r == c else f"cov{c + 1}{r + 1}"
        for r, c in zip(rows, cols)
    )
    return (
        f"for k={k} outcomes S must have {k} columns (variances, with Scor) "
        f"or {n_vech} columns ({names} by column of the lower triangle), or "
        f"be an (n, {k}, {k}) array"
    )


def _symmetrise(full, row_labels):
    """
    Check full matrices for symmetry and return their symmetric part.

    Entries are compared where both are non-missing, with tolerance
    ``1e-10`` times the largest absolute entry of that row's matrix.
    """
    transposed = np.swapaxes(full, -1, -2)
    scale = np.nanmax(np.abs(full), axis=(1, 2), initial=0.0)
    with np.errstate(invalid="ignore"):
        gap = np.abs(full - transposed)
    gap = np.nan_to_num(gap, nan=0.0)
    asymmetric = np.any(gap > _TOLERANCE * scale[:, None, None], axis=(1, 2))
    bad_rows = np.flatnonzero(asymmetric)
    if bad_rows.size:
        raise ValueError(
            f"S is not symmetric at {describe_rows(bad_rows, row_labels)}; "
            f"each (k, k) matrix must equal its transpose"
        )
    return (full + transposed) / 2


def within_cov_from_input(S, k, Scor=None, row_labels=None):
    """
    Convert any accepted form of ``S`` into an ``(n, k, k)`` array.

    Parameters
    ----------
    S : array_like
        Within-study (co)variances in one of these forms:

        * ``(n,)`` or ``(n, 1)`` variances, when ``k == 1``;
        * ``(n, k)`` variances; covariances are
          :math:`S_{u,ab} = r_{u,ab} \\sqrt{S_{u,aa} S_{u,bb}}` with the
          correlations ``Scor`` (default 0);
        * ``(n, k(k+1)/2)`` half-vectorised matrices, lower triangle by
          column (for ``k == 2``: ``var1, cov12, var2``); see :func:`vech`;
        * ``(n, k, k)`` full symmetric matrices.

        NaN marks an unavailable entry and propagates (a missing variance
        makes that outcome's row and column NaN in the variance form).
    k : int
        Number of outcomes.
    Scor : float or array_like, optional
        Within-study correlations, only with the variance form: a scalar, a
        vector of ``k(k-1)/2`` (one per pair, strict lower triangle by
        column), a vector of ``n`` (one per study), or an
        ``(n, k(k-1)/2)`` array; see :func:`inputcov`.  Ignored when
        ``k == 1``.
    row_labels : sequence, optional
        Row labels for error messages; defaults to ``0, ..., n-1``.

    Returns
    -------
    ndarray, shape (n, k, k)
        The within-study covariance matrices (float, NaN where missing).

    Raises
    ------
    ValueError
        If ``S`` has a shape that fits none of the forms (the message lists
        the valid ones); ``Scor`` is given with a form other than variances,
        has the wrong length or lies outside [-1, 1]; or full matrices are
        not symmetric.

    Notes
    -----
    A negative variance is kept on the diagonal (and treated as 0 when
    forming covariances) so that :func:`check_within_cov` can report it.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be a positive number of outcomes; got {k}")
    S = np.asarray(S, dtype=float)
    n_vech = k * (k + 1) // 2
    is_variances = (
        (k == 1 and S.ndim == 1)
        or (S.ndim == 2 and S.shape[1] == k)
    )
    is_vech = S.ndim == 2 and S.shape[1] == n_vech and not is_variances
    is_full = S.ndim == 3 and S.shape[1:] == (k, k)
    if not (is_variances or is_vech or is_full):
        received = (
            f"S has {S.shape[1]} columns" if S.ndim == 2
            else f"S has shape {S.shape}"
        )
        raise ValueError(f"{received}; {_valid_forms(k)}")
    if k == 1 and is_variances and Scor is None:
        # one outcome: the variances are the 1 x 1 matrices themselves
        return S.reshape(-1, 1, 1).copy()
    if Scor is not None and not is_variances:
        form = "full (n, k, k) matrices" if is_full else "vech columns"
        raise ValueError(
            f"Scor is only used when S holds variances ((n, {k}) array); "
            f"here S holds {form}, which already contain the covariances"
        )

    n_rows = S.shape[0]
    row_labels = _row_labels(row_labels, n_rows, " of S")
    if is_variances:
        variances = S.reshape(n_rows, k)
        correlations = _expand_correlations(Scor, n_rows, k, "Scor",
                                            row_labels)
        with np.errstate(invalid="ignore"):
            sds = np.sqrt(np.clip(variances, 0.0, None))
        within_cov = _cov_from_sds(sds, correlations)
        diagonal = np.arange(k)
        within_cov[:, diagonal, diagonal] = variances
        return within_cov
    if is_vech:
        return unvech(S, k)
    return _symmetrise(S, row_labels)
