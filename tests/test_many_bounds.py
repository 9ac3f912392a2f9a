"""
The bounds that certify ``fit_many``'s global maxima: no profiled
likelihood, evaluated densely, rises above them.

``fitting.many._interval_bounds`` bounds the likelihood on ``[a, b]`` from
the terms at ``a`` and ``b`` (with ``A`` bounded by its chord in ``t`` and
in ``log(t + max v)``); ``fitting.many._tail_bound`` bounds it on
``[T, inf)``.  Both are checked against the likelihood on 400 points of
each interval (and on ``T`` times up to ``10**8`` for the tail), for
problems with unequal variances, a meta-regression design and missing
studies, REML and ML.
"""
import numpy as np
import pytest

from statsmodels_mixmeta.fitting import many as many_fitting
from statsmodels_mixmeta.kernels import many as many_kernel
from statsmodels_mixmeta.kernels import variance_scan
from many_problems import random_stack


def _stack(reml, design, seed=4):
    return random_stack(reml, design, seed, 9, 60, (0.01, 3.0),
                        [0.0, 0.2, 2.0])


def _llf(stack, rows, tau2):
    terms = many_kernel.profile_terms(stack, tau2, rows)
    return stack.constant[rows] - 0.5 * (terms[0] + terms[1]), terms


def _order_statistics(stack, rows):
    v = np.where(stack.observed[:, rows] > 0, stack.variance[:, rows],
                 np.inf)
    kth = np.partition(v, stack.n_fixed, axis=0)[stack.n_fixed]
    v[np.isinf(v)] = -np.inf
    return v.max(axis=0), kth


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("design", ["intercept", "regression"])
def test_interval_bound_lies_above_the_likelihood(reml, design):
    stack, rows = _stack(reml, design)
    shift, _ = _order_statistics(stack, rows)
    rng = np.random.default_rng(1)
    for lower, upper in [(0.0, 0.05), (0.0, 3.0), (0.1, 0.3), (0.5, 40.0),
                         (2.0, 2.001)]:
        a = np.full(len(rows), lower) * rng.uniform(0.5, 1.5, len(rows))
        b = a + (upper - lower) * rng.uniform(0.5, 1.5, len(rows))
        _, at_a = _llf(stack, rows, a)
        _, at_b = _llf(stack, rows, b)
        bound = many_fitting._interval_bounds(
            stack.constant[rows], shift, a, b, at_a, at_b)
        plain = variance_scan.interval_bounds(stack.constant[rows], a, b,
                                              at_a, at_b)
        top = np.full(len(rows), -np.inf)
        for f in np.linspace(0.0, 1.0, 400):
            top = np.maximum(top, _llf(stack, rows, a + f * (b - a))[0])
        rounding = 1e-9 * np.maximum(1.0, np.abs(top))
        assert np.all(bound >= top - rounding)
        # never looser than the chord in t alone, and tighter somewhere
        assert np.all(bound <= plain + rounding)
        if upper - lower > 1.0:
            assert np.any(bound < plain - 1e-3)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("design", ["intercept", "regression"])
def test_tail_bound_lies_above_the_likelihood(reml, design):
    stack, rows = _stack(reml, design)
    v_max, v_kth = _order_statistics(stack, rows)
    for T in (0.01, 1.0, 50.0):
        last = np.full(len(rows), T)
        _, at_last = _llf(stack, rows, last)
        bound = many_fitting._tail_bound(stack, rows, last, at_last[0],
                                         v_max, v_kth)
        assert np.all(np.isfinite(bound))
        top = np.full(len(rows), -np.inf)
        for factor in np.geomspace(1.0, 1e8, 300):
            top = np.maximum(top, _llf(stack, rows, last * factor)[0])
        assert np.all(bound >= top - 1e-9 * np.maximum(1.0, np.abs(top)))
    # no tail bound from T = 0
    zero = np.zeros(len(rows))
    _, at_zero = _llf(stack, rows, zero)
    bound = many_fitting._tail_bound(stack, rows, zero, at_zero[0], v_max,
                                     v_kth)
    assert np.all(np.isinf(bound)) if reml else np.all(np.isfinite(bound))
