"""
The compiled engine of univariate ``fit_many``: climb and certify each
problem in a numba loop over problems (``prange``), scalar loops over its
studies.

Problem by problem this is :func:`statsmodels_mixmeta.many.fit._maximise`
over :mod:`statsmodels_mixmeta.fitting.many`: the same start (the
DerSimonian-Laird estimate from the kernel at 0), the same steps, line
search and stopping rules (:func:`climb`), the same certificate over the
same points, decades and splitting rounds, with the same shape and
interval bounds (:func:`certify`), and the same second climb from a better
point.  The numpy version handles all problems of a chunk at once and this
one each in turn, so their numbers agree to rounding.  A problem whose
certificate needs more points than :data:`MAX_POINTS` is handed back
(``handback``) for the numpy engine to fit.

This module imports numba: it is imported only by the compiled engine.
"""
import numba
import numpy as np

from ..kernels import many_compiled as kc
from ..kernels.likelihood import LOG_2PI
from ..structures.psd import PSD_FLOOR
from .many import (LLF_TOL, MAX_DECADES, MAX_HALVINGS, MAX_ROUNDS,
                   STEP_RTOL)
from .restarts import SCAN_TOL

#: Points (and intervals) of one problem's certificate at most; a problem
#: needing more is handed back to the numpy engine.
MAX_POINTS = 256
#: The data of a point (:data:`statsmodels_mixmeta.fitting.many_bounds.
#: POINT_FIELDS`) as fields of an evaluation.
_POINT = (kc.LLF, kc.SCORE, kc.PENALTY, kc.PULL, kc.PENALTY2, kc.PULL2,
          kc.LOG_SIGMA, kc.SUM_W)
#: Problems handled by one thread in turn, with one work space.
BLOCK = 64
#: Method codes.
FIXED, ML, REML, MM = 0, 1, 2, 3
#: :class:`statsmodels_mixmeta.many.results.Status` codes.
FITTED, EMPTY, TOO_FEW, RANK_DEFICIENT = 0, 1, 2, 3

_jit = numba.njit(cache=True, error_model="numpy")


@_jit
def _step(ev, tau2):
    """:func:`statsmodels_mixmeta.fitting.many._step` for one problem."""
    score, hessian = ev[kc.SCORE], ev[kc.HESSIAN]
    newton = hessian < 0
    curvature = -hessian if newton else ev[kc.INFORMATION]
    step = score / curvature if curvature > 0 else 0.0
    if not newton and score < 0:
        step = -tau2
    penalty, penalty2 = ev[kc.PENALTY], ev[kc.PENALTY2]
    pull, pull2 = ev[kc.PULL], ev[kc.PULL2]
    c = penalty / penalty2
    e = pull / pull2
    K = penalty * c
    Z = pull * e * e
    root = Z * (Z + 4.0 * K * (c - e))
    if root < 0:
        model = -tau2
    else:
        model = (Z - 2.0 * K * e + np.sqrt(root)) / (2.0 * K)
    if (np.isfinite(model) and pull2 > 0 and penalty2 > 0
            and model * score > 0):
        step = model
    return max(tau2 + step, 0.0) - tau2


@_jit
def climb(y, v, x, w, unit, n, constant, reml, tau2, fit, maxiter, trial):
    """
    :func:`statsmodels_mixmeta.fitting.many.climb` for one problem from
    ``tau2`` (``fit``: the kernel there, updated in place; ``trial``: work
    space).  Returns ``(tau2, converged, n_iter)``.
    """
    scale = 0.0
    for i in range(n):
        scale += v[i]
    scale /= max(n, 1)
    n_iter = 0
    for _ in range(maxiter):
        step = _step(fit, tau2)
        if (abs(step * fit[kc.SCORE]) <= LLF_TOL
                and abs(step) <= STEP_RTOL * (tau2 + 1e-4 * scale)):
            return tau2, True, n_iter
        n_iter += 1
        base = fit[kc.LLF]
        rounding = 1e-13 * max(1.0, abs(base))
        moved = False
        point = tau2 + step
        for _ in range(MAX_HALVINGS):
            kc.evaluate(y, v, x, w, unit, n, point, constant, reml, True,
                        trial)
            if trial[kc.LLF] >= base - rounding:
                moved = True
                break
            step *= 0.5
            point = tau2 + step
        if not moved:
            return tau2, True, n_iter
        tau2 = point
        fit[:] = trial
    return tau2, False, n_iter


