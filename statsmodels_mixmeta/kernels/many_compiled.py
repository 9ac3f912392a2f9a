r"""
The univariate kernel of :mod:`statsmodels_mixmeta.kernels.many` and the
shape and interval bounds of its certificate, compiled with numba for one
problem at a time (scalar loops over its observed studies).

Each function is the scalar transcription of its numpy counterpart, the
same formulas in the same order: :func:`evaluate` of
:func:`statsmodels_mixmeta.kernels.many.evaluate` (one coefficient: an
intercept or one shared column ``x``), :func:`decreasing`,
:func:`increasing`, :func:`concave`, :func:`decreasing_tail` and
:func:`tangent_bound` of :mod:`statsmodels_mixmeta.kernels.variance_shape`
and :func:`interval_bound` of
:func:`statsmodels_mixmeta.fitting.many_bounds._interval_bounds` (with the
candidate points of
:func:`statsmodels_mixmeta.kernels.variance_scan.candidate_points`).  The
sums run over the studies in a different order than numpy's pairwise
reductions, so the numbers agree to rounding (about ``N`` units in the
last place), not bit for bit.

This module imports numba: it is imported only by the compiled engine of
``fit_many`` (the ``fast`` extra).
"""
import numba
import numpy as np

from .variance_shape import SLACK

#: The fields of an evaluation, as indices of its ``(15,)`` array (the
#: names of :class:`statsmodels_mixmeta.kernels.many.Evaluation`; ``XWX`` is
#: ``X'WX``, the inverse of ``cov_beta``).
LLF, BETA, XWX, SCORE, HESSIAN, INFORMATION, QUAD, LOG_SIGMA, SUM_W, \
    SUM_W2, PENALTY, PENALTY2, PULL, PULL2, TRACE_J = range(15)
N_FIELDS = 15

#: As :data:`statsmodels_mixmeta.kernels.many._PRODUCT_RANGE`.
PRODUCT_LOW, PRODUCT_HIGH = 1e-280, 1e280

_jit = numba.njit(cache=True, error_model="numpy", fastmath=False)


# no fastmath: the sums run in one order however the code is inlined, so
# that a problem's numbers do not depend on its chunk, block or worker
@_jit
def evaluate(y, v, x, w, unit, n, tau2, constant, reml, derivatives, ev):
    """
    The kernel at ``tau2`` for one problem, its ``n`` observed studies the
    first ``n`` entries of ``y``, ``v`` and ``x`` (``x`` ignored when
    ``unit``; ``w``: work space), written into ``ev`` (``(15,)``; the
    derivatives only when ``derivatives``).
    """
    product = 1.0
    sum_w = 0.0
    F = 0.0
    xwy = 0.0
    for i in range(n):
        sigma = v[i] + tau2
        product *= sigma
        wi = w[i] = 1.0 / sigma
        sum_w += wi
        if unit:
            xwy += wi * y[i]
        else:
            F += wi * x[i] * x[i]
            xwy += wi * x[i] * y[i]
    if unit:
        F = sum_w
    if product > PRODUCT_LOW and product < PRODUCT_HIGH:
        log_sigma = np.log(product)
    else:
        log_sigma = 0.0
        for i in range(n):
            log_sigma += np.log(v[i] + tau2)
    beta = xwy / F
    quad = 0.0
    pull = 0.0
    sum_w2 = 0.0
    u = 0.0
    pull2 = 0.0
    m1 = 0.0
    m2 = 0.0
    for i in range(n):
        wi = w[i]
        xi = 1.0 if unit else x[i]
        resid = y[i] - xi * beta
        wr = wi * resid
        wx = wi * xi
        quad += wr * resid
        pull += wr * wr
        sum_w2 += wi * wi
        u += wr * wx
        pull2 += wr * wr * wi
        m1 += wx * wx
        m2 += wx * wx * wi
    minus2 = log_sigma + quad
    if reml:
        minus2 += np.log(F)
    ev[LLF] = constant - 0.5 * minus2
    ev[BETA] = beta
    ev[XWX] = F
    ev[QUAD] = quad
    ev[LOG_SIGMA] = log_sigma
    ev[SUM_W] = sum_w
    if not derivatives:
        return
    score = sum_w - pull
    pull2 -= u * u / F
    information = sum_w2
    penalty2 = sum_w2
    penalty = sum_w
    J = m1 / F
    if reml:
        trace_m2 = m2 / F
        score -= J
        penalty = sum_w - J
        penalty2 = sum_w2 + J * J - 2.0 * trace_m2
        information = information + J * J - 2.0 * trace_m2
    ev[SCORE] = -0.5 * score
    ev[SUM_W2] = sum_w2
    ev[PULL] = pull
    ev[PULL2] = pull2
    ev[PENALTY] = penalty
    ev[PENALTY2] = penalty2
    ev[HESSIAN] = 0.5 * penalty2 - pull2
    ev[INFORMATION] = 0.5 * information
    ev[TRACE_J] = J


