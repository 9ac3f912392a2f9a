"""
The public API, with numbers: both interfaces and both formula engines, the
missing-data rule, labelled results and statsmodels' tests on them,
heterogeneity and fit statistics, predictions, BLUPs and fit options.

R numbers come from ``tests/results/mixmeta_reference.json`` through
``reference_cases.case``; agreement follows that file's conventions
(coefficients and standard errors 1e-4 relative or 1e-6 absolute, Psi 1e-3
relative, log-likelihood 1e-6 absolute).
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from conftest import ENGINES, formula_engine
from reference_cases import case
from reference_models import SINGLE_LEVEL

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]
SMOKING_S = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]
SAME = dict(rtol=1e-12, atol=1e-14)          # the same computation
R_COEF = dict(rtol=1e-4, atol=1e-6)          # agreement with R
R_PSI = dict(rtol=1e-3, atol=1e-5)




def load_berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return data


def fit_bcg():
    return smf.mixmeta("logor ~ ablat", data=datasets.load_bcg(),
                       S="logorvar").fit()


def fit_berkey(**kw):
    return smf.mixmeta("PD + AL ~ year", data=load_berkey(), S=BERKEY_S,
                       method="ml", **kw).fit()


def fit_smoking():
    return smf.mixmeta("yB + yC + yD ~ 1", data=datasets.load_smoking(),
                       S=SMOKING_S).fit()


def assert_same_fit(res, other, check_names=True):
    """Identical params, bse, Psi and llf (values; labels if asked)."""
    for attr in ("params", "bse"):
        np.testing.assert_allclose(np.asarray(getattr(res, attr)),
                                   np.asarray(getattr(other, attr)), **SAME)
    np.testing.assert_allclose(np.asarray(res.psi), np.asarray(other.psi),
                               **SAME)
    np.testing.assert_allclose(res.llf, other.llf, **SAME)
    if check_names:
        assert list(res.params.index) == list(other.params.index)
        assert list(res.psi.index) == list(other.psi.index)


# --------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------

def test_smf_mixmeta_is_from_formula():
    assert "mixmeta" in smf.__all__
    assert smf.mixmeta == smm.MixMeta.from_formula
    assert smf.mixmeta.__self__ is smm.MixMeta
    assert smf.mixmeta.__func__ is smm.MixMeta.from_formula.__func__
    assert smm.mixmeta == smm.MixMeta.from_formula


def test_array_and_formula_interfaces_agree_bcg_reml(engine):
    bcg = datasets.load_bcg()
    formula = fit_bcg()
    exog = np.c_[np.ones(len(bcg)), bcg["ablat"]]
    arrays = smm.MixMeta(bcg["logor"].to_numpy(), exog,
                         S=bcg["logorvar"].to_numpy(), method="reml").fit()
    assert_same_fit(formula, arrays, check_names=False)
    assert list(formula.params.index) == ["Intercept", "ablat"]
    assert list(formula.psi.index) == ["logor"]
    # R: bcg_reg_reml
    ref = case("bcg_reg_reml")
    np.testing.assert_allclose(formula.params, ref.coef, **R_COEF)
    np.testing.assert_allclose(formula.bse, np.sqrt(np.diag(ref.vcov)),
                               **R_COEF)
    assert abs(formula.llf - ref.logLik) < 1e-6


def test_array_and_formula_interfaces_agree_berkey_ml(engine):
    data = load_berkey()
    formula = fit_berkey()
    arrays = smm.MixMeta(data[["PD", "AL"]].to_numpy(),
                         np.c_[np.ones(len(data)), data["year"]],
                         S=data[BERKEY_S].to_numpy(), method="ml").fit()
    assert_same_fit(formula, arrays, check_names=False)
    # pandas input to the array interface keeps the labels
    exog = pd.DataFrame({"Intercept": 1.0, "year": data["year"]})
    labelled = smm.MixMeta(data[["PD", "AL"]], exog,
                           S=data[BERKEY_S].to_numpy(), method="ml").fit()
    assert_same_fit(formula, labelled)
    # R: berkey_ml (its default tolerance stops short; its tight refit)
    tight = case("berkey_ml").tight
    np.testing.assert_allclose(formula.params, tight.coef, **R_COEF)
    np.testing.assert_allclose(formula.cov_params(), tight.vcov, **R_COEF)
    np.testing.assert_allclose(formula.psi, tight.psi, **R_PSI)
    assert abs(formula.llf - tight.logLik) < 1e-6


# --------------------------------------------------------------------------
# formula engines
# --------------------------------------------------------------------------

SPEC_TYPES = {"patsy": "DesignInfo", "formulaic": "ModelSpec"}


def test_formula_engine_is_the_one_selected(engine):
    res = fit_bcg()
    assert type(res.model.data.model_spec).__name__ == SPEC_TYPES[engine]


def test_formula_engines_give_identical_numbers():
    fits = {}
    for name in ENGINES:
        with formula_engine(name):
            fits[name] = (fit_bcg(), fit_berkey(), fit_smoking())
    for patsy_fit, formulaic_fit in zip(fits["patsy"], fits["formulaic"]):
        assert_same_fit(patsy_fit, formulaic_fit)
        np.testing.assert_allclose(patsy_fit.cov_params(),
                                   formulaic_fit.cov_params(), **SAME)


def test_formula_with_local_function_and_variable(engine):
    bcg = datasets.load_bcg()

    def center(x):                 # shadows the engines' own `center`
        return x - 33.0

    shift = 33.0
    by_function = smf.mixmeta("logor ~ center(ablat)", data=bcg,
                              S="logorvar").fit()
    by_variable = smf.mixmeta("logor ~ I(ablat - shift)", data=bcg,
                              S="logorvar").fit()
    centred = bcg.assign(lat33=bcg["ablat"] - 33.0)
    expected = smf.mixmeta("logor ~ lat33", data=centred,
                           S="logorvar").fit()
    assert list(by_function.params.index) == ["Intercept", "center(ablat)"]
    assert list(by_variable.params.index) == ["Intercept", "I(ablat - shift)"]
    for res in (by_function, by_variable):
        assert_same_fit(res, expected, check_names=False)
    # the slope is that of `logor ~ ablat`; the intercept moves to 33
    plain = fit_bcg()
    np.testing.assert_allclose(by_function.params.iloc[1],
                               plain.params["ablat"], rtol=1e-10)
    np.testing.assert_allclose(
        by_function.params.iloc[0],
        plain.params["Intercept"] + 33.0 * plain.params["ablat"], rtol=1e-10)


@pytest.mark.parametrize("formula", ["logor ~ center(ablat)",
                                     "logor ~ from_33(ablat)",
                                     "logor ~ I(ablat - shift)"])
def test_prediction_with_local_names_rebuilds_the_columns(engine, formula):
    bcg = datasets.load_bcg()

    def center(x):
        return x - 33.0

    def from_33(x):
        return x - 33.0

    shift = 33.0
    assert center and from_33 and shift      # used by the formulas
    res = smf.mixmeta(formula, data=bcg, S="logorvar").fit()
    new = pd.DataFrame({"ablat": [33.0, 43.0]})
    frame = res.get_prediction(new).summary_frame()
    intercept, slope = np.asarray(res.params)
    np.testing.assert_allclose(frame["mean"],
                               [intercept, intercept + 10 * slope],
                               rtol=1e-10)


# --------------------------------------------------------------------------
# the missing-data rule
# --------------------------------------------------------------------------

@pytest.fixture
def berkey_with_gaps():
    """Berkey by trial: Lindhe lacks its predictor, Knowles both outcomes,
    Ramfjord its AL outcome (and AL's variance and covariance)."""
    data = load_berkey().set_index("trial")
    data.loc["Lindhe", "year"] = np.nan
    data.loc["Knowles", ["PD", "AL"]] = np.nan
    data.loc["Ramfjord", ["AL", "cov_PD_AL", "var_AL"]] = np.nan
    return data


def _fit_berkey_frame(data):
    return smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S,
                       method="ml").fit()