@_jit
def _store(points, where, ev, tau2, at):
    for f in range(8):
        points[at, f] = ev[_POINT[f]]
    where[at] = tau2


@_jit
def _between(constant, m, M, pa, pb, enough):
    """:func:`statsmodels_mixmeta.fitting.many_bounds.between` for one
    interval with end data ``pa``, ``pb`` and its ends ``a``, ``b``."""
    a, b = pa[8], pb[8]
    llf_a, s_a, pen_a, pull_a, pen2_a, pull2_a, A_a, w_a = pa[:8]
    llf_b, s_b, pen_b, pull_b, pen2_b, pull2_b, A_b, w_b = pb[:8]
    bound = np.inf
    if s_a <= 0 and s_b <= 0 and kc.decreasing(a, b, m, M, pen_a, pull_a,
                                               pen_b, pull_b):
        bound = llf_a
    if s_a >= 0 and s_b >= 0 and kc.increasing(a, b, m, M, pen_a, pull_a,
                                               pen_b, pull_b):
        bound = min(bound, llf_b)
    if s_a >= s_b and bound > enough and kc.concave(
            a, b, m, M, pen2_a, pull2_a, pen2_b, pull2_b):
        bound = min(bound, kc.tangent_bound(a, b, llf_a, llf_b, s_a, s_b))
    if bound > enough:
        bound = min(bound, kc.interval_bound(
            constant, M, a, b, A_a, -2.0 * (llf_a - constant) - A_a,
            -2.0 * s_a - w_a, A_b, -2.0 * (llf_b - constant) - A_b,
            -2.0 * s_b - w_b))
    return bound


@_jit
def _beyond(y, v, n, reml, constant, logdet_xtx, m, M, v_kth, last, pt):
    """:func:`statsmodels_mixmeta.fitting.many_bounds.beyond` for one
    problem (one coefficient) from its last point ``pt``."""
    if kc.decreasing_tail(last, m, M, pt[2], pt[3]):
        return pt[0]
    if not reml:
        return constant - 0.5 * pt[6]
    if not (last > 0 and np.isfinite(v_kth)):
        return np.inf
    T = last
    L = max(0.0, -np.log(T / (v_kth + T)))
    grow = np.exp(L) * T
    # sum_i max(0, log(grow / Sigma_i)) as the logarithm of the product of
    # the ratios above 1 (one logarithm, not one per study), where in range
    product = 1.0
    for i in range(n):
        product *= max(grow / (v[i] + T), 1.0)
    if product < kc.PRODUCT_HIGH:
        excess = np.log(product)
    else:
        excess = 0.0
        for i in range(n):
            excess += np.log(max(grow / (v[i] + T), 1.0))
    return (constant - 0.5 * pt[6] + 0.5 * np.log(M + T)
            - 0.5 * logdet_xtx + 0.5 * L - 0.5 * excess)


