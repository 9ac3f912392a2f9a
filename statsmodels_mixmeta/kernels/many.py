r"""
The univariate profiled likelihood of many independent problems at once.

Problem ``j`` has values ``y_ij`` with known variances ``v_ij`` for its
observed studies ``i`` (``o_ij = 1``; a study that does not inform the
problem has ``o_ij = 0``), a design ``X`` shared by all problems or its own
``X_j``, and one between-study variance ``t_j = tau2_j >= 0``:
``Sigma_ij = v_ij + t_j``.  Every array carries the studies first and the
problems second, ``(N, R)`` (the layout of the input, whose rows are
contiguous along problems, so that each sum over studies is ``N`` vector
additions; products with the design are ``einsum`` loops rather than BLAS,
so that a problem's numbers do not depend on the chunk it is fitted in,
the threads BLAS uses or the machine a Dask worker runs on); an unobserved study enters with weight 0,
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
    A chunk of univariate problems as dense ``(N, P)`` arrays.

    Parameters
    ----------
    y, variance : ndarray, ``(N, P)``
        Values and known variances; NaN in ``y`` marks an unobserved study.
    X : ndarray, ``(N, p)`` or ``(N, p, P)``
        The design, shared or per problem.
    reml : bool

    Attributes
    ----------
    observed : ndarray, ``(N, P)``
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
        self.n_values, self.n_problems = self.y.shape
        self.X = np.asarray(X, dtype=float)
        self.shared = self.X.ndim == 2
        self.n_fixed = p = self.X.shape[1]
        # an intercept only: products with the design are sums
        self.unit = self.shared and p == 1 and bool(np.all(self.X == 1.0))
        self.reml = bool(reml)
        self.n_obs = observed.sum(axis=0)
        # every study observed in every problem: no weights of 0
        self.complete = bool(observed.all())
        a, b = np.triu_indices(p)
        self._pairs = (a, b)
        self.cross = self.X[:, a] * self.X[:, b]
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

    def take(self, rows, observed=True):
        """``(y, variance, observed, X)`` of problems ``rows`` (observed
        None when not asked for: a gather fewer)."""
        if rows is None or _is_all(rows, self.n_problems):
            return self.y, self.variance, self.observed, self.X
        X = self.X if self.shared else self.X[:, :, rows]
        return (self.y[:, rows], self.variance[:, rows],
                self.observed[:, rows] if observed else None, X)

    def product(self, weights, rows=None):
        """``X' diag(weights) X`` for each column of ``weights``:
        ``(R, p, p)``."""
        if self.unit:
            return weights.sum(axis=0)[:, None, None]
        if self.shared:
            packed = np.einsum("NK,NR->RK", self.cross, weights)
        else:
            cross = self.cross if rows is None else self.cross[:, :, rows]
            packed = np.einsum("NR,NKR->RK", weights, cross)
        a, b = self._pairs
        out = np.empty(packed.shape[:-1] + (self.n_fixed, self.n_fixed))
        out[..., a, b] = packed
        out[..., b, a] = packed
        return out


def _is_all(rows, n):
    """Whether ``rows`` is ``0, 1, ..., n - 1``."""
    return (len(rows) == n and n > 0 and rows[0] == 0 and rows[-1] == n - 1
            and bool((np.diff(rows) == 1).all()))


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
    log_sigma: np.ndarray = None    # (R,): sum log Sigma
    sum_w: np.ndarray = None        # (R,): sum w
    sum_w2: np.ndarray = None       # (R,): sum w^2
    # the Stieltjes pieces of the score and curvature (see
    # :mod:`statsmodels_mixmeta.kernels.variance_shape`):
    # ell' = (pull - penalty) / 2, ell'' = penalty2 / 2 - pull2
    penalty: np.ndarray = None      # (R,): d/dt (sum log Sigma [+ D])
    penalty2: np.ndarray = None     # (R,): -d2/dt2 of the same
    pull: np.ndarray = None         # (R,): -dQ/dt = sum w^2 r^2
    pull2: np.ndarray = None        # (R,): d2Q/dt2 / 2
    trace_j: np.ndarray = None      # (R,): tr(F^{-1} X'W^2X)


#: Products of the ``Sigma_ij`` of a problem within these bounds are
#: exact to ``N`` roundings; outside them the logarithms are summed.
_PRODUCT_RANGE = (1e-280, 1e280)


def log_sum(sigma):
    """``sum_i log sigma_i`` per column, as the logarithm of the product
    (one pass, no logarithm per value; within ``N`` roundings, about
    ``N * 1e-16``, of the sum of logarithms) where that product is in
    range, else as the sum."""
    product = sigma.prod(axis=0)
    low, high = _PRODUCT_RANGE
    inside = (product > low) & (product < high)
    out = np.log(np.where(inside, product, 1.0))
    if not inside.all():
        outside = np.flatnonzero(~inside)
        out[outside] = np.log(sigma[:, outside]).sum(axis=0)
    return out


def _colsum(a, b=None):
    """``sum_i a_i b_i`` per column."""
    return a.sum(axis=0) if b is None else np.einsum("NR,NR->R", a, b)


def evaluate(stack, tau2, rows=None, derivatives=True):
    # derivatives: True, False or "score" (the score and sum w alone)
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
    y, v, o, X = stack.take(rows, observed=not stack.complete)
    if stack.complete:
        sigma = v + tau2
    else:
        sigma = np.multiply(o, tau2)
        sigma += v
    log_sigma = log_sum(sigma)
    if stack.complete:
        w = np.divide(1.0, sigma, out=sigma)
    else:
        w = np.divide(o, sigma, out=sigma)
    if stack.n_fixed == 1:
        return _evaluate_one(stack, rows, y, X, w, log_sigma, derivatives)
    F = stack.product(w, rows)
    cov = np.linalg.inv(F)
    if stack.shared:
        u = np.einsum("Np,NR->Rp", X, w * y)
        beta = np.einsum("Rab,Rb->Ra", cov, u)
        resid = y - np.einsum("Np,Rp->NR", X, beta)
    else:
        u = np.einsum("NpR,NR->Rp", X, w * y)
        beta = np.einsum("Rab,Rb->Ra", cov, u)
        resid = y - np.einsum("NpR,Rp->NR", X, beta)
    wr = w * resid
    quad = _colsum(wr, resid)
    minus2 = log_sigma + quad
    if stack.reml:
        sign, logdet_F = np.linalg.slogdet(F)
        minus2 = minus2 + np.where(sign > 0, logdet_F, np.nan)
    llf = _constant(stack, rows) - 0.5 * minus2
    out = Evaluation(llf, beta, cov, quad=quad, log_sigma=log_sigma)
    if not derivatives:
        return out
    w2 = w * w
    sum_w = w.sum(axis=0)
    score = sum_w - _colsum(wr, wr)
    if derivatives == "score":
        if stack.reml:
            score = score - np.einsum("Rab,Rab->R", cov,
                                      stack.product(w2, rows))
        out.score, out.sum_w = -0.5 * score, sum_w
        return out
    sum_w2 = w2.sum(axis=0)
    wwr = w * wr
    u = np.einsum("Np,NR->Rp", X, wwr) if stack.shared else \
        np.einsum("NpR,NR->Rp", X, wwr)
    pull = sum_w - score
    pull2 = _colsum(wwr, wr) - np.einsum("Ra,Rab,Rb->R", u, cov, u)
    information = penalty2 = sum_w2
    penalty = sum_w
    J = cov @ stack.product(w2, rows)
    trace_J = np.trace(J, axis1=1, axis2=2)
    if stack.reml:
        trace_J2 = np.einsum("Rab,Rba->R", J, J)
        trace_M2 = np.einsum("Rab,Rab->R", cov, stack.product(w2 * w, rows))
        score = score - trace_J
        penalty = sum_w - trace_J
        penalty2 = sum_w2 + trace_J2 - 2.0 * trace_M2
        information = information + trace_J2 - 2.0 * trace_M2
    out.trace_j = trace_J
    return _finish(out, score, sum_w, sum_w2, pull, pull2, penalty,
                   penalty2, information)


def _finish(out, score, sum_w, sum_w2, pull, pull2, penalty, penalty2,
            information):
    """Fill the derivatives of ``out``: ``ell' = (pull - penalty) / 2``,
    ``ell'' = penalty2 / 2 - pull2``."""
    out.score = -0.5 * score
    out.sum_w, out.sum_w2 = sum_w, sum_w2
    out.pull, out.pull2 = pull, pull2
    out.penalty, out.penalty2 = penalty, penalty2
    out.hessian = 0.5 * penalty2 - pull2
    out.information = 0.5 * information
    return out


def _constant(stack, rows):
    return stack.constant if rows is None else stack.constant[rows]


def _evaluate_one(stack, rows, y, X, w, log_sigma, derivatives):
    """:func:`evaluate` for one coefficient: scalar algebra per problem,
    each sum one fused pass over the ``(N, R)`` arrays (``einsum``) and
    two temporaries (the residuals and ``w r``)."""
    unit = stack.unit
    x = None if unit else (np.broadcast_to(X[:, :1], y.shape)
                           if stack.shared else X[:, 0, :])
    sum_w = w.sum(axis=0)
    wx = w if unit else w * x
    F = sum_w if unit else _colsum(wx, x)
    beta = _colsum(wx, y) / F
    resid = y - (beta if unit else x * beta)
    wr = w * resid
    quad = _colsum(wr, resid)
    minus2 = log_sigma + quad
    if stack.reml:
        minus2 = minus2 + np.log(F)
    llf = _constant(stack, rows) - 0.5 * minus2
    out = Evaluation(llf, beta[:, None], (1.0 / F)[:, None, None],
                     quad=quad, log_sigma=log_sigma)
    if not derivatives:
        return out
    pull = _colsum(wr, wr)
    score = sum_w - pull
    if derivatives == "score":
        if stack.reml:
            score = score - _colsum(wx, wx) / F
        out.score, out.sum_w = -0.5 * score, sum_w
        return out
    sum_w2 = _colsum(w, w)
    u = _colsum(wr, wx)
    pull2 = np.einsum("NR,NR,NR->R", wr, wr, w) - u * u / F
    information = penalty2 = sum_w2
    penalty = sum_w
    out.trace_j = J = sum_w2 / F if unit else _colsum(wx, wx) / F
    if stack.reml:
        trace_M2 = np.einsum("NR,NR,NR->R", wx, wx, w) / F
        score = score - J
        penalty = sum_w - J
        penalty2 = sum_w2 + J * J - 2.0 * trace_M2
        information = information + J * J - 2.0 * trace_M2
    return _finish(out, score, sum_w, sum_w2, pull, pull2, penalty,
                   penalty2, information)


def profile_terms(stack, tau2, rows=None):
    """
    ``A``, ``G`` and ``dG/dt`` of
    :mod:`statsmodels_mixmeta.kernels.variance_scan` (``A = sum log
    Sigma``, ``G = Q [+ log det F]_REML``) at one ``tau2`` per problem,
    ``(3, R)``, for its certified bounds.
    """
    if stack.n_fixed == 1:
        return _terms_one(stack, tau2, rows)
    ev = evaluate(stack, tau2, rows, derivatives="score")
    G = -2.0 * (ev.llf - _constant(stack, rows)) - ev.log_sigma
    # ell' = -(A' + G') / 2 with A' = sum w
    return np.stack([ev.log_sigma, G, -2.0 * ev.score - ev.sum_w])


def _terms_one(stack, tau2, rows):
    """:func:`profile_terms` for one coefficient, with few passes over the
    ``(N, R)`` arrays and few temporaries (the scan's inner loop)."""
    y, v, o, X = stack.take(rows, observed=not stack.complete)
    unit = stack.unit
    if stack.complete:
        sigma = v + tau2
        w = np.reciprocal(sigma)
    else:
        sigma = v + o * tau2
        w = np.divide(o, sigma)
    A = np.log(sigma, out=sigma).sum(axis=0)
    if unit:
        F = w.sum(axis=0)
        beta = _colsum(w, y) / F
        resid = np.subtract(y, beta, out=sigma)
        m1 = _colsum(w, w)
    else:
        x = np.broadcast_to(X[:, :1], y.shape) if stack.shared else X[:, 0]
        wx = w * x
        F = _colsum(wx, x)
        beta = _colsum(wx, y) / F
        resid = np.subtract(y, x * beta, out=sigma)
        m1 = _colsum(wx, wx)
    wr = w * resid if unit else np.multiply(w, resid, out=wx)
    G = _colsum(wr, resid)
    dG = -_colsum(wr, wr)
    if stack.reml:
        G += np.log(F)
        dG -= m1 / F
    return np.stack([A, G, dG])


def moment_variance(stack, rows=None, at_zero=None):
    r"""
    DerSimonian-Laird estimates and Cochran's Q of each problem.

    At ``tau2 = 0`` (``w = 1 / v``): ``Q = sum_i w_i r_i^2`` and
    ``tau2 = max(0, (Q - (n - p)) / (sum_i w_i - tr(F^{-1} X'W^2X)))``
    (DerSimonian & Laird 1986 in its meta-regression form, as
    :meth:`statsmodels_mixmeta.kernels.univariate.UnivariateLikelihood.moment_variance`).

    Parameters
    ----------
    stack : Stack
    rows : ndarray of int, optional
    at_zero : Evaluation, optional
        :func:`evaluate` (with derivatives) at ``tau2 = 0`` for ``rows``,
        when the caller has it: nothing is evaluated again.

    Returns
    -------
    tau2, q : ndarray, ``(R,)``
    """
    n = stack.n_problems if rows is None else len(rows)
    zero = np.zeros(n)
    if at_zero is None:
        _, v, o, _ = stack.take(rows)
        fit = evaluate(stack, zero, rows, derivatives=False)
        w = o / v
        denominator = w.sum(axis=0) - np.einsum(
            "Rab,Rab->R", fit.cov_beta, stack.product(w * w, rows))
    else:
        fit = at_zero
        denominator = fit.sum_w - fit.trace_j
    n_obs = stack.n_obs if rows is None else stack.n_obs[rows]
    excess = fit.quad - (n_obs - stack.n_fixed)
    tau2 = np.divide(excess, denominator, out=zero.copy(),
                     where=denominator > 0)
    return np.maximum(tau2, 0.0), fit.quad
