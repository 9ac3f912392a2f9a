r"""
The multivariate profiled likelihood of many independent problems at once,
with its score and exact Hessian in the entries of ``Psi``.

Problem ``j`` has ``k`` outcomes per study ``i``, some of them unobserved;
``D_ij`` is the diagonal 0/1 matrix of the observed outcomes, ``S_ij`` the
known within-study covariance, ``X_i = I_k \otimes x_i'`` the design
(coefficients ordered outcome by outcome, as the single fit orders them)
and ``Psi_j`` the between-study covariance.

Missing outcomes, exactly
-------------------------
A study enters through its observed outcomes only: with
``A_ij = D (S_ij + Psi_j) D + (I - D)`` (the observed block of the
marginal covariance, the identity on the unobserved outcomes),
``A^{-1}`` is the inverse of the observed block padded with the identity,
so ``W_ij = D A_ij^{-1} D`` is that inverse embedded in ``k x k`` with
zero rows and columns for the unobserved outcomes, and
``log det A_ij`` is the log-determinant of the observed block.  Residuals
and designs are multiplied by ``D``, so every sum below is the sum over the
observed values alone: no large variance stands in for a missing value.

Quantities (per problem, sums over studies)
-------------------------------------------
``G_i = W_i X_i``, ``F = sum_i X_i' G_i``, ``beta = F^{-1} sum_i G_i' y_i``,
``r_i = D (y_i - X_i beta)``, ``u_i = W_i r_i`` (``= (P y)_i``),

.. math::

    \ell = c - \tfrac12\Big[\sum_i \log\det A_i + \sum_i r_i' u_i
           \;[+ \log\det F]_{REML}\Big].

With the symmetric unit matrices ``E_a`` of the ``m = k(k+1)/2`` entries
``psi_a`` of ``Psi`` (lower triangle by column) and ``P`` the projection
``W - G F^{-1} G'`` (``REML``; ``W`` for ML in the trace terms)

.. math::

    \partial_a \ell = \tfrac12 \sum_i u_i' E_a u_i
        - \tfrac12 \operatorname{tr}(P E_a),

    \partial_{ab} \ell = \tfrac12 \operatorname{tr}(P E_a P E_b)
        - y' P E_a P E_b P y,

    y' P E_a P E_b P y = \sum_i u_i' E_a W_i E_b u_i
        - v_a' F^{-1} v_b, \qquad v_a = \sum_i G_i' E_a u_i,

and ``tr(P E_a P E_b)`` expands into sums of ``k x k`` and ``kp x kp``
products (:func:`_trace_pp`); the Fisher information is
``tr(P E_a P E_b) / 2`` (Harville 1977).  The constant ``c`` is
``-(n - kp) log(2 pi)/2 + log det(X'X)/2`` (REML) or ``-n log(2 pi)/2``
(ML), ``n`` the observed values, as in the single fit.

Arrays carry the problems first: ``(R, N, k, ...)``; the ``k x k`` and
``kp x kp`` algebra is batched over problems and studies by numpy.

References
----------
Harville DA. Maximum likelihood approaches to variance component
estimation and to related problems. Journal of the American Statistical
Association 1977; 72: 320-338.
"""
from dataclasses import dataclass

import numpy as np

from .likelihood import LOG_2PI
from .moments import MOMENT_RCOND


def vech_units(k):
    """``(m, k, k)`` symmetric unit matrices of the lower-triangle entries
    (by column) and their ``(rows, cols)``."""
    cols, rows = np.triu_indices(k)
    units = np.zeros((len(rows), k, k))
    units[np.arange(len(rows)), rows, cols] = 1.0
    units[np.arange(len(rows)), cols, rows] = 1.0
    return units, rows, cols


