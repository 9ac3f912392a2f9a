r"""
The profiled likelihood of a single variance on a grid, for many problems at
once, with upper bounds that certify its global maximum.

For one outcome and one value per group, ``Sigma_i = v_i + z_i^2 t`` with
``t = tau2 >= 0``.  Write

.. math::

    A(t) = \sum_i \log \Sigma_i, \qquad
    Q(t) = \min_\beta \sum_i (y_i - x_i'\beta)^2 / \Sigma_i, \qquad
    D(t) = \log\det X' \Sigma^{-1} X,

so that the profiled log-likelihoods are

.. math::

    \ell_{ML} = -\tfrac12 (N \log 2\pi + A + Q), \qquad
    \ell_{REML} = -\tfrac12 ((N - p) \log 2\pi - \log\det X'X
                  + A + Q + D).

Three facts bound ``ell`` between grid points without any assumption about
its shape:

* ``A`` is concave (a sum of logarithms of linear functions), so ``-A/2``
  lies below its chord on ``[a, b]``;
* ``Q`` is convex: ``e^2 / s`` is jointly convex in ``(e, s)``, so
  ``sum_i (y_i - x_i'beta)^2 / Sigma_i(t)`` is jointly convex in
  ``(beta, t)`` and its minimum over ``beta`` is convex in ``t`` (Boyd &
  Vandenberghe 2004, secs. 3.1.5 and 3.2.5); by the envelope theorem
  ``Q'(t) = -sum_i z_i^2 r_i^2 / Sigma_i^2`` with the GLS residuals
  ``r_i``;
* ``D`` is convex: ``det(sum_i c_i x_i x_i')`` is a polynomial in the
  weights ``c_i = 1 / Sigma_i`` with non-negative coefficients (mixed
  discriminants of positive semi-definite matrices), each ``c_i(t)`` is
  log-convex, and sums and products of log-convex functions are
  log-convex; ``D'(t) = -tr(F^{-1} X' Z^2 \Sigma^{-2} X)``.

So ``G = Q [+ D]`` lies above its tangents at ``a`` and ``b``, and on
``[a, b]``

.. math::

    \ell(t) \le c - \tfrac12 \big[\mathrm{chord}_A(t)
        + \max(G(a) + G'(a)(t - a), G(b) + G'(b)(t - b))\big],

a concave piecewise-linear function whose maximum over ``[a, b]`` is at
``a``, ``b`` or where the tangents cross (:func:`interval_bounds`).  Near a
smooth maximum the bound exceeds the likelihood by ``O((b - a)^2)``, so few
bisections certify it.  Beyond the last grid point ``T``, ``Q >= 0`` bounds
ML by ``c - A(T) / 2``; for REML see :func:`tail_bound`.  A point is the
global maximum to within ``tol`` once every bound lies below its value plus
``tol`` (:func:`global_maximum`).

Every function takes arrays with a leading problem axis ``P`` (``y`` and
``v`` of shape ``(P, N)``, a design ``(N, p)`` shared by all problems or
``(P, N, p)``, ``z`` of shape ``(N,)`` or ``(P, N)`` or None for a random
intercept) and runs without a Python loop over problems or grid points.

References
----------
Boyd S, Vandenberghe L. Convex Optimization. Cambridge University Press,
2004.
"""
import functools

import numpy as np

from .likelihood import LOG_2PI

#: Work arrays are kept below about this many elements (problems x grid
#: points x values x coefficients), in chunks of problems.
CHUNK_ELEMENTS = 2 ** 22


