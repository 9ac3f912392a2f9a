"""
The shape certificate of ``fit_many`` (``kernels.variance_shape``,
``fitting.many_bounds.between``/``beyond``, ``fitting.many.certify``),
checked against the profiled likelihood evaluated densely.

* the Stieltjes pieces: ``ell' = (pull - penalty) / 2`` and ``ell'' =
  penalty2 / 2 - pull2`` against central differences of ``ell``, and each
  piece against the eigenvalues of ``K'VK`` it is written in;
* every interval certified decreasing, increasing or concave is so on 300
  points of it (score and second derivative of the kernel), and every
  bound of ``between``/``beyond`` lies above the likelihood there;
* a profile with two maxima: from the lower one the certificate refuses
  (its bounds stay above the lower maximum), finds a higher point and
  ``fit_many`` climbs to the global maximum; where it accepts, no point of
  a fine grid of ``tau2`` (up to 10^6 times the largest variance) rises
  above the fit plus the reported gap.
"""
import numpy as np
import pytest

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.fitting import many as many_fitting
from statsmodels_mixmeta.fitting import many_bounds
from statsmodels_mixmeta.kernels import many as many_kernel
from statsmodels_mixmeta.kernels import variance_shape
from many_problems import TWO_MAXIMA_V, TWO_MAXIMA_Y, random_stack



def _stack(reml, design, seed=7, n=12, r=80):
    return random_stack(reml, design, seed, n, r, (0.05, 2.0),
                        [0.0, 0.1, 1.0])


def _data(stack, rows, tau2):
    return many_bounds.point_data(many_kernel.evaluate(stack, tau2, rows))


