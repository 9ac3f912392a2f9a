"""
The one projection onto the positive definite matrices.

Every estimate or iterate of a ``Psi`` that must be a covariance matrix is
symmetrised and has its eigenvalues raised to a floor,

.. math:: P(A) = V \\max(\\Lambda, f) V', \\qquad
          \\tfrac12 (A + A') = V \\Lambda V',

the nearest matrix (in the Frobenius norm) whose eigenvalues are at least
``f`` (Higham 1988).  The moment estimators use R mixmeta's absolute floor
(its ``set.negeigen``, ``sqrt(eps)``); the likelihood start uses a floor
relative to the largest eigenvalue, so that it does not depend on the scale
of the data.

References
----------
Higham NJ (1988). Computing a nearest symmetric positive semidefinite
matrix. Linear Algebra and its Applications 103:103-118.
"""
import numpy as np

#: R mixmeta's ``set.negeigen``: the smallest eigenvalue of a moment estimate.
PSD_FLOOR = np.sqrt(np.finfo(float).eps)


def project_psd(matrix, floor=PSD_FLOOR, relative=False):
    """
    Symmetrise ``matrix`` and raise its eigenvalues below a floor to it.

    Parameters
    ----------
    matrix : ndarray, (r, r)
    floor : float
        Smallest eigenvalue of the result: absolute, or with `relative`
        a multiple of ``max(1, max |eigenvalue|)``.
    relative : bool

    Returns
    -------
    ndarray, (r, r)
        The symmetrised matrix itself when its eigenvalues already reach
        the floor (no round trip through the eigenvectors), otherwise its
        projection.
    """
    matrix = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(matrix)
    if relative:
        floor = floor * max(np.abs(values).max(), 1.0)
    if values.min() >= floor:
        return matrix
    return (vectors * np.maximum(values, floor)) @ vectors.T