class MultiStack:
    """
    A chunk of multivariate problems.

    Parameters
    ----------
    y : ndarray, ``(R, N, k)``
        NaN where an outcome is unobserved.
    S : ndarray, ``(R, N, k, k)``
        Entries of unobserved outcomes are ignored.
    exog : ndarray, ``(N, p)`` or ``(R, N, p)``
        Shared design, or one per problem (finite where a problem observes
        a study).
    reml : bool
    """

    def __init__(self, y, S, exog, reml):
        self.mask = ~np.isnan(y)
        mask = self.mask.astype(float)
        self.n_problems, self.n_studies, self.k = y.shape
        k, p = self.k, exog.shape[-1]
        self.n_fixed = k * p
        self.reml = bool(reml)
        self.y = np.where(self.mask, y, 0.0)
        pairs = mask[..., :, None] * mask[..., None, :]
        self.S = np.where(pairs > 0, S, 0.0)
        self.pad = np.eye(k) * (1.0 - mask)[..., None, :]
        # X_i = I_k kron x_i', rows of unobserved outcomes zeroed: (R,N,k,kp)
        full = np.einsum("ab,...nc->...nabc", np.eye(k), exog).reshape(
            exog.shape[:-1] + (k, k * p))
        self.X = mask[..., None] * full
        self.n_obs = self.mask.sum(axis=(1, 2))
        self.n_studies_obs = self.mask.any(axis=2).sum(axis=1)
        xtx = np.einsum("rnai,rnaj->rij", self.X, self.X)
        eig = np.linalg.eigvalsh(xtx)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.xtx_rcond = eig[:, 0] / eig[:, -1]
        if self.reml:
            sign, logdet = np.linalg.slogdet(xtx)
            self.const = (-(self.n_obs - self.n_fixed) * LOG_2PI / 2
                          + np.where(sign > 0, logdet, np.nan) / 2)
        else:
            self.const = -self.n_obs * LOG_2PI / 2
        self.units, self.rows, self.cols = vech_units(k)


@dataclass
class MultiEvaluation:
    """The GLS fit at ``psi`` of some problems, and derivatives on
    request."""

    llf: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    grad: np.ndarray = None
    hess: np.ndarray = None
    fisher: np.ndarray = None


def evaluate(stack, psi, rows, derivatives=False):
    """
    The GLS fit, (restricted) log-likelihood and, with ``derivatives``,
    the score, the exact Hessian and the Fisher information in the
    entries of ``Psi`` of problems ``rows`` at ``psi`` ``(len(rows), k,
    k)``.  A problem whose marginal covariance is not positive definite
    gets ``llf = -inf``.
    """
    D = stack.mask[rows].astype(float)
    A = stack.S[rows] + psi[:, None] * (D[..., :, None] * D[..., None, :]) \
        + stack.pad[rows]
    try:
        L = np.linalg.cholesky(A)
        good = np.isfinite(L).all(axis=(1, 2, 3))
    except np.linalg.LinAlgError:
        good = (np.linalg.eigvalsh(A)[..., 0] > 0).all(axis=1)
        A = np.where(good[:, None, None, None], A, np.eye(stack.k))
        L = np.linalg.cholesky(A)
    logdet = 2 * np.log(np.einsum("rnaa->rna", L)).sum(axis=(1, 2))
    Ainv = np.linalg.inv(A)
    W = D[..., :, None] * Ainv * D[..., None, :]
    X, y = stack.X[rows], stack.y[rows]
    G = np.einsum("rnab,rnbc->rnac", W, X)                     # W X
    F = np.einsum("rnai,rnaj->rij", X, G)
    cov = np.linalg.inv(F)
    beta = np.einsum("rij,rj->ri", cov, np.einsum("rnai,rna->ri", G, y))
    r = D * (y - np.einsum("rnai,ri->rna", X, beta))
    u = np.einsum("rnab,rnb->rna", W, r)
    quad = np.einsum("rna,rna->r", r, u)
    llf = stack.const[rows] - 0.5 * (logdet + quad)
    if stack.reml:
        llf = llf - 0.5 * np.linalg.slogdet(F)[1]
    llf = np.where(good, llf, -np.inf)
    ev = MultiEvaluation(llf, beta, cov)
    if derivatives:
        ev.grad, ev.hess, ev.fisher = _derivatives(stack, W, G, cov, u)
    return ev


