"""
Intervals for Psi (``conf_int_psi``) and its profile log-likelihood
(``profile_loglike``, :mod:`statsmodels_mixmeta.fitting.profile`).

The Q-profile interval is held against a hand computation and metafor's
documented values for the BCG data; profile intervals against the chi2_1
cut-off of the (restricted) log-likelihood (to 1e-4) and the profile
against brute-force maximisation over the model's own ``theta``; Wald
intervals against the inverse of a numerically differenced Hessian in the
natural parameters.
"""
import math
import warnings

import numpy as np
import pytest
import statsmodels.formula.api as smf
from scipy import optimize, stats

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets

CUTOFF = stats.chi2.ppf(0.95, 1) / 2


@pytest.fixture(scope="module")
def bcg():
    return datasets.load_bcg()


@pytest.fixture(scope="module")
def hyp():
    data = datasets.load_hyp()
    data["sbp_var"] = data["sbp_se"] ** 2
    data["dbp_var"] = data["dbp_se"] ** 2
    data["sd_cov"] = data["rho"] * data["sbp_se"] * data["dbp_se"]
    return data


HYP_S = ["sbp_var", "sd_cov", "dbp_var"]


@pytest.fixture(scope="module")
def hyp_unstr(hyp):
    return smf.mixmeta("sbp + dbp ~ 1", data=hyp, S=HYP_S).fit()


@pytest.fixture(scope="module")
def bcg_reml(bcg):
    return smf.mixmeta("logrr ~ 1", data=bcg, S="logrrvar").fit()


def _escalc_rr(data):
    """metafor's escalc("RR"): log risk ratio and its variance."""
    tpos, tneg, cpos, cneg = (data[c].to_numpy(float)
                              for c in ("tpos", "tneg", "cpos", "cneg"))
    yi = np.log((tpos / (tpos + tneg)) / (cpos / (cpos + cneg)))
    vi = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    return yi, vi


def _hand_qprofile(y, v, X, alpha=0.05):
    """Q-profile bounds by hand: weighted least squares at each tau2."""
    def q(tau2):
        w = 1 / (v + tau2)
        beta = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y))
        return np.sum(w * (y - X @ beta) ** 2)
    df = y.size - X.shape[1]
    out = []
    for target in (stats.chi2.ppf(1 - alpha / 2, df),
                   stats.chi2.ppf(alpha / 2, df)):
        out.append(0.0 if q(0) < target else
                   optimize.brentq(lambda t: q(t) - target, 0, 100,
                                   xtol=1e-14))
    return out


def _assert_cutoff(res, frame, tol=1e-4):
    """Each finite bound that is not at an edge lies on the chi2 cut-off."""
    checked = 0
    for name, row in frame.iterrows():
        for bound in (row["lower"], row["upper"]):
            if row["note"] and bound in (0.0, 1.0, -1.0):
                continue
            llf = res.profile_loglike(name, grid=[bound])["llf"].iloc[0]
            assert abs(res.llf - llf - CUTOFF) < tol, (name, bound)
            checked += 1
    return checked


# ------------------------------------------------------------ qprofile
def test_qprofile_bcg_matches_metafor_and_hand(bcg, bcg_reml):
    yi, vi = _escalc_rr(bcg)
    # the package's columns are metafor's escalc("RR")
    np.testing.assert_allclose(bcg["logrr"], yi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bcg["logrrvar"], vi, rtol=0, atol=1e-12)
    ci = bcg_reml.conf_int_psi(method="qprofile")
    assert list(ci.index) == ["var[logrr]"]
    assert list(ci.columns) == ["estimate", "lower", "upper", "note"]
    row = ci.iloc[0]
    # metafor: rma(yi, vi, data=dat.bcg); confint(): 0.3132 [0.1197, 1.1115]
    assert round(row["estimate"], 4) == 0.3132
    assert round(row["lower"], 4) == 0.1197
    assert round(row["upper"], 4) == 1.1115
    lower, upper = _hand_qprofile(yi, vi, np.ones((yi.size, 1)))
    np.testing.assert_allclose([row["lower"], row["upper"]], [lower, upper],
                               rtol=1e-9)


