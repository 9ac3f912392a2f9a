"""
Profiled (restricted) log-likelihood of the mixed meta-analysis model.

For independent outer groups ``i`` the marginal model is

.. math::

    y_i \\sim N(X_i \\beta, \\Sigma_i), \\qquad
    \\Sigma_i = S_i + \\sum_l \\tilde Z_{il} (I \\otimes \\Psi_l)
                \\tilde Z_{il}'

with ``S_i`` known, ``Psi_l`` the random-effects covariance of level ``l``
and ``tilde Z_il`` its design spread over the level-``l`` groups inside
group ``i`` (see :mod:`statsmodels_mixmeta.kernels.batches`).  For given
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
        \\sum_c \\tilde Z_{ilc}' B_i \\tilde Z_{ilc}, \\qquad
    B_i = W_i - W_i r_i r_i' W_i \\;[- W_i X_i F^{-1} X_i' W_i]_{REML}

and the expected information of structure parameters ``s, t`` with
``D = \\partial\\Sigma/\\partial\\theta`` is
``1/2 tr(P D_s P D_t)``, where ``P = W`` (ML) or
``P = W - W X F^{-1} X' W`` (REML).

All computations work on whitened stacks: with ``\\Sigma = L L'``, every
design is premultiplied by ``L^{-1}``, and the derivatives reduce to
contractions of the small blocks ``Q_lm = Y_l' Y_m``, ``K_l = Y_l' X`` and
``u_l = Y_l' r`` of the whitened expanded designs ``Y_l``, so that no
``n x n`` matrix is formed per parameter.
"""
from dataclasses import dataclass, replace

import numpy as np

LOG_2PI = np.log(2 * np.pi)
# dPsi / dpsi when Psi is a single variance
_UNIT_JACOBIAN = np.ones((1, 1, 1))
_UNIT_JACOBIAN.flags.writeable = False


@dataclass
class WhitenedBatch:
    """One batch premultiplied by the inverse Cholesky factor of Sigma."""

    inv_chol: np.ndarray     # (g, n, n)
    X: np.ndarray            # (g, n, p)
    y: np.ndarray            # (g, n)
    Z: tuple                 # per level, expanded: (g, n, C r)
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
    cov_work: np.ndarray = None  # F^{-1} in the kernel's design basis
    gradient: list = None    # d llf / d Psi_l, filled on first use
    theta_score: np.ndarray = None  # in theta, filled by the model
    hessian: np.ndarray = None   # in theta, filled by the model on first use


def marginal_cov(batch, psis):
    """``Sigma = S + sum_l Z~_l (I (x) Psi_l) Z~_l'`` for a batch."""
    sigma = batch.S.copy()
    for Z, Zx, mask, psi in zip(batch.Z, batch.Z_expanded, batch.same_group,
                                psis):
        if mask is None:
            sigma += _apply_blocks(psi, Zx) @ np.swapaxes(Zx, 1, 2)
        else:   # the same, from the narrower unexpanded design
            sigma += ((Z @ psi) @ np.swapaxes(Z, 1, 2)) * mask
    return sigma


