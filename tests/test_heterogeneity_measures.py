"""
``res.heterogeneity()``: Jackson, White & Riley's H² and R² and
level-specific I², against hand computations on dense matrices.

V_F and V_R are built here from the stacked design ``kron(I_k, x_i')`` and
the block-diagonal marginal covariances, with nothing from the package but
the fitted Psi; the typical within-study variance from the dense
``P = W - W X (X'WX)^-1 X'W``.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

import statsmodels.formula.api as smf
import statsmodels_mixmeta as smm
from reference_cases import case
from reference_models import _gliomas, _gliomas_addS
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.covariance import within_cov_from_input
from statsmodels_mixmeta.results.heterogeneity_measures import (
    jwr_measures, level_i2, typical_variance)

TOL = dict(rtol=1e-8, atol=1e-12)
BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]


def _fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixmeta(formula, data=data, **kw).fit()


# --------------------------------------------------------------------------
# dense hand computations
# --------------------------------------------------------------------------

def _dense(x, within_cov, psi):
    """Stacked design and marginal covariances of independent studies:
    ``X = [kron(I_k, x_i')]``, ``S = diag(S_i)``, ``Sigma = S + I_m (x) Psi``."""
    m, k = within_cov.shape[:2]
    X = np.vstack([np.kron(np.eye(k), xi[None, :]) for xi in x])
    S = linalg.block_diag(*within_cov)
    return X, S, S + np.kron(np.eye(m), psi)


def _gls_cov(X, sigma):
    return np.linalg.inv(X.T @ np.linalg.solve(sigma, X))


def _cochran(y, X, S):
    V = _gls_cov(X, S)
    beta = V @ X.T @ np.linalg.solve(S, y)
    r = y - X @ beta
    return float(r @ np.linalg.solve(S, r)), y.size - X.shape[1]


def _dense_typical(v, X):
    W = np.diag(1 / v)
    P = W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)
    return (v.size - X.shape[1]) / np.trace(P)


def _berkey():
    return datasets.load_berkey98()


def _berkey_arrays(regression):
    d = _berkey()
    m = len(d)
    x = (np.column_stack([np.ones(m), d.pubyear]) if regression
         else np.ones((m, 1)))
    S = within_cov_from_input(d[BERKEY_S].to_numpy(), 2)
    return d[["PD", "AL"]].to_numpy(), x, S


@pytest.fixture(scope="module", params=[False, True],
                ids=["intercept", "pubyear"])
def berkey(request):
    formula = "PD + AL ~ pubyear" if request.param else "PD + AL ~ 1"
    res = _fit(formula, _berkey(), S=BERKEY_S, method="reml")
    return res, _berkey_arrays(request.param)


# --------------------------------------------------------------------------
# Jackson, White & Riley on berkey98 (bivariate, REML)
# --------------------------------------------------------------------------

def test_jwr_against_dense_matrices(berkey):
    res, (y, x, S) = berkey
    psi = res.psi.to_numpy()
    X, S_dense, sigma = _dense(x, S, psi)
    V_F, V_R = _gls_cov(X, S_dense), _gls_cov(X, sigma)
    np.testing.assert_allclose(res.cov_params().to_numpy(), V_R, rtol=1e-7)
    P = X.shape[1]

    Q, df = _cochran(y.ravel(), X, S_dense)
    H2 = Q / df
    R2 = (np.linalg.det(V_R) / np.linalg.det(V_F)) ** (1 / P)
    R2_coef = np.diag(V_R) / np.diag(V_F)

    het = res.heterogeneity()["value"]
    assert het["df"]["overall"] == df
    np.testing.assert_allclose(het["Q"]["overall"], Q, **TOL)
    np.testing.assert_allclose(het["H2"]["overall"], H2, **TOL)
    np.testing.assert_allclose(het["I2_H"]["overall"], (H2 - 1) / H2, **TOL)
    np.testing.assert_allclose(het["R2"]["overall"], R2, rtol=1e-7)
    np.testing.assert_allclose(het["I2_R"]["overall"], (R2 - 1) / R2,
                               rtol=1e-7)
    names = list(res.params.index)
    assert list(het["R2"].index) == ["overall"] + names
    np.testing.assert_allclose(het["R2"][names], R2_coef, rtol=1e-7)
    np.testing.assert_allclose(het["I2_R"][names], (R2_coef - 1) / R2_coef,
                               rtol=1e-7)
    # I2_H is the Q-based I2, overall and per outcome
    np.testing.assert_allclose(het["I2_H"][list(res.i2.index)], res.i2,
                               **TOL)
    # heterogeneity inflates every variance: R2 > 1
    assert R2 > 1 and np.all(R2_coef > 1)


def test_h2_from_r_qtest():
    """H2 = Q / df with R mixmeta's qtest of the berkey_reml reference case
    (Q = 125.7557 on 6 df): H2 = 20.9593, I2_H = 1 - 6 / Q."""
    ref = case("berkey_reml").qtest
    res = _fit("PD + AL ~ pubyear", _berkey(), S=BERKEY_S, method="reml")
    het = res.heterogeneity()["value"]
    Q, df = np.asarray(ref.Q, dtype=float), np.asarray(ref.df, dtype=float)
    np.testing.assert_allclose(het["H2"].to_numpy(), Q / df, rtol=1e-8)
    np.testing.assert_allclose(het["I2_H"].to_numpy(), 1 - df / Q,
                               rtol=1e-8)
    assert het["H2"]["overall"] == pytest.approx(20.95928, abs=1e-5)


def test_jwr_measures_by_hand():
    # V_R = 4 V_F in 2 dimensions: R2 = (16)^(1/2) = 4, per coefficient 4
    V_F = np.array([[2.0, 0.5], [0.5, 1.0]])
    out = jwr_measures([3.0, 1.0], [6, 2], 4 * V_F, V_F)
    np.testing.assert_allclose(out["R2"], [4.0, 4.0, 4.0], **TOL)
    np.testing.assert_allclose(out["I2_R"], [0.75] * 3, **TOL)
    # H2 = 0.5 below 1: I2_H truncated at 0, as I2
    np.testing.assert_allclose(out["H2"], [0.5, 0.5], **TOL)
    np.testing.assert_allclose(out["I2_H"], [0.0, 0.0], **TOL)
    # no heterogeneity: R2 = 1, I2_R = 0
    same = jwr_measures([8.0], [4], V_F, V_F)
    np.testing.assert_allclose(same["R2"], [1.0, 1.0, 1.0], **TOL)
    np.testing.assert_allclose(same["I2_R"], [0.0] * 3, atol=1e-12)
    np.testing.assert_allclose(same["I2_H"], [0.5], **TOL)


def test_fixed_effects_fit_has_r2_one():
    res = _fit("PD + AL ~ 1", _berkey(), S=BERKEY_S, method="fixed")
    het = res.heterogeneity()["value"]
    np.testing.assert_allclose(het["R2"].to_numpy(), 1.0, rtol=1e-10)
    np.testing.assert_allclose(het["I2_R"].to_numpy(), 0.0, atol=1e-10)
    assert "s2_typical" not in het.index.unique("measure")
    with pytest.raises(ValueError, match="fixed-effects model"):
        level_i2(res)


# --------------------------------------------------------------------------
# level-specific I2
# --------------------------------------------------------------------------

def _higgins_thompson_s2(v):
    w = 1 / np.asarray(v, dtype=float)
    return (v.size - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())


@pytest.mark.parametrize("method", ["reml", "ml", "mm"])
def test_single_level_i2_is_tau2_over_tau2_plus_s2(method):
    d = datasets.load_bcg()
    res = _fit("logor ~ 1", d, S="logorvar", method=method)
    v = d.logorvar.to_numpy()
    tau2 = float(res.psi.iloc[0, 0])
    s2 = _higgins_thompson_s2(v)
    het = res.heterogeneity()["value"]
    np.testing.assert_allclose(het["s2_typical"]["logor"], s2, **TOL)
    np.testing.assert_allclose(het["I2[between]"]["logor"],
                               tau2 / (tau2 + s2), **TOL)
    np.testing.assert_allclose(het["I2_total"]["logor"], tau2 / (tau2 + s2),
                               **TOL)
    # with DerSimonian and Laird's tau2 ("mm") it is the Q-based I2
    # (Higgins & Thompson 2002); with a likelihood estimate it is not
    if method == "mm":
        np.testing.assert_allclose(het["I2[between]"]["logor"],
                                   res.i2["overall"], **TOL)
    else:
        assert abs(het["I2[between]"]["logor"] - res.i2["overall"]) > 1e-3
    # univariate R2 = V_R / V_F = sum w / sum 1 / (v + tau2)
    R2 = (1 / v).sum() / (1 / (v + tau2)).sum()
    np.testing.assert_allclose(het["R2"]["overall"], R2, rtol=1e-8)


def test_typical_variance_of_a_meta_regression():
    d = datasets.load_bcg()
    v = d.logorvar.to_numpy()
    X = np.column_stack([np.ones(len(d)), d.ablat, d.year])
    np.testing.assert_allclose(typical_variance(v, X), _dense_typical(v, X),
                               **TOL)
    np.testing.assert_allclose(typical_variance(v, np.ones(len(v))),
                               _higgins_thompson_s2(v), **TOL)
    res = _fit("logor ~ ablat + year", d, S="logorvar")
    tau2 = float(res.psi.iloc[0, 0])
    s2 = _dense_typical(v, X)
    np.testing.assert_allclose(res.heterogeneity()["value"]["I2[between]"],
                               tau2 / (tau2 + s2), **TOL)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_school_two_levels(method):
    d = datasets.load_school()
    res = _fit("effect ~ 1", d, S="var", random="~ 1 | district/study",
               method=method)
    s2_district = float(res.psi["district"].iloc[0, 0])
    s2_study = float(res.psi["study"].iloc[0, 0])
    s2 = _higgins_thompson_s2(d["var"].to_numpy())
    total = s2_district + s2_study + s2
    het = res.heterogeneity()["value"]
    np.testing.assert_allclose(het["s2_typical"]["effect"], s2, **TOL)
    np.testing.assert_allclose(het["I2[district]"]["effect"],
                               s2_district / total, **TOL)
    np.testing.assert_allclose(het["I2[study]"]["effect"],
                               s2_study / total, **TOL)
    np.testing.assert_allclose(het["I2_total"]["effect"],
                               (s2_district + s2_study) / total, **TOL)


def test_school_one_level_of_districts():
    """One random intercept shared by the studies of a district: its share
    is sigma2 / (sigma2 + s2), s2 from all 56 values."""
    d = datasets.load_school()
    res = _fit("effect ~ 1", d, S="var", random="~ 1 | district")
    sigma2 = float(res.psi.iloc[0, 0])
    s2 = _higgins_thompson_s2(d["var"].to_numpy())
    levels = level_i2(res)
    assert list(levels.columns) == ["s2_typical", "I2[district]", "I2_total"]
    np.testing.assert_allclose(levels.loc["effect", "I2[district]"],
                               sigma2 / (sigma2 + s2), **TOL)


def test_school_reml_level_shares_against_r():
    """The three-level school model (metafor's dat.konstantopoulos2011,
    rma.mv(yi, vi, random = ~ 1 | district/school), REML): R's
    dmetar::mlm.variance.distribution prints 63.324838 % (district),
    31.862476 % (school) and 4.812686 % sampling variance (total I2 95.19 %),
    https://dmetar.protectlab.org/reference/mlm.variance.distribution.html
    """
    d = datasets.load_school()
    res = _fit("effect ~ 1", d, S="var", random="~ 1 | district/study")
    levels = level_i2(res).loc["effect"]
    np.testing.assert_allclose(
        [levels["I2[district]"], levels["I2[study]"],
         1 - levels["I2_total"]],
        [0.63324838, 0.31862476, 0.04812686], rtol=1e-5)
    assert round(100 * levels["I2_total"], 2) == 95.19


def test_per_outcome_level_i2_berkey(berkey):
    res, (y, x, S) = berkey
    psi = res.psi.to_numpy()
    levels = level_i2(res)
    assert list(levels.index) == ["PD", "AL"]
    for j, outcome in enumerate(["PD", "AL"]):
        s2 = _dense_typical(S[:, j, j], x)
        np.testing.assert_allclose(levels.loc[outcome, "s2_typical"], s2,
                                   **TOL)
        np.testing.assert_allclose(levels.loc[outcome, "I2[between]"],
                                   psi[j, j] / (psi[j, j] + s2), **TOL)


def test_per_outcome_level_i2_with_missing_outcomes():
    """Each outcome uses the studies that report it."""
    d = _berkey().copy()
    d.loc[1, "AL"] = np.nan
    res = _fit("PD + AL ~ 1", d, S=BERKEY_S)
    psi = res.psi.to_numpy()
    levels = level_i2(res)
    for j, name in enumerate(["PD", "AL"]):
        keep = d[name].notna().to_numpy()
        s2 = _higgins_thompson_s2(d[BERKEY_S[2 * j]].to_numpy()[keep])
        np.testing.assert_allclose(levels.loc[name, "I2[between]"],
                                   psi[j, j] / (psi[j, j] + s2), **TOL)


def test_level_i2_refuses_random_slopes():
    data = datasets.load_school()
    data["yearcen"] = data.year - data.year.mean()
    res = _fit("effect ~ 1", data, S="var", random="~ yearcen | district",
               bscov="diag")
    with pytest.raises(ValueError, match="random intercepts only.*district"):
        level_i2(res)
    het = res.heterogeneity()["value"]
    assert "s2_typical" not in het.index.unique("measure")
    assert het["R2"]["overall"] > 1


def test_level_i2_refuses_addS_but_jwr_works():
    res = _fit("logOR ~ 0 + C(time)", _gliomas(), addS=_gliomas_addS(),
               random="~ 1 | study", method="ml")
    with pytest.raises(ValueError, match="addS"):
        level_i2(res)
    het = res.heterogeneity()["value"]
    assert np.isfinite(het["R2"]).all() and het["R2"]["overall"] >= 1


# --------------------------------------------------------------------------
# the frame, the summary, remove_data
# --------------------------------------------------------------------------

def test_frame_layout_and_copy():
    res = _fit("PD + AL ~ 1", _berkey(), S=BERKEY_S)
    het = res.heterogeneity()
    assert isinstance(het, pd.DataFrame) and list(het.columns) == ["value"]
    assert het.index.names == ["measure", "scope"]
    assert list(het.index.unique("measure")) == [
        "Q", "df", "pvalue", "H2", "I2_H", "R2", "I2_R", "s2_typical",
        "I2[between]", "I2_total"]
    het.iloc[0, 0] = -1.0                        # the caller's copy
    assert res.heterogeneity().iloc[0, 0] != -1.0


def _rows(text, title):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(title + " "))
    rows = {}
    for line in lines[start + 2:]:
        if set(line) <= set("=-"):
            break
        label, *values = line.split()
        rows[label] = values
    return rows