def test_qprofile_meta_regression_and_moments(bcg):
    res = smf.mixmeta("logrr ~ ablat", data=bcg, S="logrrvar").fit()
    ci = res.conf_int_psi(method="qprofile")
    X = np.column_stack([np.ones(len(bcg)), bcg["ablat"]])
    lower, upper = _hand_qprofile(bcg["logrr"].to_numpy(),
                                  bcg["logrrvar"].to_numpy(), X)
    np.testing.assert_allclose(ci[["lower", "upper"]].iloc[0],
                               [lower, upper], rtol=1e-9)
    # the Q-profile needs no likelihood: a DerSimonian-Laird fit has the
    # same bounds around its own estimate (metafor's DL tau2 is 0.3088)
    mm = smf.mixmeta("logrr ~ 1", data=bcg, S="logrrvar",
                     method="mm").fit()
    dl = mm.conf_int_psi(method="qprofile").iloc[0]
    assert round(dl["estimate"], 4) == 0.3088
    assert round(dl["lower"], 4) == 0.1197
    assert round(dl["upper"], 4) == 1.1115


def test_qprofile_truncated_at_zero():
    y = np.array([0.1, 0.3, -0.1, 0.2, 0.15, 0.05, 0.25])
    v = np.array([0.04, 0.05, 0.03, 0.06, 0.05, 0.04, 0.07])
    res = smm.MixMeta(y, np.ones((7, 1)), v).fit()
    ci = res.conf_int_psi(method="qprofile").iloc[0]
    lower, upper = _hand_qprofile(y, v, np.ones((7, 1)))
    assert lower == 0 and ci["lower"] == 0
    assert ci["note"] == "lower bound truncated at 0"
    assert abs(ci["upper"] - upper) < 1e-10 and upper > 0
    # the estimate is at 0 as well: no Wald interval, a profile one
    wald = res.conf_int_psi(method="wald").iloc[0]
    assert wald["estimate"] == 0 and np.isnan(wald["lower"])
    assert "edge" in wald["note"]
    prof = res.conf_int_psi(method="profile").iloc[0]
    assert prof["lower"] == 0 and "lower bound at the edge" in prof["note"]
    _assert_cutoff(res, res.conf_int_psi(method="profile"))


def test_qprofile_refuses_multivariate_and_multilevel(hyp_unstr):
    with pytest.raises(ValueError, match="univariate model.*2 outcome"):
        hyp_unstr.conf_int_psi(method="qprofile")
    school = datasets.load_school()
    nested = smf.mixmeta("effect ~ 1", data=school, S="var",
                         random="~ 1 | district/study").fit()
    with pytest.raises(ValueError, match="2 level"):
        nested.conf_int_psi(method="qprofile")


# ------------------------------------------------------------- profile
def test_profile_bcg_univariate(bcg_reml):
    ci = bcg_reml.conf_int_psi(method="profile")
    assert _assert_cutoff(bcg_reml, ci) == 2
    row = ci.iloc[0]
    assert row["lower"] < row["estimate"] < row["upper"]
    # the profile of a single variance needs no optimisation: it is the
    # model's own restricted log-likelihood at sd = sqrt(value)
    llf = bcg_reml.model.loglike(np.array([math.sqrt(row["upper"])]))
    assert abs(bcg_reml.llf - llf - CUTOFF) < 1e-4


def test_profile_multivariate_unstr_with_correlation(hyp_unstr):
    ci = hyp_unstr.conf_int_psi(method="profile")
    assert list(ci.index) == ["var[sbp]", "var[dbp]", "corr[sbp,dbp]"]
    psi = hyp_unstr.psi.to_numpy()
    np.testing.assert_allclose(
        ci["estimate"], [psi[0, 0], psi[1, 1],
                         psi[0, 1] / math.sqrt(psi[0, 0] * psi[1, 1])],
        rtol=1e-12)
    assert _assert_cutoff(hyp_unstr, ci) == 6
    assert (ci["note"] == "").all()