def test_missing_rule_counts(berkey_with_gaps, engine):
    res = _fit_berkey_frame(berkey_with_gaps)
    assert res.n_groups == 3
    assert res.nobs == 5                  # 2 + 1 + 2 observed values
    assert res.model.n_groups == 3 and res.model.nobs == 5
    assert list(res.fittedvalues.index) == ["Pihlstrom", "Ramfjord", "Becker"]
    assert np.isnan(res.fittedvalues.loc["Ramfjord", "AL"])
    assert not np.isnan(res.fittedvalues.loc["Ramfjord", "PD"])


def test_missing_rule_does_not_modify_input(berkey_with_gaps, engine):
    before = berkey_with_gaps.copy()
    _fit_berkey_frame(berkey_with_gaps)
    pd.testing.assert_frame_equal(berkey_with_gaps, before)


def test_rows_with_missing_predictor_or_all_outcomes_are_dropped(
        berkey_with_gaps):
    res = _fit_berkey_frame(berkey_with_gaps)
    without = _fit_berkey_frame(
        berkey_with_gaps.drop(index=["Lindhe", "Knowles"]))
    assert_same_fit(res, without)
    assert without.n_groups == 3 and without.nobs == 5


def test_row_with_one_outcome_missing_contributes(berkey_with_gaps):
    res = _fit_berkey_frame(berkey_with_gaps)
    usable = berkey_with_gaps.drop(index=["Lindhe", "Knowles"])
    without = _fit_berkey_frame(usable.drop(index="Ramfjord"))
    assert without.n_groups == 2 and without.nobs == 4
    assert abs(res.llf - without.llf) > 0.1
    assert np.max(np.abs(res.params - without.params)) > 1e-3
    # ... through its PD value only: the S entries of AL are not used
    filled = usable.copy()
    filled.loc["Ramfjord", ["cov_PD_AL", "var_AL"]] = [0.5, 9.0]
    assert_same_fit(res, _fit_berkey_frame(filled))
    changed = usable.copy()
    changed.loc["Ramfjord", "PD"] += 0.1
    assert abs(_fit_berkey_frame(changed).llf - res.llf) > 1e-3