class Problems:
    """
    Univariate problems that share ``N`` and ``p``, as the scan uses them.

    Parameters
    ----------
    y, variance : array_like, ``(P, N)`` or ``(N,)``
    X : array_like, ``(N, p)`` or ``(P, N, p)``
    z : array_like, optional
        Random-effect design ``(N,)`` or ``(P, N)``; None is 1.
    reml : bool
    """

    def __init__(self, y, variance, X, z=None, reml=True):
        self.y = np.atleast_2d(np.asarray(y, dtype=float))
        self.variance = np.broadcast_to(
            np.asarray(variance, dtype=float), self.y.shape)
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        self.n_problems, self.n_values = self.y.shape
        self.n_fixed = X.shape[-1]
        self.X = np.broadcast_to(X, self.y.shape + (self.n_fixed,))
        self.z2 = None if z is None else np.broadcast_to(
            np.asarray(z, dtype=float) ** 2, self.y.shape)
        self.reml = bool(reml)
        N, p = self.n_values, self.n_fixed
        xtx = np.einsum("Pna,Pnb->Pab", self.X, self.X) if X.ndim == 3 \
            else np.broadcast_to(X.T @ X, (self.n_problems, p, p))
        self.logdet_xtx = np.linalg.slogdet(xtx)[1]
        if reml:
            self.constant = -0.5 * (N - p) * LOG_2PI + 0.5 * self.logdet_xtx
        else:
            self.constant = np.full(self.n_problems, -0.5 * N * LOG_2PI)

    def column_products(self):
        """``x_a x_b`` for ``a <= b``, ``(P, N, p(p+1)/2)`` (built once)."""
        if "_cross" not in self.__dict__:
            a, b = np.triu_indices(self.n_fixed)
            X = self.X
            shared = X.strides[0] == 0
            base = X[:1] if shared else X
            cross = base[..., a] * base[..., b]
            self._cross = np.broadcast_to(cross, (self.n_problems,)
                                          + cross.shape[1:]) if shared \
                else cross
        return self._cross

    def unpack(self, packed):
        """Symmetric ``(..., p, p)`` from the ``a <= b`` entries."""
        a, b = np.triu_indices(self.n_fixed)
        out = np.empty(packed.shape[:-1] + (self.n_fixed, self.n_fixed))
        out[..., a, b] = packed
        out[..., b, a] = packed
        return out

    def sigma(self, rows, tau2):
        """``Sigma`` of problems ``rows`` at ``tau2`` ``(R, G)``: ``(R, G, N)``."""
        z2 = 1.0 if self.z2 is None else self.z2[rows][:, None, :]
        return self.variance[rows][:, None, :] + z2 * tau2[:, :, None]


def profile_terms(problems, tau2, rows=None):
    """
    ``A``, ``G`` (``Q``, plus ``D`` for REML) and ``G'`` of the module
    docstring.

    Parameters
    ----------
    problems : Problems
    tau2 : ndarray, ``(R, G)``
        Points of each row, non-negative.
    rows : ndarray of int, optional
        The problems the rows belong to (default all, in order).

    Returns
    -------
    ndarray, ``(3, R, G)``
        ``A``, ``G`` and ``dG/dt``.
    """
    rows = np.arange(problems.n_problems) if rows is None else rows
    tau2 = np.asarray(tau2, dtype=float)
    out = np.empty((3,) + tau2.shape)
    per_row = tau2.shape[1] * problems.n_values * problems.n_fixed ** 2
    chunk = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        out[:, part] = _terms(problems, rows[part], tau2[part])
    return out


def _terms(problems, rows, tau2):
    sigma = problems.sigma(rows, tau2)
    if not sigma.min() > 0:
        raise ValueError("the total variances v + z**2 tau2 must be positive")
    w = 1.0 / sigma
    z2w2 = w * w if problems.z2 is None else \
        problems.z2[rows][:, None, :] * w * w
    y = problems.y[rows][:, None, :]
    X = problems.X[rows]
    A = np.log(sigma).sum(axis=-1)
    if problems.n_fixed == 1:
        x2 = X[..., 0] ** 2
        F = np.einsum("RGn,Rn->RG", w, x2)
        beta = np.einsum("RGn,Rn->RG", w * y, X[..., 0]) / F
        resid = y - X[:, None, :, 0] * beta[..., None]
        D = np.log(F)
        dD = -np.einsum("RGn,Rn->RG", z2w2, x2) / F
    else:
        # X' diag(c) X for every grid point as one product with the column
        # products x_a x_b (a <= b): (R, G, N) @ (R, N, K)
        cross = problems.column_products()[rows]
        F = problems.unpack(w @ cross)
        u = (w * y) @ X
        beta = np.linalg.solve(F, u[..., None])[..., 0]
        resid = y - beta @ X.swapaxes(1, 2)
        D = np.linalg.slogdet(F)[1]
        M = problems.unpack(z2w2 @ cross)
        dD = -np.trace(np.linalg.solve(F, M), axis1=-2, axis2=-1)
    Q = np.einsum("RGn,RGn->RG", w * resid, resid)
    dQ = -np.einsum("RGn,RGn->RG", z2w2 * resid, resid)
    if problems.reml:
        return A, Q + D, dQ + dD
    return A, Q, dQ


