"""
Maximise many univariate profiled likelihoods in ``tau2`` at once.

Each problem climbs from its DerSimonian-Laird estimate by Newton's method
in ``tau2`` (Fisher scoring where the curvature is not negative), halving a
step that lowers the likelihood and projecting onto ``tau2 >= 0``; a
problem leaves the active set once converged, so that it stops costing.

Converged fits are then certified as the global maximum over ``tau2 >= 0``
to within ``SCAN_TOL`` (the single fit's guarantee,
:func:`statsmodels_mixmeta.fitting.restarts.check_single_variance`) by the
interval bounds of :mod:`statsmodels_mixmeta.kernels.variance_scan`
(:func:`~statsmodels_mixmeta.kernels.variance_scan.interval_bounds`,
:func:`~statsmodels_mixmeta.kernels.variance_scan.tail_bound`; here
:func:`_interval_bounds` also bounds ``A`` by its chord in ``log(t + max
v)``, where it is concave too, and :func:`_tail_bound` works in the
stack's layout), evaluated by the kernel of
:mod:`statsmodels_mixmeta.kernels.many` on a grid around each fit (the
fit's own terms come from the climb's last evaluation): points at ``t +-
d`` and ``t +- 4d``, where ``d = sqrt(8 tol / (|A''| + |G''|))`` is the
width over which the bounds (the chord of ``A``, the tangents of ``G``)
are within about ``tol`` of a smooth maximum, and a few multiples of ``t``
(for ``t = 0``: ``d``, ``10d``, ``100d``, ``1000d`` and multiples of the
mean within-study variance); intervals not yet certified are split, all
problems at once, and the tail extended by decades while its bound is
open.  A problem whose scan finds a higher point is climbed again from
there and the better optimum kept.
"""
import numpy as np

from ..kernels import many as kernel
from ..kernels import variance_scan
from .restarts import SCAN_TOL

#: A problem has converged when Newton's next step would raise its
#: log-likelihood by less than ``LLF_TOL`` (absolute) and move ``tau2`` by
#: less than ``STEP_RTOL`` times ``tau2`` plus a ten-thousandth of its
#: mean within-study variance.
LLF_TOL = 1e-12
STEP_RTOL = 1e-10
#: Step halvings before a step counts as unable to raise the likelihood.
MAX_HALVINGS = 40
#: Multiples of the fit in the certification grid (of the mean
#: within-study variance for a fit at 0).
FIT_MULTIPLES = np.array([0.3, 0.7, 1.4, 3.0])
#: Steps around the fit, in units of ``d``.
NEAR_STEPS = np.array([-4.0, -1.0, 1.0, 4.0])
#: The same for a fit at 0, and its farthest point in units of the mean
#: within-study variance.
BOUNDARY_STEPS = np.array([1.0, 10.0, 100.0, 1000.0])
BOUNDARY_FAR = 0.1
#: Splitting rounds and tail decades of the certification at most.
MAX_ROUNDS = 60
WIDTH = 2.0
MAX_DECADES = 12

_FIELDS = ("llf", "beta", "cov_beta", "score", "hessian", "information",
           "quad", "log_sigma", "sum_w", "sum_w2")


def take(ev, index):
    """The evaluation of problems ``index``."""
    return kernel.Evaluation(*(getattr(ev, f)[index] for f in _FIELDS))


def put(ev, index, part):
    """Write ``part`` into the problems ``index`` of ``ev``."""
    for f in _FIELDS:
        getattr(ev, f)[index] = getattr(part, f)


def _step(ev, tau2):
    """Newton's step where the curvature is negative, else scoring's,
    projected onto ``tau2 >= 0``."""
    newton = ev.hessian < 0
    curvature = np.where(newton, -ev.hessian, ev.information)
    safe = np.where(curvature > 0, curvature, 1.0)
    step = np.where(curvature > 0, ev.score / safe, 0.0)
    return np.maximum(tau2 + step, 0.0) - tau2