@_jit
def certify(y, v, x, w, unit, n, constant, reml, logdet_xtx, tau2, fit,
            at_zero, work, points, intervals):
    """
    :func:`statsmodels_mixmeta.fitting.many.certify` for one problem
    (``points``, ``(capacity, 9)``, and ``intervals``, ``(4, capacity)``:
    work space; a problem that needs more points or intervals is handed
    back).  Returns ``(best_tau2, better, gap,
    handback)``.
    """
    tol = SCAN_TOL
    m, M, mean_v = np.inf, -np.inf, 0.0
    v_first, v_kth = np.inf, np.inf
    for i in range(n):
        m = min(m, v[i])
        M = max(M, v[i])
        mean_v += v[i]
        if v[i] < v_first:
            v_kth, v_first = v_first, v[i]
        elif v[i] < v_kth:
            v_kth = v[i]
    mean_v /= max(n, 1)
    # points: (8 fields, tau2) rows; intervals: pairs of point indices
    capacity = min(points.shape[0], intervals.shape[1])
    if capacity < 3:
        return tau2, False, np.nan, True
    where = points[:, 8]
    low, up, low2, up2 = (intervals[0], intervals[1], intervals[2],
                          intervals[3])
    far = max(max(1.5 * tau2, M - 2.0 * m), 1e-3 * mean_v)
    _store(points, where, at_zero, 0.0, 0)
    _store(points, where, fit, tau2, 1)
    kc.evaluate(y, v, x, w, unit, n, far, constant, reml, True, work)
    _store(points, where, work, far, 2)
    n_points = 3
    fit_llf = fit[kc.LLF]
    best = max(points[0, 0], points[2, 0])
    best_tau2 = far if points[2, 0] > points[0, 0] else 0.0
    if fit_llf > best:
        best, best_tau2 = fit_llf, tau2
    last, at_last = far, 2
    tail = _beyond(y, v, n, reml, constant, logdet_xtx, m, M, v_kth, last,
                   points[2])
    low[0], up[0], low[1], up[1] = 0, 1, 1, 2
    n_int = 2
    for _ in range(MAX_DECADES):
        if not tail > max(best, fit_llf) + tol:
            break
        if n_points == capacity or n_int == capacity:
            return tau2, False, np.nan, True
        more = last * 10.0
        kc.evaluate(y, v, x, w, unit, n, more, constant, reml, True, work)
        _store(points, where, work, more, n_points)
        low[n_int], up[n_int] = at_last, n_points
        n_int += 1
        if work[kc.LLF] > best:
            best, best_tau2 = work[kc.LLF], more
        last, at_last = more, n_points
        n_points += 1
        tail = _beyond(y, v, n, reml, constant, logdet_xtx, m, M, v_kth,
                       last, points[at_last])
    closed = tail
    top = max(best, fit_llf)
    for round_ in range(MAX_ROUNDS + 1):
        n_keep = 0
        for k in range(n_int):
            a, b = low[k], up[k]
            bound = _between(constant, m, M, points[a], points[b], top + tol)
            if bound > top + tol and where[b] > where[a]:
                low2[n_keep], up2[n_keep] = a, b
                n_keep += 1
                if round_ == MAX_ROUNDS:
                    closed = max(closed, bound)
            else:
                closed = max(closed, bound)
        if n_keep == 0 or round_ == MAX_ROUNDS:
            break
        if n_points + n_keep > capacity or 2 * n_keep > capacity:
            return tau2, False, np.nan, True
        # split every kept interval, then raise the best to the best split
        # (ties to the later, as numpy's stable sort)
        round_best, round_tau2 = -np.inf, 0.0
        for k in range(n_keep):
            a, b = low2[k], up2[k]
            lower, upper = where[a], where[b]
            if lower == tau2:
                split = lower + 0.2 * (upper - lower)
            elif upper == tau2:
                split = upper - 0.5 * (upper - lower)
            else:
                split = 0.5 * (lower + upper)
            kc.evaluate(y, v, x, w, unit, n, split, constant, reml, True, work)
            _store(points, where, work, split, n_points + k)
            if work[kc.LLF] > best and work[kc.LLF] >= round_best:
                round_best, round_tau2 = work[kc.LLF], split
        if round_best > best:
            best, best_tau2 = round_best, round_tau2
        top = max(best, fit_llf)
        for k in range(n_keep):
            low[k], up[k] = low2[k], n_points + k
            low[n_keep + k], up[n_keep + k] = n_points + k, up2[k]
        n_points += n_keep
        n_int = 2 * n_keep
    rounding = max(1e-10 * max(1.0, abs(fit_llf)), 1e-12)
    better = best > fit_llf + rounding
    gap = max(closed - max(fit_llf, best), 0.0)
    return (best_tau2 if better else tau2), better, gap, False


