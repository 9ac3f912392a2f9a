"""
``fit_many``'s input, through the public API: Dask input gives the numbers
of numpy input bit for bit (one outcome with no, a shared and a per-problem
design; several outcomes), Dask chunkings along any axis but the problems'
are refused, and bad input is a ValueError that names what is wrong (the
argument, the axis and both sizes, the problems and studies at fault) and
what would be valid, before anything is fitted.  The caller's arrays are
never modified.
"""
import numpy as np
import pytest

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.many import Status
from many_problems import random_design

FIELDS = ("params", "bse", "tau2", "llf", "q", "gap", "converged", "n_iter",
          "n_obs", "status")


def _univariate(seed, n_problems, n_studies=12, design="none"):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.05, 1.0, (n_studies, n_problems))
    y = 0.2 + rng.normal(size=v.shape) * np.sqrt(
        v + rng.choice([0.0, 0.3], n_problems))
    y[rng.random(y.shape) < 0.15] = np.nan
    y[:, 3 % n_problems] = np.nan                    # an empty problem
    return y, v, random_design(rng, design, n_studies, n_problems, 1)


def _multivariate(seed, n_problems, k=2, n_studies=10):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n_studies, k, k, n_problems)) * 0.3
    S = np.einsum("nabr,ncbr->nacr", B, B) + 0.1 * np.eye(k)[None, :, :,
                                                                None]
    y = rng.normal(size=(n_studies, k, n_problems))
    y[rng.random(y.shape) < 0.2] = np.nan
    X = np.column_stack([np.ones(n_studies), rng.normal(size=n_studies)])
    return y, S, X


def _assert_identical(res, reference, fields=FIELDS):
    for name in fields:
        np.testing.assert_array_equal(np.asarray(getattr(res, name)),
                                      getattr(reference, name), err_msg=name)


# ------------------------------------------------------------------- Dask
@pytest.mark.parametrize("design", ["none", "shared", "per"])
def test_dask_univariate_is_bit_identical(dask_client, design):
    import dask.array as da
    y, v, exog = _univariate(1, 90, design=design)
    reference = smm.fit_many(y, v, exog, method="reml", chunk_size=30)
    assert (reference.status == Status.EMPTY).sum() == 1
    endog, S = da.from_array(y, chunks=(12, 30)), da.from_array(
        v, chunks=(12, 45))                    # S rechunked to endog's
    # a per-problem design as numpy and as Dask (other problem chunks)
    designs = [exog] if design != "per" else [
        exog, da.from_array(exog, chunks=(12, 2, 45))]
    for X in designs:
        eager = smm.fit_many(endog, S, X, method="reml", chunk_size=30)
        lazy = smm.fit_many(endog, S, X, method="reml", chunk_size=30,
                            compute=False)
        assert isinstance(eager.params, np.ndarray)
        assert isinstance(lazy.params, da.Array)
        _assert_identical(eager, reference)
        _assert_identical(lazy, reference)
    j = int(np.flatnonzero(reference.status == Status.FITTED)[-1])
    single = lazy.problem(j, tol=1e-12)
    assert abs(single.llf - reference.llf[j]) < 1e-8


@pytest.mark.parametrize("method, design", [("fixed", "shared"),
                                            ("mm", "shared"), ("ml", "per")])
def test_dask_multivariate_is_bit_identical(dask_client, method, design):
    import dask.array as da
    y, S, X = _multivariate(2, 40)
    if design == "per":
        rng = np.random.default_rng(0)
        X = np.concatenate([np.ones((10, 1, 40)),
                            rng.normal(size=(10, 1, 40))], axis=1)
    reference = smm.fit_many(y, S, X, method=method, chunk_size=20)
    assert reference.fitted.sum() >= 38
    designs = [X] if design == "shared" else [
        X, da.from_array(X, chunks=(10, 2, 8))]
    for exog in designs:
        res = smm.fit_many(da.from_array(y, chunks=(10, 2, 20)),
                           da.from_array(S, chunks=(10, 2, 2, 10)), exog,
                           method=method, chunk_size=20)
        _assert_identical(res, reference, FIELDS[:2] + FIELDS[3:])
        np.testing.assert_array_equal(res.psi, reference.psi)
    if design == "per":
        j = int(np.flatnonzero(reference.status == Status.FITTED)[0])
        single = res.problem(j, tol=1e-12)
        assert abs(single.llf - reference.llf[j]) < 1e-8