def test_missing_rule_array_interface(berkey_with_gaps):
    data = berkey_with_gaps
    exog = pd.DataFrame({"Intercept": 1.0, "year": data["year"]})
    arrays = smm.MixMeta(data[["PD", "AL"]], exog,
                         S=data[BERKEY_S].to_numpy(), method="ml").fit()
    assert_same_fit(arrays, _fit_berkey_frame(data))
    assert arrays.n_groups == 3 and arrays.nobs == 5
    assert list(arrays.fittedvalues.index) == ["Pihlstrom", "Ramfjord",
                                               "Becker"]


def test_smoking_counts():
    res = fit_smoking()
    data = datasets.load_smoking()
    assert res.n_groups == 24
    assert res.nobs == data[["yB", "yC", "yD"]].notna().to_numpy().sum() == 31


# --------------------------------------------------------------------------
# labels and statsmodels' inference on them
# --------------------------------------------------------------------------

def _check_labelled_inference(res, names):
    z = stats.norm.isf(0.025)
    params = res.params
    assert isinstance(params, pd.Series)
    assert list(params.index) == names
    for attr in ("bse", "tvalues", "pvalues"):
        assert isinstance(getattr(res, attr), pd.Series)
        assert list(getattr(res, attr).index) == names
    cov = res.cov_params()
    assert list(cov.index) == names and list(cov.columns) == names
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(cov)), rtol=1e-14)
    np.testing.assert_allclose(res.tvalues, params / res.bse, rtol=1e-14)
    np.testing.assert_allclose(res.pvalues,
                               2 * stats.norm.sf(np.abs(params / res.bse)),
                               rtol=1e-10)
    ci = res.conf_int()
    assert list(ci.index) == names
    np.testing.assert_allclose(ci[0], params - z * res.bse, rtol=1e-10)
    np.testing.assert_allclose(ci[1], params + z * res.bse, rtol=1e-10)


