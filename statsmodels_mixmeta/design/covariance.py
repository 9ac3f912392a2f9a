"""
Within-study covariance matrices: half-vectorisation and input forms.

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

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. *Statistics in Medicine* 38(29),
5429-5444.
"""

import numpy as np

from .labels import MAX_ROWS_SHOWN, describe_rows

__all__ = [
    "vech",
    "unvech",
    "inputcov",
    "within_cov_from_input",
    "check_within_cov",
]

#: How many offending rows an error message names before summarising.
_MAX_ROWS_IN_MESSAGE = MAX_ROWS_SHOWN

#: Relative tolerance for symmetry and positive semi-definiteness.
_TOLERANCE = 1e-10


# ---------------------------------------------------------------------------
# Half-vectorisation
# ---------------------------------------------------------------------------

def _lower_indices(k, strict=False):
    """
    Indices of the lower triangle of a ``k x k`` matrix, taken by column.

    Parameters
    ----------
    k : int
        Matrix dimension.
    strict : bool
        If True, leave out the diagonal (the order used for correlations:
        ``(2,1), (3,1), ..., (k,1), (3,2), ...`` in 1-based notation).

    Returns
    -------
    rows, cols : ndarray of int
        Row and column indices, column-major order.
    """
    # triu_indices lists (i, j), i <= j, row by row; swapping the roles of
    # i and j lists the lower triangle column by column.
    upper_rows, upper_cols = np.triu_indices(k, 1 if strict else 0)
    return upper_cols, upper_rows


def _triangular_dimension(length):
    """Return k with k(k+1)/2 == length, or None if there is none."""
    k = int(round((np.sqrt(8 * length + 1) - 1) / 2))
    return k if k * (k + 1) // 2 == length else None


def vech(matrix):
    """
    Half-vectorise a symmetric matrix (or a stack of them).

    The lower triangle, diagonal included, is taken column by column:
    for :math:`k = 2`, :math:`(m_{11}, m_{21}, m_{22})`; for :math:`k = 3`,
    :math:`(m_{11}, m_{21}, m_{31}, m_{22}, m_{32}, m_{33})`.

    Parameters
    ----------
    matrix : array_like, shape (..., k, k)
        One matrix or a stack of matrices.

    Returns
    -------
    ndarray, shape (..., k(k+1)/2)
        The half-vectorised matrices.

    See Also
    --------
    unvech : The inverse.

    Examples
    --------
    >>> vech([[1.0, 2.0], [2.0, 3.0]])
    array([1., 2., 3.])
    """
    matrix = np.asarray(matrix)
    if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(
            f"vech needs a square matrix or a stack of square matrices, "
            f"shape (..., k, k); got shape {matrix.shape}"
        )
    rows, cols = _lower_indices(matrix.shape[-1])
    return matrix[..., rows, cols]


def unvech(vector, k=None):
    """
    Rebuild symmetric matrices from their half-vectorisation.

    Parameters
    ----------
    vector : array_like, shape (..., m)
        Half-vectorised matrices, lower triangle by column (see :func:`vech`),
        with :math:`m = k(k+1)/2`.
    k : int, optional
        Matrix dimension; inferred from ``m`` when omitted.

    Returns
    -------
    ndarray, shape (..., k, k)
        Symmetric matrices.

    Raises
    ------
    ValueError
        If ``m`` is not a triangular number, or does not match ``k``.

    Examples
    --------
    >>> unvech([1.0, 2.0, 3.0])
    array([[1., 2.],
           [2., 3.]])
    """
    vector = np.asarray(vector)
    if vector.ndim == 0:
        vector = vector.reshape(1)
    length = vector.shape[-1]
    inferred = _triangular_dimension(length)
    if k is None:
        if inferred is None:
            raise ValueError(
                f"unvech needs k(k+1)/2 values per matrix (1, 3, 6, 10, ...); "
                f"got {length}"
            )
        k = inferred
    elif inferred != k:
        raise ValueError(
            f"unvech with k={k} needs {k * (k + 1) // 2} values per matrix; "
            f"got {length}"
        )
    rows, cols = _lower_indices(k)
    dtype = np.result_type(vector.dtype, np.float64)
    matrix = np.zeros(vector.shape[:-1] + (k, k), dtype=dtype)
    matrix[..., rows, cols] = vector
    matrix[..., cols, rows] = vector
    return matrix


# ---------------------------------------------------------------------------
# Standard deviations and correlations
# ---------------------------------------------------------------------------

