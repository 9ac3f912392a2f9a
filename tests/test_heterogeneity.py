"""Cochran's Q test and I² against R mixmeta 1.2.1 (``qtest``, ``summary()$i2stat``)."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import reference_cases as rc
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.covariance import inputcov, within_cov_from_input
from statsmodels_mixmeta.results.heterogeneity import QTestResult, cochran_q, i_squared

RTOL = 1e-8
#: R's p-value is 1 - pchisq(Q, df): absolute error ~1e-16, and 0 below that.
PVALUE_ATOL = 1e-15


# --------------------------------------------------------------------------
# the inputs of each reference case, built from the package's data sets
# (see tests/results/make_reference.R)
# --------------------------------------------------------------------------

def _intercept(n):
    return np.ones((n, 1))


def _bcg(formula):
    d = datasets.load_bcg()
    n = len(d)
    if formula == "1":
        X = _intercept(n)
    elif formula == "ablat":
        X = np.column_stack([np.ones(n), d.ablat])
    else:  # ablat + year + alloc, treatment coding with the first level dropped
        levels = sorted(d.alloc.unique())
        dummies = np.column_stack([(d.alloc == lev).to_numpy(float) for lev in levels[1:]])
        X = np.column_stack([np.ones(n), d.ablat, d.year, dummies])
    return d.logor.to_numpy(), X, d.logorvar.to_numpy(), None


def _bcg_biv():
    d = datasets.load_bcg()
    y = np.log(np.column_stack([d.tpos / d.tneg, d.cpos / d.cneg]))
    variances = np.column_stack([1 / d.tpos + 1 / d.tneg, 1 / d.cpos + 1 / d.cneg])
    return y, _intercept(len(d)), within_cov_from_input(variances, 2), None


def _berkey(predictor):
    d = datasets.load_berkey98()
    x = d.pubyear - 1983 if predictor == "year" else d.pubyear
    X = np.column_stack([np.ones(len(d)), x])
    S = within_cov_from_input(d[["var_PD", "cov_PD_AL", "var_AL"]].to_numpy(), 2)
    return d[["PD", "AL"]].to_numpy(), X, S, ["PD", "AL"]


def _fibrinogen():
    d = datasets.load_fibrinogen()
    names = ["b2", "b3", "b4", "b5"]
    S = within_cov_from_input(d.iloc[:, 5:15].to_numpy(), 4)
    return d[names].to_numpy(), _intercept(len(d)), S, names


def _smoking():
    d = datasets.load_smoking()
    names = ["yB", "yC", "yD"]
    S = within_cov_from_input(d[["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]].to_numpy(), 3)
    return d[names].to_numpy(), _intercept(len(d)), S, names


def _p53():
    d = datasets.load_p53()
    S = within_cov_from_input(d[["V1", "V2"]].to_numpy(), 2, Scor=0.95)
    return d[["y1", "y2"]].to_numpy(), _intercept(len(d)), S, None


def _hyp(form, predictor):
    d = datasets.load_hyp()
    if form == "inputcov":
        S = inputcov(d[["sbp_se", "dbp_se"]].to_numpy(), d.rho.to_numpy())
    else:
        S = within_cov_from_input(d[["sbp_se", "dbp_se"]].to_numpy() ** 2, 2,
                                  Scor=d.rho.to_numpy())
    X = _intercept(len(d)) if predictor is None else np.column_stack(
        [np.ones(len(d)), d[predictor]])
    return d[["sbp", "dbp"]].to_numpy(), X, S, ["sbp", "dbp"]


def _hsls():
    d = datasets.load_hsls()
    S = within_cov_from_input(d[["V11", "V12", "V13", "V22", "V23", "V33"]].to_numpy(), 3)
    return d[["b1", "b2", "b3"]].to_numpy(), _intercept(len(d)), S, ["b1", "b2", "b3"]


def _school(centred):
    d = datasets.load_school()
    n = len(d)
    if centred is None:
        X = _intercept(n)
    elif centred == "year":
        X = np.column_stack([np.ones(n), d.year - d.year.mean()])
    else:
        X = np.column_stack([np.ones(n), d.year - d.groupby("district").year.mean().mean()])
    return d.effect.to_numpy(), X, d["var"].to_numpy(), None


def _thrombolytic(form):
    d = datasets.load_thrombolytic()
    columns = [np.ones(len(d))]
    if form in ("reg", "inv"):
        columns.append(d.time2treat)
    if form == "inv":
        columns.append(1 / d.time2treat)
    return d.absrisk.to_numpy(), np.column_stack(columns), d["var"].to_numpy(), None


def _ar1_pairs(rho, k=4):
    """rho^|a-b| for the pairs (2,1), (3,1), ..., (k,k-1): strict lower triangle by column."""
    first, second = np.triu_indices(k, 1)
    return rho ** np.abs(first - second)


def _gliomas_long():
    """logOR ~ 0 + factor(time), S = logORvar: k = 1, long format."""
    d = datasets.load_gliomas()
    X = (d.time.to_numpy()[:, None] == np.array([6, 12, 18, 24])).astype(float)
    return d.logOR.to_numpy(), X, d.logORvar.to_numpy(), None


def _gliomas_wide(har1):
    """The same data wide (k = 4 times, intercept only); with har1, the addSlist S."""
    d = datasets.load_gliomas()
    wide = d.pivot(index="study", columns="time")
    y = wide["logOR"].to_numpy()
    sds = np.sqrt(wide["logORvar"].to_numpy())
    S = inputcov(sds, _ar1_pairs(0.61) if har1 else 0.0)
    return y, _intercept(len(y)), S, None


def _dbs(har1):
    d = datasets.load_dbs()
    eff = [c for c in d.columns if c.startswith("eff_")]
    var = [c for c in d.columns if c.startswith("var_")]
    S = inputcov(np.sqrt(d[var].to_numpy()), _ar1_pairs(0.97) if har1 else 0.0)
    return d[eff].to_numpy(), _intercept(len(d)), S, eff


#: reference case -> (y, X, within_cov, outcome names). The k = 1 long cases
#: with ``addSlist`` are reproduced in wide format (same model, same Q).
INPUTS = {
    "bcg_fixed": lambda: _bcg("1"),
    "bcg_reg_ml": lambda: _bcg("ablat"),
    "bcg_reg_alloc_reml": lambda: _bcg("alloc"),
    "bcg_biv_ml": _bcg_biv,
    "berkey_fixed": lambda: _berkey("year"),
    "berkey_reml": lambda: _berkey("pubyear"),
    "fibrinogen_reml": _fibrinogen,
    "smoking_unstr": _smoking,
    "p53_scor": _p53,
    "hyp_reml": lambda: _hyp("inputcov", None),
    "hyp_reml_scor": lambda: _hyp("Scor", None),
    "hyp_reg_reml": lambda: _hyp("inputcov", "ish"),
    "hsls_fixed": _hsls,
    "school_ml_1level": lambda: _school(None),
    "school_ml_reg": lambda: _school("year"),
    "school_ml_2level_reg": lambda: _school("district"),
    "thrombolytic_fixed": lambda: _thrombolytic("1"),
    "thrombolytic_reml_2level_reg": lambda: _thrombolytic("reg"),
    "thrombolytic_reml_2level_inv": lambda: _thrombolytic("inv"),
    "gliomas_diag": _gliomas_long,
    "gliomas_har1S_unstr": lambda: _gliomas_wide(True),
    "dbs_diag": lambda: _dbs(False),
    "dbs_long_har1S": lambda: _dbs(True),
}

#: Q depends only on (y, X, S): every case of the reference shares it with
#: one of INPUTS.
SAME_Q = {
    "bcg_fixed": ["bcg_ml", "bcg_reml", "bcg_mm", "bcg_vc"],
    "bcg_reg_ml": ["bcg_reg_reml"],
    "berkey_fixed": ["berkey_vc", "berkey_vc_adj", "berkey_ml", "berkey_mm"],
    "fibrinogen_reml": ["fibrinogen_ml_diag"],
    "smoking_unstr": ["smoking_prop", "smoking_diag", "smoking_hcs", "smoking_cs",
                      "smoking_id", "smoking_cor"],
    "hyp_reml": ["hyp_mm"],
    "hyp_reg_reml": ["hyp_reg_mm"],
    "hsls_fixed": ["hsls_mm", "hsls_reml"],
    "school_ml_1level": ["school_ml_district", "school_ml_2level", "school_reml_2level"],
    "thrombolytic_fixed": ["thrombolytic_reml", "thrombolytic_reml_2level"],
    "gliomas_diag": ["gliomas_cs_fixed0"],
    "gliomas_har1S_unstr": ["gliomas_har1S_diag", "gliomas_har1S_har1"],
    "dbs_diag": ["dbs_har1", "dbs_long_id"],
}

PAIRS = [(name, name) for name in INPUTS] + [
    (inputs, other) for inputs, others in SAME_Q.items() for other in others
]


def _compute(name):
    y, X, S, names = INPUTS[name]()
    return cochran_q(y, X, S, outcome_names=names)


def _assert_matches(q, ref):
    assert_allclose(q.statistic, ref.qtest.Q, rtol=RTOL)  # NaN where R has NA
    assert_array_equal(q.df, ref.qtest.df)
    assert_allclose(q.pvalue, ref.qtest.pvalue, rtol=RTOL, atol=PVALUE_ATOL)
    assert_allclose(i_squared(q), ref.i2, rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("inputs, name", PAIRS, ids=[p[1] for p in PAIRS])
def test_reference(inputs, name):
    ref = rc.case(name)
    q = _compute(inputs)
    if ref.k == 1 and len(q.statistic) > 1:  # a long k = 1 case computed wide
        q = QTestResult(q.statistic[:1], q.df[:1], q.pvalue[:1], q.names[:1])
    # R's names: '.all' first (k = 1: none); ours say 'overall'
    assert q.names == ("overall",) + tuple(ref.qtest.names[1:])
    _assert_matches(q, ref)


def test_every_reference_case_is_covered():
    covered = {name for _, name in PAIRS}
    # Not expressible as independent rows with outcome-specific coefficients:
    # alcohol (S blocks over varying dose sets) and gliomas_slope_ml (one slope
    # in time shared by the 4 correlated times of a study).
    not_expressible = {"alcohol_nocor", "alcohol_lin", "alcohol_fixed", "gliomas_slope_ml"}
    assert set(rc.case_names()) - covered == not_expressible


def test_max_relative_error_against_r():
    errors = []
    for inputs, name in PAIRS:
        ref = rc.case(name).qtest.Q
        ours = _compute(inputs).statistic[: len(ref)]
        ok = ~np.isnan(ref)
        errors.append(np.max(np.abs(ours[ok] / ref[ok] - 1)))
    assert max(errors) < 1e-10


# --------------------------------------------------------------------------
# R's per-outcome rules
# --------------------------------------------------------------------------

def test_per_outcome_na_pattern():
    """Q_j is NaN exactly when some study lacks outcome j; df_j still counts."""
    q = _compute("smoking_unstr")
    assert np.isfinite(q.statistic[0])
    assert np.all(np.isnan(q.statistic[1:])) and np.all(np.isnan(q.pvalue[1:]))
    assert_array_equal(q.df, [28, 5, 18, 5])
    assert np.all(np.isnan(i_squared(q)[1:]))

    q = _compute("p53_scor")  # y1 missing in 3 studies, y2 complete
    assert np.isnan(q.statistic[1]) and np.isfinite(q.statistic[2])
    assert_array_equal(q.df, [7, 2, 5])

    # fibrinogen: missing categories are stored as estimates with huge variances
    y, _, S, _ = _fibrinogen()
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(S))
    assert np.all(np.isfinite(_compute("fibrinogen_reml").statistic))


def test_per_outcome_uses_multivariate_residuals():
    """Q_j = sum_i R_ij^2 / S_i,jj with residuals of the multivariate fit."""
    y, X, S, names = _hyp("inputcov", None)
    q = cochran_q(y, X, S, names)
    # multivariate fixed-effects (GLS) estimate, by hand
    W = np.linalg.inv(S)
    beta = np.linalg.solve(W.sum(axis=0), np.einsum("ijk,ik->j", W, y))
    expected = ((y - beta) ** 2 / np.diagonal(S, axis1=1, axis2=2)).sum(axis=0)
    assert_allclose(q.statistic[1:], expected, rtol=1e-12)
    # separate univariate fits would give something else
    variances = np.diagonal(S, axis1=1, axis2=2)
    univariate_mean = (y / variances).sum(0) / (1 / variances).sum(0)
    univariate = ((y - univariate_mean) ** 2 / variances).sum(axis=0)
    assert not np.allclose(q.statistic[1:], univariate, rtol=1e-3)


# --------------------------------------------------------------------------
# hand computations and formulas
# --------------------------------------------------------------------------

def test_hand_computed_univariate():
    y = np.array([0.1, 0.3, 0.35])
    v = np.array([0.01, 0.02, 0.04])
    # weights 100, 50, 25; pooled mean 33.75 / 175
    mean = 33.75 / 175
    expected = float(np.sum((y - mean) ** 2 / v))
    assert_allclose(expected, 115 / 56, rtol=1e-14)
    for S in (v, v[:, None, None]):
        q = cochran_q(y, np.ones(3), S)
        assert_allclose(q.statistic, [115 / 56], rtol=1e-14)
        assert_array_equal(q.df, [2])
        assert_allclose(q.pvalue, [np.exp(-115 / 112)], rtol=1e-14)  # chi2(2) tail
        assert q.names == ("overall",)
        assert_allclose(i_squared(q), [(115 / 56 - 2) / (115 / 56)], rtol=1e-14)


def test_pvalue_is_chi_square_upper_tail():
    for name in INPUTS:
        q = _compute(name)
        assert_allclose(q.pvalue, stats.chi2.sf(q.statistic, q.df), rtol=1e-14)


def test_i_squared_formula():
    q = QTestResult(np.array([20.0, 5.0, np.nan, 0.0]), np.array([10, 10, 3, 2]),
                    np.full(4, np.nan), ("overall", "a", "b", "c"))
    assert_allclose(i_squared(q), [0.5, 0.0, np.nan, 0.0])
    for name in INPUTS:
        q = _compute(name)
        expected = np.maximum(0, (q.statistic - q.df) / q.statistic)
        assert_allclose(i_squared(q), expected, rtol=1e-15)


def test_summary_frame():
    q = _compute("berkey_fixed")
    frame = q.summary_frame()
    assert list(frame.index) == ["overall", "PD", "AL"]
    assert list(frame.columns) == ["statistic", "df", "pvalue", "i_squared"]
    assert_allclose(frame["statistic"], q.statistic)
    assert_allclose(frame["i_squared"], i_squared(q))


def test_default_outcome_names():
    q = _compute("bcg_biv_ml")
    assert q.names == ("overall", "y1", "y2")


# --------------------------------------------------------------------------
# missing data and the batched computation
# --------------------------------------------------------------------------

def _loop_q(y, X, S):
    """Overall Q with a plain loop over studies (the definition)."""
    k, p = y.shape[1], X.shape[1]
    blocks = []
    for i in range(len(y)):
        o = ~np.isnan(y[i])
        Z = np.kron(np.eye(k), X[i][None, :])[o]
        blocks.append((Z, y[i, o], S[i][np.ix_(o, o)]))
    A = sum(Z.T @ np.linalg.solve(V, Z) for Z, _, V in blocks)
    b = sum(Z.T @ np.linalg.solve(V, yi) for Z, yi, V in blocks)
    beta = np.linalg.solve(A, b)
    return sum((yi - Z @ beta) @ np.linalg.solve(V, yi - Z @ beta) for Z, yi, V in blocks)


def _random_data(seed, m=40, k=3, p=2):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(m), rng.normal(size=(m, p - 1))])
    y = rng.normal(size=(m, k))
    L = rng.normal(size=(m, k, k)) * 0.3
    S = L @ np.swapaxes(L, 1, 2) + 0.1 * np.eye(k)
    y[rng.random((m, k)) < 0.3] = np.nan
    y[np.isnan(y).all(axis=1), 0] = 0.5  # keep every row
    return y, X, S


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_equals_loop(seed):
    y, X, S = _random_data(seed)
    q = cochran_q(y, X, S)
    assert_allclose(q.statistic[0], _loop_q(y, X, S), rtol=1e-10)
    assert q.df[0] == np.sum(~np.isnan(y)) - 3 * 2
    assert_array_equal(q.df[1:], np.sum(~np.isnan(y), axis=0) - 2)


def test_missing_entries_of_s_are_not_read():
    y, X, S = _random_data(3)
    S_missing = S.copy()
    S_missing[np.isnan(y)[:, :, None] | np.isnan(y)[:, None, :]] = np.nan
    q1, q2 = cochran_q(y, X, S), cochran_q(y, X, S_missing)
    assert_allclose(q1.statistic[0], q2.statistic[0], rtol=1e-14)


def test_rows_r_would_drop_are_ignored():
    y, X, S = _random_data(4)
    q = cochran_q(y, X, S)
    y2 = np.vstack([y, np.full((1, 3), np.nan), [[1.0, 2.0, 3.0]]])
    X2 = np.vstack([X, [[1.0, 0.3]], [[1.0, np.nan]]])
    S2 = np.concatenate([S, S[:2]])
    q2 = cochran_q(y2, X2, S2)
    assert_allclose(q2.statistic[0], q.statistic[0], rtol=1e-14)
    assert_array_equal(q2.df, q.df)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

def test_error_shapes():
    y, X, S = _random_data(5)
    with pytest.raises(ValueError, match=re.escape("within_cov shape (40, 3, 3)")):
        cochran_q(y, X, S[:, :2, :2])
    with pytest.raises(ValueError, match="X must have 40 rows"):
        cochran_q(y, X[:-1], S)
    with pytest.raises(ValueError, match="y must be"):
        cochran_q(y[None], X, S)


def test_error_outcome_names():
    y, X, S = _random_data(5)
    with pytest.raises(ValueError, match="outcome_names has 2 names for k=3"):
        cochran_q(y, X, S, outcome_names=["a", "b"])


def test_error_missing_observed_covariance():
    y, X, S = _random_data(6)
    S = S.copy()
    row = int(np.flatnonzero(~np.isnan(y[:, 0]))[0])
    S[row, 0, 0] = np.nan
    with pytest.raises(ValueError, match=rf"missing values .* at rows {row}\b"):
        cochran_q(y, X, S)


def test_error_not_positive_definite():
    y = np.array([[0.1, 0.2], [np.nan, np.nan], [0.3, 0.1], [0.0, 0.4]])
    S = np.tile(np.eye(2), (4, 1, 1))
    S[2] = [[1.0, 2.0], [2.0, 1.0]]
    # row 1 has no outcome and is left out; the message names the input row
    with pytest.raises(ValueError, match="not positive definite .* at rows 2$"):
        cochran_q(y, np.ones(4), S)


def test_error_collinear_predictors():
    y, X, S = _random_data(7)
    X = np.column_stack([X, 2 * X[:, 1]])
    with pytest.raises(ValueError, match="X has rank 2 < 3 columns on the 40 rows"):
        cochran_q(y, X, S)


def test_error_not_estimable():
    y = np.array([[0.1, np.nan], [0.3, np.nan], [0.0, 0.4]])
    X = np.column_stack([np.ones(3), [0.0, 1.0, 2.0]])
    S = np.tile(np.eye(2), (3, 1, 1))
    with pytest.raises(ValueError, match="rank 3 < 4 coefficients"):
        cochran_q(y, X, S)