def climb(stack, tau2, rows, maxiter=100):
    """
    Newton ascent of problems ``rows`` from ``tau2``.

    Returns
    -------
    tau2 : ndarray, ``(R,)``
    fit : Evaluation
        The kernel at the final ``tau2``.
    converged : ndarray of bool
    n_iter : ndarray of int
    """
    tau2 = np.array(tau2, dtype=float)
    n = len(rows)
    converged = np.zeros(n, bool)
    n_iter = np.zeros(n, np.int32)
    scale = (stack.variance[:, rows] * stack.observed[:, rows]).sum(
        axis=0) / np.maximum(stack.n_obs[rows], 1)
    fit = kernel.evaluate(stack, tau2, rows)
    active = np.arange(n)
    ev = fit
    for _ in range(maxiter):
        step = _step(ev, tau2[active])
        done = (np.abs(step * ev.score) <= LLF_TOL) & (
            np.abs(step) <= STEP_RTOL * (tau2[active] + 1e-4 * scale[active]))
        converged[active[done]] = True
        active, step = active[~done], step[~done]
        if not active.size:
            break
        n_iter[active] += 1
        trial, ev, moved = _line_search(stack, rows[active], tau2[active],
                                        step, fit.llf[active])
        # no step down to 2**-MAX_HALVINGS of Newton's raised the
        # likelihood: the point is the top up to rounding
        converged[active[~moved]] = True
        active, ev = active[moved], take(ev, moved)
        tau2[active] = trial[moved]
        put(fit, active, ev)
    return tau2, fit, converged, n_iter


def _line_search(stack, rows, tau2, step, base):
    """
    Halve each step until the likelihood does not fall.

    Returns the new points, the kernel there and which problems moved.
    """
    step = step.copy()
    trial = tau2 + step
    moved = np.zeros(len(rows), bool)
    pending = np.arange(len(rows))
    out = None
    for _ in range(MAX_HALVINGS):
        ev = kernel.evaluate(stack, trial[pending], rows[pending])
        if out is None:
            out = ev
        else:
            put(out, pending, ev)
        rounding = 1e-13 * np.maximum(1.0, np.abs(base[pending]))
        ok = ev.llf >= base[pending] - rounding
        moved[pending[ok]] = True
        pending = pending[~ok]
        if not pending.size:
            break
        step[pending] *= 0.5
        trial[pending] = tau2[pending] + step[pending]
    return trial, out, moved


def _tail_bound(stack, rows, last, A_last, v_max, v_kth):
    """
    :func:`variance_scan.tail_bound` in the stack's ``(N, R)`` layout, for
    problems ``rows`` from their last points ``T`` (``last``).

    The ``(p+1)``-th largest ``c_i = log(T / Sigma_i(T))`` belongs to the
    ``(p+1)``-th smallest observed variance ``v_kth``, and the largest
    ``Sigma_i(T)`` to the largest, ``v_max`` (unobserved studies carry no
    random effect and leave ``X'X`` of the observed rows, as in the
    constant); so, with ``L = max(0, -c_(p+1))``, the bound is
    ``c - A(T)/2 + p/2 log(v_max + T) - log det X'X / 2 + p L / 2 -
    sum_i max(0, log(e^L T / Sigma_i(T))) / 2`` (infinite where ``T = 0``
    or fewer than ``p + 1`` studies are observed).
    """
    constant = stack.constant[rows]
    if not stack.reml:
        return constant - 0.5 * A_last
    p = stack.n_fixed
    open_ = ~((last > 0) & np.isfinite(v_kth))
    T = np.where(open_, 1.0, last)
    kth = np.log(T / (v_kth + T))
    L = np.where(open_, 0.0, np.maximum(0.0, -kth))
    ratio = (np.exp(L) * T) / (stack.variance[:, rows] + T)
    excess = np.log(np.maximum(ratio, 1.0, out=ratio), out=ratio)
    if not stack.complete:
        excess *= stack.observed[:, rows]
    bound = (constant - 0.5 * A_last + 0.5 * p * np.log(v_max + T)
             - 0.5 * stack.logdet_xtx[rows] + 0.5 * p * L
             - 0.5 * excess.sum(axis=0))
    return np.where(open_, np.inf, bound)


def _grid(stack, tau2, fit, rows, tol):
    """The starting points of the certification, ``(R, G)``, unsorted,
    the fit last."""
    o, v = stack.observed[:, rows], stack.variance[:, rows]
    mean_v = (o * v).sum(axis=0) / np.maximum(stack.n_obs[rows], 1)
    # the bounds take the chord of A and the tangents of G apart: their
    # excess over ell on an interval of width d is about (|A''| + |G''|)
    # d**2 / 8, with A'' = -sum w**2 and G'' = sum w**2 - 2 ell''
    curvature = fit.sum_w2 + np.abs(fit.sum_w2 - 2.0 * fit.hessian)
    width = WIDTH * np.sqrt(8.0 * tol / np.maximum(curvature, 1e-300))
    positive = tau2 > 0
    near = np.where(positive, np.minimum(width, 0.2 * tau2),
                    np.minimum(width, 1e-4 * mean_v))
    near = np.maximum(near, 1e-12 * np.maximum(tau2, mean_v))
    # a fit at 0 has no left side: its points there (0 and the steps
    # below it, which would repeat the fit) go further out instead
    steps = np.where(positive[:, None], NEAR_STEPS, BOUNDARY_STEPS)
    around = tau2[:, None] + near[:, None] * steps
    scale = np.where(positive, tau2, mean_v)
    spread = scale[:, None] * FIT_MULTIPLES
    first = np.where(positive, 0.0, BOUNDARY_FAR * mean_v)
    grid = np.concatenate([first[:, None], spread, around,
                           tau2[:, None]], axis=1)
    return np.maximum(grid, 0.0)


