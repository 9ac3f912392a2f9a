"""
Profiled (restricted) log-likelihood of the mixed meta-analysis model.

For independent outer groups ``i`` the marginal model is

.. math::

    y_i \\sim N(X_i \\beta, \\Sigma_i), \\qquad
    \\Sigma_i = S_i + \\sum_l (Z_{il} \\Psi_l Z_{il}') \\circ M_{il}

with ``S_i`` known, ``M_il`` the indicator of values sharing a level-``l``
group and ``Psi_l`` the random-effects covariance of level ``l``.  For given
``Psi`` the fixed effects are profiled out by generalised least squares,

.. math::

    F = \\sum_i X_i' \\Sigma_i^{-1} X_i, \\qquad
    \\hat\\beta = F^{-1} \\sum_i X_i' \\Sigma_i^{-1} y_i,
    \\qquad V(\\hat\\beta) = F^{-1},

and with ``r_i = y_i - X_i \\hat\\beta`` and ``N`` observed values in all,

.. math::

    \\ell_{ML} = -\\tfrac12 N \\log 2\\pi - \\tfrac12 \\sum_i \\log|\\Sigma_i|
                 - \\tfrac12 \\sum_i r_i' \\Sigma_i^{-1} r_i

    \\ell_{REML} = \\ell_{ML} + \\tfrac12 p \\log 2\\pi
                   + \\tfrac12 \\log|\\sum_i X_i'X_i| - \\tfrac12 \\log|F|.

The ``+ 1/2 log|X'X|`` constant is the one R's mixmeta includes.

Derivatives are taken with respect to every entry of each ``Psi_l`` (the
structure objects carry the chain rule to their own parameters).  Writing
``W_i = \\Sigma_i^{-1}``,

.. math::

    \\frac{\\partial \\ell}{\\partial \\Psi_l} = -\\tfrac12 \\sum_i
        Z_{il}' (B_i \\circ M_{il}) Z_{il}, \\qquad
    B_i = W_i - W_i r_i r_i' W_i \\;[- W_i X_i F^{-1} X_i' W_i]_{REML}

and the expected information of structure parameters ``s, t`` with
``D = \\partial\\Sigma/\\partial\\theta`` is
``1/2 tr(P D_s P D_t)``, where ``P = W`` (ML) or
``P = W - W X F^{-1} X' W`` (REML).

All computations work on whitened stacks: with ``\\Sigma = L L'``, every
design is premultiplied by ``L^{-1}``, so sums over groups become sums over
the flattened stack.
"""
from dataclasses import dataclass

import numpy as np

LOG_2PI = np.log(2 * np.pi)


@dataclass
class WhitenedBatch:
    """One batch premultiplied by the inverse Cholesky factor of Sigma."""

    inv_chol: np.ndarray     # (g, n, n)
    X: np.ndarray            # (g, n, p)
    y: np.ndarray            # (g, n)
    Z: tuple                 # per level (g, n, r)
    logdet: float

    def resid(self, beta):
        return self.y - self.X @ beta


@dataclass
class GLSState:
    """Everything the derivatives need at one value of the Psi's."""

    psis: tuple
    whitened: list
    beta: np.ndarray
    cov_beta: np.ndarray     # F^{-1}
    logdet_F: float
    llf: float
    resid_w: list            # whitened residuals per batch, (g, n)


def marginal_cov(batch, psis):
    """``Sigma = S + sum_l (Z_l Psi_l Z_l') o M_l`` for a batch."""
    sigma = batch.S.copy()
    for Z, mask, psi in zip(batch.Z, batch.same_group, psis):
        part = (Z @ psi) @ np.swapaxes(Z, 1, 2)
        sigma += part if mask is None else part * mask
    return sigma


