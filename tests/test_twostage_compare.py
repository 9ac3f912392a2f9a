"""
smm.side_by_side: every cell of the table is the number the fit reports
(params, bse, Psi or cov_re entries, groups, rows, cov type), summary_col
renders those rows, and bad input is refused naming the argument.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets


def _sites(seed=11, n_sites=12):
    rng = np.random.default_rng(seed)
    effects = rng.multivariate_normal([1.0, 0.5], [[0.4, 0.05],
                                                   [0.05, 0.1]], n_sites)
    sizes = rng.integers(15, 40, n_sites)
    site = np.repeat([f"s{i:02d}" for i in range(n_sites)], sizes)
    x = rng.normal(size=sizes.sum())
    a, b = np.repeat(effects, sizes, axis=0).T
    return pd.DataFrame({"site": site, "x": x,
                         "y": a + b * x + rng.normal(size=sizes.sum())})


def fit_site(rows):
    return smf.ols("y ~ x", data=rows).fit()


@pytest.fixture(scope="module")
def fits():
    data = _sites()
    two = smm.two_stage(data, "site", fit_site, ["Intercept", "x"])
    pooled = two.fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed = smf.mixedlm("y ~ x", data, groups="site",
                            re_formula="~x").fit(method=["lbfgs"])
    ols = smf.ols("y ~ x", data).fit(cov_type="cluster",
                                     cov_kwds={"groups": data["site"]})
    glm = smf.glm("y ~ x", data).fit()
    return dict(data=data, two=two, pooled=pooled, mixed=mixed, ols=ols,
                glm=glm)


@pytest.fixture(scope="module")
def table(fits):
    return smm.side_by_side(fits["pooled"], fits["mixed"], fits["ols"],
                            fits["glm"], first_stage=[fits["two"], None,
                                                      None, None],
                            names=["two-stage", "MixedLM", "OLS", "GLM"])


def test_fixed_effects_and_standard_errors_are_the_fits(fits, table):
    assert list(table.params.index) == ["Intercept", "x"]
    assert table.names == ["two-stage", "MixedLM", "OLS", "GLM"]
    expected = {"two-stage": (fits["pooled"].params, fits["pooled"].bse),
                "MixedLM": (fits["mixed"].fe_params, fits["mixed"].bse_fe),
                "OLS": (fits["ols"].params, fits["ols"].bse),
                "GLM": (fits["glm"].params, fits["glm"].bse)}
    for name, (params, bse) in expected.items():
        np.testing.assert_array_equal(table.params[name].to_numpy(),
                                      np.asarray(params)[:2])
        np.testing.assert_array_equal(table.bse[name].to_numpy(),
                                      np.asarray(bse)[:2])
    # the two-stage pooled coefficients are named as the first stage's
    assert list(fits["pooled"].params.index) == ["Intercept", "x"]


def test_between_group_entries_are_psi_and_cov_re(fits, table):
    psi = fits["pooled"].psi
    cov_re = np.asarray(fits["mixed"].cov_re)
    between = table.between
    assert list(between.index) == ["Var(Intercept)", "Cov(Intercept, x)",
                                   "Var(x)"]
    np.testing.assert_array_equal(
        between["two-stage"].to_numpy(),
        [psi.loc["Intercept", "Intercept"], psi.loc["x", "Intercept"],
         psi.loc["x", "x"]])
    np.testing.assert_array_equal(
        between["MixedLM"].to_numpy(),
        [cov_re[0, 0], cov_re[1, 0], cov_re[1, 1]])
    assert between[["OLS", "GLM"]].isna().all().all()


def test_groups_observations_and_cov_type(fits, table):
    info = table.info
    n_rows = len(fits["data"])
    assert fits["two"].table["nobs"].sum() == n_rows
    assert info.loc["groups"].tolist()[:3] == [12, 12, 12]
    assert np.isnan(info.loc["groups", "GLM"])          # not clustered
    assert info.loc["observations"].tolist() == [n_rows] * 4
    assert info.loc["cov_type"].tolist() == ["nonrobust", "nonrobust",
                                             "cluster", "nonrobust"]
    assert info.loc["estimator"].tolist() == [
        "MixMeta (reml)", "MixedLM (REML)", "OLS", "GLM (Gaussian)"]
    # without the first stage a MixMeta's rows are unknown
    alone = smm.side_by_side(fits["pooled"], fits["mixed"])
    assert np.isnan(alone.info.loc["observations", "MixMeta"])
    assert alone.names == ["MixMeta", "MixedLM"]


def test_frame_holds_every_section(table):
    frame = table.frame
    assert frame.index.names == ["section", "name"]
    assert list(frame.index.get_level_values(0).unique()) == [
        "coef", "se", "between", "info"]
    assert frame.loc[("coef", "x"), "MixedLM"] == table.params.loc[
        "x", "MixedLM"]
    assert frame.loc[("info", "cov_type"), "OLS"] == "cluster"
    assert "Var(x)" in repr(table)


def test_summary_col_rows(fits, table):
    summary = table.summary_col()
    cells = summary.tables[0]
    labels = list(cells.index)
    assert labels == ["Intercept", "", "x", "", "Groups", "Observations",
                      "Var(Intercept)", "Cov(Intercept, x)", "Var(x)",
                      "Covariance type"]
    # MixedLM's variance parameters are not listed among the coefficients
    text = str(summary)
    assert "site Var" not in text and "x Var" not in text
    for label in labels[4:]:
        assert label in text
    x_row, se_row = cells.iloc[2], cells.iloc[3]
    assert x_row["two-stage"] == f"{fits['pooled'].params['x']:.4f}"
    assert x_row["MixedLM"] == f"{fits['mixed'].fe_params['x']:.4f}"
    assert x_row["OLS"] == f"{fits['ols'].params['x']:.4f}"
    assert se_row["two-stage"] == f"({fits['pooled'].bse['x']:.4f})"
    assert se_row["MixedLM"] == f"({fits['mixed'].bse_fe['x']:.4f})"
    var_row = cells.loc["Var(x)"]
    assert var_row["two-stage"] == f"{fits['pooled'].psi.loc['x', 'x']:.4f}"
    assert var_row["MixedLM"] == \
        f"{np.asarray(fits['mixed'].cov_re)[1, 1]:.4f}"
    assert var_row["OLS"] == var_row["GLM"] == ""
    assert cells.loc["Observations"].tolist() == [str(len(fits["data"]))] * 4
    assert cells.loc["Groups"].tolist() == ["12", "12", "12", ""]
    assert cells.loc["Covariance type"].tolist() == [
        "nonrobust", "nonrobust", "cluster", "nonrobust"]


def test_fixed_effects_pooling_has_no_between_group_variance(fits):
    fixed = fits["two"].fit(method="fixed")
    table = smm.side_by_side(fixed, first_stage=fits["two"])
    assert table.between.empty
    assert table.info.loc["estimator", "MixMeta"] == "MixMeta (fixed)"
    assert table.params.loc["x", "MixMeta"] == fixed.params["x"]


def test_multilevel_psi_and_mixedlm_random_intercept():
    school = datasets.load_school()
    nested = smf.mixmeta("effect ~ 1", data=school, S="var",
                         random="~ 1 | district/study").fit()
    table = smm.side_by_side(nested)
    labels = list(table.between.index)
    assert len(labels) == 2
    assert labels[0].startswith("Var(") and labels[0].endswith("| district)")
    assert labels[1].endswith("| study)")
    np.testing.assert_array_equal(
        table.between["MixMeta"].to_numpy(),
        [nested.psi["district"].iloc[0, 0], nested.psi["study"].iloc[0, 0]])

    data = _sites(seed=3)
    data["grp"] = np.where(data["x"] > 0, "a", "b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        intercept = smf.mixedlm("y ~ x", data, groups="site").fit()
        vc = smf.mixedlm("y ~ x", data, groups="site",
                         vc_formula={"grp": "0 + C(grp)"}).fit()
    table = smm.side_by_side(intercept, vc)
    assert list(table.between.index) == ["Var(Intercept)", "Var(grp)"]
    assert table.between.loc["Var(Intercept)", "MixedLM 1"] == \
        np.asarray(intercept.cov_re)[0, 0]
    assert table.between.loc["Var(grp)", "MixedLM 2"] == vc.vcomp[0]
    assert table.names == ["MixedLM 1", "MixedLM 2"]


def test_cluster_robust_glm_counts_the_clusters(fits):
    data = fits["data"].assign(count=np.random.default_rng(0).poisson(
        3, len(fits["data"])))
    codes = pd.factorize(data["site"])[0]
    glm = smf.glm("count ~ x", data, family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": codes})
    table = smm.side_by_side(glm)
    assert table.info.loc["groups", "GLM"] == 12
    assert table.info.loc["estimator", "GLM"] == "GLM (Poisson)"
    np.testing.assert_array_equal(table.bse["GLM"].to_numpy(), glm.bse)


@pytest.mark.parametrize("call, message", [
    (lambda f: smm.side_by_side(), "at least one fitted result"),
    (lambda f: smm.side_by_side(f["pooled"], pd.DataFrame()),
     "result 1 is a DataFrame; valid are"),
    (lambda f: smm.side_by_side(f["pooled"], f["two"]),
     "result 1 is a TwoStage"),
    (lambda f: smm.side_by_side(f["pooled"], f["mixed"], names=["a"]),
     "names has 1 entries for 2 results"),
    (lambda f: smm.side_by_side(f["pooled"], f["mixed"], names=["a", "a"]),
     "names must be distinct"),
    (lambda f: smm.side_by_side(f["pooled"], names=[3]),
     "non-empty strings"),
    (lambda f: smm.side_by_side(f["pooled"], first_stage="two"),
     "first_stage must be a TwoStage"),
    (lambda f: smm.side_by_side(f["pooled"], f["mixed"],
                                first_stage=[f["two"]]),
     "first_stage has 1 entries for 2 results"),
    (lambda f: smm.side_by_side(f["pooled"], f["pooled"],
                                first_stage=f["two"]),
     "exactly one MixMeta result, got 2"),
    (lambda f: smm.side_by_side(f["mixed"], first_stage=[f["two"]]),
     "first_stage given for result 0, a MixedLMResults"),
    (lambda f: smm.side_by_side(f["pooled"], first_stage=[f["pooled"]]),
     "valid is the TwoStage"),
])
def test_bad_input_is_refused(fits, call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(fits)


def test_first_stage_of_other_estimates_is_refused(fits):
    other = smm.two_stage(_sites(seed=12), "site", fit_site,
                          ["Intercept", "x"])
    with pytest.raises(ValueError, match="did not pool the estimates"):
        smm.side_by_side(fits["pooled"], first_stage=other)


def test_params_keeps_the_named_coefficients_and_one_outcome(fits):
    data = fits["data"]
    slope = smm.two_stage(data, "site", fit_site, ["x"])   # k = 1
    pooled = slope.fit()
    site_fe = smf.ols("y ~ 0 + C(site) + x", data).fit()
    table = smm.side_by_side(pooled, site_fe, first_stage=slope,
                             params=["x"])
    assert list(table.params.index) == ["x"]
    assert table.params.loc["x", "OLS"] == site_fe.params["x"]
    assert table.bse.loc["x", "MixMeta"] == pooled.bse["x"]
    assert table.info.loc["observations"].tolist() == [len(data)] * 2
    assert list(table.between.index) == ["Var(x)"]
    cells = table.summary_col().tables[0]
    assert list(cells.index[:2]) == ["x", ""]
    assert "C(site)" not in str(table.summary_col())
    with pytest.raises(ValueError, match=r"params \['z'\] are not "
                       "coefficients of any of the fits"):
        smm.side_by_side(pooled, site_fe, params=["z"])


def test_gee_counts_its_clusters(fits):
    data = fits["data"]
    gee = smf.gee("y ~ x", "site", data,
                  cov_struct=sm.cov_struct.Exchangeable()).fit()
    table = smm.side_by_side(fits["pooled"], gee, first_stage=fits["two"])
    assert table.names == ["MixMeta", "GEE"]
    assert table.info.loc["groups", "GEE"] == 12
    assert table.info.loc["observations", "GEE"] == len(data)
    assert table.info.loc["cov_type", "GEE"] == "robust"
    assert table.info.loc["estimator", "GEE"] == \
        "GEE (Gaussian, Exchangeable)"
    np.testing.assert_array_equal(table.params["GEE"].to_numpy(),
                                  gee.params)
    np.testing.assert_array_equal(table.bse["GEE"].to_numpy(), gee.bse)
    assert table.between["GEE"].isna().all()


def test_discrete_results_and_multinomial_refused(fits):
    data = fits["data"].assign(
        count=np.random.default_rng(1).poisson(3, len(fits["data"])))
    poisson = smf.poisson("count ~ x", data).fit(
        disp=0, cov_type="cluster", cov_kwds={"groups": data["site"]})
    table = smm.side_by_side(poisson)
    assert table.names == ["Poisson"]
    assert table.info.loc["groups", "Poisson"] == 12
    assert table.info.loc["cov_type", "Poisson"] == "cluster"
    np.testing.assert_array_equal(table.bse["Poisson"].to_numpy(),
                                  poisson.bse)
    data["kind"] = np.arange(len(data)) % 3
    multinomial = smf.mnlogit("kind ~ x", data).fit(disp=0)
    with pytest.raises(ValueError, match="result 0 is a "
                       "MultinomialResultsWrapper; valid are"):
        smm.side_by_side(multinomial)