def _brute_profile(res, held, value):
    """Maximise the model's loglike over its own Cholesky theta with one
    natural parameter held (Nelder-Mead from several starts)."""
    loglike = res.model.loglike

    def theta(free):
        if held == "corr":
            a, b = np.exp(free)
            return np.array([a, value * b, b * math.sqrt(1 - value ** 2)])
        return np.array([math.sqrt(value), free[0], abs(free[1])])

    best = -np.inf
    for start in ([0.0, 0.0], [1.0, -1.0]):
        fit = optimize.minimize(lambda f: -loglike(theta(f)), start,
                                method="Nelder-Mead",
                                options=dict(xatol=1e-10, fatol=1e-13,
                                             maxiter=5000))
        best = max(best, -fit.fun)
    return best


def test_profile_equals_brute_force(hyp_unstr):
    corr = hyp_unstr.profile_loglike("corr[sbp,dbp]", grid=[-0.5])
    var = hyp_unstr.profile_loglike("var[sbp]", grid=[10.0])
    for value, llf in zip(corr["value"], corr["llf"]):
        assert abs(llf - _brute_profile(hyp_unstr, "corr", value)) < 1e-7
    for value, llf in zip(var["value"], var["llf"]):
        assert abs(llf - _brute_profile(hyp_unstr, "var", value)) < 1e-7


def test_profile_ml_edges_berkey():
    berkey = datasets.load_berkey98().set_index("trial")
    res = smf.mixmeta("PD + AL ~ 1", data=berkey,
                      S=["var_PD", "cov_PD_AL", "var_AL"], method="ml").fit()
    ci = res.conf_int_psi(method="profile")
    # the profile of var[PD] stays above the cut-off down to 0; at
    # var[PD] = 0 the correlation does not matter, so its profile stays
    # above the cut-off over all of [-1, 1]: edges, with notes
    assert ci.loc["var[PD]", "lower"] == 0
    assert ci.loc["var[PD]", "note"] == "lower bound at the edge (0)"
    assert list(ci.loc["corr[PD,AL]", ["lower", "upper"]]) == [-1, 1]
    assert ci.loc["corr[PD,AL]", "note"] == \
        "lower bound at the edge (-1); upper bound at the edge (1)"
    assert _assert_cutoff(res, ci) == 3
    zero = res.profile_loglike("var[PD]", grid=[0.0])["llf"].iloc[0]
    assert 0 < res.llf - zero < CUTOFF
    edge = res.profile_loglike("corr[PD,AL]", grid=[-1.0, -0.9, 1.0])
    assert np.all(edge["llf"] >= zero - 1e-10)
    assert abs(edge["llf"].iloc[0] - zero) < 1e-10
    assert res.llf - edge["llf"].iloc[2] < CUTOFF


def test_profile_structured_cs_and_ar1(hyp):
    frames = {}
    for bscov in ("cs", "ar1"):
        res = smf.mixmeta("sbp + dbp ~ 1", data=hyp, S=HYP_S,
                          bscov=bscov).fit()
        frames[bscov] = ci = res.conf_int_psi(method="profile")
        assert list(ci.index) == ["var", "rho"]
        assert _assert_cutoff(res, ci) == 4
    # with k = 2 both are one variance and one correlation in (-1, 1)
    np.testing.assert_allclose(frames["cs"][["estimate", "lower", "upper"]],
                               frames["ar1"][["estimate", "lower", "upper"]],
                               rtol=1e-5)


def test_profile_hcs_equals_unstr_with_two_outcomes(hyp, hyp_unstr):
    # with k = 2, hcs and har1 are unstr: the same profile of the
    # correlation, at the edges too
    grid = [-1.0, -0.5, 0.9, 1.0]
    full = hyp_unstr.profile_loglike("corr[sbp,dbp]", grid=grid)["llf"]
    for bscov in ("hcs", "har1"):
        res = smf.mixmeta("sbp + dbp ~ 1", data=hyp, S=HYP_S,
                          bscov=bscov).fit()
        np.testing.assert_allclose(
            res.profile_loglike("rho", grid=grid)["llf"], full, rtol=0,
            atol=1e-7)