def test_labels_univariate():
    res = fit_bcg()
    _check_labelled_inference(res, ["Intercept", "ablat"])
    ref = case("bcg_reg_reml")
    np.testing.assert_allclose(res.cov_params(), ref.vcov, **R_COEF)


def test_labels_multivariate_outcome_major():
    res = fit_berkey()
    names = ["PD:Intercept", "PD:year", "AL:Intercept", "AL:year"]
    _check_labelled_inference(res, names)
    assert names == case("berkey_ml").coef_names


def test_t_test_is_the_z_test():
    res = fit_bcg()
    tt = res.t_test("ablat = 0")
    b, se = res.params["ablat"], res.bse["ablat"]
    assert tt.distribution == "norm"
    np.testing.assert_allclose(tt.effect, b, rtol=1e-14)
    np.testing.assert_allclose(tt.sd, se, rtol=1e-12)
    np.testing.assert_allclose(tt.tvalue, b / se, rtol=1e-12)
    np.testing.assert_allclose(tt.pvalue, 2 * stats.norm.sf(abs(b / se)),
                               rtol=1e-10)
    # the numbers: ablat -0.03153, z = -5.025 (R: coef / se of bcg_reg_reml)
    ref = case("bcg_reg_reml")
    z_r = ref.coef[1] / np.sqrt(ref.vcov[1, 1])
    np.testing.assert_allclose(tt.tvalue, z_r, rtol=1e-4)


def test_t_test_of_a_contrast_multivariate():
    res = fit_berkey()
    tt = res.t_test("AL:year - PD:year = 0")
    cov = res.cov_params()
    diff = res.params["AL:year"] - res.params["PD:year"]
    var = (cov.loc["AL:year", "AL:year"] + cov.loc["PD:year", "PD:year"]
           - 2 * cov.loc["AL:year", "PD:year"])
    np.testing.assert_allclose(tt.effect, diff, rtol=1e-12)
    np.testing.assert_allclose(tt.sd, np.sqrt(var), rtol=1e-12)
    np.testing.assert_allclose(tt.pvalue,
                               2 * stats.norm.sf(abs(diff) / np.sqrt(var)),
                               rtol=1e-10)


def _chi2_by_hand(res, names):
    b = res.params[names].to_numpy()
    V = res.cov_params().loc[names, names].to_numpy()
    return float(b @ np.linalg.solve(V, b))


def test_wald_test_is_the_chi2_test():
    res = fit_berkey()
    names = ["PD:year", "AL:year"]
    wald = res.wald_test("PD:year = 0, AL:year = 0", scalar=True)
    chi2 = _chi2_by_hand(res, names)
    assert wald.distribution == "chi2"
    assert wald.df_denom == 2
    np.testing.assert_allclose(wald.statistic, chi2, rtol=1e-10)
    np.testing.assert_allclose(wald.pvalue, stats.chi2.sf(chi2, 2),
                               rtol=1e-10)
    # the same constraint as a matrix
    R = np.zeros((2, 4))
    R[0, 1] = R[1, 3] = 1
    np.testing.assert_allclose(res.wald_test(R, scalar=True).statistic,
                               chi2, rtol=1e-10)


def test_f_test_is_the_chi2_over_its_df():
    res = fit_berkey()
    f = res.f_test("PD:year = 0, AL:year = 0")
    F = _chi2_by_hand(res, ["PD:year", "AL:year"]) / 2
    assert f.distribution == "F"
    assert f.df_num == 2 and f.df_denom == res.df_resid == 10 - 4
    np.testing.assert_allclose(f.fvalue, F, rtol=1e-10)
    np.testing.assert_allclose(f.pvalue, stats.f.sf(F, 2, 6), rtol=1e-10)


