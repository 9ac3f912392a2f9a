"""
``fit_many`` with several outcomes per study against a loop of single
``MixMeta`` fits, problem by problem.

The problems are random, ``k = 2`` and ``3`` outcomes over 10 studies with
a fifth of the outcomes missing, Psi from zero to large and often singular
(the boundary).  The reference fits run with ``tol=1e-12`` (see
``test_fit_many.py``).  Problems ``fit_many`` reports as
``Status.UNCERTIFIED`` are exactly those where it could not certify the
maximum; every other one must equal the single fit.
"""
import warnings

import numpy as np
import pytest

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.fitting import many_charts
from statsmodels_mixmeta.kernels import many_multivariate as kernel
from statsmodels_mixmeta.many import Status
from statsmodels_mixmeta.many.validation import check_multivariate


def _problems(seed, n_problems, k, design, n_studies=10, vech=False):
    """Random problems ``(n_studies, k, n_problems)`` with missing
    outcomes; Psi of rank 0 to k."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n_studies, k, k, n_problems)) * 0.3
    S = np.einsum("nabr,ncbr->nacr", B, B) + 0.1 * np.eye(k)[None, :, :,
                                                                None]
    lower = rng.normal(size=(k, k, n_problems)) * rng.choice(
        [0.0, 0.3, 0.7], n_problems)
    psi = np.einsum("abr,cbr->acr", lower, lower)
    V = np.moveaxis(S + psi[None], 3, 1)                    # (N, R, k, k)
    y = 0.2 + np.einsum("nrab,nrb->nar", np.linalg.cholesky(V),
                        rng.normal(size=(n_studies, n_problems, k)))
    y[rng.random(y.shape) < 0.2] = np.nan
    y[0, :, 0] = np.nan                          # a study with no outcome
    X = None if design == "none" else np.column_stack(
        [np.ones(n_studies), rng.normal(size=n_studies)])
    if vech:
        cols, rows = np.triu_indices(k)
        S = S[:, rows, cols]
    return y, S, X


def _single(y, S, X, j, method):
    yj = y[:, :, j]
    keep = ~np.isnan(yj).all(axis=1)
    kwargs = {"tol": 1e-12} if method in ("ml", "reml") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smm.MixMeta(yj[keep], None if X is None else X[keep],
                           S=S[..., j][keep], method=method).fit(**kwargs)


def _relative(a, b, floor):
    return np.abs(a - b) / np.maximum(np.abs(b), floor)


CASES = [(k, design, method) for k in (2, 3) for design in ("none", "shared")
         for method in ("fixed", "ml", "reml", "mm")]


@pytest.mark.parametrize("k, design, method", CASES)
def test_equals_single_fits(k, design, method):
    seed = CASES.index((k, design, method))
    y, S, X = _problems(seed, 25, k, design)
    y_before, S_before = y.copy(), S.copy()
    res = smm.fit_many(y, S, X, method=method, chunk_size=10)
    np.testing.assert_array_equal(y, y_before)      # the caller's data
    np.testing.assert_array_equal(S, S_before)
    assert res.params.shape == (25, k * (1 if X is None else 2))
    assert res.psi.shape == (25, k, k)
    assert res.fitted.all() and res.converged.all()
    certified = res.status == Status.FITTED
    assert certified.mean() >= 0.9
    if method in ("fixed", "mm"):
        assert certified.all()
    for j in np.flatnonzero(certified):
        single = _single(y, S, X, j, method)
        if method == "mm":
            assert np.isnan(res.llf[j])
        else:
            assert abs(res.llf[j] - single.llf) < 1e-8
        np.testing.assert_array_less(
            _relative(res.params[j], single.params, 1e-8), 1e-6)
        np.testing.assert_array_less(_relative(res.bse[j], single.bse,
                                               1e-300), 1e-6)
        psi = single.psi.values
        close = _relative(res.psi[j], psi, 1e-300) < 1e-6
        near_zero = np.abs(res.psi[j] - psi) < 1e-8
        assert (close | near_zero).all()
        assert res.n_obs[j] == single.nobs
        assert res.q[j] == pytest.approx(single.q_test().statistic[0],
                                         rel=1e-10)


def test_vech_S_and_problem_view():
    y, S, X = _problems(20, 6, 2, "shared")
    _, Sv, _ = _problems(20, 6, 2, "shared", vech=True)
    full = smm.fit_many(y, S, X, method="reml")
    half = smm.fit_many(y, Sv, X, method="reml")
    np.testing.assert_array_equal(full.params, half.params)
    np.testing.assert_array_equal(full.psi, half.psi)
    one = full.problem(3)
    assert one.llf == pytest.approx(full.llf[3], abs=1e-6)
    frame = full.to_frame()
    assert list(frame.columns[:4]) == ["const", "x1", "x2", "x3"]
    assert frame["psi[1,0]"].to_numpy() == pytest.approx(full.psi[:, 1, 0])


def test_uncertified_flag_fires_where_single_fits_differ():
    """Among 200 trivariate REML problems, those where a single fit
    reaches another maximum are all flagged; so is a climb cut short."""
    y, S, X = _problems(201, 200, 3, "none")
    res = smm.fit_many(y, S, X, method="reml")
    flagged = np.flatnonzero(res.status == Status.UNCERTIFIED)
    assert 1 <= flagged.size <= 10
    differs = [j for j in flagged
               if abs(_single(y, S, X, j, "reml").llf - res.llf[j]) > 1e-6]
    # the flag fired where it had to: problem 51, where the single fit
    # stops at a lower maximum (by 0.30)
    assert differs == [51]
    assert _single(y, S, X, 51, "reml").llf < res.llf[51] - 0.29
    assert "not certified" in res.messages[flagged[0]]
    short = smm.fit_many(y[..., :5], S[..., :5], X, method="reml",
                         maxiter=1)
    assert (short.status == Status.UNCERTIFIED).all()
    assert not short.converged.any()


def test_missing_outcomes_are_exact():
    """A study's unobserved outcome changes nothing, whatever its S."""
    y, S, X = _problems(7, 4, 2, "shared")
    y[3, 1, :] = np.nan
    base = smm.fit_many(y, S, X, method="reml")
    S2 = S.copy()
    S2[3, 1, 1, :] = 1e6                     # the unobserved variance
    S2[3, 0, 1, :] = S2[3, 1, 0, :] = 0.0    # and its covariance
    other = smm.fit_many(y, S2, X, method="reml")
    np.testing.assert_array_equal(base.llf, other.llf)
    np.testing.assert_array_equal(base.params, other.params)