def _range(stack, rows):
    m, M, _ = many_fitting._variance_range(stack, rows)
    return m, M


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("design", ["intercept", "regression"])
def test_stieltjes_pieces_are_the_derivatives(reml, design):
    stack, rows = _stack(reml, design)
    t = np.random.default_rng(2).uniform(0.01, 2.0, len(rows))
    ev = many_kernel.evaluate(stack, t, rows)
    h = 1e-5 * (1 + t)
    up = many_kernel.evaluate(stack, t + h, rows)
    down = many_kernel.evaluate(stack, t - h, rows)
    score = (up.llf - down.llf) / (2 * h)
    np.testing.assert_allclose(0.5 * (ev.pull - ev.penalty), score,
                               rtol=1e-6, atol=1e-7)
    second = (up.score - down.score) / (2 * h)
    np.testing.assert_allclose(0.5 * ev.penalty2 - ev.pull2, second,
                               rtol=1e-5, atol=1e-6)
    # -2 ell = P + Q: penalty = P', pull = -Q', pull2 = Q''/2
    np.testing.assert_allclose(ev.pull, -(up.quad - down.quad) / (2 * h),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(2 * ev.pull2,
                               -(up.pull - down.pull) / (2 * h),
                               rtol=1e-5, atol=1e-7)
    assert np.all(ev.pull >= 0) and np.all(ev.pull2 >= -1e-12)
    assert np.all(ev.penalty > 0) and np.all(ev.penalty2 > 0)


def test_stieltjes_form_by_eigenvalues():
    # one problem by hand: lambda_k of K'VK, zeta = K'y
    rng = np.random.default_rng(3)
    v = rng.uniform(0.1, 2.0, 7)
    y = rng.standard_normal(7)
    X = np.column_stack([np.ones(7), rng.standard_normal(7)])
    q, _ = np.linalg.qr(X, mode="complete")
    K = q[:, 2:]
    lam, vec = np.linalg.eigh(K.T @ np.diag(v) @ K)
    zeta = vec.T @ K.T @ y
    assert v.min() <= lam.min() and lam.max() <= v.max()
    stack = many_kernel.Stack(y[:, None], v[:, None], X, reml=True)
    t = np.array([0.37])
    ev = many_kernel.evaluate(stack, t)
    s = lam + t[0]
    np.testing.assert_allclose(ev.penalty, np.sum(1 / s), rtol=1e-12)
    np.testing.assert_allclose(ev.penalty2, np.sum(1 / s ** 2), rtol=1e-10)
    np.testing.assert_allclose(ev.pull, np.sum(zeta ** 2 / s ** 2),
                               rtol=1e-12)
    np.testing.assert_allclose(ev.pull2, np.sum(zeta ** 2 / s ** 3),
                               rtol=1e-10)
    np.testing.assert_allclose(ev.quad, np.sum(zeta ** 2 / s), rtol=1e-12)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("design", ["intercept", "regression"])
def test_certified_shapes_hold_densely(reml, design):
    stack, rows = _stack(reml, design)
    m, M = _range(stack, rows)
    rng = np.random.default_rng(5)
    counts = np.zeros(3, int)
    for lower, width in [(0.0, 0.05), (0.0, 1.0), (0.05, 0.1), (0.3, 0.3),
                         (1.0, 5.0), (4.0, 40.0)]:
        a = lower * rng.uniform(0.5, 1.5, len(rows))
        b = a + width * rng.uniform(0.5, 1.5, len(rows))
        at_a, at_b = _data(stack, rows, a), _data(stack, rows, b)
        down = variance_shape.decreasing(a, b, m, M, at_a[2:4], at_b[2:4])
        up = variance_shape.increasing(a, b, m, M, at_a[2:4], at_b[2:4])
        cap = variance_shape.concave(a, b, m, M, at_a[4:6], at_b[4:6])
        counts += [down.sum(), up.sum(), cap.sum()]
        bound = many_bounds.between(stack.constant[rows], m, M, a, b, at_a,
                                    at_b)
        top = np.full(len(rows), -np.inf)
        for f in np.linspace(0.0, 1.0, 300):
            ev = many_kernel.evaluate(stack, a + f * (b - a), rows)
            scale = ev.penalty
            assert np.all(ev.score[down] <= 1e-9 * scale[down])
            assert np.all(ev.score[up] >= -1e-9 * scale[up])
            assert np.all(ev.hessian[cap] <= 1e-9 * ev.penalty2[cap])
            top = np.maximum(top, ev.llf)
        assert np.all(bound >= top - 1e-9 * np.maximum(1.0, np.abs(top)))
    # every shape is certified somewhere
    assert np.all(counts > 10)


@pytest.mark.parametrize("reml", [True, False])
def test_tail_bounds_hold(reml):
    stack, rows = _stack(reml, "intercept")
    m, M = _range(stack, rows)
    for T in (0.01, 1.0, 30.0):
        last = np.full(len(rows), T)
        at = _data(stack, rows, last)
        bound = many_bounds.beyond(stack, rows, m, M, last, at)
        falls = variance_shape.decreasing_tail(last, m, M, at[2], at[3])
        top = np.full(len(rows), -np.inf)
        for factor in np.geomspace(1.0, 1e8, 300):
            ev = many_kernel.evaluate(stack, last * factor, rows)
            assert np.all(ev.score[falls] <= 1e-9 * ev.penalty[falls])
            top = np.maximum(top, ev.llf)
        assert np.all(bound >= top - 1e-9 * np.maximum(1.0, np.abs(top)))
        if T >= 1.0:
            # beyond M - 2m a negative score is enough
            assert np.array_equal(falls[T >= M - 2 * m],
                                  (at[3] < at[2])[T >= M - 2 * m])


def test_certificate_refuses_a_local_maximum():
    y, v = np.array(TWO_MAXIMA_Y), np.array(TWO_MAXIMA_V)
    stack = many_kernel.Stack(y[:, None], v[:, None], np.ones((8, 1)), True)
    rows = np.arange(1)
    at_zero = many_kernel.evaluate(stack, np.zeros(1), rows)
    start, _ = many_kernel.moment_variance(stack, rows, at_zero)
    tau2, fit, _, _ = many_fitting.climb(stack, start, rows)
    assert tau2[0] == pytest.approx(0.064383, rel=1e-4)
    # the lower maximum is no certified global maximum: the shape does not
    # settle [fit, far], and the certificate finds a higher point
    m, M = _range(stack, rows)
    far = many_fitting._far_point(tau2, m, M, v.mean())
    at_fit, at_far = many_bounds.point_data(fit), _data(stack, rows, far)
    bound = many_bounds.between(stack.constant, m, M, tau2, far, at_fit,
                                at_far)
    assert bound[0] > fit.llf[0] + 1.0
    best, better, gap = many_fitting.certify(stack, tau2, fit, rows,
                                             at_zero=at_zero)
    assert better[0]
    assert many_kernel.evaluate(stack, best, rows).llf[0] > fit.llf[0] + 1
    res = smm.fit_many(y, v)
    assert res.tau2[0] == pytest.approx(5.3248378, rel=1e-6)
    assert res.llf[0] == pytest.approx(-17.1489875, abs=1e-6)
    assert 0 <= res.gap[0] <= 1e-6


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_accepted_fits_are_the_maximum_of_a_fine_grid(method):
    rng = np.random.default_rng(11)
    n, r = 15, 300
    v = rng.uniform(0.01, 1.0, (n, r)) ** 2 * rng.choice([1.0, 30.0],
                                                          (n, r))
    tau2 = rng.choice([0.0, 0.02, 0.5], r)
    y = rng.standard_normal((n, r)) * np.sqrt(v + tau2)
    y[:, 0], v[:, 0] = np.nan, np.nan
    y[:8, 0], v[:8, 0] = TWO_MAXIMA_Y, TWO_MAXIMA_V
    res = smm.fit_many(y, v, method=method)
    assert res.converged.all()
    assert np.all((res.gap >= 0) & (res.gap <= 1e-6))
    stack = many_kernel.Stack(y, v, np.ones((n, 1)), reml=method == "reml")
    v_max = np.nanmax(v, axis=0)
    top = np.full(r, -np.inf)
    for f in np.r_[0.0, np.geomspace(1e-6, 1e6, 3000)]:
        top = np.maximum(top, many_kernel.evaluate(
            stack, f * v_max, derivatives=False).llf)
    assert np.all(top <= res.llf + res.gap + 1e-9)
    # and the grid comes within its resolution of the fit
    assert np.all(top >= res.llf - 1e-3)


# an ML profile that is convex and falling on its way to its maximum at 0
# (from DerSimonian-Laird's 0.095): scoring's steps crawl there (the
# climb used to stop after 100 iterations at 0.0018, uncertified)
CONVEX_Y = [0.2928873574475317, 0.2767074020048914, -0.9026783951487234,
            1.2968482999401294, -0.02708638451415374,
            0.832739008200907, -0.1998433086309376,
            0.5250339585038755, -0.4677251756009697,
            -0.21006181663513504, -0.39184937983536783,
            1.0410312561350805, 1.1209075489930638,
            0.38980988979634085, -1.3481704440875657,
            0.44167446049416487, 1.4122036322626723,
            -0.02887029365835858]
CONVEX_V = [0.0647412090374794, 0.49181442880908577, 0.8998373041606086,
            0.26307066681122077, 0.4146815167712855,
            0.3598205319007833, 0.8254415591236816,
            0.9780979522801104, 0.2348815408841683,
            0.9486492245863287, 0.2962773752474941,
            0.6403469344437067, 0.49020502390426973,
            0.5278009122079944, 0.4883084627549156,
            0.1353812501548423, 0.49937174359392283,
            0.26664199467164196]


def test_climb_to_a_maximum_at_zero_across_a_convex_stretch():
    y, v = np.array(CONVEX_Y), np.array(CONVEX_V)
    res = smm.fit_many(y, v, method="ml")
    assert res.converged[0] and res.n_iter[0] <= 10
    assert res.tau2[0] == 0.0
    assert 0 <= res.gap[0] <= 1e-6
    single = smm.MixMeta(y, None, S=v, method="ml").fit(tol=1e-12)
    assert abs(res.llf[0] - single.llf) < 1e-8
    assert float(single.psi.values[0, 0]) < 1e-10
    np.testing.assert_allclose(res.params[0], single.params, rtol=1e-6)
    np.testing.assert_allclose(res.bse[0], single.bse, rtol=1e-6)