def _fit_terms(stack, fit, rows):
    """The terms of :func:`_terms` at the fits, from the kernel's output
    there (``A = sum log Sigma``; ``ell = c - (A + G) / 2``;
    ``ell' = -(A' + G') / 2`` with ``A' = sum w``): no evaluation."""
    A = fit.log_sigma
    G = -2.0 * (fit.llf - stack.constant[rows]) - A
    return np.stack([A, G, -2.0 * fit.score - fit.sum_w])


def _terms(stack, tau2, rows):
    return kernel.profile_terms(stack, tau2, rows)


def certify(stack, tau2, fit, rows, tol=SCAN_TOL):
    """
    The certified global maximum of each problem (the module docstring).

    Parameters
    ----------
    stack : Stack
    tau2 : ndarray, ``(R,)``
        The fits.
    fit : Evaluation
        The kernel at the fits (``llf``, ``hessian``).
    rows : ndarray of int
        Their problems in ``stack``.

    Returns
    -------
    best_tau2 : ndarray
        Where the scan beats the fit, its best point (else the fit).
    better : ndarray of bool
        Problems whose scan beat the fit.
    gap : ndarray
        No ``tau2 >= 0`` has a likelihood above the fit's plus ``gap``.
    """
    n = len(rows)
    index = np.arange(n)
    grid = _grid(stack, tau2, fit, rows, tol)
    G = grid.shape[1]
    terms = np.empty((3, n, G))
    for g in range(G - 1):
        terms[:, :, g] = _terms(stack, grid[:, g], rows)
    # the fit, last, is evaluated already
    terms[:, :, -1] = _fit_terms(stack, fit, rows)
    order = np.argsort(grid, axis=1, kind="stable")
    grid = np.take_along_axis(grid, order, axis=1)
    terms = np.take_along_axis(terms, order[None], axis=2)
    constant = stack.constant[rows]
    # the largest and the (p+1)-th smallest observed variance
    observed_v = np.where(stack.observed[:, rows] > 0,
                          stack.variance[:, rows], np.inf)
    p = stack.n_fixed
    v_kth = np.partition(observed_v, p, axis=0)[p] if \
        stack.n_values > p else np.full(n, np.inf)
    observed_v[np.isinf(observed_v)] = -np.inf
    shift = observed_v.max(axis=0)
    llf = constant[:, None] - 0.5 * (terms[0] + terms[1])
    best_at = llf.argmax(axis=1)
    best, best_tau2 = llf[index, best_at], grid[index, best_at]
    fit_llf = fit.llf
    # the tail beyond the last point, extended by decades while open
    last, at_last = grid[:, -1].copy(), terms[:, :, -1].copy()
    tail = _tail_bound(stack, rows, last, at_last[0], shift, v_kth)
    extra = []
    for _ in range(MAX_DECADES):
        open_tail = np.flatnonzero(tail > np.maximum(best, fit_llf) + tol)
        if not open_tail.size:
            break
        more = last[open_tail] * 10.0
        t = _terms(stack, more, rows[open_tail])
        extra.append((open_tail, last[open_tail], more,
                      at_last[:, open_tail], t))
        value = constant[open_tail] - 0.5 * (t[0] + t[1])
        _raise(best, best_tau2, open_tail, value, more)
        last[open_tail], at_last[:, open_tail] = more, t
        tail[open_tail] = _tail_bound(stack, rows[open_tail], more, t[0],
                                      shift[open_tail], v_kth[open_tail])
    closed = tail.copy()
    owner = np.repeat(index, G - 1)
    lower, upper = grid[:, :-1].ravel(), grid[:, 1:].ravel()
    at_lower = terms[:, :, :-1].reshape(3, -1)
    at_upper = terms[:, :, 1:].reshape(3, -1)
    for own, lo, up, t_lo, t_up in extra:
        owner = np.concatenate([owner, own])
        lower, upper = np.concatenate([lower, lo]), np.concatenate([upper, up])
        at_lower = np.concatenate([at_lower, t_lo], axis=1)
        at_upper = np.concatenate([at_upper, t_up], axis=1)
    top = np.maximum(best, fit_llf)
    for round_ in range(MAX_ROUNDS + 1):
        bound = _interval_bounds(constant[owner], shift[owner], lower,
                                 upper, at_lower, at_upper)
        keep = (bound > top[owner] + tol) & (upper > lower)
        np.maximum.at(closed, owner[~keep], bound[~keep])
        owner, lower, upper = owner[keep], lower[keep], upper[keep]
        at_lower, at_upper = at_lower[:, keep], at_upper[:, keep]
        if not owner.size or round_ == MAX_ROUNDS:
            break
        split = np.where((lower > 0) & (upper <= 2 * lower),
                         0.5 * (lower + upper),
                         np.where(lower > 0, np.sqrt(lower * upper),
                                  upper / 8.0))
        at_split = _terms(stack, split, rows[owner])
        value = constant[owner] - 0.5 * (at_split[0] + at_split[1])
        _raise(best, best_tau2, owner, value, split)
        top = np.maximum(best, fit_llf)
        owner = np.concatenate([owner, owner])
        lower, upper = np.concatenate([lower, split]), \
            np.concatenate([split, upper])
        at_lower = np.concatenate([at_lower, at_split], axis=1)
        at_upper = np.concatenate([at_split, at_upper], axis=1)
    if owner.size:
        np.maximum.at(closed, owner, bound[keep])
    rounding = np.maximum(1e-10 * np.maximum(1.0, np.abs(fit_llf)), 1e-12)
    better = best > fit_llf + rounding
    gap = np.maximum(closed - np.maximum(fit_llf, best), 0.0)
    return np.where(better, best_tau2, tau2), better, gap


