"""
The compiled engine of ``fit_many`` (``engine="numba"``, the ``fast``
extra) against the numpy engine, problem by problem: the same estimator,
climb and certificate, so the same answers to rounding (log-likelihood
1e-10 absolute; coefficients, standard errors and ``tau2`` 1e-8 relative;
status and convergence identical), on random problems with 5 to 50
observed studies, NaN studies, problems that cannot be fitted and profiles
with two maxima where the certificate must find the global one.
"""
import sys

import numpy as np
import pytest

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.many import Status
from many_problems import LOCAL_MAXIMA, TWO_MAXIMA_V, TWO_MAXIMA_Y



def _problems(seed, n_problems, n_studies=50):
    """Random problems with 5 to 50 observed studies (the rest NaN), a
    third without heterogeneity, some that cannot be fitted, the local
    maxima above and their mirror images and rescalings."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 1.0, (n_studies, n_problems)) ** rng.choice(
        [1.0, 2.0], n_problems)
    tau2 = rng.choice([0.0, 0.05, 0.5], n_problems)
    y = 0.3 + rng.normal(size=(n_studies, n_problems)) * np.sqrt(v + tau2)
    n_obs = rng.integers(5, n_studies + 1, n_problems)
    order = rng.random((n_studies, n_problems)).argsort(axis=0)
    y[order >= n_obs] = np.nan
    v[np.isnan(y) & (rng.random(y.shape) < 0.5)] = np.nan
    extra = [(TWO_MAXIMA_Y, TWO_MAXIMA_V)] + LOCAL_MAXIMA
    k = 0
    for scale in (1.0, -1.0, 10.0, 0.1):
        for ey, ev in extra:
            y[:, k] = np.nan
            y[:len(ey), k] = scale * np.asarray(ey)
            v[:len(ev), k] = scale * scale * np.asarray(ev)
            k += 1
    # one observed study, none, two
    y[1:, -3] = np.nan
    y[0, -3], v[0, -3] = 0.1, 0.2
    y[:, -2] = np.nan
    y[:2, -1], v[:2, -1] = y[:2, 0], v[:2, 0]
    y[2:, -1] = np.nan
    return y, v


def _relative(a, b, floor=0.0):
    """Largest ``|a - b| / max(|a|, |b|, floor)`` (NaN where both are)."""
    both = np.isfinite(a) & np.isfinite(b)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    scale = np.where(both, np.maximum(np.maximum(np.abs(a), np.abs(b)),
                                      floor), 1.0)
    return float(np.max(np.where(both, np.abs(a - b) / np.where(
        scale > 0, scale, 1.0), 0.0), initial=0.0))


def _compare(y, v, exog, method):
    ref = smm.fit_many(y, v, exog, method=method, engine="numpy")
    fast = smm.fit_many(y, v, exog, method=method, engine="numba")
    assert ref.engine == "numpy" and fast.engine == "numba"
    assert np.array_equal(fast.status, ref.status)
    assert np.array_equal(fast.converged, ref.converged)
    assert np.array_equal(fast.n_obs, ref.n_obs)
    assert np.array_equal(np.isnan(fast.llf), np.isnan(ref.llf))
    assert np.nanmax(np.abs(fast.llf - ref.llf), initial=0.0) <= 1e-10
    for name in ("params", "bse", "tau2"):
        assert _relative(getattr(fast, name), getattr(ref, name)) <= 1e-8, \
            name
    # Q of a problem with one study is 0 up to the rounding of its residual
    assert _relative(fast.q, ref.q, floor=1e-6) <= 1e-8
    assert np.array_equal(np.isnan(fast.gap), np.isnan(ref.gap))
    return ref, fast


@pytest.mark.parametrize("method", ["reml", "ml", "fixed", "mm"])
@pytest.mark.parametrize("design", ["intercept", "slope"])
def test_compiled_equals_numpy(method, design):
    y, v = _problems(11 if design == "intercept" else 12, 3000)
    exog = None if design == "intercept" else np.random.default_rng(
        3).uniform(0.5, 2.0, (y.shape[0], 1))
    ref, fast = _compare(y, v, exog, method)
    # the last three problems: one observed study (fitted with fixed
    # effects only), none, two
    assert (ref.status == Status.FITTED).sum() == 2998 + (method == "fixed")
    fitted = ref.status == Status.FITTED
    assert fast.converged[fitted].all()


def test_compiled_finds_the_global_maximum():
    # the global maximum of TWO_MAXIMA under REML: tau2 = 5.325, llf
    # -17.149 (test_fit_many.py, against a dense grid), also mirrored and
    # rescaled (tau2 scales with the variances)
    y, v = _problems(5, 40)
    res = smm.fit_many(y, v, method="reml", engine="numba")
    for k, scale in zip((0, 3, 6, 9), (1.0, -1.0, 10.0, 0.1)):
        assert res.tau2[k] == pytest.approx(5.325 * scale ** 2, rel=1e-3)
        assert res.gap[k] < 1e-6
    assert res.llf[0] == pytest.approx(-17.149, abs=1e-3)
    assert res.llf[3] == pytest.approx(res.llf[0], abs=1e-9)
    ref = smm.fit_many(y, v, method="reml", engine="numpy")
    assert np.allclose(res.tau2[:12], ref.tau2[:12], rtol=1e-8, atol=0)


def test_unfittable_problems_are_reported_alike():
    y, v = _problems(6, 40)
    for method in ("reml", "fixed"):
        ref, fast = _compare(y, v, None, method)
        # one observed study: too few for a random effect, not for fixed
        assert fast.status[-3] == (Status.TOO_FEW if method == "reml"
                                   else Status.FITTED)
        assert fast.status[-2] == Status.EMPTY
        assert fast.status[-1] == Status.FITTED
    # a design column of zeros on a problem's observed studies
    x = np.ones((y.shape[0], 1))
    x[:2] = 0.0
    ref, fast = _compare(y, v, x, "reml")
    assert fast.status[-1] == Status.RANK_DEFICIENT


def test_engine_choice_and_validation(monkeypatch):
    y, v = _problems(7, 30)
    assert smm.fit_many(y, v).engine == "numba"
    # two coefficients: the numpy engine fits them
    X = np.column_stack([np.ones(y.shape[0]), np.arange(y.shape[0])])
    assert smm.fit_many(y, v, X, engine="numba").engine == "numpy"
    with pytest.raises(ValueError, match="engine must be one of"):
        smm.fit_many(y, v, engine="torch")
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(ImportError, match="'fast' extra"):
        smm.fit_many(y, v, engine="numba")
    assert smm.fit_many(y, v, engine="auto").engine == "numpy"


def test_chunks_and_dask_give_bit_identical_numbers(dask_client):
    # each problem is fitted on its own: no chunk, block or worker changes
    # its numbers
    import dask.array as da
    y, v = _problems(8, 90, n_studies=15)
    reference = smm.fit_many(y, v, engine="numba")
    small = smm.fit_many(y, v, engine="numba", chunk_size=7)
    lazy = smm.fit_many(da.from_array(y, chunks=(15, 30)),
                        da.from_array(v, chunks=(15, 30)), engine="numba")
    assert lazy.engine == "numba"
    for res in (small, lazy):
        for name in ("params", "bse", "tau2", "llf", "q", "gap",
                     "converged", "n_iter", "n_obs", "status"):
            np.testing.assert_array_equal(np.asarray(getattr(res, name)),
                                          getattr(reference, name))


def test_handed_back_problems_get_the_numpy_answers():
    # certificates allowed 5 points: problems that need more are handed
    # back, fitted by the numpy engine, with its numbers exactly
    from statsmodels_mixmeta.many import engine as many_engine
    from statsmodels_mixmeta.many import fit as many_fit
    y, v = _problems(21, 400)
    ref = smm.fit_many(y, v, method="reml", engine="numpy")
    out = many_fit._allocate(400, 1)
    args = (y, v, np.ones((y.shape[0], 1)), "reml", 100)
    rows = many_engine.fit_chunk_compiled(*args, out, many_fit.RANK_RCOND,
                                          max_points=5)
    assert 50 < len(rows) < 350
    assert np.isnan(out["tau2"][rows]).all()
    many_fit._hand_back(args, out, rows)
    for name in ("params", "bse", "tau2", "llf", "gap", "converged",
                 "n_iter", "status"):
        np.testing.assert_array_equal(out[name][rows],
                                      getattr(ref, name)[rows])
    assert np.nanmax(np.abs(out["llf"] - ref.llf)) <= 1e-10
    assert np.array_equal(np.isnan(out["llf"]), np.isnan(ref.llf))
    assert _relative(out["tau2"], ref.tau2) <= 1e-8