def test_dask_chunks_along_studies_are_refused():
    """A chunk of studies is not a problem: merging such chunks silently
    could need far more memory than the caller's chunks, so the error says
    how to rechunk, for every array and axis but the problems'."""
    import dask.array as da
    y, v, exog = _univariate(3, 20, design="per")
    ok_y, ok_v = da.from_array(y, chunks=(12, 10)), da.from_array(
        v, chunks=(12, 10))
    with pytest.raises(ValueError, match=r"endog must be chunked along the "
                       r"problem axis \(axis 1\) only, got 2 chunks along "
                       r"axis 0 \(6, 6\): rechunk it, e\.g\. "
                       r"endog\.rechunk\(\{0: -1\}\)"):
        smm.fit_many(da.from_array(y, chunks=(6, 10)), ok_v)
    with pytest.raises(ValueError, match=r"S must be chunked along the "
                                         r"problem axis \(axis 1\) only, got "
                                         r"3 chunks along axis 0"):
        smm.fit_many(ok_y, da.from_array(v, chunks=(4, 20)))
    for chunks, axis in (((6, 2, 10), 0), ((12, 1, 10), 1)):
        with pytest.raises(ValueError, match=rf"exog must be chunked along "
                           rf"the problem axis \(axis 2\) only, got 2 chunks "
                           rf"along axis {axis}"):
            smm.fit_many(ok_y, ok_v, da.from_array(exog, chunks=chunks))
    ym, Sm, X = _multivariate(4, 6)
    with pytest.raises(ValueError, match=r"endog must be chunked along the "
                                         r"problem axis \(axis 2\) only, got "
                                         r"2 chunks along axis 1"):
        smm.fit_many(da.from_array(ym, chunks=(10, 1, 6)), Sm, X)
    cols, rows = np.triu_indices(2)
    with pytest.raises(ValueError, match=r"S must be chunked along the "
                                         r"problem axis \(axis 2\) only, got "
                                         r"2 chunks along axis 1"):
        smm.fit_many(da.from_array(ym), da.from_array(
            Sm[:, rows, cols], chunks=(10, 2, 6)), X)
    with pytest.raises(ValueError, match=r"exog must be chunked along the "
                                         r"problem axis \(axis 2\) only, got "
                                         r"2 chunks along axis 0"):
        smm.fit_many(da.from_array(ym), Sm, da.ones((10, 1, 6),
                                                    chunks=(5, 1, 6)))


def test_dask_errors_name_the_problems_of_the_whole_array(dask_client):
    import dask.array as da
    y, v, _ = _univariate(5, 60)
    bad = v.copy()
    study = int(np.flatnonzero(~np.isnan(y[:, 47]))[0])
    bad[study, 47] = -0.5                    # in the third chunk of 20
    with pytest.raises(ValueError, match=rf"\(study {study}, problem 1047\)"
                                         rf" \(in problem 1047\)"):
        smm.fit_many(da.from_array(y, chunks=(12, 20)),
                     da.from_array(bad, chunks=(12, 20)), problem_offset=1000)
    # a lazy fit: the error comes when the results are computed
    lazy = smm.fit_many(da.from_array(y, chunks=(12, 20)),
                        da.from_array(bad, chunks=(12, 20)), compute=False)
    with pytest.raises(ValueError, match=rf"problem 47\)"):
        np.asarray(lazy.params)


