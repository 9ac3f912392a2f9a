"""
Batched parameterisations of ``Psi`` for the multivariate climbs of
:mod:`statsmodels_mixmeta.fitting.many_multivariate`: the single fit's
``unstr`` (``Psi = L L'``), ``diag`` (``diag(theta^2)``) and ``id``
(``theta^2 I``) of :mod:`statsmodels_mixmeta.structures.psi`, for stacks of
problems.  Each gives ``theta`` of a start, ``Psi(theta)``, the Jacobian
``d psi_a / d theta_t`` ``(R, m, n)`` in the ``m = k(k+1)/2`` lower-triangle
entries (by column) and the constant second derivatives ``(n, n, m)``.
"""
import numpy as np

from ..structures.psi import Unstructured


class UnstructuredChart:
    """``theta`` the lower triangle of ``L`` by column."""

    def __init__(self, k):
        self.k = k
        cols, rows = np.triu_indices(k)
        self.rows, self.cols = rows, cols
        structure = Unstructured(k)
        self.n_params = structure.n_params
        self.curvature = structure.curvature(
            np.zeros(self.n_params))[:, :, rows, cols]

    def theta_of(self, psi):
        """The Cholesky factor of ``psi``, its eigenvalues raised to at
        least ``1e-8`` of its largest variance (a start off the saddle)."""
        scale = np.maximum(np.einsum("raa->ra", psi).max(axis=1), 1e-12)
        values, vectors = np.linalg.eigh((psi + np.swapaxes(psi, 1, 2)) / 2)
        values = np.maximum(values, 1e-8 * scale[:, None])
        lower = np.linalg.cholesky(
            np.einsum("rab,rb,rcb->rac", vectors, values, vectors))
        return lower[:, self.rows, self.cols]

    def _lower(self, theta):
        lower = np.zeros((theta.shape[0], self.k, self.k))
        lower[:, self.rows, self.cols] = theta
        return lower

    def psi_of(self, theta):
        lower = self._lower(theta)
        return lower @ np.swapaxes(lower, 1, 2)

    def jacobian(self, theta):
        """``delta(r_t, i_a) L[j_a, c_t] + L[i_a, c_t] delta(r_t, j_a)``
        for ``psi_a = Psi[i_a, j_a]``, ``theta_t = L[r_t, c_t]``."""
        lower = self._lower(theta)
        i, j = self.rows[:, None], self.cols[:, None]
        r, c = self.rows[None, :], self.cols[None, :]
        return (r == i) * lower[:, j, c] + lower[:, i, c] * (r == j)


class DiagonalChart:
    """``theta`` the standard deviations; ``identity`` ties them."""

    def __init__(self, k, identity=False):
        self.k, self.identity = k, identity
        cols, rows = np.triu_indices(k)
        self.n_params = 1 if identity else k
        # which theta each lower-triangle entry's diagonal belongs to
        self.owner = np.where(rows == cols, 0 if identity else rows, -1)
        self.curvature = np.zeros((self.n_params, self.n_params, len(rows)))
        for a in np.flatnonzero(self.owner >= 0):
            self.curvature[self.owner[a], self.owner[a], a] = 2.0

    def theta_of(self, psi):
        var = np.clip(np.einsum("raa->ra", psi), 0.0, None)
        if self.identity:
            var = var.mean(axis=1, keepdims=True)
        scale = np.maximum(var.max(axis=1, keepdims=True), 1e-12)
        return np.sqrt(np.maximum(var, 1e-8 * scale))

    def psi_of(self, theta):
        sd = np.broadcast_to(theta, (theta.shape[0], self.k))
        return sd[:, :, None] ** 2 * np.eye(self.k)

    def jacobian(self, theta):
        J = np.zeros((theta.shape[0], len(self.owner), self.n_params))
        diag = np.flatnonzero(self.owner >= 0)
        J[:, diag, self.owner[diag]] = 2 * theta[:, self.owner[diag]]
        return J


def make_chart(bscov, k):
    """The chart of ``bscov`` in ``("unstr", "diag", "id")``."""
    if bscov == "unstr":
        return UnstructuredChart(k)
    if bscov in ("diag", "id"):
        return DiagonalChart(k, identity=bscov == "id")
    raise ValueError(f"bscov must be one of ('unstr', 'diag', 'id') for "
                     f"several outcomes in fit_many, got {bscov!r}")
