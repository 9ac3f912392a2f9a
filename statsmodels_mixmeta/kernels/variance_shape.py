r"""
The shape of a univariate profiled likelihood between two points: where it
is monotone or concave, certified from its score and curvature there.

For one random intercept (``Sigma = V + t I`` on a problem's observed
studies, ``V = diag(v_i)``), let ``K`` be an orthonormal basis of the
contrasts (``K'X = 0``) and ``lambda_k`` the eigenvalues of ``K'VK``, with
``K'y = sum_k zeta_k e_k``.  Then (Harville 1977; Patterson & Thompson
1971)

.. math::

    Q(t) = \sum_k \frac{\zeta_k^2}{\lambda_k + t}, \qquad
    \sum_i \log \Sigma_i + \log\det X'\Sigma^{-1}X
        = \sum_k \log(\lambda_k + t) + \log\det X'X,

so that ``-2 ell = P + Q`` up to a constant, with ``P`` the last sum
(REML) or ``sum_i log(v_i + t)`` (ML).  Every ``lambda_k`` lies in
``[m, M] = [min v_i, max v_i]`` (Cauchy's interlacing theorem for the
compression ``K'VK``), and so does every ``v_i``.  The four functions

.. math::

    \mathrm{penalty} = P' = \int \frac{d\alpha(\lambda)}{\lambda + t},
    \quad \mathrm{penalty2} = -P'' = \int \frac{d\alpha}{(\lambda+t)^2},
    \quad \mathrm{pull} = -Q' = \int \frac{d\gamma}{(\lambda+t)^2},
    \quad \mathrm{pull2} = Q''/2 = \int \frac{d\gamma}{(\lambda+t)^3}

(``alpha``, ``gamma`` non-negative measures on ``[m, M]``) give
``ell' = (pull - penalty) / 2`` and ``ell'' = penalty2 / 2 - pull2``.  Each
``f(t) = int dmu / (lambda + t)^k`` is pinned between its values at the
ends of ``[a, b]``: the ratio ``(lambda + a) / (lambda + t)`` is monotone in
``lambda``, so for ``a <= t <= b``

.. math::

    f(a) \Big(\frac{a + m}{t + m}\Big)^k \le f(t) \le
        f(a) \Big(\frac{a + M}{t + M}\Big)^k, \qquad
    f(b) \Big(\frac{b + M}{t + M}\Big)^k \le f(t) \le
        f(b) \Big(\frac{b + m}{t + m}\Big)^k.

Comparing a lower bound of one function with an upper bound of the other
over all ``t`` in ``[a, b]`` (each comparison is a ratio of powers of
``t + m`` and ``t + M``, monotone or unimodal in ``t``, so it is checked at
one or two points) certifies that ``ell`` is decreasing (``pull <=
penalty``), increasing (``pull >= penalty``) or concave (``2 pull2 >=
penalty2``) on the whole interval, without evaluating it inside.  A
concave piece lies below its tangents at ``a`` and ``b``, a monotone one
below its higher end: :func:`shape_bound` turns the certified shape into
an upper bound of ``ell`` on ``[a, b]``.  Beyond ``T >= M - 2m`` a
negative score alone makes ``ell`` decreasing for good
(:func:`decreasing_tail`).

References
----------
Harville DA. Maximum likelihood approaches to variance component
estimation and to related problems. Journal of the American Statistical
Association 1977; 72: 320-338.

Patterson HD, Thompson R. Recovery of inter-block information when block
sizes are unequal. Biometrika 1971; 58: 545-554.
"""
import numpy as np

#: Relative slack of every comparison: the four functions are sums of
#: positive terms (up to a few products of ``F^{-1}``), exact to about
#: 1e-13 relative, and a shape certified within rounding moves the bound
#: by rounding only.
SLACK = 1e-10


def _le(x, y):
    return x <= y * (1.0 - SLACK)


