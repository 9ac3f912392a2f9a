"""
Maximise many univariate profiled likelihoods in ``tau2`` at once.

Each problem climbs from its DerSimonian-Laird estimate (:func:`climb`):
each step goes to the maximum of a one-pole model of the profile that
matches its score and curvature (exact for equal within-study variances;
Newton's step where the model points against the score), is halved while
it lowers the likelihood and is projected onto ``tau2 >= 0``; a problem
leaves the active set once converged, so that it stops costing.

Converged fits are then certified as the global maximum over ``tau2 >= 0``
to within ``SCAN_TOL`` (the single fit's guarantee,
:func:`statsmodels_mixmeta.fitting.restarts.check_single_variance`) by
:func:`certify`: from the kernel at 0, at the fit and at one point beyond
it (the farther of ``1.5 t`` and ``M - 2m``, ``m`` and ``M`` the smallest
and largest observed variance), the profile is bounded on ``[0, t]`` and
``[t, far]`` by its certified shape (monotone or concave,
:mod:`statsmodels_mixmeta.kernels.variance_shape`) or by the interval
bounds of its terms (:mod:`statsmodels_mixmeta.fitting.many_bounds`), and
beyond ``far`` by a certified decrease or the tail bound (extended by
decades while open).  Intervals whose bound is not below the best value
plus ``tol`` are split (halfway, or a fifth of the way from a fit at their
lower end), all problems at once.  A problem where some point beats the
fit is climbed again from there and the better optimum kept.
"""
import numpy as np

from ..kernels import many as kernel
from .batched import put, take
from . import many_bounds as bounds
from .many_bounds import _interval_bounds, _tail_bound  # noqa: F401
from .restarts import SCAN_TOL

#: A problem has converged when Newton's next step would raise its
#: log-likelihood by less than ``LLF_TOL`` (absolute) and move ``tau2`` by
#: less than ``STEP_RTOL`` times ``tau2`` plus a ten-thousandth of its
#: mean within-study variance.
LLF_TOL = 1e-12
STEP_RTOL = 1e-10
#: Step halvings before a step counts as unable to raise the likelihood.
MAX_HALVINGS = 40
#: Splitting rounds and tail decades of the certification at most.
MAX_ROUNDS = 60
MAX_DECADES = 12

def _step(ev, tau2):
    """
    The step to the maximum of a one-pole model of the profile (else one
    of the fallbacks below), projected onto ``tau2 >= 0``.

    The model replaces each measure of the Stieltjes form
    (:mod:`statsmodels_mixmeta.kernels.variance_shape`) by one atom that
    matches its two pieces at ``t``: ``P' = K / (c + d)``, ``Q = Z / (e +
    d)`` at ``t + d``, with ``c = penalty / penalty2``, ``K = penalty c``,
    ``e = pull / pull2``, ``Z = pull e^2``.  It is exact for equal
    variances, matches ``ell'`` and ``ell''`` at ``t`` (so its steps
    converge as Newton's), and its maximum, where ``K (e + d)^2 = Z (c +
    d)``, is the larger root ``d = (Z - 2Ke + sqrt(Z (Z + 4K (c - e)))) /
    (2K)``; with no real root the model falls from ``t`` down to 0.  The
    model's step is taken where it points the way of the score; where it
    does not, Newton's where the curvature is negative, the step to 0
    where the profile is convex and falls towards 0 (the line search
    halves it if the profile is not convex all the way), else scoring's.
    """
    newton = ev.hessian < 0
    curvature = np.where(newton, -ev.hessian, ev.information)
    safe = np.where(curvature > 0, curvature, 1.0)
    step = np.where(curvature > 0, ev.score / safe, 0.0)
    # convex and falling towards 0: the profile lies above its tangent, so
    # 0 beats t (scoring's short steps would crawl there)
    step = np.where(~newton & (ev.score < 0), -tau2, step)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = ev.penalty / ev.penalty2
        e = ev.pull / ev.pull2
        K = ev.penalty * c
        Z = ev.pull * e * e
        root = Z * (Z + 4.0 * K * (c - e))
        model = (Z - 2.0 * K * e + np.sqrt(root)) / (2.0 * K)
        model = np.where(root < 0, -tau2, model)
        # the model's maximum must lie uphill (beyond a minimum of the
        # model, or against the score, Newton's step is taken)
        usable = (np.isfinite(model) & (ev.pull2 > 0) & (ev.penalty2 > 0)
                  & (model * ev.score > 0))
    step = np.where(usable, model, step)
    return np.maximum(tau2 + step, 0.0) - tau2