# --------------------------------------------------------------------------
# Psi, heterogeneity, fit statistics, fitted values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name, fit, outcomes, nobs, n_groups", [
    ("bcg_reg_reml", fit_bcg, ["logor"], 13, 13),
    ("berkey_ml", fit_berkey, ["PD", "AL"], 10, 5),
    ("smoking_unstr", fit_smoking, ["yB", "yC", "yD"], 31, 24),
])
def test_psi_statistics_and_counts(name, fit, outcomes, nobs, n_groups):
    res, ref = fit(), case(name)
    assert isinstance(res.psi, pd.DataFrame)
    assert list(res.psi.index) == outcomes == list(res.psi.columns)
    np.testing.assert_allclose(res.psi, np.atleast_2d(ref.psi), **R_PSI)
    assert res.nobs == nobs
    assert res.n_groups == n_groups
    assert res.converged is True
    assert res.llf >= ref.logLik - 1e-6
    assert abs(res.llf - ref.logLik) < 1e-6
    df = len(res.params) + len(outcomes) * (len(outcomes) + 1) // 2
    assert res.df_loglike == ref.df_logLik == df
    np.testing.assert_allclose(res.aic, -2 * res.llf + 2 * df, rtol=1e-14)
    np.testing.assert_allclose(res.aic, ref.AIC, atol=2e-6)
    np.testing.assert_allclose(res.bic, ref.BIC, atol=2e-6)


@pytest.mark.parametrize("name, fit, names", [
    ("bcg_reg_reml", fit_bcg, ["overall"]),
    ("berkey_ml", fit_berkey, ["overall", "PD", "AL"]),
    ("smoking_unstr", fit_smoking, ["overall", "yB", "yC", "yD"]),
])
def test_q_test_and_i2(name, fit, names):
    res, ref = fit(), case(name)
    q = res.q_test()
    assert list(q.names) == names
    np.testing.assert_allclose(q.statistic, ref.qtest.Q, rtol=1e-8)
    np.testing.assert_array_equal(q.df, ref.qtest.df)
    observed = ~np.isnan(ref.qtest.Q)
    np.testing.assert_allclose(q.pvalue[observed],
                               stats.chi2.sf(q.statistic, q.df)[observed],
                               rtol=1e-10)
    np.testing.assert_allclose(q.pvalue, ref.qtest.pvalue, rtol=1e-6,
                               atol=1e-12)
    # I2 as fractions: max(0, (Q - df) / Q)
    assert isinstance(res.i2, pd.Series)
    assert list(res.i2.index) == names
    np.testing.assert_allclose(res.i2, ref.i2, rtol=1e-8)
    assert np.all((res.i2[observed] >= 0) & (res.i2[observed] <= 1))
    np.testing.assert_allclose(
        res.i2.iloc[0], max(0.0, (q.statistic[0] - q.df[0]) / q.statistic[0]),
        rtol=1e-12)


def test_i2_numbers_bcg():
    # Q = 25.095 on 11 df: I2 = 0.5617 (R: 56.17 %)
    res = fit_bcg()
    np.testing.assert_allclose(res.q_test().statistic[0], 25.0954185,
                               rtol=1e-7)
    np.testing.assert_allclose(res.i2["overall"], 0.5616730, rtol=1e-6)


def test_fittedvalues_and_resid_smoking():
    res = fit_smoking()
    data = datasets.load_smoking()
    y = data[["yB", "yC", "yD"]]
    ref = case("smoking_unstr")
    for frame in (res.fittedvalues, res.resid):
        assert isinstance(frame, pd.DataFrame)
        assert frame.shape == (24, 3)
        assert list(frame.columns) == ["yB", "yC", "yD"]
        assert list(frame.index) == list(data.index)
        np.testing.assert_array_equal(frame.isna().to_numpy(),
                                      y.isna().to_numpy())
    np.testing.assert_allclose(res.fittedvalues.to_numpy(), ref.fitted,
                               **R_COEF)
    # intercept-only: fitted is the coefficient of each outcome
    observed = y.notna().to_numpy()
    intercepts = np.broadcast_to(np.asarray(res.params), (24, 3))
    np.testing.assert_array_equal(res.fittedvalues.to_numpy()[observed],
                                  intercepts[observed])
    np.testing.assert_allclose(res.resid.to_numpy()[observed],
                               (y.to_numpy() - intercepts)[observed],
                               rtol=1e-14)


