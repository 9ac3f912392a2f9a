"""
Upper bounds of many univariate profiled likelihoods between and beyond
points where they were evaluated, for the certificate of
:mod:`statsmodels_mixmeta.fitting.many`.

On an interval the bound is the smaller of two: the shape bound of
:mod:`statsmodels_mixmeta.kernels.variance_shape` (the profile certified
monotone or concave there) and the interval bound of
:mod:`statsmodels_mixmeta.kernels.variance_scan` on its terms (``A`` below
its chord, ``G`` above its tangents), tightened here by a second chord of
``A`` (:func:`_interval_bounds`); beyond the last point, ``ell`` at that
point where the profile is certified to decrease for good, else the tail
bound of :func:`_tail_bound`.
"""
import numpy as np

from ..kernels import variance_scan, variance_shape

#: The data of a point, in this order: ``ell``, ``ell'``, the Stieltjes
#: pieces of :mod:`statsmodels_mixmeta.kernels.variance_shape`, ``A =
#: sum log Sigma`` and ``A' = sum w``.
POINT_FIELDS = ("llf", "score", "penalty", "pull", "penalty2", "pull2",
                "log_sigma", "sum_w")


def point_data(ev):
    """``(8, R)``: the fields :data:`POINT_FIELDS` of an evaluation."""
    return np.stack([getattr(ev, f) for f in POINT_FIELDS])


def between(constant, m, M, lower, upper, at_lower, at_upper, enough=None):
    """
    Upper bounds of ``ell`` on ``[lower, upper]`` (all ``(K,)``) from the
    data of the ends (``(8, K)``), for problems with ``constant``, smallest
    and largest observed variance ``m``, ``M`` (``(K,)``).  Where the shape
    bound is already at most ``enough``, the interval bound of the terms is
    not computed.
    """
    llf_a, s_a, pen_a, pull_a, pen2_a, pull2_a, A_a, w_a = at_lower
    llf_b, s_b, pen_b, pull_b, pen2_b, pull2_b, A_b, w_b = at_upper
    bound = np.full(lower.shape, np.inf)
    # each shape is tried only where the slopes at the ends allow it: a
    # decreasing piece has ell' <= 0 at both ends, an increasing one >= 0,
    # a concave one ell'(a) >= ell'(b)
    i = np.flatnonzero((s_a <= 0) & (s_b <= 0))
    down = variance_shape.decreasing(
        lower[i], upper[i], m[i], M[i], (pen_a[i], pull_a[i]),
        (pen_b[i], pull_b[i]))
    bound[i[down]] = llf_a[i[down]]
    i = np.flatnonzero((s_a >= 0) & (s_b >= 0))
    up = variance_shape.increasing(
        lower[i], upper[i], m[i], M[i], (pen_a[i], pull_a[i]),
        (pen_b[i], pull_b[i]))
    bound[i[up]] = np.minimum(bound[i[up]], llf_b[i[up]])
    i = np.flatnonzero((s_a >= s_b) & (bound > enough)) if enough is not \
        None else np.flatnonzero(s_a >= s_b)
    cap = variance_shape.concave(
        lower[i], upper[i], m[i], M[i], (pen2_a[i], pull2_a[i]),
        (pen2_b[i], pull2_b[i]))
    i = i[cap]
    bound[i] = np.minimum(bound[i], variance_shape.tangent_bound(
        lower[i], upper[i], llf_a[i], llf_b[i], s_a[i], s_b[i]))
    rest = slice(None) if enough is None else np.flatnonzero(bound > enough)
    # the terms A, G = -2 (ell - c) - A and G' = -2 ell' - A'
    c = constant[rest]
    terms_a = np.stack([A_a[rest], -2.0 * (llf_a[rest] - c) - A_a[rest],
                        -2.0 * s_a[rest] - w_a[rest]])
    terms_b = np.stack([A_b[rest], -2.0 * (llf_b[rest] - c) - A_b[rest],
                        -2.0 * s_b[rest] - w_b[rest]])
    bound[rest] = np.minimum(bound[rest], _interval_bounds(
        c, M[rest], lower[rest], upper[rest], terms_a, terms_b))
    return bound


def beyond(stack, rows, m, M, last, at_last):
    """An upper bound of ``ell`` on ``[last, inf)``: ``ell(last)`` where it
    is certified to decrease from there, else :func:`_tail_bound`."""
    bound = at_last[0].copy()
    rest = np.flatnonzero(~variance_shape.decreasing_tail(
        last, m, M, at_last[2], at_last[3]))
    if rest.size:
        bound[rest] = _tail_bound(stack, rows[rest], last[rest],
                                  at_last[6, rest], M[rest],
                                  _kth_variance(stack, rows[rest]))
    return bound


def _kth_variance(stack, rows):
    """The ``(p+1)``-th smallest observed variance of each problem."""
    p = stack.n_fixed
    if stack.n_values <= p:
        return np.full(len(rows), np.inf)
    observed_v = np.where(stack.observed[:, rows] > 0,
                          stack.variance[:, rows], np.inf)
    return np.partition(observed_v, p, axis=0)[p]


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