def loglike_from_terms(problems, terms, rows=None):
    """The profiled (restricted) log-likelihood from its terms."""
    constant = problems.constant if rows is None else problems.constant[rows]
    return constant[:, None] - 0.5 * (terms[0] + terms[1])


def interval_bounds(constant, lower, upper, terms_lower, terms_upper):
    """
    The upper bound of the module docstring on ``[lower, upper]``
    (arrays of any one shape; ``terms_*`` of shape ``(3,) + shape``).
    """
    A_a, G_a, dG_a = terms_lower
    A_b, G_b, dG_b = terms_upper
    width = upper - lower
    slope_A = np.divide(A_b - A_a, width, out=np.zeros(width.shape),
                        where=width > 0)
    t = candidate_points(lower, upper, G_a, dG_a, G_b, dG_b)
    tangent = np.maximum(G_a + dG_a * (t - lower), G_b + dG_b * (t - upper))
    return constant - 0.5 * (A_a + slope_A * (t - lower) + tangent).min(
        axis=0)


def candidate_points(lower, upper, G_a, dG_a, G_b, dG_b):
    """
    ``(3,) + shape``: ``lower``, ``upper`` and where the tangents of the
    convex ``G`` at them cross (clipped to ``[lower, upper]``): a concave
    lower bound of ``-(A + G)`` built from chords and these tangents is
    largest at one of the three.
    """
    turn = dG_a - dG_b
    cross = np.divide(G_b - G_a + dG_a * lower - dG_b * upper, turn,
                      out=lower.copy(), where=turn != 0)
    cross = np.minimum(np.maximum(cross, lower), upper)
    return np.stack([lower, upper, cross])


def tail_bound(problems, last_tau2, A_last, rows=None):
    """
    An upper bound of the likelihood on ``[T, inf)`` for each problem.

    ML: ``Q >= 0`` gives ``c - A(T)/2``.  REML: ``X'\\Sigma^{-1}X`` is at
    least ``X'X / max_i Sigma_i``, and for ``t >= T`` the ratio
    ``Sigma_i(t) / Sigma_i(T)`` is at most ``t / T`` and at least
    ``max(1, e^(L + c_i))`` with ``L = log(t / T)`` and
    ``c_i = log(z_i^2 T / Sigma_i(T))``; with ``m(T) = max_i Sigma_i(T)``,

    .. math::

        \\ell(t) \\le c - \\tfrac12 A(T) + \\tfrac{p}{2} \\log m(T)
            - \\tfrac12 \\log\\det X'X + \\max_{L \\ge 0} \\big[\\tfrac{p}{2} L
            - \\tfrac12 \\sum_i \\max(0, L + c_i)\\big],

    the maximum (of a concave piecewise-linear function) being at
    ``L = max(0, -c_(p+1))``, ``c_(p+1)`` the (p+1)-th largest ``c_i``;
    ``inf`` when no more than ``p`` values carry the random effect.
    """
    rows = np.arange(problems.n_problems) if rows is None else rows
    constant = problems.constant[rows]
    if not problems.reml:
        return constant - 0.5 * A_last
    T = np.asarray(last_tau2, dtype=float)
    N, p = problems.n_values, problems.n_fixed
    if N <= p:
        return np.full(len(rows), np.inf)
    sigma = problems.sigma(rows, T[:, None])[:, 0, :]
    z2 = 1.0 if problems.z2 is None else problems.z2[rows]
    ratio = z2 * T[:, None] / sigma
    c = np.log(ratio, out=np.full(ratio.shape, -np.inf), where=ratio > 0)
    # the (p+1)-th largest c_i is the (N-p)-th smallest
    kth = np.partition(c, N - p - 1, axis=1)[:, N - p - 1]
    finite = np.isfinite(kth)
    L = np.where(finite, np.maximum(0.0, -kth), 0.0)
    peak = 0.5 * p * L - 0.5 * np.maximum(0.0, L[:, None] + c).sum(axis=1)
    logdet_xtx = problems.logdet_xtx[rows]
    bound = (constant - 0.5 * A_last + 0.5 * p * np.log(sigma.max(axis=1))
             - 0.5 * logdet_xtx + peak)
    return np.where(finite, bound, np.inf)


