"""
Fully vectorised profiled likelihood for one outcome and one value per group.

The special case of :mod:`statsmodels_mixmeta.likelihood` where every group
holds a single value (the standard univariate meta-analysis or
meta-regression): ``Sigma_i = v_i + z_i^2 psi`` is a scalar, so every
quantity is a sum over a 1-D array and no factorisation is needed.  With
``w_i = 1 / Sigma_i``, ``F = X' W X``, ``h_i = x_i' F^{-1} x_i`` and GLS
residuals ``r_i``,

.. math::

    \\partial \\ell / \\partial \\psi = -\\tfrac12 \\sum_i z_i^2
        (w_i - w_i^2 r_i^2 \\; [- w_i^2 h_i]_{REML})

    I(\\psi) = \\tfrac12 \\big[\\sum_i w_i^2 z_i^4
        \\; [- 2 \\sum_i w_i^3 z_i^4 h_i
        + \\operatorname{tr}((F^{-1} M)^2)]_{REML}\\big],
        \\qquad M = \\sum_i w_i^2 z_i^2 x_i x_i'.

The state it returns has the fields of
:class:`statsmodels_mixmeta.likelihood.GLSState` that the model uses
(``psis``, ``beta``, ``cov_beta``, ``llf``).
"""
from dataclasses import dataclass

import numpy as np
from .likelihood import LOG_2PI


@dataclass
class ScalarState:
    psis: tuple
    beta: np.ndarray
    cov_beta: np.ndarray
    llf: float
    weights: np.ndarray      # w_i
    resid: np.ndarray        # r_i
    leverage: np.ndarray = None  # x_i' F^{-1} x_i, filled on first use
    gradient: list = None        # d llf / d psi, filled on first use
    hessian: np.ndarray = None   # in theta, filled by the model on first use


class UnivariateLikelihood:
    """
    Profiled ML/REML likelihood for groups of one value each.

    Parameters
    ----------
    y, X, variance : ndarray
        Values ``(N,)``, design ``(N, p)``, known variances ``(N,)``.
    z : ndarray or None
        Random-effect design ``(N,)``; ``None`` for no random effect.
    reml : bool
    """

    def __init__(self, y, X, variance, z, reml):
        self.y, self.X, self.variance = y, X, variance
        self.z2 = None if z is None else z * z
        self.reml = reml
        self.n_values, self.n_fixed = X.shape
        # reused (N, p) work array: fresh temporaries of that size cost
        # page faults on every evaluation of a large meta-regression
        self._work = np.empty_like(X, dtype=float)
        if reml:
            self.logdet_xtx = np.linalg.slogdet(X.T @ X)[1]

    def evaluate(self, psis):
        sigma = (self.variance if self.z2 is None
                 else self.variance + self.z2 * psis[0][0, 0])
        if not sigma.min() > 0:
            raise np.linalg.LinAlgError("marginal variance is not positive")
        w = 1.0 / sigma
        Xw = np.multiply(self.X, w[:, None], out=self._work)
        F = Xw.T @ self.X
        if self.n_fixed == 1:      # one coefficient: scalar algebra
            if not F[0, 0] > 0:
                raise np.linalg.LinAlgError("X'WX is not positive definite")
            cov_beta = 1.0 / F
            logdet_F = np.log(F[0, 0])
        else:
            chol = np.linalg.cholesky(F)
            inv_chol = np.linalg.inv(chol)
            cov_beta = inv_chol.T @ inv_chol
            logdet_F = 2.0 * np.log(np.diag(chol)).sum()
        beta = cov_beta @ (Xw.T @ self.y)
        resid = self.y - self.X @ beta
        quad = np.dot(w * resid, resid)
        logdet = -np.log(w).sum()
        N, p = self.n_values, self.n_fixed
        if self.reml:
            llf = (-0.5 * (N - p) * LOG_2PI + 0.5 * self.logdet_xtx
                   - 0.5 * logdet_F - 0.5 * logdet - 0.5 * quad)
        else:
            llf = -0.5 * N * LOG_2PI - 0.5 * logdet - 0.5 * quad
        return ScalarState(tuple(psis), beta, cov_beta, llf, w, resid)

    def loglike(self, psis):
        return self.evaluate(psis).llf

    def _weighted_cross_product(self, weights):
        """``X' diag(weights) X``."""
        return np.multiply(self.X, weights[:, None], out=self._work).T @ self.X

    def _leverage(self, state):
        """``x_i' F^{-1} x_i`` of every value (cached on the state)."""
        if state.leverage is None:
            XV = np.matmul(self.X, state.cov_beta, out=self._work)
            state.leverage = np.einsum("np,np->n", XV, self.X)
        return state.leverage

    def psi_gradient(self, state):
        if state.gradient is None:
            state.gradient = self._psi_gradient(state)
        return state.gradient

    def _psi_gradient(self, state):
        w, r = state.weights, state.resid
        terms = w - (w * r) ** 2
        if self.reml:
            terms = terms - w * w * self._leverage(state)
        return [np.array([[-0.5 * np.dot(self.z2, terms)]])]

    def psi_hessian(self, state):
        """
        Observed second derivative of the profiled objective in ``psi``.

        ``1/2 sum z^4 w^2 - sum z^4 w^3 r^2 + u' F^{-1} u`` with
        ``u = sum z^2 w^2 r x`` (ML); REML adds
        ``1/2 tr((F^{-1} M)^2) - sum z^4 w^3 h``.
        """
        w, r, z2 = state.weights, state.resid, self.z2
        z4w2 = (z2 * w) ** 2
        u = self.X.T @ (z2 * w * w * r)
        value = (0.5 * z4w2.sum() - np.dot(z4w2 * w, r * r)
                 + u @ state.cov_beta @ u)
        if self.reml:
            M = self._weighted_cross_product(z2 * w * w)
            J = state.cov_beta @ M
            value += (0.5 * np.einsum("ab,ba->", J, J)
                      - np.dot(z4w2 * w, self._leverage(state)))
        return value

    def hessian(self, state, psi_jacobians):
        """Observed Hessian in the structure parameters, as
        :meth:`statsmodels_mixmeta.likelihood.ProfiledLikelihood.hessian`."""
        jac = psi_jacobians[0][:, 0, 0] if psi_jacobians else np.empty(0)
        return self.psi_hessian(state) * np.outer(jac, jac)

    def information(self, state, psi_jacobians):
        jac = psi_jacobians[0][:, 0, 0] if psi_jacobians else np.empty(0)
        if jac.size == 0:
            return np.zeros((0, 0))
        w, z2 = state.weights, self.z2
        wz2 = w * z2
        value = np.dot(wz2, wz2)
        if self.reml:
            value -= 2.0 * np.dot(wz2 * wz2 * w, self._leverage(state))
            M = self._weighted_cross_product(wz2 * w)
            J = state.cov_beta @ M
            value += np.einsum("ab,ba->", J, J)
        return 0.5 * value * np.outer(jac, jac)