@_jit
def _le(x, y):
    return x <= y * (1.0 - SLACK)


@_jit
def _clip(x, a, b):
    return min(max(x, a), b)


@_jit
def decreasing(a, b, m, M, pen_a, pull_a, pen_b, pull_b):
    """Whether ``pull <= penalty`` on ``[a, b]``."""
    am, aM, bm, bM = a + m, a + M, b + m, b + M
    t1 = _clip(M - 2.0 * m, a, b)
    t1m, t1M = t1 + m, t1 + M
    return (_le(pull_a * aM * aM * t1m, pen_a * am * t1M * t1M)
            or _le(pull_b * bm * bm * aM, pen_b * bM * am * am)
            or _le(pull_a * aM, pen_b * bM)
            or _le(pull_b * bm * bm, pen_a * am * am))


@_jit
def increasing(a, b, m, M, pen_a, pull_a, pen_b, pull_b):
    """Whether ``pull >= penalty`` on ``[a, b]``."""
    am, aM, bm, bM = a + m, a + M, b + m, b + M
    return (_le(pen_a * aM * bm * bm, pull_a * am * am * bM)
            or (_le(pen_b, pull_b) and _le(pen_b * bm * aM * aM,
                                           pull_b * bM * bM * am))
            or _le(pen_b * bm * bm, pull_a * am * am)
            or _le(pen_a * aM, pull_b * bM))


@_jit
def concave(a, b, m, M, pen_a, pull_a, pen_b, pull_b):
    """Whether ``2 pull2 >= penalty2`` on ``[a, b]`` (``pen``/``pull``:
    ``penalty2``/``pull2``)."""
    pull_a, pull_b = 2.0 * pull_a, 2.0 * pull_b
    am, aM, bm, bM = a + m, a + M, b + m, b + M
    am3, bm2, bM2 = am * am * am, bm * bm, bM * bM
    return (_le(pen_a * aM * aM * bm2 * bm, pull_a * am3 * bM2)
            or (_le(pen_b, pull_b) and _le(pen_b * bm2 * aM * aM * aM,
                                           pull_b * bM2 * bM * am * am))
            or _le(pen_b * bm2 * bm, pull_a * am3)
            or _le(pen_a * aM * aM, pull_b * bM2))


@_jit
def decreasing_tail(T, m, M, penalty, pull):
    """Whether ``ell`` decreases on ``[T, inf)``."""
    t1 = max(M - 2.0 * m, T)
    TM, t1M = T + M, t1 + M
    return _le(pull * TM * TM * (t1 + m), penalty * (T + m) * t1M * t1M)


@_jit
def tangent_bound(a, b, llf_a, llf_b, slope_a, slope_b):
    """The maximum over ``[a, b]`` of the lower of the two tangents."""
    gap = slope_a - slope_b
    cross = a
    if gap > 0:
        cross = (llf_b - llf_a + slope_a * a - slope_b * b) / gap
    cross = _clip(cross, a, b)
    if slope_a <= 0:
        return llf_a
    if slope_b >= 0:
        return llf_b
    return llf_a + max(slope_a, 0.0) * (cross - a)


@_jit
def interval_bound(constant, shift, a, b, A_a, G_a, dG_a, A_b, G_b, dG_b):
    """The interval bound of the terms ``A``, ``G``, ``G'`` on ``[a, b]``
    (chords of ``A`` in ``t`` and in ``log(t + shift)``, tangents of
    ``G``)."""
    rise = A_b - A_a
    width = b - a
    slope = rise / width if width > 0 else 0.0
    # log(t + shift) - log(a + shift) as one logarithm of the ratio
    base = a + shift
    span = np.log((b + shift) / base)
    slope_log = rise / span if span > 0 else 0.0
    turn = dG_a - dG_b
    cross = a
    if turn != 0:
        cross = (G_b - G_a + dG_a * a - dG_b * b) / turn
    cross = min(max(cross, a), b)
    least = np.inf
    least_log = np.inf
    for k in range(3):
        t = a if k == 0 else (b if k == 1 else cross)
        tangent = max(G_a + dG_a * (t - a), G_b + dG_b * (t - b)) + A_a
        least = min(least, slope * (t - a) + tangent)
        log_t = 0.0 if k == 0 else (span if k == 1 else np.log(
            (t + shift) / base))
        least_log = min(least_log, slope_log * log_t + tangent)
    return constant - 0.5 * max(least, least_log)