def default_grid(problems, n_points=16):
    """
    A grid in ``tau2`` scaled to each problem: 0, then ``n_points`` values
    spaced evenly in ``log tau2`` from ``1e-4 s`` to ``10 s``, where ``s``
    is the mean square of the ordinary least-squares residuals per unit
    ``z**2`` (a total variance, which no plausible ``tau2`` exceeds by
    much; :func:`global_maximum` extends the grid where the tail is not
    yet certified).
    """
    y, X = problems.y, problems.X
    if problems.n_fixed == 1:
        x = X[..., 0]
        resid = y - x * ((x * y).sum(axis=1) / (x * x).sum(axis=1))[:, None]
    else:
        xtx = np.einsum("Pna,Pnb->Pab", X, X)
        xty = np.einsum("Pna,Pn->Pa", X, y)
        coef = np.linalg.solve(xtx, xty[..., None])[..., 0]
        resid = y - np.einsum("Pna,Pa->Pn", X, coef)
    z2 = problems.n_values if problems.z2 is None else \
        problems.z2.sum(axis=1)
    scale = (resid * resid).sum(axis=1) / np.maximum(z2, 1e-300)
    scale = np.where(scale > 0, scale, problems.variance.mean(axis=1))
    scale = np.where(scale > 0, scale, 1.0)
    steps = _log_steps(n_points)
    return np.concatenate([np.zeros((problems.n_problems, 1)),
                           scale[:, None] * steps], axis=1)


@functools.lru_cache(maxsize=8)
def _log_steps(n_points):
    """``n_points`` values evenly spaced in log from 1e-4 to 10."""
    steps = np.geomspace(1e-4, 10.0, n_points)
    steps.flags.writeable = False
    return steps


def _split_points(lower, upper, pieces):
    """
    ``pieces - 1`` points splitting each interval, ``(pieces - 1, M)``:
    evenly in ``log t`` where the interval spans a factor above 2 (the grid
    is logarithmic), evenly in ``t`` otherwise, and from ``upper / 8**pieces``
    up in ``log t`` when the interval starts at 0.
    """
    fractions = (np.arange(1, pieces) / pieces)[:, None]
    log_lower = np.log(np.where(lower > 0, lower, upper / 8.0 ** pieces))
    geometric = np.exp(log_lower + fractions * (np.log(upper) - log_lower))
    linear = lower + fractions * (upper - lower)
    return np.where((lower <= 0) | (upper > 2 * lower), geometric, linear)


def _terms_at(problems, rows, tau2):
    """Terms at one point per entry of ``rows``: ``(3, M)``."""
    if problems.n_problems == 1:
        return profile_terms(problems, tau2[None, :],
                             rows=np.zeros(1, int))[:, 0]
    return profile_terms(problems, tau2[:, None], rows=rows)[:, :, 0]


