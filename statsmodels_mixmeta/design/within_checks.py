"""
Checks of the within-study covariances against the observed outcomes.

:func:`check_within_cov` verifies, without a Python loop over rows, that
each row's sub-block of ``S`` for its observed outcomes is complete, has
non-negative variances and is positive semi-definite, and names the rows,
outcomes and entries at fault when it is not.
"""

import numpy as np

from .halfvec import _lower_indices
from .labels import MAX_ROWS_SHOWN, describe_rows

#: How many offending rows an error message names before summarising.
_MAX_ROWS_IN_MESSAGE = MAX_ROWS_SHOWN

#: Relative tolerance for symmetry and positive semi-definiteness.
_TOLERANCE = 1e-10


def _row_labels(row_labels, n_rows, where=""):
    """Labels of the ``n_rows`` rows for messages (positions by default)."""
    if row_labels is None:
        return np.arange(n_rows)
    if not isinstance(row_labels, np.ndarray):
        row_labels = np.asarray(list(row_labels), dtype=object)
    if len(row_labels) != n_rows:
        raise ValueError(
            f"row_labels has {len(row_labels)} labels for {n_rows} rows"
            f"{where}"
        )
    return row_labels


def _check_shapes(within_cov, observed, row_labels, outcome_labels):
    """Validate shapes and return arrays and label lists."""
    within_cov = np.asarray(within_cov, dtype=float)
    observed = np.asarray(observed)
    if within_cov.ndim != 3 or within_cov.shape[1] != within_cov.shape[2]:
        raise ValueError(
            f"within_cov must have shape (n, k, k); got {within_cov.shape}"
        )
    n_rows, k = within_cov.shape[:2]
    if observed.shape != (n_rows, k):
        raise ValueError(
            f"observed must have shape (n, k) = ({n_rows}, {k}) to match "
            f"within_cov; got {observed.shape}"
        )
    row_labels = _row_labels(row_labels, n_rows)
    outcome_labels = (
        list(range(k)) if outcome_labels is None else list(outcome_labels)
    )
    if len(outcome_labels) != k:
        raise ValueError(
            f"outcome_labels has {len(outcome_labels)} labels for {k} outcomes"
        )
    return within_cov, observed.astype(bool), row_labels, outcome_labels


def _describe_bad_entries(bad_entries, outcome_labels):
    """
    Name the outcomes, and the entries, flagged in one row's (k, k) mask.

    A flagged variance is reported as ``var(a)``; a flagged covariance as
    ``cov(a, b)`` unless it only follows from a flagged variance.

    Returns
    -------
    str
        For example ``"y1, y2 (cov(y1, y2))"``.
    """
    bad_variance = np.diagonal(bad_entries).copy()
    rows, cols = _lower_indices(len(outcome_labels), strict=True)
    bad_covariance = (
        bad_entries[rows, cols] & ~bad_variance[rows] & ~bad_variance[cols]
    )
    involved = bad_variance.copy()
    involved[rows[bad_covariance]] = True
    involved[cols[bad_covariance]] = True
    entries = [f"var({outcome_labels[a]})" for a in np.flatnonzero(bad_variance)]
    entries += [
        f"cov({outcome_labels[c]}, {outcome_labels[r]})"
        for r, c in zip(rows[bad_covariance], cols[bad_covariance])
    ]
    outcomes = ", ".join(str(outcome_labels[a]) for a in np.flatnonzero(involved))
    return f"{outcomes} ({', '.join(entries)})"


def _check_complete(within_cov, observed, row_labels, outcome_labels):
    """Raise if an entry of an observed sub-block is NaN or infinite."""
    observed_pairs = observed[:, :, None] & observed[:, None, :]
    if not (observed_pairs & ~np.isfinite(within_cov)).any():
        return
    for test, what in ((np.isnan, "missing"), (np.isinf, "infinite")):
        bad_entries = observed_pairs & test(within_cov)
        bad_rows = np.flatnonzero(np.any(bad_entries, axis=(1, 2)))
        if bad_rows.size == 0:
            continue
        details = "; ".join(
            f"{_describe_bad_entries(bad_entries[i], outcome_labels)} "
            f"in row {row_labels[i]}"
            for i in bad_rows[:_MAX_ROWS_IN_MESSAGE]
        )
        raise ValueError(
            f"S is {what} for observed outcomes in "
            f"{describe_rows(bad_rows, row_labels)}: outcome(s) {details}. "
            f"Every observed outcome needs its variance, and every pair of "
            f"observed outcomes its covariance"
        )