def selection(k):
    """``(m, k^2)``: entry ``psi_a`` of the vech is the sum of the unit
    matrices ``e_p e_q'`` of its one or two ``(p, q)`` positions."""
    _, rows, cols = vech_units(k)
    sel = np.zeros((len(rows), k * k))
    sel[np.arange(len(rows)), rows * k + cols] = 1.0
    sel[np.arange(len(rows)), cols * k + rows] = 1.0
    return sel


def _derivatives(stack, W, G, cov, u):
    """
    Score, exact Hessian and Fisher information in ``psi_a``.

    Everything is first computed for the unit matrices ``e_p e_q'``
    (``tr(P e_p e_q') = P_qp``, ``tr(A e_p e_q' B e_s e_t') = B_qs A_tp``
    for block-diagonal ``A``, ``B``), as ``(k^2,)`` and ``(k^2, k^2)``
    arrays summed over studies by two-operand einsums, then mapped to the
    symmetric entries ``E_a`` by :func:`selection`.
    """
    R, _, k = u.shape
    kk = k * k
    sel = selection(k)
    uu = np.einsum("rnp,rnq->rnpq", u, u)
    trace = W
    if stack.reml:
        GC = np.einsum("rnai,rij->rnaj", G, cov)
        K = np.einsum("rnaj,rnbj->rnab", GC, G)              # G F^-1 G'
        trace = W - K
    # g[p, q] = (sum u_p u_q - P_qp) / 2
    gfull = 0.5 * (uu.sum(axis=1) - np.swapaxes(trace.sum(axis=1), 1, 2))
    grad = gfull.reshape(R, kk) @ sel.T
    # tr(P e_p e_q' P e_s e_t') summed: W_qs W_tp [- W_qs K_tp - K_qs W_tp
    # + tr(F^-1 M_pq F^-1 M_st)]
    tpp = np.einsum("rnqs,rntp->rpqst", W, W)
    if stack.reml:
        cross = np.einsum("rnqs,rntp->rpqst", W, K)
        tpp = tpp - cross - np.einsum("rpqst->rstpq", cross)
        M = np.einsum("rnpi,rnqj->rpqij", G, G)              # M_pq
        CM = np.einsum("rij,rpqjl->rpqil", cov, M)
        tpp = tpp + np.einsum("rpqij,rstji->rpqst", CM, CM)
    # y'P e_p e_q' P e_s e_t' P y = sum u_p W_qs u_t - v_pq' F^-1 v_st
    v = np.einsum("rnpi,rnq->rpqi", G, u)
    ypp = (np.einsum("rnpt,rnqs->rpqst", uu, W)
           - np.einsum("rpqi,rij,rstj->rpqst", v, cov, v))
    tpp = tpp.reshape(R, kk, kk)
    hfull = 0.5 * tpp - ypp.reshape(R, kk, kk)
    hess = sel @ hfull @ sel.T
    fisher = 0.5 * (sel @ tpp @ sel.T)
    return grad, hess, fisher


def _kron_sum(a, b):
    """``sum_i kron(a_i, b_i)`` per problem for ``(R, N, r, s)`` and
    ``(R, N, t, u)`` stacks."""
    R, _, r, s = a.shape
    t, u = b.shape[2:]
    return np.einsum("rnab,rncd->racbd", a, b).reshape(R, r * t, s * u)