def decreasing(a, b, m, M, at_a, at_b):
    """
    Whether ``pull(t) <= penalty(t)`` for every ``t`` in ``[a, b]``.

    ``at_a``, ``at_b`` are ``(penalty, pull)`` at the ends; ``m``, ``M``
    the smallest and largest observed variance.
    """
    pen_a, pull_a = at_a
    pen_b, pull_b = at_b
    am, aM, bm, bM = a + m, a + M, b + m, b + M
    # pull from a, penalty from a: (t + m) / (t + M)^2 peaks at M - 2m
    t1 = np.clip(M - 2.0 * m, a, b)
    t1m, t1M = t1 + m, t1 + M
    out = _le(pull_a * aM * aM * t1m, pen_a * am * t1M * t1M)
    # from b, from b: (t + M) / (t + m)^2 falls, worst at a
    out |= _le(pull_b * bm * bm * aM, pen_b * bM * am * am)
    out |= _le(pull_a * aM, pen_b * bM)
    out |= _le(pull_b * bm * bm, pen_a * am * am)
    return out


def increasing(a, b, m, M, at_a, at_b):
    """Whether ``pull(t) >= penalty(t)`` for every ``t`` in ``[a, b]``."""
    pen_a, pull_a = at_a
    pen_b, pull_b = at_b
    am, aM, bm, bM = a + m, a + M, b + m, b + M
    out = _le(pen_a * aM * bm * bm, pull_a * am * am * bM)
    out |= _le(pen_b, pull_b) & _le(pen_b * bm * aM * aM,
                                    pull_b * bM * bM * am)
    out |= _le(pen_b * bm * bm, pull_a * am * am)
    out |= _le(pen_a * aM, pull_b * bM)
    return out


def concave(a, b, m, M, at_a, at_b):
    """
    Whether ``2 pull2(t) >= penalty2(t)`` (``ell'' <= 0``) for every ``t``
    in ``[a, b]``; ``at_a``, ``at_b`` are ``(penalty2, pull2)``.
    """
    pen_a, pull_a = at_a
    pen_b, pull_b = at_b
    pull_a, pull_b = 2.0 * pull_a, 2.0 * pull_b
    am, aM, bm, bM = a + m, a + M, b + m, b + M
    am3, bm2, bM2 = am * am * am, bm * bm, bM * bM
    # (t + M)^2 / (t + m)^3 falls: worst at b
    out = _le(pen_a * aM * aM * bm2 * bm, pull_a * am3 * bM2)
    # (t + m)^2 / (t + M)^3 rises then falls: worst at an end
    out |= _le(pen_b, pull_b) & _le(pen_b * bm2 * aM * aM * aM,
                                    pull_b * bM2 * bM * am * am)
    out |= _le(pen_b * bm2 * bm, pull_a * am3)
    out |= _le(pen_a * aM * aM, pull_b * bM2)
    return out


def decreasing_tail(T, m, M, penalty, pull):
    """Whether ``ell`` decreases on ``[T, inf)``: ``pull <= penalty`` from
    ``T`` on, by the bounds from ``T`` alone (for ``T >= M - 2m`` this is
    ``pull(T) <= penalty(T)``)."""
    t1 = np.maximum(M - 2.0 * m, T)
    TM, t1M = T + M, t1 + M
    return _le(pull * TM * TM * (t1 + m), penalty * (T + m) * t1M * t1M)


def tangent_bound(a, b, llf_a, llf_b, slope_a, slope_b):
    """
    The maximum over ``[a, b]`` of the lower of the tangents of ``ell`` at
    ``a`` and ``b``: an upper bound of ``ell`` there where it is concave.
    """
    # ell <= min(llf_a + slope_a (t - a), llf_b + slope_b (t - b))
    gap = slope_a - slope_b
    cross = np.divide(llf_b - llf_a + slope_a * a - slope_b * b, gap,
                      out=np.array(a, dtype=float), where=gap > 0)
    cross = np.clip(cross, a, b)
    return np.where(slope_a <= 0, llf_a, np.where(
        slope_b >= 0, llf_b, llf_a + np.maximum(slope_a, 0) * (cross - a)))
