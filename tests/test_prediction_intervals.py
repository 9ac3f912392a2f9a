"""
Prediction intervals for a new study, covariances of predictions and BLUP
prediction intervals (issue 9, "Predictions").

The numbers are hand computations written here from ``params``,
``cov_params()`` and ``Psi``, and R mixmeta's predictions
(``predict_newdata`` of the reference JSON) for the means.
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from reference_cases import case
from reference_models import MULTILEVEL, reference_addS

Z95 = stats.norm.isf(0.025)
BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]
EXACT = dict(rtol=1e-12, atol=1e-14)


def fit_bcg(**kw):
    return smf.mixmeta("logor ~ ablat", data=datasets.load_bcg(),
                       S="logorvar").fit(**kw)


def berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return data


def fit_berkey(**kw):
    return smf.mixmeta("PD + AL ~ year", data=berkey(), S=BERKEY_S,
                       method="reml").fit(**kw)


def alcohol():
    return datasets.load_alcohol().dropna(subset=["se"]).reset_index(
        drop=True)


def fit_alcohol_fixed_psi(random, psi):
    """A dose-response model with a known random-slope Psi (bscov fixed)."""
    return smf.mixmeta("logrr ~ 0 + dose", data=alcohol(),
                       addS=reference_addS("alcohol_lin"), random=random,
                       bscov="fixed", psi_fix=psi, method="ml").fit()


# --------------------------------------------------------------- univariate
def test_bcg_obs_interval_adds_tau2_and_matches_r_means():
    res = fit_bcg()
    ref = case("bcg_reg_reml").predict_newdata
    new = pd.DataFrame({"ablat": ref["newdata"]["ablat"]})
    pred = res.get_prediction(new)
    frame = pred.summary_frame()
    tol = dict(rtol=1e-4, atol=0)
    np.testing.assert_allclose(frame["mean"], ref["fit"], **tol)
    np.testing.assert_allclose(frame["mean_se"], ref["se"], **tol)
    np.testing.assert_allclose(frame["mean_ci_lower"], ref["ci_lb"], **tol)
    np.testing.assert_allclose(frame["mean_ci_upper"], ref["ci_ub"], **tol)
    # hand: mean +- 1.96 sqrt(se^2 + tau2), with R's own mean, se and tau2
    tau2_r = case("bcg_reg_reml").psi[0, 0]
    half_r = Z95 * np.sqrt(ref["se"] ** 2 + tau2_r)
    np.testing.assert_allclose(frame["obs_ci_lower"], ref["fit"] - half_r,
                               rtol=1e-4)
    np.testing.assert_allclose(frame["obs_ci_upper"], ref["fit"] + half_r,
                               rtol=1e-4)
    # and exactly from our own estimates
    x = np.c_[np.ones(5), new["ablat"]]
    mean = x @ np.asarray(res.params)
    var = np.einsum("np,pq,nq->n", x, np.asarray(res.cov_params()), x)
    tau2 = res.psis[0][0, 0]
    assert tau2 > 0.04
    np.testing.assert_allclose(frame["obs_ci_upper"],
                               mean + Z95 * np.sqrt(var + tau2), **EXACT)
    # statsmodels' attributes, 1-D for one outcome
    np.testing.assert_allclose(pred.predicted_mean, mean, **EXACT)
    np.testing.assert_allclose(pred.se_mean, np.sqrt(var), **EXACT)
    np.testing.assert_allclose(pred.var_pred_mean, var, **EXACT)
    np.testing.assert_allclose(pred.var_resid, np.full(5, tau2), **EXACT)
    np.testing.assert_allclose(pred.se_obs, np.sqrt(var + tau2), **EXACT)
    assert pred.predicted_mean.shape == (5,)
    # the 90% intervals
    low, up = pred.conf_int(alpha=0.1, obs=True)
    q = stats.norm.isf(0.05)
    np.testing.assert_allclose(up.to_numpy()[:, 0],
                               mean + q * np.sqrt(var + tau2), **EXACT)
    np.testing.assert_allclose(low.to_numpy()[:, 0],
                               mean - q * np.sqrt(var + tau2), **EXACT)


def test_use_t_quantiles_on_df_resid():
    res = fit_bcg(use_t=True)
    assert res.df_resid == 11            # 13 studies, 2 coefficients
    pred = res.get_prediction(pd.DataFrame({"ablat": [15.0, 45.0]}))
    frame = pred.summary_frame()
    q = stats.t.isf(0.025, 11)
    mean, se = frame["mean"].to_numpy(), frame["mean_se"].to_numpy()
    tau2 = res.psis[0][0, 0]
    np.testing.assert_allclose(frame["mean_ci_lower"], mean - q * se,
                               **EXACT)
    np.testing.assert_allclose(frame["obs_ci_upper"],
                               mean + q * np.sqrt(se ** 2 + tau2), **EXACT)
    # the same t quantile as the coefficients' intervals
    ci = res.conf_int().to_numpy()
    np.testing.assert_allclose(ci[:, 1] - np.asarray(res.params),
                               q * np.asarray(res.bse), **EXACT)


def test_fixed_effects_model_obs_interval_is_the_confidence_interval():
    res = smf.mixmeta("logor ~ ablat", data=datasets.load_bcg(),
                      S="logorvar", method="fixed").fit()
    frame = res.get_prediction(pd.DataFrame({"ablat": [20.0]})) \
        .summary_frame()
    np.testing.assert_allclose(frame["obs_ci_lower"], frame["mean_ci_lower"],
                               **EXACT)
    np.testing.assert_allclose(frame["obs_ci_upper"], frame["mean_ci_upper"],
                               **EXACT)


def test_obs_interval_after_remove_data():
    res = fit_bcg()
    new = pd.DataFrame({"ablat": [10.0, 50.0]})
    before = res.get_prediction(new).summary_frame()
    res.remove_data()
    pd.testing.assert_frame_equal(res.get_prediction(new).summary_frame(),
                                  before)


# ------------------------------------------------------------- random slope
def test_alcohol_random_slope_obs_variance_is_dose_squared_psi():
    psi = 4e-4
    res = fit_alcohol_fixed_psi("~ 0 + dose | id", psi)
    pred = res.get_prediction(pd.DataFrame({"dose": [12.0, 30.0]}))
    se = pred.se_mean
    np.testing.assert_allclose(pred.var_resid, [144 * psi, 900 * psi],
                               **EXACT)
    frame = pred.summary_frame()
    np.testing.assert_allclose(
        frame["obs_ci_upper"],
        frame["mean"] + Z95 * np.sqrt(se ** 2 + [144 * psi, 900 * psi]),
        **EXACT)
    # the same random predictors given directly
    given = res.get_prediction(pd.DataFrame({"dose": [12.0, 30.0]}),
                               exog_re=[[12.0], [30.0]])
    np.testing.assert_allclose(given.var_resid, pred.var_resid, **EXACT)


def test_random_intercept_and_slope_obs_variance_is_z_psi_z():
    psi = np.array([[2e-3, -1e-4], [-1e-4, 3e-5]])
    res = fit_alcohol_fixed_psi("~ dose | id", psi)
    np.testing.assert_allclose(res.psis[0], psi, **EXACT)
    pred = res.get_prediction({"dose": 12.0})
    z = np.array([1.0, 12.0])
    np.testing.assert_allclose(pred.var_resid, [z @ psi @ z], **EXACT)


def test_alcohol_lin_reference_prediction_and_interval():
    res = MULTILEVEL["alcohol_lin"]().fit()
    ref = case("alcohol_lin").predict_newdata
    frame = res.get_prediction(pd.DataFrame({"dose": [12.0]})) \
        .summary_frame()
    np.testing.assert_allclose(frame["mean_ci_lower"], ref["ci_lb"],
                               rtol=1e-6)
    se, psi = frame["mean_se"].to_numpy(), res.psis[0][0, 0]
    np.testing.assert_allclose(
        frame["obs_ci_lower"],
        frame["mean"] - Z95 * np.sqrt(se ** 2 + 144 * psi), **EXACT)


@pytest.mark.parametrize("remove", [False, True])
def test_factor_random_design_at_new_data_uses_the_fitted_levels(remove):
    # new rows at times 18 and 6 only: their random design is the fit's
    # indicators of those levels (of 6, 12, 18, 24)
    res = MULTILEVEL["gliomas_har1S_unstr"]().fit()
    psi = res.psis[0]
    assert psi.shape == (4, 4) and (np.diag(psi) > 0).all()
    if remove:      # the formula keeps the columns it names
        res.remove_data()
    pred = res.get_prediction(pd.DataFrame({"time": [18, 6]}))
    np.testing.assert_allclose(pred.var_resid, psi[[2, 0], [2, 0]], **EXACT)


def test_random_formula_that_cannot_be_rebuilt_is_refused():
    data = MULTILEVEL["gliomas_diag"]().data.frame
    res = smf.mixmeta("logOR ~ 1", data=data, S="logORvar",
                      random="~ 0 + C(time) | study", bscov="diag").fit()
    psi = res.psis[0]
    # without the data, the random formula on the new data alone gives
    # other columns than the fit's: refused, naming them
    res.remove_data()
    new = pd.DataFrame({"time": [18, 6]})
    with pytest.raises(ValueError, match=r"gives columns .* exog_re="):
        res.get_prediction(new).se_obs
    with pytest.raises(ValueError, match=r"cannot evaluate the random "
                       r"formula '~ 0 \+ C\(time\)' of level 'study'"):
        res.get_prediction(pd.DataFrame({"other": [1.0]})).se_obs
    indicators = np.array([[0, 0, 1.0, 0], [1.0, 0, 0, 0]])
    pred = res.get_prediction(new, exog_re=indicators)
    np.testing.assert_allclose(pred.var_resid, psi[[2, 0], [2, 0]], **EXACT)


def test_random_slopes_of_array_model_need_exog_re():
    data = alcohol()
    formula_fit = fit_alcohol_fixed_psi("~ 0 + dose | id", 4e-4)
    model = smm.MixMeta(data["logrr"].to_numpy(), data[["dose"]].to_numpy(),
                        addS=reference_addS("alcohol_lin"),
                        groups=data["id"].to_numpy(),
                        exog_re=data[["dose"]].to_numpy(), bscov="fixed",
                        psi_fix=4e-4, method="ml")
    res = model.fit()
    # the means need no random predictors; the prediction interval does
    bare = res.get_prediction([[12.0]])
    np.testing.assert_allclose(bare.predicted_mean, 12 * res.params, **EXACT)
    with pytest.raises(ValueError, match="random predictors.*exog_re="):
        bare.summary_frame()
    with pytest.raises(ValueError, match=r"exog_re .* shape \(1, 1\)"):
        res.get_prediction([[12.0]], exog_re=[[12.0, 1.0]]).se_obs
    pred = res.get_prediction([[12.0]], exog_re=[[12.0]])
    ref = formula_fit.get_prediction({"dose": 12.0})
    np.testing.assert_allclose(pred.var_resid, ref.var_resid, **EXACT)
    np.testing.assert_allclose(pred.se_obs, ref.se_obs, rtol=1e-8)


# --------------------------------------------------------------- multilevel
def test_school_obs_interval_adds_both_levels():
    res = smf.mixmeta("effect ~ 1", data=datasets.load_school(), S="var",
                      random="~ 1 | district/study", method="reml").fit()
    district, study = (p[0, 0] for p in res.psis)
    assert district > 0 and study > 0
    pred = res.get_prediction(pd.DataFrame(index=[0]))
    np.testing.assert_allclose(pred.var_resid, [district + study], **EXACT)
    frame = pred.summary_frame()
    se = np.sqrt(np.asarray(res.cov_params())[0, 0])
    mean = np.asarray(res.params)[0]
    np.testing.assert_allclose(
        frame["obs_ci_upper"], [mean + Z95 * np.sqrt(se ** 2 + district
                                                     + study)], **EXACT)


def test_array_model_with_a_column_of_ones_needs_no_exog_re():
    school = datasets.load_school()
    res = smm.MixMeta(school["effect"].to_numpy(), np.ones((56, 1)),
                      S=school["var"].to_numpy(),
                      groups=school[["district", "study"]].to_numpy(),
                      exog_re=np.ones((56, 1))).fit()
    pred = res.get_prediction([[1.0]])
    np.testing.assert_allclose(pred.var_resid,
                               [res.psis[0][0, 0] + res.psis[1][0, 0]],
                               **EXACT)


# ------------------------------------------------------------ multivariate
def test_berkey_per_row_covariance_is_the_block_of_cov_params():
    res = fit_berkey()
    new = pd.DataFrame({"year": [0.0, 4.0, -3.0]})
    pred = res.get_prediction(new)
    V = np.asarray(res.cov_params())          # PD: (1, year), AL: (1, year)
    psi = res.psis[0]
    cov = pred.cov()
    assert cov.shape == (3, 2, 2)
    for u, year in enumerate(new["year"]):
        X = np.kron(np.eye(2), [1.0, year])   # outcome-major coefficients
        np.testing.assert_allclose(cov[u], X @ V @ X.T, **EXACT)
        np.testing.assert_allclose(pred.cov(obs=True)[u], X @ V @ X.T + psi,
                                   **EXACT)
    # the full covariance, rows outer and outcomes inner
    X_all = np.vstack([np.kron(np.eye(2), [1.0, y]) for y in new["year"]])
    full = pred.cov(full=True)
    np.testing.assert_allclose(full, X_all @ V @ X_all.T, **EXACT)
    full_obs = pred.cov(full=True, obs=True)
    np.testing.assert_allclose(full_obs,
                               X_all @ V @ X_all.T + np.kron(np.eye(3), psi),
                               **EXACT)
    # its diagonal is the stacked summary frame's squared mean_se
    frame = pred.summary_frame()
    assert list(frame.index) == [(u, o) for u in range(3)
                                 for o in ("PD", "AL")]
    np.testing.assert_allclose(frame["mean_se"] ** 2, np.diag(full),
                               **EXACT)
    np.testing.assert_allclose(
        frame["obs_ci_upper"],
        frame["mean"] + Z95 * np.sqrt(np.diag(full_obs)), **EXACT)
    assert pred.predicted_mean.shape == (3, 2)
    np.testing.assert_allclose(pred.var_resid,
                               np.tile(np.diag(psi), (3, 1)), **EXACT)


# -------------------------------------------------------------------- BLUPs
def test_bcg_blup_interval_is_metafors_formula():
    data = datasets.load_bcg()
    res = fit_bcg()
    frame = res.blup(pi=True)
    tau2 = res.psis[0][0, 0]
    v, y = data["logorvar"].to_numpy(), data["logor"].to_numpy()
    X = np.c_[np.ones(len(data)), data["ablat"]]
    lam = tau2 / (tau2 + v)
    xvx = np.einsum("np,pq,nq->n", X, np.asarray(res.cov_params()), X)
    pred = lam * y + (1 - lam) * (X @ np.asarray(res.params))
    pev = lam * v + (1 - lam) ** 2 * xvx
    np.testing.assert_allclose(frame["blup"], pred, rtol=1e-10)
    np.testing.assert_allclose(frame["pi_se"], np.sqrt(pev), rtol=1e-10)
    np.testing.assert_allclose(frame["pi_lower"], pred - Z95 * np.sqrt(pev),
                               rtol=1e-10)
    values, errors = res.blup(se=True)
    np.testing.assert_allclose(frame["se"], errors.iloc[:, 0], **EXACT)
    # R mixmeta's se leaves out the covariance of the two parts: larger
    assert (frame["se"] > frame["pi_se"]).all()


def test_berkey_blup_prediction_error_variance_by_hand():
    data = berkey()
    res = fit_berkey(use_t=True)
    frame = res.blup(pi=True, alpha=0.1)
    psi, V = res.psis[0], np.asarray(res.cov_params())
    S = np.stack([[[r.var_PD, r.cov_PD_AL], [r.cov_PD_AL, r.var_AL]]
                  for r in data.itertuples()])
    for u, year in enumerate(data["year"]):
        X = np.kron(np.eye(2), [1.0, year])
        sigma_inv = np.linalg.inv(S[u] + psi)
        A = X - psi @ sigma_inv @ X
        pev = A @ V @ A.T + psi - psi @ sigma_inv @ psi
        np.testing.assert_allclose(frame.loc[u, "pi_se"],
                                   np.sqrt(np.diag(pev)), rtol=1e-10)
    q = stats.t.isf(0.05, res.df_resid)
    np.testing.assert_allclose(frame["pi_upper"],
                               frame["blup"] + q * frame["pi_se"], **EXACT)


def test_outer_level_blup_intervals_follow_the_level():
    res = smf.mixmeta("effect ~ 1", data=datasets.load_school(), S="var",
                      random="~ 1 | district/study", method="reml").fit()
    inner, outer = res.blup(pi=True), res.blup(level=1, pi=True)
    np.testing.assert_allclose(outer["blup"], res.blup(level=1).iloc[:, 0],
                               **EXACT)
    np.testing.assert_allclose(inner["blup"], res.blup().iloc[:, 0],
                               **EXACT)
    assert (inner["pi_se"] > 0).all() and (outer["pi_se"] > 0).all()


def test_school_blup_prediction_error_variance_by_hand():
    # dense per district: theta = 1 beta + b_district + b_study
    data = datasets.load_school()
    res = smf.mixmeta("effect ~ 1", data=data, S="var",
                      random="~ 1 | district/study", method="reml").fit()
    frame = res.blup(pi=True)
    district, study = (p[0, 0] for p in res.psis)
    V = np.asarray(res.cov_params())[0, 0]
    expected = np.empty(len(data))
    for _, rows in data.groupby("district").groups.items():
        rows = np.asarray(rows)
        n = len(rows)
        cov_theta = district * np.ones((n, n)) + study * np.eye(n)
        sigma = cov_theta + np.diag(data["var"].to_numpy()[rows])
        gain = cov_theta @ np.linalg.inv(sigma)       # C Sigma^-1
        A = np.ones(n) - gain @ np.ones(n)
        pev = np.outer(A, A) * V + cov_theta - gain @ cov_theta
        expected[rows] = np.diag(pev)
    np.testing.assert_allclose(frame["pi_se"], np.sqrt(expected),
                               rtol=1e-9)