def _check_variances(within_cov, observed, row_labels, outcome_labels):
    """Raise if an observed outcome has a negative variance."""
    variances = np.diagonal(within_cov, axis1=1, axis2=2)
    negative = observed & (variances < 0)
    if not negative.any():
        return
    bad_rows = np.flatnonzero(np.any(negative, axis=1))
    if bad_rows.size:
        details = "; ".join(
            ", ".join(
                f"{outcome_labels[j]}: {variances[i, j]:.6g}"
                for j in np.flatnonzero(negative[i])
            ) + f" (row {row_labels[i]})"
            for i in bad_rows[:_MAX_ROWS_IN_MESSAGE]
        )
        raise ValueError(
            f"negative variances in S at "
            f"{describe_rows(bad_rows, row_labels)}: {details}"
        )


def _smallest_observed_eigenvalues(within_cov, observed):
    """
    Smallest eigenvalue and tolerance of each row's observed sub-block.

    Rows are grouped by their pattern of observed outcomes (at most
    ``2**k`` patterns) and each group's sub-blocks are stacked for one
    batched ``eigvalsh`` call.  Rows with nothing observed get ``+inf``.

    Returns
    -------
    smallest, tolerance : ndarray, shape (n,)
    """
    n_rows, k = observed.shape
    smallest = np.full(n_rows, np.inf)
    tolerance = np.zeros(n_rows)
    codes = observed.astype(np.int64) @ (np.int64(1) << np.arange(k))
    patterns, first_rows = np.unique(codes, return_index=True)
    for code, first in zip(patterns, first_rows):
        outcomes = np.flatnonzero(observed[first])
        if outcomes.size == 0:
            continue
        rows = np.flatnonzero(codes == code)
        blocks = within_cov[np.ix_(rows, outcomes, outcomes)]
        smallest[rows] = np.linalg.eigvalsh(blocks)[:, 0]
        diagonal_scale = np.abs(np.diagonal(blocks, axis1=1, axis2=2)).max(axis=1)
        tolerance[rows] = _TOLERANCE * np.maximum(1.0, diagonal_scale)
    return smallest, tolerance


def check_within_cov(within_cov, observed, row_labels=None,
                     outcome_labels=None):
    """
    Check the within-study covariances of the observed outcomes.

    For each row only the sub-block :math:`S_u[o_u, o_u]` of the observed
    outcomes :math:`o_u` matters.  It must contain no missing (NaN) or
    infinite entries, have non-negative variances, and be positive
    semi-definite: its smallest eigenvalue must not fall below
    :math:`-10^{-10} \\max(1, \\max_a |S_{u,aa}|)`.

    Parameters
    ----------
    within_cov : array_like, shape (n, k, k)
        Within-study covariance matrices, e.g. from
        :func:`within_cov_from_input`.
    observed : array_like of bool, shape (n, k)
        Which outcomes are observed in each row.
    row_labels : sequence, optional
        Labels naming the rows in messages; defaults to ``0, ..., n-1``.
    outcome_labels : sequence, optional
        Labels naming the outcomes in messages; defaults to ``0, ..., k-1``.

    Raises
    ------
    ValueError
        Naming up to the first five offending rows, when an observed
        sub-block has a missing or infinite entry, a negative variance, or
        is not positive semi-definite (the message then gives each row's
        smallest eigenvalue).

    Notes
    -----
    There is no Python loop over rows: rows are grouped by their pattern of
    observed outcomes and each pattern's sub-blocks go to one batched
    ``numpy.linalg.eigvalsh`` call.
    """
    within_cov, observed, row_labels, outcome_labels = _check_shapes(
        within_cov, observed, row_labels, outcome_labels
    )
    _check_complete(within_cov, observed, row_labels, outcome_labels)
    _check_variances(within_cov, observed, row_labels, outcome_labels)
    if within_cov.shape[1] == 1:
        return  # a 1 x 1 block with a non-negative variance is PSD
    smallest, tolerance = _smallest_observed_eigenvalues(within_cov, observed)
    bad_rows = np.flatnonzero(smallest < -tolerance)
    if bad_rows.size:
        details = ", ".join(
            f"{smallest[i]:.6g} (row {row_labels[i]})"
            for i in bad_rows[:_MAX_ROWS_IN_MESSAGE]
        )
        raise ValueError(
            f"S is not positive semi-definite for the observed outcomes in "
            f"{describe_rows(bad_rows, row_labels)}; smallest eigenvalue "
            f"{details}"
        )