def global_maximum(problems, grid=None, tol=1e-6, pieces=2, max_rounds=60,
                   max_decades=12):
    """
    The best point of each problem's profiled likelihood, certified global
    to within ``tol`` by the bounds of the module docstring.

    The grid (default :func:`default_grid`) is extended by decades while the
    tail bound exceeds the best value plus ``tol`` (at most
    ``max_decades``); then every interval whose bound exceeds the best value
    plus ``tol`` is split into ``pieces``, all problems at once, until none
    is left or after ``max_rounds`` rounds (more pieces, fewer rounds: a
    single problem is fastest with about 8, many problems with 2).  Intervals, once certified, are dropped
    (the best value only rises).

    Parameters
    ----------
    problems : Problems
    grid : ndarray, ``(P, G)``, optional
        Non-negative, increasing along each row; include a candidate (a
        fit's ``tau2``) to tighten the bounds around it.
    tol : float
        Absolute tolerance in the log-likelihood.

    Returns
    -------
    tau2, llf : ndarray, ``(P,)``
        The best point of each problem and its log-likelihood.
    gap : ndarray, ``(P,)``
        The largest upper bound minus ``llf``: no ``tau2 >= 0`` has a
        likelihood above ``llf + gap`` (``gap <= tol`` once certified).
    n_evaluated : int
        Points evaluated, all problems together.
    """
    grid = default_grid(problems) if grid is None else \
        np.sort(np.atleast_2d(np.asarray(grid, dtype=float)), axis=1)
    if not grid[:, 0].min() >= 0:
        raise ValueError("the grid of tau2 must be non-negative")
    terms = profile_terms(problems, grid)
    llf = loglike_from_terms(problems, terms)
    n_evaluated = grid.size
    tail = tail_bound(problems, grid[:, -1], terms[0, :, -1])
    for _ in range(max_decades):
        open_tail = tail > llf.max(axis=1) + tol
        if not open_tail.max():
            break
        more = grid[:, -1:] * np.where(open_tail, 10.0, 1.0)[:, None]
        n_evaluated += more.size
        grid = np.concatenate([grid, more], axis=1)
        terms = np.concatenate([terms, profile_terms(problems, more)], axis=2)
        llf = loglike_from_terms(problems, terms)
        tail = tail_bound(problems, grid[:, -1], terms[0, :, -1])
    rows = np.arange(problems.n_problems)
    best_at = llf.argmax(axis=1)
    best, best_tau2 = llf[rows, best_at], grid[rows, best_at]
    owner = np.repeat(rows, grid.shape[1] - 1)
    lower, upper = grid[:, :-1].ravel(), grid[:, 1:].ravel()
    at_lower = terms[:, :, :-1].reshape(3, -1)
    at_upper = terms[:, :, 1:].reshape(3, -1)
    closed = tail.copy()
    for _ in range(max_rounds + 1):
        bound = interval_bounds(problems.constant[owner], lower, upper,
                                at_lower, at_upper)
        keep = (bound > best[owner] + tol) & (upper > lower)
        np.maximum.at(closed, owner[~keep], bound[~keep])
        owner, lower, upper = owner[keep], lower[keep], upper[keep]
        at_lower, at_upper = at_lower[:, keep], at_upper[:, keep]
        if not owner.size or _ == max_rounds:
            break
        split = _split_points(lower, upper, pieces)
        owners = np.broadcast_to(owner, split.shape).ravel()
        at_split = _terms_at(problems, owners, split.ravel()).reshape(
            (3,) + split.shape)
        n_evaluated += split.size
        llf_split = problems.constant[owner] - 0.5 * (at_split[0]
                                                      + at_split[1])
        _raise_best(best, best_tau2, owners, llf_split.ravel(),
                    split.ravel())
        # the pieces: [lower, s_1], [s_1, s_2], ..., [s_last, upper]
        owner = np.tile(owner, pieces)
        lower = np.concatenate([lower, split.ravel()])
        upper = np.concatenate([split.ravel(), upper])
        at_lower = np.concatenate([at_lower, at_split.reshape(3, -1)],
                                  axis=1)
        at_upper = np.concatenate([at_split.reshape(3, -1), at_upper],
                                  axis=1)
    if owner.size:
        np.maximum.at(closed, owner, bound[keep])
    return best_tau2, best, np.maximum(closed - best, 0.0), n_evaluated


def _raise_best(best, best_tau2, owner, llf, tau2):
    """Replace each problem's best point by a better new one, in place."""
    better = llf > best[owner]
    if not better.max(initial=False):
        return
    order = np.lexsort((llf[better], owner[better]))
    winners = owner[better][order]
    last = np.r_[winners[1:] != winners[:-1], True]
    best[winners[last]] = llf[better][order][last]
    best_tau2[winners[last]] = tau2[better][order][last]