# -------------------------------------------------------------- bad input
def test_shapes_that_do_not_match_name_the_axis_and_both_sizes():
    y, v, _ = _univariate(6, 5)
    with pytest.raises(ValueError, match=r"differ in n_studies \(axis 0\): "
                                         r"12 in endog, 11 in S"):
        smm.fit_many(y, v[:11])
    with pytest.raises(ValueError, match=r"differ in n_problems \(axis 1\): "
                                         r"5 in endog, 4 in S"):
        smm.fit_many(y, v[:, :4])
    with pytest.raises(ValueError, match=r"got 1 dimensions \(12,\)"):
        smm.fit_many(y, v[:, 0])
    with pytest.raises(ValueError, match=r"n_studies = 12 \(axis 0 of "
                                         r"endog\), got \(10, 2\)"):
        smm.fit_many(y, v, np.ones((10, 2)))
    with pytest.raises(ValueError, match=r"n_problems = 5 \(axis 1 of "
                                         r"endog\), got \(12, 2, 4\)"):
        smm.fit_many(y, v, np.ones((12, 2, 4)))
    with pytest.raises(ValueError, match="at least one column"):
        smm.fit_many(y, v, np.ones((12, 0)))
    ym, Sm, X = _multivariate(7, 4, k=3)
    with pytest.raises(ValueError, match=r"differ in axis \[1, 2\] \(k: 3 "
                                         r"from endog, 2 in S, k: 3 from "
                                         r"endog, 2 in S\)"):
        smm.fit_many(ym, Sm[:, :2, :2], X)
    with pytest.raises(ValueError, match=r"differ in axis \[3\] \(n_problems"
                                         r": 4 from endog, 3 in S\)"):
        smm.fit_many(ym, Sm[..., :3], X)
    cols, rows = np.triu_indices(3)
    vech = Sm[:, rows, cols]                          # (10, 6, 4)
    with pytest.raises(ValueError, match=r"lower triangles of k = 3 outcomes"
                                         r" \(axis 1 of endog\) have "
                                         r"k\(k\+1\)/2 = 6 values on axis 1, "
                                         r"not 5"):
        smm.fit_many(ym, vech[:, :5], X)
    with pytest.raises(ValueError, match=r"differ in n_studies \(axis 0\): "
                                         r"10 in endog, 9 in S"):
        smm.fit_many(ym, vech[:9], X)
    with pytest.raises(ValueError, match=r"n_studies = 10 \(axis 0 of endog"
                                         r"\), got \(8, 2\)"):
        smm.fit_many(ym, Sm, X[:8])
    with pytest.raises(ValueError, match=r"n_problems = 4 \(axis 2 of endog"
                                         r"\), got \(10, 2, 5\)"):
        smm.fit_many(ym, Sm, np.ones((10, 2, 5)))


def test_s_not_positive_names_problems_and_studies_and_fits_nothing():
    y, v, _ = _univariate(8, 30)
    bad = v.copy()
    observed = np.argwhere(~np.isnan(y))
    faults = observed[[5, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 290]]
    bad[faults[:, 0], faults[:, 1]] = -1.0
    bad[faults[1, 0], faults[1, 1]] = np.nan    # NaN where observed
    first = sorted(map(tuple, faults))[0]
    n_problems = len(set(faults[:, 1]))
    with pytest.raises(ValueError) as info:
        smm.fit_many(y, bad)
    message = str(info.value)
    assert message.startswith("S must be a positive, finite variance "
                              "wherever endog is observed; 13 are not: "
                              f"(study {first[0]}, problem {first[1]}), ")
    assert " and 3 more (in " in message          # ten pairs listed
    assert f"(in {n_problems} problems: " in message
    assert "set endog to NaN where a study does not inform" in message
    # several outcomes: a study's observed block not positive definite
    ym, Sm, X = _multivariate(9, 12)
    ym[2, :, 7] = ym[5, :, 11] = 0.3
    Sm[2, 0, 1, 7] = Sm[2, 1, 0, 7] = 10.0          # |correlation| > 1
    Sm[5, 1, 1, 11] = -0.2                          # a negative variance
    with pytest.raises(ValueError, match=r"positive definite on the observed"
                                         r" outcomes of each study; 2 studies"
                                         r" are not: \(study 2, problem 7\), "
                                         r"\(study 5, problem 11\) \(in 2 "
                                         r"problems: 7, 11\)"):
        smm.fit_many(ym, Sm, X)
    Sm[2, 0, 1, 7] = np.nan                         # NaN where observed
    with pytest.raises(ValueError, match=r"S must be finite for the observed"
                                         r" outcomes; 1 studies are not: "
                                         r"\(study 2, problem 7\)"):
        smm.fit_many(ym, Sm, X)