def test_fittedvalues_berkey_match_r():
    res = fit_berkey()
    ref = case("berkey_ml")
    assert res.fittedvalues.shape == (5, 2)
    assert not res.fittedvalues.isna().any().any()
    np.testing.assert_allclose(res.fittedvalues.to_numpy(), ref.fitted,
                               **R_COEF)
    np.testing.assert_allclose(
        res.resid.to_numpy(),
        load_berkey()[["PD", "AL"]].to_numpy() - res.fittedvalues.to_numpy(),
        rtol=1e-14)


# --------------------------------------------------------------------------
# predictions at new data
# --------------------------------------------------------------------------

def test_prediction_at_new_data_matches_r(engine):
    res = fit_bcg()
    ref = case("bcg_reg_reml").predict_newdata
    new = pd.DataFrame({"ablat": [10, 20, 30, 40, 50]})
    np.testing.assert_array_equal(new["ablat"], ref["newdata"]["ablat"])
    frame = res.get_prediction(new).summary_frame()
    # issue 9 adds the prediction interval of a new study after R's columns
    assert list(frame.columns) == ["mean", "mean_se", "mean_ci_lower",
                                   "mean_ci_upper", "obs_ci_lower",
                                   "obs_ci_upper"]
    assert list(frame.index) == list(new.index)
    tol = dict(rtol=1e-4, atol=0)
    np.testing.assert_allclose(frame["mean"], ref["fit"], **tol)
    np.testing.assert_allclose(frame["mean_se"], ref["se"], **tol)
    np.testing.assert_allclose(frame["mean_ci_lower"], ref["ci_lb"], **tol)
    np.testing.assert_allclose(frame["mean_ci_upper"], ref["ci_ub"], **tol)