def _apply_blocks(D, M):
    """
    ``M (I (x) D)`` for ``M`` ``(..., C r)``: ``D`` (symmetric ``r x r``, or a
    stack ``(T, r, r)``) applied within each of the ``C`` column blocks.
    """
    r = D.shape[-1]
    flat = M.reshape(-1, r)
    if D.ndim == 2:
        return (flat @ D).reshape(M.shape)
    # one matrix product for all parameters: [D_1 ... D_T] side by side
    n_par = D.shape[0]
    out = flat @ np.swapaxes(D, 0, 1).reshape(r, n_par * r)
    out = out.reshape(M.shape[:-1] + (M.shape[-1] // r, n_par, r))
    return np.moveaxis(out, -2, 0).reshape((n_par,) + M.shape)


def inverse_lower(chol, leaf=8):
    """
    Inverses of a stack of lower-triangular matrices ``(g, n, n)``.

    By halves, ``[[A, 0], [B, C]]^{-1} = [[A^{-1}, 0], [-C^{-1} B A^{-1},
    C^{-1}]]``, down to blocks of ``leaf`` rows, inverted by LAPACK: two
    to three times faster than a general inverse of every matrix, which
    pivots and ignores the zeros.
    """
    n = chol.shape[-1]
    if n <= leaf:
        return np.linalg.inv(chol)
    h = n // 2
    top = inverse_lower(chol[:, :h, :h], leaf)
    bottom = inverse_lower(chol[:, h:, h:], leaf)
    out = np.zeros_like(chol)
    out[:, :h, :h] = top
    out[:, h:, h:] = bottom
    out[:, h:, :h] = -(bottom @ (chol[:, h:, :h] @ top))
    return out


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
                             tuple(z * inv_chol for z in batch.Z_expanded),
                             logdet)
    chol = np.linalg.cholesky(sigma)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    inv_chol = inverse_lower(chol)
    return WhitenedBatch(inv_chol, inv_chol @ batch.X,
                         np.einsum("gnm,gm->gn", inv_chol, batch.y),
                         tuple(inv_chol if unit else inv_chol @ z
                               for z, unit in zip(batch.Z_expanded,
                                                  batch.identity_designs)),
                         logdet)


class ProfiledLikelihood:
    """
    The profiled ML or REML log-likelihood over stacked batches.

    Parameters
    ----------
    batches : list of GroupBatch
    reml : bool
    """

    def __init__(self, batches, reml, basis=None):
        if basis is not None:
            batches = [replace(b, X=b.X @ basis) for b in batches]
        self.batches = batches
        self.basis = basis
        self.reml = reml
        self.n_values = sum(b.n_values for b in batches)
        self.n_fixed = batches[0].X.shape[2]
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
        cov_work = cov_beta
        if self.basis is not None:
            beta = self.basis @ beta
            cov_beta = self.basis @ cov_beta @ self.basis.T
        return GLSState(tuple(psis), whitened, beta, cov_beta, logdet_F,
                        llf, resid_w, cov_work)

    def loglike(self, psis):
        return self.evaluate(psis).llf

    # ------------------------------------------------------------------
    def psi_gradient(self, state):
        """``d llf / d Psi_l`` for every level, each ``(r_l, r_l)``."""
        if state.gradient is None:
            state.gradient = self._psi_gradient(state)
        return state.gradient

    def _psi_gradient(self, state):
        grads = [0.0] * len(state.psis)
        for wb, rw in zip(state.whitened, state.resid_w):
            for lev, (Y, psi) in enumerate(zip(wb.Z, state.psis)):
                r = psi.shape[0]
                flat = Y.reshape(-1, r)                    # rows (g, n, C)
                out = flat.T @ flat
                u = (rw[:, None, :] @ Y).reshape(-1, r)    # (g C, r)
                out -= u.T @ u
                if self.reml:
                    K = np.swapaxes(Y, 1, 2) @ wb.X        # (g, C r, p)
                    K = K.reshape(K.shape[0], -1, r, K.shape[2])
                    KF = (K @ state.cov_work)
                    out -= (np.swapaxes(KF, 2, 3).reshape(-1, r).T
                            @ np.swapaxes(K, 2, 3).reshape(-1, r))
                grads[lev] = grads[lev] + out
        return [-0.5 * g for g in grads]

    def group_psi_gradients(self, state, n_groups):
        """
        The terms of :meth:`psi_gradient` of each outer group, at the
        state's ``beta`` (and ``F`` for REML): per level, ``(n_groups, r_l,
        r_l)``, summing over the groups to ``psi_gradient(state)``.  A fit
        without group ``i`` has, at the same Psi's, the score of the others
        up to the change of ``beta`` and ``F`` (leave-one-out starts).
        """
        grads = [np.zeros((n_groups,) + psi.shape) for psi in state.psis]
        for batch, wb, rw in zip(self.batches, state.whitened,
                                 state.resid_w):
            g = len(batch.groups)
            for lev, (Y, psi) in enumerate(zip(wb.Z, state.psis)):
                r = psi.shape[0]
                rows = Y.reshape(g, -1, r)                 # (g, n C, r)
                out = np.swapaxes(rows, 1, 2) @ rows
                u = (rw[:, None, :] @ Y).reshape(g, -1, r)   # (g, C, r)
                out -= np.swapaxes(u, 1, 2) @ u
                if self.reml:
                    K = np.swapaxes(Y, 1, 2) @ wb.X        # (g, C r, p)
                    K = K.reshape(g, -1, r, K.shape[2])
                    out -= np.einsum("gcrp,gcsp->grs", K @ state.cov_work,
                                     K)
                grads[lev][batch.groups] = -0.5 * out
        return grads

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

    def psi_information(self, state):
        """Expected information of a single variance (one level, 1 x 1)."""
        return self.information(state, [_UNIT_JACOBIAN])[0, 0]

    def psi_hessian(self, state):
        """Observed second derivative in a single variance (1 x 1)."""
        return self.hessian(state, [_UNIT_JACOBIAN])[0, 0]

    def _second_order(self, state, psi_jacobians, observed):
        """
        Expected information, or (``observed``) the data part of the
        observed Hessian.

        For parameter ``s`` of level ``l`` with ``D_s = dPsi_l / dtheta_s``
        and ``A_s = Y_l (I (x) D_s) Y_l'``, every term -- ``tr(A_s A_t)``,
        ``tr(F^-1 X' A_s A_t X)``, ``r' A_s A_t r``, ``X' A_s X`` and
        ``X' A_s r`` -- is a bilinear form in ``(D_s, D_t)`` whose
        coefficients are small moment tensors (``r^4`` entries) summed over
        groups and pairs of inner groups, e.g.
        ``tr(A_s A_t) = sum D_s[a,b] D_t[e,f] R[b,e,a,f]`` with
        ``R = sum Q_cd[b,e] Q_cd[a,f]`` and ``Q = Y_l' Y_m``.  Each tensor is
        one matrix product, whatever the number of parameters.
        """
        levels = [lev for lev, j in enumerate(psi_jacobians) if j.shape[0]]
        n_par = sum(psi_jacobians[lev].shape[0] for lev in levels)
        info = np.zeros((n_par, n_par))
        if n_par == 0:
            return info
        edges = np.cumsum([0] + [psi_jacobians[lev].shape[0]
                                 for lev in levels])
        span = {lev: slice(a, b) for lev, a, b in
                zip(levels, edges[:-1], edges[1:])}
        D = {lev: psi_jacobians[lev] for lev in levels}
        r = {lev: D[lev].shape[-1] for lev in levels}
        p = self.n_fixed
        cov_beta = state.cov_work
        trace = {}
        fixed = {}
        resid = {}
        H_moments = {lev: 0.0 for lev in levels}
        cross_moments = {lev: 0.0 for lev in levels}
        for wb, rw in zip(state.whitened, state.resid_w):
            g = rw.shape[0]
            Y = {lev: wb.Z[lev] for lev in levels}
            C = {lev: Y[lev].shape[2] // r[lev] for lev in levels}
            K = {lev: (np.swapaxes(Y[lev], 1, 2) @ wb.X).reshape(
                g, C[lev], r[lev], p) for lev in levels}
            u = {lev: (rw[:, None, :] @ Y[lev]).reshape(g, C[lev], r[lev])
                 for lev in levels}
            for lev in levels:
                Kflat = K[lev].reshape(-1, r[lev] * p)
                H_moments[lev] = H_moments[lev] + Kflat.T @ Kflat
                cross_moments[lev] = cross_moments[lev] + \
                    Kflat.T @ u[lev].reshape(-1, r[lev])
            for i, l in enumerate(levels):
                for m in levels[i:]:
                    rl, rm, Cl, Cm = r[l], r[m], C[l], C[m]
                    Q = (np.swapaxes(Y[l], 1, 2) @ Y[m]).reshape(
                        g, Cl, rl, Cm, rm)
                    # rows (g, c, d), columns (b, e): Q_cd[b, e]
                    Qv = Q.transpose(0, 1, 3, 2, 4).reshape(-1, rl * rm)
                    trace[l, m] = trace.get((l, m), 0.0) + Qv.T @ Qv
                    if self.reml:
                        # sum_cd Q_cd[b, e] (K_d F^-1 K_c')[f, a]: first
                        # over d on Q's own layout, then over c and p
                        KF = (K[m].reshape(-1, p) @ cov_beta).reshape(
                            g, 1, Cm, rm * p)
                        W = (Q.reshape(g, Cl * rl, Cm, rm).swapaxes(2, 3)
                             @ KF).reshape(g * Cl, rl * rm * rm, p)
                        fixed[l, m] = fixed.get((l, m), 0.0) + (
                            W @ np.swapaxes(K[l].reshape(g * Cl, rl, p), 1, 2)
                        ).sum(axis=0)
                    if observed:
                        # sum_d Q_cd[b, e] u_d[f], then sum_c u_c[a] (...)
                        W = (Q.reshape(g, Cl * rl, Cm, rm).swapaxes(2, 3)
                             @ u[m][:, None, :, :])
                        resid[l, m] = resid.get((l, m), 0.0) + (
                            u[l].reshape(g * Cl, rl).T
                            @ W.reshape(g * Cl, rl * rm * rm))
        H = np.zeros((n_par, p, p))
        cross = np.zeros((n_par, p))
        fixed_cross = np.zeros((n_par, n_par))
        resid_products = np.zeros((n_par, n_par))
        for (l, m), R in trace.items():
            rl, rm = r[l], r[m]
            blocks = [(info, _bilinear(D[l], D[m], R.reshape(rl, rm, rl, rm),
                                       "beaf"))]
            if self.reml:
                blocks.append((fixed_cross, _bilinear(
                    D[l], D[m], fixed[l, m].reshape(rl, rm, rm, rl),
                    "befa")))
            if observed:
                blocks.append((resid_products, _bilinear(
                    D[l], D[m], resid[l, m].reshape(rl, rl, rm, rm),
                    "abef")))
            for target, value in blocks:
                target[span[l], span[m]] += value
                if m != l:
                    target[span[m], span[l]] += value.T
        for lev in levels:
            rl, n_lev = r[lev], D[lev].shape[0]
            flat_D = D[lev].reshape(n_lev, rl * rl)
            # sum_ab D[s, a, b] M[a, ., b, .]
            H[span[lev]] = (flat_D @ H_moments[lev].reshape(
                rl, p, rl, p).transpose(0, 2, 1, 3).reshape(rl * rl, p * p)
                            ).reshape(n_lev, p, p)
            cross[span[lev]] = flat_D @ cross_moments[lev].reshape(
                rl, p, rl).transpose(0, 2, 1).reshape(rl * rl, p)
        if self.reml:
            J = cov_beta @ H
            # tr(J_s J_t)
            info += -2.0 * fixed_cross + (
                J.reshape(n_par, -1) @ np.swapaxes(J, 1, 2).reshape(
                    n_par, -1).T)
        info *= 0.5
        if not observed:
            return info
        return info - resid_products + cross @ cov_beta @ cross.T


def _bilinear(D_l, D_m, T, axes):
    """
    ``sum D_l[s, a, b] D_m[t, e, f] T[...]`` for a 4-index tensor ``T``
    whose axes are named by ``axes`` (a permutation of "abef"), as two
    matrix products.
    """
    rl, rm = D_l.shape[-1], D_m.shape[-1]
    order = [axes.index(c) for c in "abef"]
    M = T.transpose(order).reshape(rl * rl, rm * rm)
    return D_l.reshape(-1, rl * rl) @ M @ D_m.reshape(-1, rm * rm).T


def _flat(a):
    """Stack the groups of a batch array on top of each other."""
    return a.reshape(-1, a.shape[-1])
