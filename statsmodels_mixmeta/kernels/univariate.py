r"""
Fully vectorised profiled likelihood for one outcome and one value per group.

The special case of :mod:`statsmodels_mixmeta.kernels.likelihood` where every group
holds a single value (the standard univariate meta-analysis or
meta-regression): ``Sigma_i = v_i + z_i^2 psi`` is a scalar, so every
quantity is a sum over a 1-D array and no factorisation is needed.  With
``w_i = 1 / Sigma_i``, ``F = X' W X``, GLS residuals ``r_i`` and the
weighted cross products ``M_a = X' diag(z^2a w^(a+1)) X``,

.. math::

    \partial \ell / \partial \psi = -\tfrac12 \big[\sum_i z_i^2 w_i
        - \sum_i z_i^2 w_i^2 r_i^2 \; [- \operatorname{tr}(F^{-1} M_1)]
        _{REML}\big]

    I(\psi) = \tfrac12 \big[\sum_i z_i^4 w_i^2
        \; [- 2 \operatorname{tr}(F^{-1} M_2)
        + \operatorname{tr}((F^{-1} M_1)^2)]_{REML}\big].

(``tr(F^{-1} M_a)`` is the sum over values of the leverage
``x_i' F^{-1} x_i`` times the weights, without forming the leverages.)
The design is kept column-major, so that weighting it and every product
with it runs along contiguous columns.

The state it returns has the fields of
:class:`statsmodels_mixmeta.kernels.likelihood.GLSState` that the model uses
(``psis``, ``beta``, ``cov_beta``, ``llf``).
"""
import math
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
    cov_work: np.ndarray     # F^{-1} in the kernel's design basis
    products: dict = None    # M_a by power a, filled on first use
    gradient: list = None    # d llf / d psi, filled on first use
    curvature: float = None  # d2 llf / d psi2, filled on first use
    theta_score: np.ndarray = None  # in theta, filled by the model
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
    xtx : ndarray, optional
        ``X'X``, when the caller has it already (REML needs its
        determinant).
    basis : ndarray, optional
        ``A`` of :func:`statsmodels_mixmeta.design.core.conditioning_basis`:
        the kernel works with the design ``X A`` and reports ``beta`` and
        its covariance for ``X``.
    """

    def __init__(self, y, X, variance, z, reml, xtx=None, basis=None):
        self.y, self.variance = y, variance
        self.basis = basis
        if basis is not None:
            # (A'X')' is X A, column-major as computed
            X = (basis.T @ X.T).T
            xtx = None
        self.X = np.asfortranarray(X, dtype=float)
        self._variance_positive = bool(variance.min() > 0)
        self.n_values, self.n_fixed = X.shape
        self.z2 = None if z is None else z * z
        # z = 1 (a random intercept) multiplies by nothing
        self._unit_z = self.z2 is not None and bool(np.all(self.z2 == 1.0))
        self.reml = reml
        # reused (N, p) work array: fresh temporaries of that size cost
        # page faults on every evaluation of a large meta-regression
        self._work = np.empty_like(self.X)
        # one coefficient: X'diag(c)X is the dot product of c with x^2
        self._x2 = self.X[:, 0] ** 2 if self.n_fixed == 1 else None
        if reml:
            if xtx is None:
                xtx = self.X.T @ self.X
            self.logdet_xtx = np.linalg.slogdet(xtx)[1]

    def _z2_times(self, values):
        """``z_i^2 * values``."""
        return values if self._unit_z else self.z2 * values

    def _cross(self, weights):
        """``X' diag(weights) X``."""
        if self._x2 is not None:
            return np.array([[np.dot(self._x2, weights)]])
        Xw = np.multiply(self.X, weights[:, None], out=self._work)
        return Xw.T @ self.X

    def evaluate(self, psis):
        psi = 0.0 if self.z2 is None else psis[0][0, 0]
        sigma = (self.variance if self.z2 is None
                 else self.variance + self._z2_times(psi))
        # known variances are positive once and for all; a negative psi
        # could still make a total variance vanish
        if not (self._variance_positive and psi >= 0) and \
                not sigma.min() > 0:
            raise np.linalg.LinAlgError("marginal variance is not positive")
        w = 1.0 / sigma
        if self._x2 is not None:      # one coefficient: scalar algebra
            x = self.X[:, 0]
            f = np.dot(self._x2, w)
            if not f > 0:
                raise np.linalg.LinAlgError("X'WX is not positive definite")
            b = np.dot(x, w * self.y) / f
            cov_beta, beta = np.array([[1.0 / f]]), np.array([b])
            logdet_F = math.log(f)
            resid = self.y - x * b
        else:
            chol = np.linalg.cholesky(self._cross(w))
            inv_chol = np.linalg.inv(chol)
            cov_beta = inv_chol.T @ inv_chol
            logdet_F = 2.0 * np.log(np.diag(chol)).sum()
            beta = cov_beta @ (self.X.T @ (w * self.y))
            resid = self.y - self.X @ beta
        cov_work = cov_beta
        quad = np.dot(w * resid, resid)
        logdet = np.log(sigma).sum()
        N, p = self.n_values, self.n_fixed
        if self.reml:
            llf = (-0.5 * (N - p) * LOG_2PI + 0.5 * self.logdet_xtx
                   - 0.5 * logdet_F - 0.5 * logdet - 0.5 * quad)
        else:
            llf = -0.5 * N * LOG_2PI - 0.5 * logdet - 0.5 * quad
        if self.basis is not None:
            cov_beta = self.basis @ cov_work @ self.basis.T
            beta = self.basis @ beta
        return ScalarState(tuple(psis), beta, cov_beta, llf, w, resid,
                           cov_work)

    def loglike(self, psis):
        return self.evaluate(psis).llf

    def _product(self, state, power):
        """``M_power = X' diag(z^(2 power) w^(power + 1)) X`` (cached)."""
        if state.products is None:
            state.products = {}
        product = state.products.get(power)
        if product is None:
            w = state.weights
            weights = self._z2_times(w * w) if power == 1 else \
                self._z2_times(self._z2_times(w * w * w))
            product = state.products[power] = self._cross(weights)
        return product

    def _trace_ratio(self, state, power):
        """``tr(F^{-1} M_power)`` (both symmetric)."""
        return np.vdot(state.cov_work, self._product(state, power))

    def psi_gradient(self, state):
        if state.gradient is None:
            state.gradient = self._psi_gradient(state)
        return state.gradient

    def _psi_gradient(self, state):
        w, r = state.weights, state.resid
        wr = w * r
        value = self._z2_times(w).sum() - np.dot(self._z2_times(wr), wr)
        if self.reml:
            value -= self._trace_ratio(state, 1)
        return [np.array([[-0.5 * value]])]

    def psi_hessian(self, state):
        """
        Observed second derivative of the profiled objective in ``psi``.

        ``1/2 sum z^4 w^2 - sum z^4 w^3 r^2 + u' F^{-1} u`` with
        ``u = sum z^2 w^2 r x`` (ML); REML adds
        ``1/2 tr((F^{-1} M_1)^2) - tr(F^{-1} M_2)``.
        """
        if state.curvature is None:
            state.curvature = self._psi_hessian(state)
        return state.curvature

    def _psi_hessian(self, state):
        w, r = state.weights, state.resid
        z2w = self._z2_times(w)
        z2wr = z2w * r
        u = self.X.T @ (z2wr * w)
        value = (0.5 * np.dot(z2w, z2w) - np.dot(z2wr * w, z2wr)
                 + u @ state.cov_work @ u)
        if self.reml:
            J = state.cov_work @ self._product(state, 1)
            value += 0.5 * np.vdot(J, J.T) - self._trace_ratio(state, 2)
        return value

    def hessian(self, state, psi_jacobians):
        """Observed Hessian in the structure parameters, as
        :meth:`statsmodels_mixmeta.kernels.likelihood.ProfiledLikelihood.hessian`."""
        jac = psi_jacobians[0][:, 0, 0] if psi_jacobians else np.empty(0)
        return self.psi_hessian(state) * np.outer(jac, jac)

    def psi_information(self, state):
        """Expected information of ``psi`` (a scalar)."""
        z2w = self._z2_times(state.weights)
        value = np.dot(z2w, z2w)
        if self.reml:
            J = state.cov_work @ self._product(state, 1)
            value += np.vdot(J, J.T) - 2.0 * self._trace_ratio(state, 2)
        return 0.5 * value

    def information(self, state, psi_jacobians):
        jac = psi_jacobians[0][:, 0, 0] if psi_jacobians else np.empty(0)
        if jac.size == 0:
            return np.zeros((0, 0))
        return self.psi_information(state) * np.outer(jac, jac)

    def moment_variance(self):
        r"""
        The method-of-moments (DerSimonian-Laird) estimate of ``psi``.

        With the fixed-effects fit (``psi = 0``: weights ``w_i = 1 / v_i``,
        residuals ``r_i``, ``F = X'WX``), Cochran's ``Q = sum_i w_i r_i^2``
        has expectation ``N - p + psi (sum_i z_i^2 w_i
        - tr(F^{-1} X' Z^2 W^2 X))``; solving for ``psi`` and truncating at
        0 gives the estimate (DerSimonian & Laird 1986, and its
        meta-regression form).  One evaluation of the kernel.

        References
        ----------
        DerSimonian R, Laird N. Meta-analysis in clinical trials. Controlled
        Clinical Trials 1986; 7: 177-188.
        """
        if self.z2 is None:
            return 0.0
        state = self.evaluate((np.zeros((1, 1)),))
        q = np.dot(state.weights * state.resid, state.resid)
        denominator = (self._z2_times(state.weights).sum()
                       - self._trace_ratio(state, 1))
        if not denominator > 0:
            return 0.0
        return max(0.0, (q - (self.n_values - self.n_fixed)) / denominator)
