r"""
The profiled (restricted) likelihood of one two-level multivariate design
refitted to many outcome vectors at once, through the nested structure.

The design is shared by all data sets ``r``: outer groups ``g``, each of
inner groups ``i`` of one row (one study), ``k`` outcomes, within-study
covariance ``S_i``, design ``X_i = I_k \otimes x_i'`` (coefficients
outcome by outcome, as the single fit orders them).  Only ``y`` and the two
between-group covariances ``Psi_o`` (outer) and ``Psi_w`` (inner) vary
with ``r``.  The marginal covariance of outer group ``g`` is

.. math::

    V_g = \operatorname{blockdiag}_i(A_i) + (1 1') \otimes \Psi_o,
    \qquad A_i = S_i + \Psi_w,

and Woodbury's identity gives, with ``W_i = A_i^{-1}``,
``W_g = \sum_{i \in g} W_i`` and
``M_g = (I + \Psi_o W_g)^{-1} \Psi_o``,

.. math::

    (V_g^{-1})_{ij} = \delta_{ij} W_i - W_i M_g W_j, \qquad
    \log\det V_g = \sum_{i \in g} \log\det A_i + \log\det(I + \Psi_o W_g),

so that every quantity is a sum of ``k x k`` products per row and per
group: no ``n_g k x n_g k`` matrix is formed.  With ``Q_i = (V^{-1}X)_i =
W_i (X_i - H_g)``, ``H_g = M_g \sum_{i\in g} W_i X_i``,
``F = X' V^{-1} X``, ``C = F^{-1}``, ``beta = C X' V^{-1} y``,
``u = V^{-1}(y - X beta) = P y`` and ``P = V^{-1} - V^{-1} X C X' V^{-1}``
(``V^{-1}`` for ML in the trace terms),

.. math::

    \ell = c - \tfrac12\Big[\log\det V + (y - X\beta)' u
           \;[+ \log\det F]_{REML}\Big].

Derivatives, in the cone ``Psi = sum_t lambda_t E_t`` of each level
(``E_t`` fixed symmetric matrices, ``lambda_t >= 0``: see
:mod:`statsmodels_mixmeta.fitting.many_multilevel`): the score is
``tr(G E_t)`` with the matrix gradients

.. math::

    G_w = \tfrac12 \sum_i \big(u_i u_i' - P_{ii}\big), \qquad
    G_o = \tfrac12 \sum_g \big(\bar u_g \bar u_g' - \bar P_{g}\big),

``P_ii = W_i - W_i (M_g + B_i) W_i``, ``B_i = (X_i - H_g) C (X_i - H_g)'``
(REML only), ``\bar u_g = \sum_{i\in g} u_i`` and
``\bar P_g = \sum_{i,j \in g} P_{ij} = W_g - W_g M_g W_g -
\bar Q_g C \bar Q_g'`` with ``\bar Q_g = (I - W_g M_g) \sum_{i\in g}
W_i X_i``.  The average information (Gilmour, Thompson & Cullis 1995)
``AI_{st} = \tfrac12 (\dot V_s u)' P (\dot V_t u)`` needs ``P`` applied to
one vector per parameter only.  The constant ``c`` is as the single fit's:
``-(n - kp) log(2 pi)/2 + log det(X'X)/2`` (REML) or ``-n log(2 pi)/2``.

Arrays carry the data sets first, then groups padded to the largest size:
``(R, m, n_max, k, ...)``; padded rows have ``W_i = 0``.

References
----------
Gilmour AR, Thompson R, Cullis BR. Average information REML: an efficient
algorithm for variance parameter estimation in linear mixed models.
Biometrics 1995; 51: 1440-1450.
"""
from dataclasses import dataclass

import numpy as np

from .likelihood import LOG_2PI