def _interval_bounds(constant, shift, lower, upper, at_lower, at_upper):
    """
    :func:`variance_scan.interval_bounds`, tightened by a second lower
    bound of ``A``: with ``c >= max_i v_i`` (``shift``), ``A`` is concave
    in ``s = log(t + c)`` (each ``log(v_i - c + e^s)`` has second
    derivative ``e^s (v_i - c) / Sigma_i^2 <= 0``), so on ``[a, b]`` it
    lies above its chord in ``s``, ``phi(t) = A(a) + (A(b) - A(a))
    (log(t + c) - log(a + c)) / (log(b + c) - log(a + c))``, a concave
    function of ``t`` (``A`` increases).  ``phi`` plus the larger tangent
    of ``G`` is concave on each side of the tangents' crossing, so its
    minimum over ``[a, b]`` is at ``a``, ``b`` or the crossing, as for the
    chord in ``t``; the smaller of the two bounds is kept.
    """
    A_a, G_a, dG_a = at_lower
    A_b, G_b, dG_b = at_upper
    rise = A_b - A_a
    width = upper - lower
    slope = np.divide(rise, width, out=np.zeros(width.shape),
                      where=width > 0)
    log_a = np.log(lower + shift)
    log_b = np.log(upper + shift)
    span = log_b - log_a
    slope_log = np.divide(rise, span, out=np.zeros(span.shape),
                          where=span > 0)
    t = variance_scan.candidate_points(lower, upper, G_a, dG_a, G_b, dG_b)
    off = t - lower
    tangent = np.maximum(G_a + dG_a * off, G_b + dG_b * (t - upper))
    tangent += A_a
    # each lower bound of A + G is concave between the three points, so
    # each is least at one of them; the larger least value holds
    least = (slope * off + tangent).min(axis=0)
    log_t = np.stack([log_a, log_b, np.log(t[2] + shift)])
    log_t -= log_a
    np.maximum(least, (slope_log * log_t + tangent).min(axis=0), out=least)
    return constant - 0.5 * least


def _raise(best, best_tau2, owner, value, tau2):
    """Raise each problem's best point to a better new one, in place."""
    better = value > best[owner]
    if not better.any():
        return
    owner, value, tau2 = owner[better], value[better], tau2[better]
    order = np.lexsort((value, owner))
    owner, value, tau2 = owner[order], value[order], tau2[order]
    last = np.r_[owner[1:] != owner[:-1], True]
    best[owner[last]] = value[last]
    best_tau2[owner[last]] = tau2[last]