def moment_psi(stack, rows, floor):
    """
    The method-of-moments ``Psi`` of Jackson, White & Riley (2013) for
    problems ``rows`` (:func:`statsmodels_mixmeta.kernels.moments.
    method_of_moments_psi` with ``Z_i = D_i``, ``a_i = D_i X_i T``,
    ``c_i = W_i X_i T``, ``F^{-1} = T T'`` of the fixed-effects fit), then
    symmetrised with its eigenvalues below ``floor`` raised to it.
    Also returns the multivariate Cochran's Q ``sum_i r_i' W_i r_i``,
    whether every pair of outcomes is observed together in some study, and
    whether the moment equations are solvable: every pair together and
    enough observed values for the fixed coefficients and the entries of
    Psi, and the coefficient matrix not singular (``MOMENT_RCOND``), as
    the single fit requires for ``method="mm"``.  Where not, ``psi`` is
    their minimum-norm solution, projected (a start for the likelihood).
    """
    k = stack.k
    D = stack.mask[rows].astype(float)
    A = stack.S[rows] + stack.pad[rows]
    W = D[..., :, None] * np.linalg.inv(A) * D[..., None, :]
    X, y = stack.X[rows], stack.y[rows]
    G = np.einsum("rnab,rnbc->rnac", W, X)
    cov = np.linalg.inv(np.einsum("rnai,rnaj->rij", X, G))
    beta = np.einsum("rij,rj->ri", cov, np.einsum("rnai,rna->ri", G, y))
    r = D * (y - np.einsum("rnai,ri->rna", X, beta))
    u = np.einsum("rnab,rnb->rna", W, r)
    T = np.linalg.cholesky(cov)
    a = np.einsum("rnai,rij->rnaj", X, T)
    c = np.einsum("rnai,rij->rnaj", G, T)
    q_stat = np.einsum("rna,rnb->rab", u, r)
    expected = D.sum(axis=1)[..., None] * np.eye(k) - np.einsum(
        "rnak,rnbk->rab", c, a)
    Dm = D[..., :, None] * np.eye(k)
    cc = np.einsum("rnak,rnbk->rnab", c, c)
    ac = np.einsum("rnak,rnbk->rnab", a, c)
    coef = (_kron_sum(Dm, W) - _kron_sum(Dm, cc) - _kron_sum(ac, W)
            + np.einsum("rij,rjl->ril", _kron_sum(a, c),
                        _kron_sum(np.swapaxes(c, 2, 3),
                                  np.swapaxes(c, 2, 3))))
    rhs = np.swapaxes(q_stat - expected, 1, 2).reshape(len(rows), k * k)
    # a pair of outcomes never observed together leaves coef singular, and
    # so do too few observed values: the minimum-norm solution there (a
    # start for the likelihood, or unused; "mm" refuses such problems)
    counts = np.einsum("rna,rnb->rab", D, D)
    together = (counts > 0).all(axis=(1, 2))
    # too few values for the coefficients and Psi, or a pattern of missing
    # outcomes that leaves the equations singular: "mm" refuses them, as
    # the single fit does
    enough = stack.n_obs[rows] >= stack.n_fixed + k * (k + 1) // 2
    singular_values = np.linalg.svd(coef, compute_uv=False)
    solvable = together & enough & (singular_values[:, -1]
                                    > MOMENT_RCOND * singular_values[:, 0])
    vec = np.empty_like(rhs)
    vec[solvable] = np.linalg.solve(coef[solvable],
                                    rhs[solvable, :, None])[..., 0]
    vec[~solvable] = np.einsum("rij,rj->ri", np.linalg.pinv(coef[~solvable]),
                               rhs[~solvable])
    psi = np.swapaxes(vec.reshape(len(rows), k, k), 1, 2)
    psi = (psi + np.swapaxes(psi, 1, 2)) / 2
    values, vectors = np.linalg.eigh(psi)
    low = (values < floor).any(axis=1)
    projected = np.einsum("rab,rb,rcb->rac", vectors,
                          np.maximum(values, floor), vectors)
    psi = np.where(low[:, None, None], projected, psi)
    return psi, np.einsum("rna,rna->r", r, u), together, solvable