def inverse_logdet(A, symmetric=True):
    """
    ``(A^{-1}, log det A)`` of a stack ``(..., k, k)``: cofactors for
    ``k <= 3`` (a batched LAPACK call per tiny matrix costs more than the
    arithmetic), ``np.linalg`` otherwise.  ``log det`` is NaN where the
    determinant is not positive.
    """
    k = A.shape[-1]
    if k == 1:
        det = A[..., 0, 0]
        inv = 1.0 / A
    elif k == 2:
        a, b, c, d = A[..., 0, 0], A[..., 0, 1], A[..., 1, 0], A[..., 1, 1]
        det = a * d - b * c
        inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)
        inv /= det[..., None, None]
    elif k == 3:
        e = [[A[..., i, j] for j in range(3)] for i in range(3)]
        cof = np.empty(A.shape)
        for i in range(3):
            for j in range(3):
                if symmetric and j < i:
                    cof[..., i, j] = cof[..., j, i]
                    continue
                i1, i2 = (i + 1) % 3, (i + 2) % 3
                j1, j2 = (j + 1) % 3, (j + 2) % 3
                cof[..., i, j] = e[i1][j1] * e[i2][j2] - e[i1][j2] * e[i2][j1]
        det = (e[0][0] * cof[..., 0, 0] + e[0][1] * cof[..., 0, 1]
               + e[0][2] * cof[..., 0, 2])
        # the inverse is the transposed cofactor matrix over det
        inv = np.swapaxes(cof, -1, -2) / det[..., None, None]
    else:
        sign, logdet = np.linalg.slogdet(A)
        return np.linalg.inv(A), np.where(sign > 0, logdet, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        logdet = np.where(det > 0, np.log(det), np.nan)
    return inv, logdet


class NestedStack:
    """
    The shared design, padded by outer group.

    Parameters
    ----------
    S : ndarray, ``(n_rows, k, k)``
    exog : ndarray, ``(n_rows, p)``
    outer : ndarray of int, ``(n_rows,)``
        Outer group codes ``0..m-1``; each row is its own inner group.
    reml : bool
    """

    def __init__(self, S, exog, outer, reml):
        n_rows, k = S.shape[:2]
        p = exog.shape[1]
        self.k, self.p, self.n_fixed = k, p, k * p
        self.reml = bool(reml)
        m = int(outer.max()) + 1
        order = np.argsort(outer, kind="stable")
        sizes = np.bincount(outer, minlength=m)
        n_max = int(sizes.max())
        slot = np.arange(n_rows) - np.repeat(np.cumsum(sizes) - sizes,
                                             sizes)
        self.group = np.empty(n_rows, int)
        self.slot = np.empty(n_rows, int)
        self.group[order], self.slot[order] = outer[order], slot
        self.mask = np.zeros((m, n_max), bool)
        self.mask[self.group, self.slot] = True
        self.S = np.broadcast_to(np.eye(k), (m, n_max, k, k)).copy()
        self.S[self.group, self.slot] = S
        self.x = np.zeros((m, n_max, p))
        self.x[self.group, self.slot] = exog
        # X_i = I_k kron x_i' of every row, (m, n_max, k, kp)
        self.X_rows = np.einsum("ab,gnc->gnabc", np.eye(k), self.x).reshape(
            (m, n_max, k, k * p))
        self.same_x = bool((exog == exog[:1]).all())
        n_obs = n_rows * k
        if self.reml:
            xtx = np.einsum("gnc,gnd->cd", self.x, self.x)
            logdet = k * np.linalg.slogdet(xtx)[1]
            self.const = -(n_obs - self.n_fixed) * LOG_2PI / 2 + logdet / 2
        else:
            self.const = -n_obs * LOG_2PI / 2

    def pad(self, y):
        """``(R, m, n_max, k)`` from rows ``(R, n_rows, k)``."""
        out = np.zeros((y.shape[0],) + self.mask.shape + (self.k,))
        out[:, self.group, self.slot] = y
        return out


@dataclass
class NestedEvaluation:
    """The GLS fit of some data sets at their ``Psi``; the matrix
    gradients ``(R, k, k)`` of each level and the average information on
    request."""

    llf: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    quad: np.ndarray = None
    grad_outer: np.ndarray = None
    grad_inner: np.ndarray = None
    info: np.ndarray = None


def _mv(A, v):
    """Batched matrix-vector product over the last axes."""
    return np.einsum("...ab,...b->...a", A, v)


def _sum_sandwich(W, N):
    """``sum_{g,i} W_i N_i W_i`` per data set, ``(R, k, k)``, as one
    matrix product (a three-operand einsum is ten times slower)."""
    R, k = W.shape[0], W.shape[-1]
    WN = (W @ N).reshape(R, -1, k)                  # rows (g, i, a)
    WN = np.swapaxes(WN.reshape(R, -1, k, k), -1, -2).reshape(R, -1, k)
    return np.swapaxes(WN, 1, 2) @ W.reshape(R, -1, k)


def evaluate(stack, y, psi_outer, psi_inner, bases=None):
    """
    The GLS fit and (restricted) log-likelihood of data sets ``y``
    ``(R, m, n_max, k)`` (padded) at ``psi_outer`` and ``psi_inner``
    ``(R, k, k)``; with ``bases`` (the matrices ``E_t`` of the outer and of
    the inner level, ``(T_o, k, k)`` and ``(T_w, k, k)``) also the matrix
    gradients and the average information ``(R, T, T)``,
    ``T = T_o + T_w``.
    """
    R, k, p, q = y.shape[0], stack.k, stack.p, stack.n_fixed
    mask = stack.mask
    A = stack.S[None] + psi_inner[:, None, None]
    W, logdet_a = inverse_logdet(A)
    W *= mask[None, :, :, None, None]
    logdet = np.where(mask, logdet_a, 0.0).sum(axis=(1, 2))
    Wsum = W.sum(axis=2)                                       # (R,m,k,k)
    K = np.eye(k) + psi_outer[:, None] @ Wsum
    Kinv, logdet_k = inverse_logdet(K, symmetric=False)
    logdet = logdet + logdet_k.sum(axis=1)
    M = Kinv @ psi_outer[:, None]
    M = (M + np.swapaxes(M, -1, -2)) / 2
    x = stack.x
    # sum_i W_i X_i per group, (R,m,k,k,p) -> (R,m,k,q), and X' W X
    if p == 1:
        sumG = np.einsum("rgnab,gn->rgab", W, x[..., 0])
        XWX = np.einsum("rgnab,gn->rab", W, x[..., 0] ** 2)
    else:
        sumG = np.einsum("rgnab,gnc->rgabc", W, x).reshape(R, -1, k, q)
        XWX = np.einsum("rgnab,gncd->racbd", W,
                        x[..., :, None] * x[..., None, :]).reshape(R, q, q)
    MG = M @ sumG                                               # H_g
    F = XWX - np.einsum("rgai,rgaj->rij", sumG, MG)
    h = _mv(W, y)
    hsum = h.sum(axis=2)
    Xty = (np.einsum("rgnb,gnc->rbc", h, x).reshape(R, q)
           - np.einsum("rgai,rga->ri", MG, hsum))
    C = np.linalg.inv(F)
    beta = np.einsum("rij,rj->ri", C, Xty)
    fitted = np.einsum("gnc,rac->rgna", x, beta.reshape(R, k, p))
    resid = (y - fitted) * mask[None, :, :, None]
    Wr = _mv(W, resid)
    u = Wr - _mv(W, _mv(M, Wr.sum(axis=2))[:, :, None])
    quad = np.einsum("rgna,rgna->r", resid, u)
    llf = stack.const - 0.5 * (logdet + quad)
    if stack.reml:
        llf = llf - 0.5 * np.linalg.slogdet(F)[1]
    llf = np.where(np.isfinite(llf), llf, -np.inf)
    ev = NestedEvaluation(llf, beta, C, quad)
    if bases is not None:
        _derivatives(stack, ev, W, Wsum, M, sumG, MG, u, bases)
    return ev


def _derivatives(stack, ev, W, Wsum, M, sumG, MG, u, bases):
    """Fill the matrix gradients and the average information of ``ev``."""
    R, k, p, q = W.shape[0], stack.k, stack.p, stack.n_fixed
    C = ev.cov_beta
    x = stack.x
    ubar = u.sum(axis=2)
    # inner: sum_i P_ii = sum_i W_i - W_i (M_g + B_i) W_i
    N = M[:, :, None]
    WsumM = Wsum @ M
    Qbar = sumG - WsumM @ sumG
    if stack.reml:
        # B_i = (X_i - H_g) C (X_i - H_g)', X_i = I kron x_i': one per
        # group when every row has the same x_i (intercepts only)
        if stack.same_x:
            D = stack.X_rows[None, :, :1] - MG[:, :, None]
        else:
            D = stack.X_rows[None] - MG[:, :, None]
        N = N + D @ C[:, None, None] @ np.swapaxes(D, -1, -2)
    sum_pii = Wsum.sum(axis=1) - _sum_sandwich(W, N)
    uu = np.einsum("rgna,rgnb->rab", u, u)
    ev.grad_inner = 0.5 * (uu - sum_pii)
    pbar = Wsum - WsumM @ Wsum
    if stack.reml:
        pbar = pbar - Qbar @ C[:, None] @ np.swapaxes(Qbar, -1, -2)
    ev.grad_outer = 0.5 * (np.einsum("rga,rgb->rab", ubar, ubar)
                           - pbar.sum(axis=1))
    # average information: w_t = dV_t u, a_t = V^{-1} w_t, b_t = X' a_t
    outer_basis, inner_basis = bases
    ws, As, bs = [], [], []
    I_MW = np.eye(k) - np.swapaxes(WsumM, -1, -2)   # I - M_g W_g
    for E in outer_basis:
        wbar = ubar @ E                            # E_t ubar, (R,m,k)
        a = _mv(W, _mv(I_MW, wbar)[:, :, None])
        ws.append(("outer", wbar))
        As.append(a)
    for E in inner_basis:
        w = u @ E
        Ww = _mv(W, w)
        a = Ww - _mv(W, _mv(M, Ww.sum(axis=2))[:, :, None])
        ws.append(("inner", w))
        As.append(a)
    for a in As:
        bs.append(np.einsum("rgnb,gnc->rbc", a, x).reshape(R, q))
    T = len(As)
    info = np.empty((R, T, T))
    for s in range(T):
        kind, w = ws[s]
        for t in range(s, T):
            if kind == "outer":
                dot = np.einsum("rga,rga->r", w, As[t].sum(axis=2))
            else:
                dot = np.einsum("rgna,rgna->r", w, As[t])
            dot = dot - np.einsum("ri,rij,rj->r", bs[s], C, bs[t])
            info[:, s, t] = info[:, t, s] = 0.5 * dot
    ev.info = info