def test_one_bad_problem_in_a_hundred_thousand_is_named():
    rng = np.random.default_rng(10)
    y = rng.normal(size=(5, 100_000))
    v = rng.uniform(0.1, 1.0, y.shape)
    v[3, 73_456] = -1e-3
    with pytest.raises(ValueError, match=r"1 are not: \(study 3, problem "
                                         r"73456\) \(in problem 73456\)"):
        smm.fit_many(y, v)
    ym = rng.normal(size=(3, 2, 100_000))
    Sm = np.zeros((3, 2, 2, 100_000))
    Sm[:, 0, 0] = Sm[:, 1, 1] = 0.5
    Sm[1, 0, 1, 99_999] = Sm[1, 1, 0, 99_999] = 0.9    # correlation 1.8
    with pytest.raises(ValueError, match=r"1 studies are not: \(study 1, "
                                         r"problem 99999\)"):
        smm.fit_many(ym, Sm)


def test_all_nan_problems_are_reported_not_refused():
    y, v, exog = _univariate(11, 8, design="shared")
    y[:, 5] = np.nan
    v[:, 5] = np.nan                        # nothing at all in problem 5
    res = smm.fit_many(y, v, exog)
    np.testing.assert_array_equal(np.flatnonzero(res.status == Status.EMPTY),
                                  [3, 5])
    frame = res.to_frame()
    assert (frame.loc[[3, 5], "status"] == "no observed study").all()
    assert frame.loc[[3, 5], "n_obs"].tolist() == [0, 0]
    assert frame.loc[[3, 5], ["const", "se:const", "tau2", "llf"]].isna(
        ).all().all()
    assert frame.drop(index=[3, 5])["status"].eq("fitted").all()
    assert list(res.messages.index) == [3, 5]
    assert "Status.EMPTY" in smm.fit_many.__doc__
    ym, Sm, X = _multivariate(12, 5)
    ym[..., 2] = np.nan
    Sm[..., 2] = np.nan
    res = smm.fit_many(ym, Sm, X, method="reml")
    assert res.status[2] == Status.EMPTY and res.fitted.sum() == 4
    assert res.to_frame().loc[2, "status"] == "no observed study"


def test_nan_and_inf_in_the_design_are_named():
    y, v, exog = _univariate(13, 6, design="shared")
    bad = exog.copy()
    bad[4, 1], bad[9, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"exog must be finite \(NaN or inf "
                                         r"in a design shared by all "
                                         r"problems\); 2 studies are not: "
                                         r"studies \[4, 9\], columns \[1\]"):
        smm.fit_many(y, v, bad)
    _, _, per = _univariate(13, 6, design="per")
    per[2, 1, 4] = np.inf
    per[0, 1, 0] = np.nan
    y[0, 0] = np.nan                    # unobserved there: ignored
    j, study = 4, 2
    y[study, j] = 0.1
    with pytest.raises(ValueError, match=r"exog must be finite where endog "
                                         r"is observed; 1 are not: \(study 2,"
                                         r" problem 4\)"):
        smm.fit_many(y, v, per)
    per[2, 1, 4] = 0.0
    assert smm.fit_many(y, v, per).fitted.sum() == 5
    ym, Sm, X = _multivariate(14, 3)
    X[7, 1] = -np.inf
    with pytest.raises(ValueError, match=r"studies \[7\], columns \[1\]"):
        smm.fit_many(ym, Sm, X)