def test_summary_shows_the_measures():
    d = datasets.load_school()
    res = _fit("effect ~ 1", d, S="var", random="~ 1 | district/study")
    het = res.heterogeneity()["value"]
    text = res.summary().as_text()
    jwr = _rows(text, "JWR")
    assert list(jwr) == ["overall", "Intercept"]
    H2, I2_H, R2, I2_R = map(float, jwr["overall"])
    assert H2 == pytest.approx(het["H2"]["overall"], abs=5e-5)
    assert I2_H == pytest.approx(100 * het["I2_H"]["overall"], abs=5e-3)
    assert R2 == pytest.approx(het["R2"]["overall"], abs=5e-5)
    assert I2_R == pytest.approx(100 * het["I2_R"]["overall"], abs=5e-3)
    levels = _rows(text, "I2 (%) by level")
    district, study, total, s2 = map(float, levels["effect"])
    assert district == pytest.approx(100 * het["I2[district]"]["effect"],
                                     abs=5e-3)
    assert study == pytest.approx(100 * het["I2[study]"]["effect"], abs=5e-3)
    assert total == pytest.approx(100 * het["I2_total"]["effect"], abs=5e-3)
    assert s2 == pytest.approx(het["s2_typical"]["effect"], abs=5e-5)
    assert "Jackson, White & Riley" in text
    # one grid width for every table
    tables = text.split("\n\nNotes:")[0].splitlines()
    assert len({len(line) for line in tables}) == 1