def _expand_correlations(cor, n_rows, k, name="cor", row_labels=None):
    """
    Turn the accepted forms of correlations into an ``(n, k(k-1)/2)`` array.

    Parameters
    ----------
    cor : None, float or array_like
        ``None`` (all 0); a scalar; a vector of length ``n`` (one correlation
        per study, shared by all pairs of outcomes); a vector of length
        ``k(k-1)/2`` (one per pair, shared by all studies, strict lower
        triangle by column); a ``(k, k)`` correlation matrix when ``n == 1``;
        or an ``(n, k(k-1)/2)`` array, one row per study.  When ``n`` equals
        ``k(k-1)/2`` a vector is read as one value per study, as in R's
        ``inputcov``.
    n_rows, k : int
        Number of studies and of outcomes.
    name : str
        Argument name used in error messages (``"cor"`` or ``"Scor"``).

    Returns
    -------
    ndarray, shape (n, k(k-1)/2)
        Correlations in strict-lower-triangle column order; NaN kept.

    Raises
    ------
    ValueError
        If the shape fits none of the forms, or a value lies outside [-1, 1].
    """
    n_pairs = k * (k - 1) // 2
    if cor is None:
        return np.zeros((n_rows, n_pairs))
    cor = np.asarray(cor, dtype=float)
    _check_correlation_range(cor, name, n_rows, row_labels)
    if n_pairs == 0:
        return np.zeros((n_rows, 0))
    if cor.ndim == 0 or (cor.ndim == 1 and cor.size == 1):
        return np.full((n_rows, n_pairs), cor.reshape(()))
    if cor.ndim == 1 and cor.size == n_rows:
        return np.repeat(cor[:, None], n_pairs, axis=1)
    if cor.ndim == 1 and cor.size == n_pairs:
        return np.tile(cor, (n_rows, 1))
    if cor.ndim == 2 and cor.shape == (n_rows, n_pairs):
        return cor.copy()
    if cor.ndim == 2 and cor.shape == (1, n_pairs):
        return np.tile(cor[0], (n_rows, 1))
    if cor.ndim == 2 and cor.shape == (k, k) and n_rows == 1:
        rows, cols = _lower_indices(k, strict=True)
        return cor[rows, cols][None, :]
    pairs = ", ".join(
        f"({r + 1},{c + 1})" for r, c in zip(*_lower_indices(k, strict=True))
    )
    raise ValueError(
        f"{name} has shape {cor.shape}; for n={n_rows} studies and k={k} "
        f"outcomes it must be a scalar, a vector of length {n_pairs} (one "
        f"correlation per pair of outcomes, in the order {pairs}), a vector "
        f"of length {n_rows} (one correlation per study), or an array of "
        f"shape ({n_rows}, {n_pairs}) (one row per study)"
    )


def _check_correlation_range(cor, name, n_rows=None, row_labels=None):
    """
    Raise ValueError if a non-missing correlation lies outside [-1, 1],
    naming the rows when there is one row of correlations per study.
    """
    outside = np.abs(np.nan_to_num(cor, nan=0.0)) > 1
    if np.any(outside):
        values = ", ".join(f"{v:g}" for v in cor[outside][:_MAX_ROWS_IN_MESSAGE])
        where = ""
        if row_labels is not None and cor.ndim >= 1 and \
                cor.shape[0] == n_rows and (cor.ndim == 2 or n_rows > 1):
            rows = np.flatnonzero(outside.reshape(n_rows, -1).any(axis=1))
            where = f" at {describe_rows(rows, row_labels)}"
        raise ValueError(
            f"{name} must lie between -1 and 1; got {values}{where}"
        )


def _cov_from_sds(sds, correlations):
    """
    Build covariance matrices :math:`S_{ab} = r_{ab} s_a s_b`.

    Parameters
    ----------
    sds : ndarray, shape (n, k)
        Standard deviations (NaN allowed).
    correlations : ndarray, shape (n, k(k-1)/2)
        Correlations in strict-lower-triangle column order.

    Returns
    -------
    ndarray, shape (n, k, k)
    """
    n_rows, k = sds.shape
    correlation = np.broadcast_to(np.eye(k), (n_rows, k, k)).copy()
    rows, cols = _lower_indices(k, strict=True)
    correlation[:, rows, cols] = correlations
    correlation[:, cols, rows] = correlations
    return correlation * sds[:, :, None] * sds[:, None, :]


def inputcov(sds, cor=None):
    """
    Build covariance matrices from standard deviations and correlations.

    The Python counterpart of R ``mixmeta::inputcov``:

    .. math:: S_{u,ab} = r_{u,ab}\\, \\mathrm{sd}_{u,a}\\, \\mathrm{sd}_{u,b},
              \\qquad r_{u,aa} = 1.

    Parameters
    ----------
    sds : array_like, shape (n, k) or (k,)
        Standard deviations of ``k`` outcomes in ``n`` studies, or of one
        study.  NaN propagates into the row and column of that outcome.
    cor : float or array_like, optional
        Correlations (default 0): a scalar shared by every pair and study; a
        vector of ``k(k-1)/2`` values, one per pair of outcomes in the order
        ``(2,1), (3,1), ..., (k,1), (3,2), ...`` (strict lower triangle by
        column), shared by every study; a vector of ``n`` values, one per
        study and shared by its pairs (this reading wins when ``n`` equals
        ``k(k-1)/2``, as in R); an ``(n, k(k-1)/2)`` array, one row per
        study; or a ``(k, k)`` correlation matrix for a single study.

    Returns
    -------
    ndarray, shape (n, k, k) or (k, k)
        Covariance matrices; ``(k, k)`` when ``sds`` is one-dimensional.

    Raises
    ------
    ValueError
        If a standard deviation is negative, ``cor`` has a shape that fits
        none of the forms above, or a correlation lies outside [-1, 1].

    Examples
    --------
    >>> inputcov([1.0, 2.0, 3.0], 0.5)
    array([[1. , 1. , 1.5],
           [1. , 4. , 3. ],
           [1.5, 3. , 9. ]])
    """
    sds = np.asarray(sds, dtype=float)
    single = sds.ndim == 1
    if single:
        sds = sds[None, :]
    if sds.ndim != 2:
        raise ValueError(
            f"sds must have shape (n, k) or (k,); got shape {sds.shape}"
        )
    negative_rows = np.flatnonzero(np.any(sds < 0, axis=1))
    if negative_rows.size:
        raise ValueError(
            f"negative standard deviations in sds at "
            f"{describe_rows(negative_rows, range(sds.shape[0]))}"
        )
    correlations = _expand_correlations(cor, sds.shape[0], sds.shape[1], "cor")
    cov = _cov_from_sds(sds, correlations)
    return cov[0] if single else cov


# ---------------------------------------------------------------------------
# From user input to (n, k, k)
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Validation against the observed outcomes
# ---------------------------------------------------------------------------

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