def test_profile_cs_lower_edge_of_correlation():
    gliomas = datasets.load_gliomas().dropna(subset=["logOR"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = smf.mixmeta("logOR ~ 0 + C(time)", data=gliomas, S="logORvar",
                          random="~ 0 + C(time) | study", bscov="cs").fit()
    # rho is estimated at 1: no Wald interval for it, nor for the
    # variance (the information is singular there); a profile one for both
    assert res.on_boundary
    wald = res.conf_int_psi(method="wald")
    assert wald[["lower", "upper"]].isna().all().all()
    assert wald.loc["rho", "note"].startswith("estimate at the edge")
    assert wald.loc["var", "note"] == \
        "observed information not positive definite"
    # k = 4: cs correlations lie in [-1/3, 1]
    edge = res.profile_loglike("rho", grid=[-1 / 3, 1.0])
    assert np.all(np.isfinite(edge["llf"]))
    with pytest.raises(ValueError, match=r"rho must lie in \[-0.333"):
        res.profile_loglike("rho", grid=[-0.5])


def test_profile_multilevel():
    school = datasets.load_school()
    res = smf.mixmeta("effect ~ 1", data=school, S="var",
                      random="~ 1 | district/study").fit()
    ci = res.conf_int_psi(method="profile")
    assert list(ci.index) == ["district:var[Intercept]",
                              "study:var[Intercept]"]
    np.testing.assert_allclose(
        ci["estimate"], [res.psi["district"].iloc[0, 0],
                         res.psi["study"].iloc[0, 0]], rtol=1e-12)
    assert _assert_cutoff(res, ci) == 4


def test_profile_loglike_default_grid(bcg_reml):
    frame = bcg_reml.profile_loglike("var[logrr]")
    assert list(frame.columns) == ["value", "llf"]
    ci = bcg_reml.conf_int_psi(method="profile").iloc[0]
    assert frame["value"].min() < ci["lower"] < ci["upper"] \
        < frame["value"].max()
    at = frame["value"].sub(ci["estimate"]).abs().idxmin()
    assert frame["value"][at] == ci["estimate"]
    assert abs(frame["llf"][at] - bcg_reml.llf) < 1e-10
    assert frame["llf"].max() <= bcg_reml.llf + 1e-10


# ---------------------------------------------------------------- wald
def test_wald_univariate_by_hand(bcg_reml):
    tau2 = bcg_reml.psi.iloc[0, 0]
    llf = lambda t: bcg_reml.model.loglike(np.array([math.sqrt(t)]))
    h = 1e-4
    curvature = (llf(tau2 + h) - 2 * llf(tau2) + llf(tau2 - h)) / h ** 2
    se = math.sqrt(-1 / curvature)
    z = stats.norm.ppf(0.975)
    expected = tau2 * np.exp(np.array([-1, 1]) * z * se / tau2)
    ci = bcg_reml.conf_int_psi(method="wald").iloc[0]
    np.testing.assert_allclose(ci[["lower", "upper"]].astype(float),
                               expected, rtol=1e-5)


def test_wald_multivariate_by_numerical_hessian(hyp_unstr):
    ci = hyp_unstr.conf_int_psi(alpha=0.1, method="wald")
    v1, v2, r = ci["estimate"]

    def llf(nu):
        a, b, rho = math.sqrt(nu[0]), math.sqrt(nu[1]), nu[2]
        return hyp_unstr.model.loglike(
            np.array([a, rho * b, b * math.sqrt(1 - rho ** 2)]))

    nu = np.array([v1, v2, r])
    steps = 1e-4 * np.array([v1, v2, 1.0])
    hess = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            e_i, e_j = np.eye(3)[i] * steps[i], np.eye(3)[j] * steps[j]
            hess[i, j] = (llf(nu + e_i + e_j) - llf(nu + e_i - e_j)
                          - llf(nu - e_i + e_j) + llf(nu - e_i - e_j)) \
                / (4 * steps[i] * steps[j])
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    z = stats.norm.ppf(0.95)
    expected = [v * np.exp([-z * s / v, z * s / v])
                for v, s in zip((v1, v2), se[:2])]
    expected.append(np.tanh(np.arctanh(r) + np.array([-1, 1]) * z * se[2]
                            / (1 - r ** 2)))
    np.testing.assert_allclose(ci[["lower", "upper"]].to_numpy(float),
                               np.array(expected), rtol=1e-4)


# ---------------------------------------------------------------- errors
def test_refusals(bcg, bcg_reml):
    fixed = smf.mixmeta("logrr ~ 1", data=bcg, S="logrrvar",
                        method="fixed").fit()
    for method in ("wald", "profile", "qprofile"):
        with pytest.raises(ValueError, match="method='fixed' fits no Psi"):
            fixed.conf_int_psi(method=method)
    with pytest.raises(ValueError, match="method='fixed' fits no Psi"):
        fixed.profile_loglike(0)
    mm = smf.mixmeta("logrr ~ 1", data=bcg, S="logrrvar", method="mm").fit()
    for method in ("wald", "profile"):
        with pytest.raises(ValueError, match="refit with method='reml'"):
            mm.conf_int_psi(method=method)
    with pytest.raises(ValueError, match="valid methods are"):
        bcg_reml.conf_int_psi(method="bootstrap")
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\)"):
        bcg_reml.conf_int_psi(alpha=1.5)
    with pytest.raises(ValueError, match=r"valid names are \['var\[logrr\]"):
        bcg_reml.profile_loglike("tau2")
    with pytest.raises(ValueError, match="must lie in"):
        bcg_reml.profile_loglike("var[logrr]", grid=[-0.1])


def test_random_slope_with_singular_psi():
    gliomas = datasets.load_gliomas().dropna(subset=["logOR"])
    res = smf.mixmeta("logOR ~ time", data=gliomas, S="logORvar",
                      random="~ I(time - 15) | study", method="ml").fit()
    names = ["var[Intercept]", "var[I(time - 15)]",
             "corr[Intercept,I(time - 15)]"]
    wald = res.conf_int_psi(method="wald")
    assert list(wald.index) == names
    assert res.on_boundary                 # the correlation is at +-1
    assert np.isnan(wald.loc[names[2], "lower"])
    for name in names[:2]:
        assert wald.loc[name, "note"].startswith("Psi of this level is on "
                                                 "the boundary")
    prof = res.conf_int_psi(method="profile")
    assert prof.loc[names[2], "upper"] == 1
    assert prof.loc[names[2], "note"].endswith("upper bound at the edge (1)")
    assert _assert_cutoff(res, prof) >= 3


def test_projected_newton_on_a_box():
    from statsmodels_mixmeta.fitting.box_newton import projected_newton
    centre = np.array([-1.0, 2.0, 0.5])
    weights = np.array([1.0, 3.0, 2.0])

    def fun(x):      # a separable quadratic plus a coupling term
        d = x - centre
        return (np.sum(weights * d ** 2) + d[1] * d[2],
                2 * weights * d + np.array([0.0, d[2], d[1]]))

    hess = lambda x: np.diag(2 * weights) + np.array(
        [[0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    lower, upper = np.array([0.0, -np.inf, -np.inf]), np.full(3, np.inf)
    # x0 is held at its bound 0; the others solve the 2 x 2 system
    expected = np.r_[0.0, centre[1:]]
    for hessian in (None, hess):
        x, value = projected_newton(fun, np.ones(3), lower, upper,
                                    hessian=hessian)
        np.testing.assert_allclose(x, expected, atol=1e-9)
        assert value == pytest.approx(fun(expected)[0], abs=1e-12)
    # a saturating coordinate (f decreasing toward its limit, like a
    # likelihood in atanh(rho) as rho -> 1) is taken to its bound
    flat = lambda x: (float(np.exp(-2 * x[0])),
                      np.array([-2 * np.exp(-2 * x[0])]))
    x, _ = projected_newton(flat, np.array([5.0]), np.array([-18.0]),
                            np.array([18.0]), saturating=np.array([True]))
    assert x[0] == 18.0