def test_summary_of_random_slopes_has_no_level_table():
    data = datasets.load_school()
    data["yearcen"] = data.year - data.year.mean()
    res = _fit("effect ~ 1", data, S="var", random="~ yearcen | district",
               bscov="diag")
    text = res.summary().as_text()
    assert "JWR" in text and "I2 (%) by level" not in text


def test_remove_data_keeps_the_measures():
    res = _fit("PD + AL ~ 1", _berkey(), S=BERKEY_S)
    before = res.heterogeneity()
    res.remove_data()
    pd.testing.assert_frame_equal(res.heterogeneity(), before)
    assert "JWR" in res.summary().as_text()


def test_singular_within_study_variance():
    """Q and V_F weight by S^-1: a zero within-study variance (which an
    REML fit with Psi > 0 accepts) leaves them undefined; heterogeneity()
    says so naming the row, the summary leaves the tables out, and
    remove_data() still works."""
    bcg = datasets.load_bcg()
    var = bcg["logorvar"].to_numpy().copy()
    var[2] = 0.0
    res = smm.MixMeta(bcg["logor"].to_numpy(), None, S=var).fit()
    with pytest.raises(ValueError, match="row 2"):
        res.heterogeneity()
    text = res.summary().as_text()
    assert "JWR" not in text and "I2 (%) by level" not in text
    res.remove_data()
    assert "JWR" not in res.summary().as_text()
