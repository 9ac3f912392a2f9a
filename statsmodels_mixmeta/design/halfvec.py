"""
Half-vectorisation of symmetric matrices: :func:`vech` and :func:`unvech`.

A symmetric ``k x k`` matrix is stored as its lower triangle, diagonal
included, read column by column (``k(k+1)/2`` values; for ``k = 2``:
``m11, m21, m22``), the order R's mixmeta uses for the columns of ``S`` and
the entries of Psi.  Both functions work on stacks of matrices.
"""

import numpy as np


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