def test_non_numeric_input_is_named():
    y, v, exog = _univariate(15, 4)
    text = y.astype(object)
    text[1, 2] = "0.3a"
    with pytest.raises(ValueError, match=r"endog must be numeric .*could not"
                                         r" convert it"):
        smm.fit_many(text, v)
    with pytest.raises(ValueError, match=r"S must be numeric"):
        smm.fit_many(y, [["a"] * 4] * 12)
    with pytest.raises(ValueError, match=r"exog must be numeric"):
        smm.fit_many(y, v, np.full((12, 2), "x"))
    with pytest.raises(ValueError, match=r"S must be real numbers, got "
                                         r"complex values"):
        smm.fit_many(y, v + 0j)
    ym, Sm, X = _multivariate(16, 2)
    with pytest.raises(ValueError, match=r"endog must be real numbers"):
        smm.fit_many(ym + 1j, Sm, X)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "vc"}, r"method must be one of \('fixed', 'ml', 'reml', "
                       r"'mm'\) for fit_many, got 'vc'"),
    ({"bscov": "cs"}, r"bscov must be one of \('unstr', 'diag', 'id'\), got "
                      r"'cs'"),
    ({"chunk_size": 0}, r"chunk_size must be a positive integer \(problems "
                        r"per chunk\), got 0"),
    ({"chunk_size": 2.5}, r"chunk_size must be a positive integer.*2\.5"),
    ({"chunk_size": "10"}, r"chunk_size must be a positive integer.*'10'"),
    ({"max_memory": -1}, r"max_memory must be a positive, finite number of "
                         r"bytes, got -1"),
    ({"max_memory": np.inf}, r"max_memory must be .* got inf"),
    ({"max_memory": "1GB"}, r"max_memory must be .* got '1GB'"),
    ({"maxiter": 0}, r"maxiter must be a positive integer \(Newton "
                     r"iterations per problem\), got 0"),
    ({"problem_offset": -3}, r"problem_offset must be a non-negative integer"
                             r" \(the number of the first problem\), got -3"),
    ({"problem_offset": 1.5}, r"problem_offset must be .* got 1\.5"),
])
def test_bad_options_are_named(kwargs, message):
    y, v, _ = _univariate(17, 5)
    ym, Sm, X = _multivariate(17, 3)
    with pytest.raises(ValueError, match=message):
        smm.fit_many(y, v, **kwargs)
    with pytest.raises(ValueError, match=message):
        smm.fit_many(ym, Sm, X, **kwargs)


def test_problem_offset_shifts_the_problem_numbers():
    y, v, _ = _univariate(18, 10)
    y[0, 6] = np.inf
    with pytest.raises(ValueError, match=r"\(study 0, problem 506\) \(in "
                                         r"problem 506\)"):
        smm.fit_many(y, v, problem_offset=500)
    ym, Sm, X = _multivariate(18, 10)
    ym[4, :, 8] = 0.2
    Sm[4, 1, 1, 8] = -1.0
    with pytest.raises(ValueError, match=r"\(study 4, problem 208\)"):
        smm.fit_many(ym, Sm, X, problem_offset=200)


def test_the_callers_arrays_are_never_modified():
    import dask.array as da
    y, v, per = _univariate(19, 12, design="per")
    v[np.isnan(y)] = np.nan                          # NaN S where NaN y
    ym, Sm, X = _multivariate(19, 8)
    cols, rows = np.triu_indices(2)
    vech = Sm[:, rows, cols].copy()
    calls = [((y, v, None), {}), ((y, v, per), {"method": "ml"}),
             ((y, v, per[:, :, 0]), {"method": "mm"}),
             ((ym, Sm, X), {"method": "reml"}),
             ((ym, vech, X), {"method": "mm"}),
             ((ym, Sm, None), {"method": "fixed", "chunk_size": 3})]
    for args, kwargs in calls:
        before = [None if a is None else a.copy() for a in args]
        flags = [None if a is None else a.flags.writeable for a in args]
        res = smm.fit_many(*args, **kwargs)
        assert res.fitted.any()
        for a, b, flag in zip(args, before, flags):
            if a is not None:
                np.testing.assert_array_equal(a, b)
                assert a.flags.writeable == flag
    # through Dask too, on the synchronous scheduler (whose blocks are
    # views of the caller's memory)
    import dask
    before = y.copy(), v.copy(), per.copy()
    with dask.config.set(scheduler="synchronous"):
        smm.fit_many(da.from_array(y, chunks=(12, 6)),
                     da.from_array(v, chunks=(12, 6)), per)
    for a, b in zip((y, v, per), before):
        np.testing.assert_array_equal(a, b)
