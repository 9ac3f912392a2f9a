r"""
The univariate profiled likelihood of many independent problems at once.

Problem ``j`` has values ``y_ij`` with known variances ``v_ij`` for its
observed studies ``i`` (``o_ij = 1``; a study that does not inform the
problem has ``o_ij = 0``), a design ``X`` shared by all problems or its own
``X_j``, and one between-study variance ``t_j = tau2_j >= 0``:
``Sigma_ij = v_ij + t_j``.  Every array carries the problem axis first and
the studies second, ``(R, N)``; an unobserved study enters with weight 0,
so that every sum below runs over the observed studies only.  With
``w_ij = o_ij / Sigma_ij``, ``F_j = X' W_j X``, the GLS coefficients
``beta_j = F_j^{-1} X' W_j y_j``, residuals ``r_ij`` and
``M_a = X' W_j^{a+1} X``,

.. math::

    \ell_j = c_j - \tfrac12 \Big[\sum_i \log \Sigma_{ij}
        + \sum_i w_{ij} r_{ij}^2 \; [+ \log\det F_j]_{REML}\Big],

    \ell_j' = -\tfrac12 \Big[\sum_i w_{ij} - \sum_i w_{ij}^2 r_{ij}^2
        \; [- \operatorname{tr}(F_j^{-1} M_1)]_{REML}\Big],

    \ell_j'' = \tfrac12 \sum_i w_{ij}^2 - \sum_i w_{ij}^3 r_{ij}^2
        + u_j' F_j^{-1} u_j \; [+ \tfrac12 \operatorname{tr}(J_j^2)
        - \operatorname{tr}(F_j^{-1} M_2)]_{REML},

    \mathcal{I}_j = \tfrac12 \Big[\sum_i w_{ij}^2 \;
        [+ \operatorname{tr}(J_j^2) - 2 \operatorname{tr}(F_j^{-1} M_2)]
        _{REML}\Big],

with ``u_j = X' W_j^2 r_j``, ``J_j = F_j^{-1} M_1`` and ``c_j`` of
:class:`Stack` (Harville 1977; the same quantities, problem by problem, as
:mod:`statsmodels_mixmeta.kernels.univariate`).  Nothing loops over
problems or studies: the sums are reductions along the study axis and the
``p x p`` algebra is batched over problems.

References
----------
Harville DA. Maximum likelihood approaches to variance component
estimation and to related problems. Journal of the American Statistical
Association 1977; 72: 320-338.
"""
from dataclasses import dataclass

import numpy as np

from .likelihood import LOG_2PI


class Stack:
    """
    A chunk of univariate problems as dense ``(P, N)`` arrays.

    Parameters
    ----------
    y, variance : ndarray, ``(P, N)``
        Values and known variances; NaN in ``y`` marks an unobserved study.
    X : ndarray, ``(N, p)`` or ``(P, N, p)``
        The design, shared or per problem.
    reml : bool

    Attributes
    ----------
    observed : ndarray, ``(P, N)``
        ``o_ij`` as floats (0 or 1).
    n_obs : ndarray of int, ``(P,)``
    constant : ndarray, ``(P,)``
        ``-(n_j - p) log(2 pi) / 2 + log det(X_j'X_j) / 2`` (REML) or
        ``-n_j log(2 pi) / 2`` (ML), ``X_j`` the observed rows.
    xtx_rcond : ndarray, ``(P,)``
        Smallest over largest eigenvalue of ``X_j'X_j`` (0: rank-deficient).
    """

    def __init__(self, y, variance, X, reml):
        observed = ~np.isnan(y)
        self.observed = observed.astype(float)
        self.y = np.where(observed, y, 0.0)
        self.variance = np.where(observed, variance, 1.0)
        self.n_problems, self.n_values = self.y.shape
        self.X = np.asarray(X, dtype=float)
        self.shared = self.X.ndim == 2
        self.n_fixed = p = self.X.shape[-1]
        self.reml = bool(reml)
        self.n_obs = observed.sum(axis=1)
        a, b = np.triu_indices(p)
        self._pairs = (a, b)
        self.cross = self.X[..., a] * self.X[..., b]
        xtx = self.product(self.observed)
        eig = np.linalg.eigvalsh(xtx)
        top = eig[:, -1]
        self.xtx_rcond = np.where(top > 0, eig[:, 0] / np.where(
            top > 0, top, 1.0), 0.0)
        sign, logdet = np.linalg.slogdet(xtx)
        self.logdet_xtx = np.where(sign > 0, logdet, -np.inf)
        if self.reml:
            self.constant = (-0.5 * (self.n_obs - p) * LOG_2PI
                             + 0.5 * self.logdet_xtx)
        else:
            self.constant = -0.5 * self.n_obs * LOG_2PI

    def rows(self, rows):
        """The design of problems ``rows`` (the shared one as it is)."""
        return self.X if self.shared else self.X[rows]

    def product(self, weights, rows=None):
        """``X' diag(weights) X`` for each row of ``weights``: ``(R, p, p)``."""
        cross = self.cross if (self.shared or rows is None) else \
            self.cross[rows]
        if self.shared:
            packed = weights @ cross
        else:
            packed = np.einsum("RN,RNK->RK", weights, cross)
        a, b = self._pairs
        out = np.empty(packed.shape[:-1] + (self.n_fixed, self.n_fixed))
        out[..., a, b] = packed
        out[..., b, a] = packed
        return out

    def times_design(self, weights, rows):
        """``X' weights`` for each row: ``(R, p)``."""
        X = self.rows(rows)
        return weights @ X if self.shared else \
            np.einsum("RN,RNp->Rp", weights, X)

    def fitted(self, beta, rows):
        """``X beta`` for each row: ``(R, N)``."""
        X = self.rows(rows)
        return beta @ X.T if self.shared else \
            np.einsum("RNp,Rp->RN", X, beta)


