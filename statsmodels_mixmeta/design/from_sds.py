"""
Covariance matrices from standard deviations and correlations (``inputcov``).

:func:`inputcov`, the counterpart of R's ``mixmeta::inputcov``, builds
:math:`S_{u,ab} = r_{u,ab} s_{u,a} s_{u,b}`; its helpers read the accepted
forms of the correlations (a scalar, one per pair, one per study, or one row
per study) and are shared with the variance form of ``S`` in
:mod:`.covariance`.
"""

import numpy as np

from .halfvec import _lower_indices
from .labels import MAX_ROWS_SHOWN, describe_rows

#: How many offending rows an error message names before summarising.
_MAX_ROWS_IN_MESSAGE = MAX_ROWS_SHOWN


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