def climb(stack, tau2, rows, maxiter=100, fit=None):
    """
    Newton ascent of problems ``rows`` from ``tau2`` (``fit``, if given,
    the kernel there).

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
    if fit is None:
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


def _far_point(tau2, m, M, mean_v):
    """The certificate's point beyond the fit: the farther of ``3 t / 2``
    and ``M - 2m`` (from where a negative score certifies the tail), at
    least ``mean_v / 1000``."""
    return np.maximum(np.maximum(1.5 * tau2, M - 2.0 * m), 1e-3 * mean_v)


def _variance_range(stack, rows):
    """Per problem: the smallest, largest and mean observed variance."""
    v = stack.variance[:, rows]
    n_obs = stack.n_obs[rows]
    if stack.complete:
        return v.min(axis=0), v.max(axis=0), v.sum(axis=0) / n_obs
    o = stack.observed[:, rows]
    seen = o > 0
    m = np.where(seen, v, np.inf).min(axis=0)
    M = np.where(seen, v, -np.inf).max(axis=0)
    return m, M, (o * v).sum(axis=0) / np.maximum(n_obs, 1)


def _split(lower, upper, fit):
    """Where to split ``[lower, upper]``: a fifth of the way from a fit at
    its lower end, else halfway."""
    return np.where(lower == fit, lower + 0.2 * (upper - lower),
                    np.where(upper == fit, upper - 0.5 * (upper - lower),
                             0.5 * (lower + upper)))


def _points(stack, tau2, rows):
    return bounds.point_data(kernel.evaluate(stack, tau2, rows))


def certify(stack, tau2, fit, rows, tol=SCAN_TOL, at_zero=None):
    """
    The certified global maximum of each problem (the module docstring).

    Parameters
    ----------
    stack : Stack
    tau2 : ndarray, ``(R,)``
        The fits.
    fit : Evaluation
        The kernel at the fits (with derivatives).
    rows : ndarray of int
        Their problems in ``stack``.
    tol : float
    at_zero : Evaluation, optional
        The kernel at ``tau2 = 0`` (with derivatives), if known.

    Returns
    -------
    best_tau2 : ndarray
        Where a point beats the fit, the best point (else the fit).
    better : ndarray of bool
        Problems where a point beat the fit.
    gap : ndarray
        No ``tau2 >= 0`` has a likelihood above the fit's plus ``gap``.
    """
    n = len(rows)
    index = np.arange(n)
    m, M, mean_v = _variance_range(stack, rows)
    constant = stack.constant[rows]
    # the points 0, the fit and one beyond: two intervals a problem (one
    # for a fit at 0)
    far = _far_point(tau2, m, M, mean_v)
    at_fit = bounds.point_data(fit)
    if at_zero is None:
        at_zero = _points(stack, np.zeros(n), rows)
    else:
        at_zero = bounds.point_data(at_zero)
    at_far = _points(stack, far, rows)
    fit_llf = fit.llf
    best = np.maximum(at_zero[0], at_far[0])
    best_tau2 = np.where(at_far[0] > at_zero[0], far, 0.0)
    bounds._raise(best, best_tau2, index, fit_llf, tau2)
    # the tail beyond the last point, extended by decades while open
    last, at_last = far.copy(), at_far.copy()
    tail = bounds.beyond(stack, rows, m, M, last, at_last)
    # [0, fit] (empty for a fit at 0) and [fit, far]
    owner = np.concatenate([index, index])
    lower = np.concatenate([np.zeros(n), tau2])
    upper = np.concatenate([tau2, far])
    at_lower = np.concatenate([at_zero, at_fit], axis=1)
    at_upper = np.concatenate([at_fit, at_far], axis=1)
    for _ in range(MAX_DECADES):
        open_tail = np.flatnonzero(tail > np.maximum(best, fit_llf) + tol)
        if not open_tail.size:
            break
        more = last[open_tail] * 10.0
        at_more = _points(stack, more, rows[open_tail])
        owner = np.concatenate([owner, open_tail])
        lower = np.concatenate([lower, last[open_tail]])
        upper = np.concatenate([upper, more])
        at_lower = np.concatenate([at_lower, at_last[:, open_tail]], axis=1)
        at_upper = np.concatenate([at_upper, at_more], axis=1)
        bounds._raise(best, best_tau2, open_tail, at_more[0], more)
        last[open_tail], at_last[:, open_tail] = more, at_more
        tail[open_tail] = bounds.beyond(
            stack, rows[open_tail], m[open_tail], M[open_tail], more,
            at_more)
    closed = tail
    top = np.maximum(best, fit_llf)
    for round_ in range(MAX_ROUNDS + 1):
        bound = bounds.between(constant[owner], m[owner], M[owner], lower,
                               upper, at_lower, at_upper,
                               top[owner] + tol)
        keep = (bound > top[owner] + tol) & (upper > lower)
        np.maximum.at(closed, owner[~keep], bound[~keep])
        owner, lower, upper = owner[keep], lower[keep], upper[keep]
        at_lower, at_upper = at_lower[:, keep], at_upper[:, keep]
        if not owner.size or round_ == MAX_ROUNDS:
            break
        split = _split(lower, upper, tau2[owner])
        at_split = _points(stack, split, rows[owner])
        bounds._raise(best, best_tau2, owner, at_split[0], split)
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