def test_prediction_at_new_data_by_hand():
    res = fit_bcg()
    x = np.c_[np.ones(5), [10, 20, 30, 40, 50]]
    pred = res.get_prediction(pd.DataFrame({"ablat": x[:, 1]}))
    mean = x @ np.asarray(res.params)
    se = np.sqrt(np.einsum("np,pq,nq->n", x, np.asarray(res.cov_params()), x))
    frame = pred.summary_frame(alpha=0.1)
    np.testing.assert_allclose(frame["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(frame["mean_se"], se, rtol=1e-12)
    np.testing.assert_allclose(frame["mean_ci_upper"],
                               mean + stats.norm.isf(0.05) * se, rtol=1e-12)
    # design rows directly give the same
    np.testing.assert_allclose(res.get_prediction(x).summary_frame()["mean"],
                               mean, rtol=1e-12)


# --------------------------------------------------------------------------
# BLUPs
# --------------------------------------------------------------------------

BLUP_CASES = ["bcg_reml", "bcg_reg_reml", "berkey_ml", "hyp_reml",
              "smoking_unstr", "fibrinogen_reml"]


@pytest.fixture(scope="module")
def blup_fits():
    return {name: SINGLE_LEVEL[name]().fit() for name in BLUP_CASES}


# BLUPs are functions of Psi, so they agree with R to Psi's tolerance
# (1e-3 relative, 1e-5 absolute): smoking_unstr needs it, because R's
# default fit stops 1.3e-9 in log-likelihood short of its own tight refit,
# which moves its BLUPs by up to 6e-4 relative.
BLUP_TOL = dict(rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", BLUP_CASES)
def test_blup_matches_r(blup_fits, name):
    res, ref = blup_fits[name], case(name)
    blup = res.blup()
    assert isinstance(blup, pd.DataFrame)
    assert blup.shape == ref.blup.shape
    assert list(blup.columns) == list(res.model.design.outcome_names)
    np.testing.assert_allclose(blup.to_numpy(), ref.blup, **BLUP_TOL)


@pytest.mark.parametrize("name", BLUP_CASES)
def test_blup_se_matches_r(blup_fits, name):
    res, ref = blup_fits[name], case(name)
    values, se = res.blup(se=True)
    pd.testing.assert_frame_equal(values, res.blup())
    assert list(se.index) == list(values.index)
    assert list(se.columns) == list(values.columns)
    np.testing.assert_allclose(se.to_numpy(), ref.blup_se, **BLUP_TOL)


# --------------------------------------------------------------------------
# fit options
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def berkey_reml():
    model = smf.mixmeta("PD + AL ~ year", data=load_berkey(), S=BERKEY_S)
    return model, model.fit()


def test_berkey_reml_optimum_matches_r(berkey_reml):
    # R's berkey_reml uses pubyear; year = pubyear - 1983 is a unimodular
    # change of the design, which leaves the restricted likelihood unchanged
    _, res = berkey_reml
    tight = case("berkey_reml").tight
    assert abs(res.llf - tight.logLik) < 1e-6
    np.testing.assert_allclose(res.psi, tight.psi, **R_PSI)


FIT_OPTIONS = {
    "start_params": lambda res: dict(start_params=1.5 * res.theta),
    "start_params_far": lambda res: dict(start_params=[1.0, 0.0, 1.0],
                                         scoring_iter=0),
    "maxiter": lambda res: dict(maxiter=1000),
    "no_scoring": lambda res: dict(scoring_iter=0, igls_iter=0),
    "bfgs": lambda res: dict(method="bfgs"),
    "bfgs_alone": lambda res: dict(method="bfgs", scoring_iter=0,
                                   igls_iter=0, maxiter=500),
    "lbfgs": lambda res: dict(method="lbfgs"),
    "nm": lambda res: dict(method="nm", maxiter=5000),
}


@pytest.mark.parametrize("option", list(FIT_OPTIONS))
def test_fit_options_reach_the_same_optimum(berkey_reml, option):
    model, best = berkey_reml
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(**FIT_OPTIONS[option](best))
    assert res.converged is True
    assert abs(res.llf - best.llf) < 1e-8
    np.testing.assert_allclose(res.params, best.params, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(res.psi, best.psi, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("init_psi", [np.eye(2), np.diag([0.05, 0.02]),
                                      [[0.01, 0.005], [0.005, 0.02]]])
def test_init_psi_reaches_the_same_optimum(berkey_reml, init_psi):
    _, best = berkey_reml
    res = smf.mixmeta("PD + AL ~ year", data=load_berkey(), S=BERKEY_S,
                      init_psi=init_psi).fit()
    assert res.converged is True
    assert abs(res.llf - best.llf) < 1e-8
    np.testing.assert_allclose(res.params, best.params, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("optimizer", ["newton", "bfgs", "lbfgs", "nm"])
def test_optimizers_fit_without_warnings(berkey_reml, optimizer):
    model, _ = berkey_reml
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(method=optimizer, maxiter=5000 if optimizer == "nm" else 100)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("optimizer", ["newton", "bfgs"])
def test_early_stop_warns_and_reports_not_converged(berkey_reml, optimizer):
    model, best = berkey_reml
    with pytest.warns(ConvergenceWarning, match="stopped before convergence"):
        res = model.fit(method=optimizer, maxiter=1, scoring_iter=0,
                        igls_iter=0)
    assert res.converged is False
    assert res.llf < best.llf - 1e-3


def test_fit_does_not_change_the_model(berkey_reml):
    model, best = berkey_reml
    with pytest.warns(ConvergenceWarning):
        model.fit(maxiter=1, scoring_iter=0, igls_iter=0)
    assert_same_fit(model.fit(), best)


def test_fixed_effects_model_has_no_random_effects():
    bcg = datasets.load_bcg()
    res = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar",
                      method="fixed").fit()
    effects = res.random_effects()
    assert isinstance(effects, pd.DataFrame) and effects.empty
    # its BLUPs are the fitted values
    np.testing.assert_allclose(res.blup().values, res.fittedvalues.values,
                               rtol=1e-12)


# ------------------------------------------------- columns given to formulas
def test_formula_sees_only_the_columns_it_names():
    from statsmodels_mixmeta.design.formula import _referenced_columns
    frame = pd.DataFrame({"y": [1.0], "x": [2.0], "z": [3.0], "note": ["a"],
                          7: [0.0]})
    assert list(_referenced_columns(frame, "y ~ x + np.log(z)").columns) \
        == ["y", "x", "z"]
    # formulaic's "." stands for every column
    assert _referenced_columns(frame, "y ~ .") is frame
    assert list(_referenced_columns(frame, "y ~ x + Q('7')").columns) \
        == ["y", "x", 7]


def test_unused_text_columns_do_not_change_the_fit():
    bcg = datasets.load_bcg()
    noisy = bcg.assign(comment=pd.array([None, "x"] * 6 + ["y"],
                                        dtype="string"))
    res = smf.mixmeta("logor ~ ablat", data=noisy, S="logorvar").fit()
    assert_same_fit(res, fit_bcg())


def test_S_as_whole_matrices_equals_its_lower_triangle_columns():
    # README's first choice for S: a list of k x k matrices, or (n, k, k);
    # the vech columns are the lower triangle read by column
    berkey = datasets.load_berkey98()
    matrices = [np.array([[r.var_PD, r.cov_PD_AL], [r.cov_PD_AL, r.var_AL]])
                for r in berkey.itertuples()]
    columns = ["var_PD", "cov_PD_AL", "var_AL"]
    by_columns = smf.mixmeta("PD + AL ~ pubyear", data=berkey, S=columns,
                             method="ml").fit()
    for S in (matrices, np.stack(matrices)):
        whole = smf.mixmeta("PD + AL ~ pubyear", data=berkey, S=S,
                            method="ml").fit()
        np.testing.assert_allclose(whole.params, by_columns.params,
                                   rtol=1e-12)
        assert whole.llf == pytest.approx(by_columns.llf, rel=1e-12)
    S3 = np.array([[4.0, 1.0, 0.5], [1.0, 9.0, 2.0], [0.5, 2.0, 16.0]])
    np.testing.assert_array_equal(smm.vech(S3), [4.0, 1.0, 0.5, 9.0, 2.0,
                                                 16.0])
    np.testing.assert_array_equal(smm.unvech(smm.vech(S3)), S3)


def test_nmmaps_meta_regression_covariance_of_predicted_curves():
    # README's two-stage example: the 4 x 4 covariance of the predicted
    # spline coefficients at a latitude is kron(I_4, x') V kron(I_4, x)
    cities = datasets.load_nmmaps_tmeanpar()
    curves = smf.mixmeta("coef1 + coef2 + coef3 + coef4 ~ lat", data=cities,
                         S=[f"vcov{i}" for i in range(1, 11)]).fit()
    assert curves.converged and curves.n_groups == 108
    profiles = curves.get_prediction(pd.DataFrame({"lat": [30.0, 45.0]}))
    V = np.asarray(curves.cov_params())
    beta = np.asarray(curves.params)
    for row, lat in enumerate([30.0, 45.0]):
        X = np.kron(np.eye(4), np.array([[1.0, lat]]))
        np.testing.assert_allclose(profiles.cov()[row], X @ V @ X.T,
                                   rtol=1e-10)
        np.testing.assert_allclose(profiles.predicted_mean[row], X @ beta,
                                   rtol=1e-10)
    terms = curves.wald_test_terms().table
    assert int(terms.loc["lat", "df_constraint"]) == 4