@_jit
def _fit_one(y, v, x, w, unit, n, method, maxiter, rank_rcond, out, j,
             evals, points, intervals):
    """Fit one problem (its ``n`` observed studies first in ``y``, ``v``,
    ``x``) into row ``j`` of ``out`` (see :func:`fit_problems`; ``evals``,
    ``(4, 15)``, ``points`` and ``intervals``: work space)."""
    params, bse, tau2s, llf, q, gap, status, conv, n_iter, hand = out
    reml = method == REML or method == MM
    xtx = 0.0
    for i in range(n):
        xtx += 1.0 if unit else x[i] * x[i]
    need = 1 + (method != FIXED)
    if n == 0:
        status[j] = EMPTY
    elif n < need:
        status[j] = TOO_FEW
    elif not ((1.0 if xtx > 0 else 0.0) > rank_rcond):
        status[j] = RANK_DEFICIENT
    else:
        status[j] = FITTED
    if status[j] != FITTED:
        return
    logdet_xtx = np.log(xtx)
    if reml:
        constant = -0.5 * (n - 1) * LOG_2PI + 0.5 * logdet_xtx
    else:
        constant = -0.5 * n * LOG_2PI
    at_zero, fit, work, again = evals[0], evals[1], evals[2], evals[3]
    kc.evaluate(y, v, x, w, unit, n, 0.0, constant, reml, True, at_zero)
    # DerSimonian-Laird (kernels.many.moment_variance)
    denominator = at_zero[kc.SUM_W] - at_zero[kc.TRACE_J]
    excess = at_zero[kc.QUAD] - (n - 1)
    start = max(excess / denominator if denominator > 0 else 0.0, 0.0)
    q[j] = at_zero[kc.QUAD]
    converged, iters, g = True, 0, 0.0
    if method == FIXED:
        tau2 = 0.0
        fit[:] = at_zero
    elif method == MM:
        tau2 = max(start, PSD_FLOOR)
        kc.evaluate(y, v, x, w, unit, n, tau2, constant, reml, False, fit)
        fit[kc.LLF] = np.nan
    else:
        tau2 = start
        if start > 0:
            kc.evaluate(y, v, x, w, unit, n, start, constant, reml, True, fit)
        else:
            fit[:] = at_zero
        tau2, converged, iters = climb(y, v, x, w, unit, n, constant, reml,
                                       tau2, fit, maxiter, work)
        g = np.nan
        if converged:
            best, better, g, back = certify(
                y, v, x, w, unit, n, constant, reml, logdet_xtx, tau2, fit,
                at_zero, work, points, intervals)
            if back:
                hand[j] = True
                return
            if better:
                kc.evaluate(y, v, x, w, unit, n, best, constant, reml, True,
                            again)
                tau2_b, conv_b, iter_b = climb(y, v, x, w, unit, n, constant,
                                               reml, best, again, maxiter,
                                               work)
                if again[kc.LLF] > fit[kc.LLF]:
                    tau2, converged = tau2_b, conv_b
                    iters += iter_b
                    fit[:] = again
    tau2s[j] = tau2
    llf[j] = fit[kc.LLF]
    params[j] = fit[kc.BETA]
    bse[j] = np.sqrt(1.0 / fit[kc.XWX])
    conv[j] = converged
    n_iter[j] = iters
    gap[j] = g


@numba.njit(cache=True, error_model="numpy", parallel=True)
def fit_problems(y, v, x, unit, method, maxiter, rank_rcond, out, n_obs,
                 max_points=MAX_POINTS):
    """
    Fit problems ``j`` of ``y``, ``v`` (``(N, P)``, studies by problems,
    any strides: a thread reads a block of neighbouring problems; NaN in
    ``y`` marks an unobserved study) with the shared column ``x``
    (``(N,)``; ignored when ``unit``, an intercept) in parallel.

    ``out`` is the tuple ``(params, bse, tau2, llf, q, gap, status,
    converged, n_iter, handback)`` of ``(P,)`` arrays, filled for fitted
    problems (``handback`` marks problems left to the numpy engine);
    ``n_obs`` receives the observed studies of each problem;
    ``max_points`` bounds each certificate's points.
    """
    N, P = y.shape
    n_blocks = (P + BLOCK - 1) // BLOCK
    for b in numba.prange(n_blocks):
        # work space for a block of problems
        yo = np.empty(N)
        vo = np.empty(N)
        xo = np.empty(N)
        wo = np.empty(N)
        evals = np.empty((4, kc.N_FIELDS))
        points = np.empty((max_points, 9))
        intervals = np.empty((4, max_points), np.int64)
        for j in range(b * BLOCK, min(P, (b + 1) * BLOCK)):
            n = 0
            for i in range(N):
                if not np.isnan(y[i, j]):
                    yo[n] = y[i, j]
                    vo[n] = v[i, j]
                    xo[n] = x[i]
                    n += 1
            n_obs[j] = n
            _fit_one(yo, vo, xo, wo, unit, n, method, maxiter, rank_rcond, out,
                     j, evals, points, intervals)
