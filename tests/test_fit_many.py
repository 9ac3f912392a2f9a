"""
``fit_many`` against a loop of single ``MixMeta`` fits, problem by problem.

The reference fits run the single model's schedule with its Newton
finisher's tolerance tightened (``tol=1e-12``): by default that fit stops
within about 1e-8 of the optimum in ``tau`` (its parameter, the standard
deviation), which can leave ``tau2`` about 2e-6 (relative) from the optimum
that ``fit_many`` reaches; the log-likelihoods agree either way.
"""
import warnings

import numpy as np
import pandas as pd
import pytest

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.fitting import many as many_fitting
from statsmodels_mixmeta.kernels import many as many_kernel
from statsmodels_mixmeta.many import Status
from many_problems import (LOCAL_MAXIMA, TWO_MAXIMA_V, TWO_MAXIMA_Y,
                           random_design)

METHODS = ["fixed", "ml", "reml", "mm"]



def _problems(seed, n_problems, n_studies=50, design="none"):
    """Random problems with 5 to 50 observed studies each, the rest NaN;
    a third without heterogeneity, and the constructed local maxima."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 1.0, (n_studies, n_problems))
    tau2 = rng.choice([0.0, 0.05, 0.5], n_problems)
    y = 0.3 + rng.normal(size=(n_studies, n_problems)) * np.sqrt(v + tau2)
    n_obs = rng.integers(5, n_studies + 1, n_problems)
    for j in range(n_problems):
        y[rng.permutation(n_studies)[n_obs[j]:], j] = np.nan
    v[np.isnan(y) & (rng.random(y.shape) < 0.5)] = np.nan
    extra = [(TWO_MAXIMA_Y, TWO_MAXIMA_V)] + LOCAL_MAXIMA
    for k, (ey, ev) in enumerate(extra):
        y[:, k] = np.nan
        y[:len(ey), k], v[:len(ev), k] = ey, ev
    return y, v, random_design(rng, design, n_studies, n_problems, 2)


def _single(y, v, exog, j, method):
    observed = ~np.isnan(y[:, j])
    X = None if exog is None else (exog if exog.ndim == 2
                                   else exog[:, :, j])[observed]
    kwargs = {"tol": 1e-12} if method in ("ml", "reml") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smm.MixMeta(y[observed, j], X, S=v[observed, j],
                           method=method).fit(**kwargs)


def _relative(a, b, floor=0.0):
    return np.abs(a - b) / np.maximum(np.abs(b), floor)


@pytest.mark.parametrize("design", ["none", "shared", "per"])
@pytest.mark.parametrize("method", METHODS)
def test_equals_single_fits(design, method):
    y, v, exog = _problems(1 + METHODS.index(method), 60, design=design)
    y_before, v_before = y.copy(), v.copy()
    res = smm.fit_many(y, v, exog, method=method, chunk_size=25)
    np.testing.assert_array_equal(y, y_before)      # the caller's data
    np.testing.assert_array_equal(v, v_before)
    assert (res.status == Status.FITTED).all() and res.converged.all()
    for j in range(y.shape[1]):
        single = _single(y, v, exog, j, method)
        if method == "mm":
            assert np.isnan(res.llf[j])
        else:
            assert abs(res.llf[j] - single.llf) < 1e-8
        np.testing.assert_array_less(
            _relative(res.params[j], single.params, 1e-8), 1e-6)
        np.testing.assert_array_less(_relative(res.bse[j], single.bse), 1e-6)
        psi = float(single.psi.values[0, 0])
        if psi > 1e-6:
            assert _relative(res.tau2[j], psi) < 1e-6
        else:
            assert abs(res.tau2[j] - psi) < 1e-10
        assert res.n_obs[j] == single.nobs
        q = single.q_test()
        assert res.q[j] == pytest.approx(q.statistic[0], rel=1e-10)
        assert res.i2[j] == pytest.approx(single.i2.iloc[0], rel=1e-10,
                                          abs=1e-12)


def test_local_maximum_is_escaped():
    y, v = np.array(TWO_MAXIMA_Y), np.array(TWO_MAXIMA_V)
    stack = many_kernel.Stack(y[:, None], v[:, None], np.ones((8, 1)), True)
    start, _ = many_kernel.moment_variance(stack)
    tau2, fit, _, _ = many_fitting.climb(stack, start, np.arange(1))
    assert tau2[0] == pytest.approx(0.064383, rel=1e-4)    # the lower one
    assert fit.llf[0] == pytest.approx(-19.101966, abs=1e-5)
    res = smm.fit_many(y, v)
    assert res.tau2[0] == pytest.approx(5.3248378, rel=1e-6)
    assert res.llf[0] == pytest.approx(-17.1489875, abs=1e-6)
    assert 0 <= res.gap[0] <= 1e-6
    single = _single(y[:, None], v[:, None], None, 0, "reml")
    assert single.mle_retvals["start"] == "scan"
    assert abs(single.llf - res.llf[0]) < 1e-8


def test_results_object():
    y, v, exog = _problems(7, 12, n_studies=10, design="shared")
    res = smm.fit_many(y, v, exog)
    assert len(res) == 12 and res.params.shape == (12, 2)
    assert res.psi is res.tau2
    frame = res.to_frame()
    assert list(frame.columns[:4]) == ["const", "x1", "se:const", "se:x1"]
    np.testing.assert_array_equal(frame["tau2"], res.tau2)
    single = res[3]
    assert isinstance(single.model, smm.MixMeta)
    assert abs(single.llf - res.llf[3]) < 1e-8
    np.testing.assert_allclose(res.problem(-1).params, res.params[-1],
                               rtol=1e-6)
    with pytest.raises(IndexError, match="problem 12 out of range"):
        res.problem(12)


def test_problems_that_cannot_be_fitted_are_reported():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(6, 5))
    v = rng.uniform(0.1, 1, (6, 5))
    y[:, 1] = np.nan                     # no observed study
    y[2:, 2] = np.nan                    # two studies, two coefficients
    x = np.linspace(0, 1, 6)
    exog = np.repeat(np.column_stack([np.ones(6), x])[:, :, None], 5, axis=2)
    exog[:, 1, 3] = 2.0                  # covariate constant: rank 1
    res = smm.fit_many(y, v, exog)
    np.testing.assert_array_equal(
        res.status, [Status.FITTED, Status.EMPTY, Status.TOO_FEW,
                     Status.RANK_DEFICIENT, Status.FITTED])
    assert np.isnan(res.params[1:4]).all() and np.isnan(res.tau2[1:4]).all()
    assert np.isfinite(res.params[[0, 4]]).all()
    assert list(res.messages.index) == [1, 2, 3]
    assert res.messages[1] == "no observed study"
    with pytest.raises(ValueError, match="problem 2 was not fitted: fewer"):
        res.problem(2)
    # two studies are enough for method="fixed" with two coefficients
    fixed = smm.fit_many(y, v, exog, method="fixed")
    assert fixed.status[2] == Status.FITTED


def test_bad_input_names_the_fault():
    y = np.zeros((4, 3))
    v = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"S must have the shape of endog "
                                         r"\(4, 3\).*n_problems \(axis 1\)"):
        smm.fit_many(y, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"n_studies \(axis 0\)"):
        smm.fit_many(y, np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"n_studies = 4 \(axis 0"):
        smm.fit_many(y, v, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"n_problems = 3 .*axis 2"):
        smm.fit_many(y, v, np.ones((4, 2, 2)))
    bad = v.copy()
    bad[2, 1], bad[0, 2] = -1.0, np.nan
    with pytest.raises(ValueError, match=r"2 are not: \(study 0, problem 2\)"
                                         r", \(study 2, problem 1\)"):
        smm.fit_many(y, bad)
    y_nan = y.copy()
    y_nan[0, 2] = np.nan                 # a NaN variance where unobserved
    res = smm.fit_many(y_nan, np.where(np.isnan(y_nan), np.nan, v),
                       method="fixed")
    assert res.fitted.all()
    with pytest.raises(ValueError, match="method must be one of"):
        smm.fit_many(y, v, method="vc")
    with pytest.raises(ValueError, match=r"infinite values: \(study 1, "
                                         r"problem 0\)"):
        smm.fit_many(np.where(np.eye(4, 3, -1) > 0, np.inf, 0.0), v)
    # several outcomes are fitted now: the univariate S is the wrong shape
    with pytest.raises(ValueError, match=r"S must be \(n_studies, k, k, "
                                         r"n_problems\) = \(4, 2, 2, 3\)"):
        smm.fit_many(np.zeros((4, 2, 3)), v)
    with pytest.raises(ValueError, match=r"or \(n_studies, k, n_problems\)"):
        smm.fit_many(np.zeros((4, 2, 3, 1)), v)


def test_chunks_give_the_same_numbers():
    y, v, exog = _problems(11, 40, n_studies=12, design="shared")
    whole = smm.fit_many(y, v, exog, chunk_size=40)
    for kwargs in ({"chunk_size": 7}, {"max_memory": 30000}):
        parts = smm.fit_many(y, v, exog, **kwargs)
        # the same arithmetic, up to the order in which BLAS sums columns
        np.testing.assert_allclose(parts.tau2, whole.tau2, rtol=1e-12)
        np.testing.assert_allclose(parts.params, whole.params, rtol=1e-12)
    assert pd.isna(whole.to_frame()["llf"]).sum() == 0
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        smm.fit_many(y, v, chunk_size=0)


def test_dask_on_a_cluster_is_bit_identical(dask_client):
    import dask.array as da
    y, v, exog = _problems(13, 90, n_studies=15, design="shared")
    reference = smm.fit_many(y, v, exog, chunk_size=30)
    lazy = smm.fit_many(da.from_array(y, chunks=(15, 30)),
                        da.from_array(v, chunks=(15, 30)), exog,
                        chunk_size=30, compute=False)
    assert isinstance(lazy.tau2, da.Array)
    for res in (smm.fit_many(da.from_array(y, chunks=(15, 30)),
                             da.from_array(v, chunks=(15, 30)), exog,
                             chunk_size=30), lazy):
        for name in ("params", "bse", "tau2", "llf", "q", "gap",
                     "converged", "n_iter", "n_obs", "status"):
            np.testing.assert_array_equal(np.asarray(getattr(res, name)),
                                          getattr(reference, name))
    assert abs(lazy.problem(40).llf - reference.llf[40]) < 1e-8
    bad = v.copy()
    study = int(np.flatnonzero(~np.isnan(y[:, 47]))[0])
    bad[study, 47] = -1.0
    with pytest.raises(ValueError,
                       match=rf"\(study {study}, problem 47\)"):
        smm.fit_many(da.from_array(y, chunks=(15, 30)),
                     da.from_array(bad, chunks=(15, 30)), exog)


def test_progress_writes_to_stderr_per_chunk(capsys, monkeypatch):
    import sys
    y, v, exog = _problems(5, 40, n_studies=8, design="shared")
    quiet = smm.fit_many(y, v, exog, chunk_size=10)   # not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)     # tqdm not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    shown = smm.fit_many(y, v, exog, chunk_size=10, progress=True)
    assert "fit_many: 40/40 problems" in capsys.readouterr().err
    np.testing.assert_array_equal(shown.params, quiet.params)
    smm.fit_many(y, v, exog, chunk_size=10, progress=False)
    assert capsys.readouterr().err == ""
    y3 = np.stack([y, y + 0.1], axis=1)                 # two outcomes
    S3 = np.zeros((8, 2, 2, 40))
    S3[:, 0, 0] = S3[:, 1, 1] = np.where(np.isnan(v), 1.0, v)
    smm.fit_many(y3, S3, exog, method="fixed", chunk_size=25, progress=True)
    assert "fit_many: 40/40 problems" in capsys.readouterr().err


def test_progress_by_default_only_on_a_terminal_with_several_chunks(
        monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    y, v, exog = _problems(6, 30, n_studies=8, design="shared")
    monkeypatch.setitem(sys.modules, "tqdm", None)     # the text line
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    for chunk_size, shown in ((10, True), (30, False)):
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        smm.fit_many(y, v, exog, chunk_size=chunk_size)
        assert ("fit_many: 30/30 problems" in terminal.getvalue()) == shown
        assert "two_stage" not in terminal.getvalue()