def test_kernel_derivatives_match_differences():
    y, S, X = _problems(3, 2, 3, "shared")
    y, S, X = check_multivariate(y, S, X)
    rows = np.arange(2)
    units = kernel.vech_units(3)[0]
    psi = np.array([[[0.5, 0.1, 0.0], [0.1, 0.4, 0.2], [0.0, 0.2, 0.3]]] * 2)
    for reml in (False, True):
        stack = kernel.MultiStack(y, S, X, reml)
        ev = kernel.evaluate(stack, psi, rows, derivatives=True)
        h = 1e-5
        for a, unit in enumerate(units):
            up = kernel.evaluate(stack, psi + h * unit, rows, True)
            down = kernel.evaluate(stack, psi - h * unit, rows, True)
            np.testing.assert_allclose((up.llf - down.llf) / (2 * h),
                                       ev.grad[:, a], rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose((up.grad - down.grad) / (2 * h),
                                       ev.hess[:, a], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bscov, n_theta", [("unstr", 6), ("diag", 3),
                                             ("id", 1)])
def test_charts_round_trip_and_jacobian(bscov, n_theta):
    chart = many_charts.make_chart(bscov, 3)
    assert chart.n_params == n_theta
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4, n_theta))
    psi = chart.psi_of(theta)
    J = chart.jacobian(theta)
    h = 1e-6
    cols, rows = np.triu_indices(3)
    for t in range(n_theta):
        step = np.zeros(n_theta)
        step[t] = h
        up, down = chart.psi_of(theta + step), chart.psi_of(theta - step)
        np.testing.assert_allclose(((up - down) / (2 * h))[:, rows, cols],
                                   J[:, :, t], atol=1e-8)
        for s in range(n_theta):
            step2 = np.zeros(n_theta)
            step2[s] = h
            second = (chart.jacobian(theta + step2)[:, :, t]
                      - chart.jacobian(theta - step2)[:, :, t]) / (2 * h)
            np.testing.assert_allclose(second, np.broadcast_to(
                chart.curvature[t, s], second.shape), atol=1e-8)
    back = chart.psi_of(chart.theta_of(psi))
    np.testing.assert_allclose(back, psi, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bscov", ["diag", "id"])
@pytest.mark.parametrize("method", ["ml", "reml"])
def test_structured_psi_equals_single_fits(bscov, method):
    y, S, X = _problems(30 + (bscov == "id"), 15, 3, "shared")
    res = smm.fit_many(y, S, X, method=method, bscov=bscov)
    assert (res.status == Status.FITTED).all()
    for j in range(15):
        yj = y[:, :, j]
        keep = ~np.isnan(yj).all(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            single = smm.MixMeta(yj[keep], X[keep], S=S[..., j][keep],
                                 method=method, bscov=bscov).fit(tol=1e-12)
        assert abs(res.llf[j] - single.llf) < 1e-8
        np.testing.assert_array_less(
            _relative(res.params[j], single.params, 1e-8), 1e-6)
        np.testing.assert_array_less(_relative(res.bse[j], single.bse,
                                               1e-300), 1e-6)
        psi = single.psi.values
        assert ((_relative(res.psi[j], psi, 1e-300) < 1e-6)
                | (np.abs(res.psi[j] - psi) < 1e-8)).all()
        assert res.psi[j][~np.eye(3, dtype=bool)].max() == 0.0
    one = res.problem(2, tol=1e-12)
    assert one.llf == pytest.approx(res.llf[2], abs=1e-8)
    np.testing.assert_allclose(one.psi.values, res.psi[2], rtol=1e-6,
                               atol=1e-8)


def test_chunks_do_not_change_the_numbers():
    y, S, X = _problems(40, 30, 2, "shared")
    whole = smm.fit_many(y, S, X, method="reml")
    parts = smm.fit_many(y, S, X, method="reml", chunk_size=7)
    np.testing.assert_array_equal(whole.status, parts.status)
    np.testing.assert_allclose(parts.llf, whole.llf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(parts.params, whole.params, rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(parts.psi, whole.psi, rtol=1e-10,
                               atol=1e-14)


def test_bad_input_names_the_fault():
    y, S, X = _problems(5, 4, 2, "shared")
    with pytest.raises(ValueError, match=r"S must be \(n_studies, k, k, "
                                         r"n_problems\) = \(10, 2, 2, 4\).*"
                                         r"differ in axis \[3\]"):
        smm.fit_many(y, S[..., :3], X)
    with pytest.raises(ValueError, match=r"n_studies = 10 \(axis 0"):
        smm.fit_many(y, S, X[:9])
    with pytest.raises(ValueError, match=r"n_problems = 4 \(axis 2 of "
                                         r"endog\), got \(10, 1, 3\)"):
        smm.fit_many(y, S, np.ones((10, 1, 3)))     # a design per problem
    y[4, :, 2] = y[6, :, 3] = 0.1                # observed
    bad = S.copy()
    bad[4, 0, 1, 2] = bad[4, 1, 0, 2] = 5.0      # |corr| > 1
    bad[6, 1, 1, 3] = -1.0
    with pytest.raises(ValueError, match=r"positive definite.*2 studies are "
                       r"not: \(study 4, problem 2\), \(study 6, problem 3\)"):
        smm.fit_many(y, bad, X)
    y_ok = y.copy()
    y_ok[6, 1, 3] = np.nan                     # that variance unobserved
    bad[4, 0, 1, 2] = bad[4, 1, 0, 2] = S[4, 0, 1, 2]
    smm.fit_many(y_ok, bad, X, method="fixed")
    asym = S.copy()
    asym[2, 0, 1, 1] += 1.0
    with pytest.raises(ValueError, match=r"symmetric.*\(study 2, problem 1\)"):
        smm.fit_many(y, asym, X)
    import dask.array as da          # the dask extra, installed in CI
    with pytest.raises(ValueError, match=r"endog must be chunked along the "
                                         r"problem axis \(axis 2\) only, got "
                                         r"2 chunks along axis 0"):
        smm.fit_many(da.from_array(y, chunks=(5, 2, 2)), S, X)
    with pytest.raises(ValueError, match=r"S must be chunked along the "
                                         r"problem axis \(axis 3\) only, got "
                                         r"2 chunks along axis 1"):
        smm.fit_many(da.from_array(y), da.from_array(S, chunks=(10, 1, 2, 2)),
                     X)
    with pytest.raises(ValueError, match=r"'diag' needs method 'ml' or "
                                         r"'reml'"):
        smm.fit_many(da.from_array(y), S, X, method="fixed", bscov="diag")
    with pytest.raises(ValueError, match=r"bscov must be one of \('unstr', "
                                         r"'diag', 'id'\).*'cs'"):
        smm.fit_many(y, S, X, bscov="cs")
    with pytest.raises(ValueError, match="'diag' needs method 'ml' or 'reml'"):
        smm.fit_many(y, S, X, method="mm", bscov="diag")
    empty = y.copy()
    empty[:, :, 1] = np.nan
    res = smm.fit_many(empty, S, X, method="reml")
    assert res.status[1] == Status.EMPTY and np.isnan(res.params[1]).all()
    apart = y.copy()
    apart[:5, 0, 3] = apart[5:, 1, 3] = np.nan   # never observed together
    res = smm.fit_many(apart, S, X, method="mm")
    assert res.status[3] == Status.UNPAIRED and not res.fitted[3]
    assert "never observed in the same study" in res.messages[3]
    assert res.fitted[[0, 1, 2]].all()
    assert smm.fit_many(apart, S, X, method="reml").fitted[3]
    few = y.copy()
    few[3:, :, 2] = np.nan                       # 2 studies x 2 outcomes
    res = smm.fit_many(few, S, X, method="reml")
    assert res.status[2] == Status.TOO_FEW


@pytest.mark.parametrize("vech", [False, True])
def test_dask_on_a_cluster_is_bit_identical(dask_client, vech):
    import dask.array as da
    y, S, X = _problems(21, 60, 2, "shared", vech=vech)
    reference = smm.fit_many(y, S, X, method="reml", chunk_size=20)
    assert reference.fitted.sum() >= 55
    chunks_S = (10, 3, 20) if vech else (10, 2, 2, 20)
    eager = smm.fit_many(da.from_array(y, chunks=(10, 2, 20)),
                         da.from_array(S, chunks=chunks_S), X,
                         method="reml", chunk_size=20)
    lazy = smm.fit_many(da.from_array(y, chunks=(10, 2, 20)),
                        da.from_array(S, chunks=chunks_S), X,
                        method="reml", chunk_size=20, compute=False)
    assert isinstance(lazy.psi, da.Array) and lazy.psi.shape == (60, 2, 2)
    assert isinstance(eager.psi, np.ndarray)
    for res in (eager, lazy):
        for name in ("params", "bse", "psi", "llf", "q", "gap",
                     "converged", "n_iter", "n_obs", "status"):
            np.testing.assert_array_equal(np.asarray(getattr(res, name)),
                                          getattr(reference, name))
    j = int(np.flatnonzero(reference.status == Status.FITTED)[-1])
    assert abs(lazy.problem(j).llf - reference.llf[j]) < 1e-8
    np.testing.assert_allclose(lazy.problem(j).params,
                               reference.params[j], rtol=1e-6)
    if vech:
        return
    bad = S.copy()
    study = int(np.flatnonzero(~np.isnan(y[:, 0, 47]))[0])
    bad[study, 0, 0, 47] = -1.0                 # in the third Dask chunk
    with pytest.raises(ValueError, match=rf"\(study {study}, problem 47\)"):
        smm.fit_many(da.from_array(y, chunks=(10, 2, 20)),
                     da.from_array(bad, chunks=(10, 2, 2, 20)), X)