def whiten(batch, sigma):
    """
    Factor ``sigma`` and premultiply the batch by ``L^{-1}``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a marginal covariance is not positive definite.
    """
    if batch.size == 1:
        sd = np.sqrt(sigma)
        if not np.all(sd > 0):
            raise np.linalg.LinAlgError("marginal variance is not positive")
        inv_chol = 1.0 / sd
        logdet = 2.0 * np.log(sd).sum()
        scale = inv_chol[:, :, 0]
        return WhitenedBatch(inv_chol, batch.X * inv_chol, batch.y * scale,
                             tuple(z * inv_chol for z in batch.Z), logdet)
    chol = np.linalg.cholesky(sigma)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    inv_chol = np.linalg.inv(chol)
    return WhitenedBatch(inv_chol, inv_chol @ batch.X,
                         np.einsum("gnm,gm->gn", inv_chol, batch.y),
                         tuple(inv_chol @ z for z in batch.Z), logdet)


class ProfiledLikelihood:
    """
    The profiled ML or REML log-likelihood over stacked batches.

    Parameters
    ----------
    batches : list of GroupBatch
    reml : bool
    """

    def __init__(self, batches, reml):
        self.batches = batches
        self.reml = reml
        self.n_values = sum(b.y.size for b in batches)
        self.n_fixed = batches[0].X.shape[2]
        self.has_masks = any(m is not None for b in batches
                             for m in b.same_group)
        if reml:
            xtx = sum(_flat(b.X).T @ _flat(b.X) for b in batches)
            self.logdet_xtx = np.linalg.slogdet(xtx)[1]

    # ------------------------------------------------------------------
    def evaluate(self, psis):
        """GLS fit and log-likelihood at the given Psi's."""
        whitened = [whiten(b, marginal_cov(b, psis)) for b in self.batches]
        return self.gls(whitened, psis)

    def gls(self, whitened, psis=()):
        """Generalised least squares on already whitened batches."""
        p = self.n_fixed
        F = np.zeros((p, p))
        Xty = np.zeros(p)
        for wb in whitened:
            Xf = _flat(wb.X)
            F += Xf.T @ Xf
            Xty += Xf.T @ wb.y.ravel()
        chol = np.linalg.cholesky(F)
        inv_chol = np.linalg.inv(chol)
        cov_beta = inv_chol.T @ inv_chol
        beta = cov_beta @ Xty
        logdet_F = 2.0 * np.log(np.diag(chol)).sum()
        resid_w = [wb.resid(beta) for wb in whitened]
        quad = sum(np.dot(r.ravel(), r.ravel()) for r in resid_w)
        logdet = sum(wb.logdet for wb in whitened)
        N = self.n_values
        if self.reml:
            llf = (-0.5 * (N - p) * LOG_2PI + 0.5 * self.logdet_xtx
                   - 0.5 * logdet_F - 0.5 * logdet - 0.5 * quad)
        else:
            llf = -0.5 * N * LOG_2PI - 0.5 * logdet - 0.5 * quad
        return GLSState(tuple(psis), whitened, beta, cov_beta, logdet_F,
                        llf, resid_w)

    def loglike(self, psis):
        return self.evaluate(psis).llf

    # ------------------------------------------------------------------
    def psi_gradient(self, state):
        """``d llf / d Psi_l`` for every level, each ``(r_l, r_l)``."""
        n_levels = len(state.psis)
        grads = [0.0] * n_levels
        for batch, wb, rw in zip(self.batches, state.whitened,
                                 state.resid_w):
            full_b = None
            for lev in range(n_levels):
                mask = batch.same_group[lev]
                if mask is None:
                    grads[lev] = grads[lev] + self._gradient_unmasked(
                        wb.Z[lev], wb, rw, state.cov_beta)
                else:
                    if full_b is None:
                        full_b = self._weight_matrix(wb, rw, state.cov_beta)
                    Z = batch.Z[lev]
                    grads[lev] = grads[lev] + np.einsum(
                        "gnr,gns->rs", (full_b * mask) @ Z, Z)
        return [-0.5 * g for g in grads]

    def _gradient_unmasked(self, Zw, wb, rw, cov_beta):
        Zf = _flat(Zw)
        out = Zf.T @ Zf
        u = np.einsum("gnr,gn->gr", Zw, rw)
        out -= u.T @ u
        if self.reml:
            K = np.swapaxes(Zw, 1, 2) @ wb.X
            out -= np.einsum("grp,gsp->rs", K @ cov_beta, K)
        return out

    def _weight_matrix(self, wb, rw, cov_beta):
        """``B_i`` of the module docstring for a whole batch, ``(g, n, n)``."""
        inner = np.eye(rw.shape[1]) - rw[:, :, None] * rw[:, None, :]
        if self.reml:
            inner -= (wb.X @ cov_beta) @ np.swapaxes(wb.X, 1, 2)
        return np.swapaxes(wb.inv_chol, 1, 2) @ inner @ wb.inv_chol

    # ------------------------------------------------------------------
    def information(self, state, psi_jacobians):
        """
        Expected information of the structure parameters.

        Parameters
        ----------
        state : GLSState
        psi_jacobians : list of ndarray
            For every level, ``dPsi_l / dtheta`` of shape ``(T_l, r_l, r_l)``.

        Returns
        -------
        ndarray, (T, T) with ``T = sum_l T_l``.
        """
        return self._second_order(state, psi_jacobians, observed=False)

    def hessian(self, state, psi_jacobians):
        """
        Observed Hessian of the profiled objective in the structure
        parameters, except the term ``sum_l <dl/dPsi_l, d2Psi_l>`` of
        structures that are not linear in their parameters (the caller adds
        it).  For ML and REML alike

        .. math:: H_{st} = I_{st} - \\sum_i (W_i \\Sigma_s W_i r_i)'
                  \\Sigma_t W_i r_i + a_s' F^{-1} a_t,
                  \\qquad a_s = X' W \\Sigma_s W r,

        with ``I`` the expected information of the same estimator.
        """
        return self._second_order(state, psi_jacobians, observed=True)

    def _second_order(self, state, psi_jacobians, observed):
        n_par = sum(j.shape[0] for j in psi_jacobians)
        info = np.zeros((n_par, n_par))
        if n_par == 0:
            return info
        cov_beta = state.cov_beta
        p = self.n_fixed
        H = np.zeros((n_par, p, p))
        resid_products = np.zeros((n_par, n_par))
        cross = np.zeros((n_par, p))
        for batch, wb, rw in zip(self.batches, state.whitened,
                                 state.resid_w):
            A = self._whitened_derivatives(batch, wb, psi_jacobians)
            Af = A.reshape(n_par, -1)
            info += Af @ Af.T
            if self.reml:
                Q = A @ wb.X                                  # (T, g, n, p)
                R = Q @ cov_beta
                info -= 2.0 * (R.reshape(n_par, -1)
                               @ Q.reshape(n_par, -1).T)
                H += np.einsum("gnp,tgnq->tpq", wb.X, Q)
            if observed:
                u = (A @ rw[:, :, None])[..., 0]              # (T, g, n)
                uf = u.reshape(n_par, -1)
                resid_products += uf @ uf.T
                cross += np.einsum("gnp,tgn->tp", wb.X, u)
        if self.reml:
            J = cov_beta @ H
            info += np.einsum("sab,tba->st", J, J)
        info *= 0.5
        if not observed:
            return info
        return info - resid_products + cross @ cov_beta @ cross.T

    @staticmethod
    def _whitened_derivatives(batch, wb, psi_jacobians):
        """``L^{-1} dSigma/dtheta_t L^{-T}`` for every parameter, stacked."""
        parts = []
        for lev, jac in enumerate(psi_jacobians):
            if jac.shape[0] == 0:
                continue
            mask = batch.same_group[lev]
            if mask is None:
                Zw = wb.Z[lev]
                parts.append((Zw @ jac[:, None]) @ np.swapaxes(Zw, 1, 2))
            else:
                Z = batch.Z[lev]
                d_sigma = ((Z @ jac[:, None]) @ np.swapaxes(Z, 1, 2)) * mask
                parts.append(wb.inv_chol @ d_sigma
                             @ np.swapaxes(wb.inv_chol, 1, 2))
        return np.concatenate(parts, axis=0)


def _flat(a):
    """Stack the groups of a batch array on top of each other."""
    return a.reshape(-1, a.shape[-1])