@dataclass
class Evaluation:
    """The kernel's output for ``R`` problems (see the module docstring)."""

    llf: np.ndarray          # (R,)
    beta: np.ndarray         # (R, p)
    cov_beta: np.ndarray     # (R, p, p): F^{-1}
    score: np.ndarray = None        # (R,)
    hessian: np.ndarray = None      # (R,)
    information: np.ndarray = None  # (R,)
    quad: np.ndarray = None         # (R,): sum w r^2


def _trace_product(A, B):
    """``tr(A B)`` of symmetric stacks."""
    return np.einsum("Rab,Rab->R", A, B)


def evaluate(stack, tau2, rows=None, derivatives=True):
    """
    Log-likelihood, GLS fit and (optionally) the score, second derivative
    and expected information in ``tau2`` for problems ``rows``.

    Parameters
    ----------
    stack : Stack
    tau2 : ndarray, ``(R,)``
        Non-negative.
    rows : ndarray of int, optional
        Problems of ``stack`` (default all).
    derivatives : bool

    Returns
    -------
    Evaluation
    """
    if rows is None:
        rows = np.arange(stack.n_problems)
        y, v, o = stack.y, stack.variance, stack.observed
    else:
        y, v, o = stack.y[rows], stack.variance[rows], stack.observed[rows]
    sigma = v + o * tau2[:, None]
    w = o / sigma
    A = np.log(sigma).sum(axis=1)
    F = stack.product(w, rows)
    cov = np.linalg.inv(F)
    beta = np.einsum("Rab,Rb->Ra", cov, stack.times_design(w * y, rows))
    resid = y - stack.fitted(beta, rows)
    wr = w * resid
    quad = np.einsum("RN,RN->R", wr, resid)
    minus2 = A + quad
    if stack.reml:
        sign, logdet_F = np.linalg.slogdet(F)
        minus2 = minus2 + np.where(sign > 0, logdet_F, np.nan)
    llf = stack.constant[rows] - 0.5 * minus2
    out = Evaluation(llf, beta, cov, quad=quad)
    if not derivatives:
        return out
    w2 = w * w
    sum_w2 = w2.sum(axis=1)
    wr2 = np.einsum("RN,RN->R", wr, wr)
    score = w.sum(axis=1) - wr2
    u = stack.times_design(w * wr, rows)
    hessian = (0.5 * sum_w2 - np.einsum("RN,RN->R", w * wr, wr)
               + np.einsum("Ra,Rab,Rb->R", u, cov, u))
    information = sum_w2
    if stack.reml:
        J = cov @ stack.product(w2, rows)
        trace_J2 = _trace_product(J, J.swapaxes(1, 2))
        trace_M2 = _trace_product(cov, stack.product(w2 * w, rows))
        score = score - np.trace(J, axis1=1, axis2=2)
        hessian = hessian + 0.5 * trace_J2 - trace_M2
        information = information + trace_J2 - 2.0 * trace_M2
    out.score = -0.5 * score
    out.hessian = hessian
    out.information = 0.5 * information
    return out


def moment_variance(stack, rows=None):
    r"""
    DerSimonian-Laird estimates and Cochran's Q of each problem.

    At ``tau2 = 0`` (``w = 1 / v``): ``Q = sum_i w_i r_i^2`` and
    ``tau2 = max(0, (Q - (n - p)) / (sum_i w_i - tr(F^{-1} X'W^2X)))``
    (DerSimonian & Laird 1986 in its meta-regression form, as
    :meth:`statsmodels_mixmeta.kernels.univariate.UnivariateLikelihood.moment_variance`).

    Returns
    -------
    tau2, q : ndarray, ``(R,)``
    """
    rows = np.arange(stack.n_problems) if rows is None else rows
    zero = np.zeros(len(rows))
    fit = evaluate(stack, zero, rows, derivatives=False)
    o, v = stack.observed[rows], stack.variance[rows]
    w = o / v
    denominator = w.sum(axis=1) - _trace_product(
        fit.cov_beta, stack.product(w * w, rows))
    excess = fit.quad - (stack.n_obs[rows] - stack.n_fixed)
    tau2 = np.divide(excess, denominator, out=zero.copy(),
                     where=denominator > 0)
    return np.maximum(tau2, 0.0), fit.quad
