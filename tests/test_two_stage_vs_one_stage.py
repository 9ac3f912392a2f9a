"""
Two-stage pooling next to one-stage models of the same simulated
individual-level data (issue 10), with stated tolerances:

a. Gaussian sites with a random intercept and slope: two-stage REML (OLS
   per site, bivariate ``~ 1``, unstructured Psi) against statsmodels
   ``MixedLM`` with ``re_formula="~x"``; and the figures of
   ``benchmarks/two_stage_vs_one_stage.py`` recomputed by hand.
b. Poisson sites with site-specific trends and an intervention: two-stage
   fixed-effects pooling against a GLM with site fixed effects, site trends
   and a common intervention effect (equal to second order only, see
   :func:`test_poisson_fixed_effects_pooling_is_the_glm_to_second_order`);
   two-stage REML against the same GLM with model-based and cluster-robust
   errors.
c. Correlated estimates of one study: the bivariate pooling against a hand
   GLS, and against naive univariate pooling.
"""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import two_stage_vs_one_stage as study  # noqa: E402



# ------------------------------------------------------------ a. Gaussian
def _ols_by_hand(data):
    """The first stage without the helper: y (g, 2) and S (g, 2, 2)."""
    ys, covs = [], []
    for _, rows in data.groupby("site", sort=True):
        fit = smf.ols("y ~ x", data=rows).fit()
        ys.append(fit.params.to_numpy())
        covs.append(fit.cov_params().to_numpy())
    return np.array(ys), np.array(covs)


@pytest.fixture(scope="module")
def gaussian():
    data = study.simulate_sites(np.random.default_rng(1))
    two, one, default_converged = study.fit_both(data)
    return data, two, one, default_converged


def test_gaussian_pooled_slope_is_mixedlm_within_a_tenth_of_an_se(gaussian):
    data, two, one, default_converged = gaussian
    assert default_converged and one.converged and two.converged
    assert len(data) == 840 and two.n_groups == 20
    se = one.bse_fe["x"]
    # seed 1: 0.0064 SE apart; over the 200 replications of the benchmark
    # the largest difference is 0.12 SE, the mean 0.03 SE
    assert abs(two.params["x"] - one.fe_params["x"]) < 0.1 * se
    assert abs(two.params["Intercept"] - one.fe_params["Intercept"]) \
        < 0.1 * one.bse_fe["Intercept"]
    # standard errors within 5% (seed 1: +1.5% slope, -0.9% intercept)
    np.testing.assert_allclose(two.bse[["Intercept", "x"]],
                               one.bse_fe[["Intercept", "x"]], rtol=0.05)


def test_gaussian_psi_is_comparable_with_cov_re(gaussian):
    _, two, one, _ = gaussian
    cov_re = np.asarray(one.cov_re)
    psi = two.psi.loc[["Intercept", "x"], ["Intercept", "x"]].to_numpy()
    # seed 1: variances within 2% (intercept) and 5.4% (slope) of MixedLM's
    np.testing.assert_allclose(np.diag(psi), np.diag(cov_re), rtol=0.1)
    # the covariance, on the scale of the standard deviations
    scale = np.sqrt(cov_re[0, 0] * cov_re[1, 1])
    assert abs(psi[0, 1] - cov_re[0, 1]) < 0.05 * scale


def test_gaussian_first_stage_is_the_hand_loop(gaussian):
    data, two, _, _ = gaussian
    y, S = _ols_by_hand(data)
    by_hand = smm.MixMeta(y, None, S=S).fit()
    np.testing.assert_allclose(np.asarray(two.params),
                               np.asarray(by_hand.params), rtol=1e-8)
    np.testing.assert_allclose(two.psi.to_numpy(), by_hand.psi.to_numpy(),
                               rtol=1e-6)


def test_replications_are_summarised_as_computed_by_hand():
    """Six replications through the script's functions, and every
    figure recomputed here from fits made without the helper."""
    frame = study.run(6, seed=7)
    summary = study.summarise(frame)
    rng = np.random.default_rng(7)
    rows = []
    for _ in range(6):
        data = study.simulate_sites(rng)
        y, S = _ols_by_hand(data)
        two = smm.MixMeta(y, None, S=S).fit()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = smf.mixedlm("y ~ x", data, groups="site",
                                re_formula="~x")
            one = model.fit(reml=True)
            if not one.converged:
                one = model.fit(reml=True, method=["lbfgs"])
        rows.append([np.asarray(two.params)[1], np.asarray(two.bse)[1],
                     np.asarray(two.psi)[1, 1], one.fe_params["x"],
                     one.bse_fe["x"], np.asarray(one.cov_re)[1, 1]])
    hand = np.array(rows)
    np.testing.assert_allclose(
        frame[["two_stage_slope", "two_stage_slope_se",
               "two_stage_psi_slope"]].to_numpy(), hand[:, :3], rtol=1e-6)
    np.testing.assert_allclose(
        frame[["mixedlm_slope", "mixedlm_slope_se",
               "mixedlm_psi_slope"]].to_numpy(), hand[:, 3:], rtol=1e-12)
    z = stats.norm.ppf(0.975)
    for name, cols in (("two_stage", hand[:, :3]), ("mixedlm", hand[:, 3:])):
        slope, se, var = cols.T
        got = summary[name]
        assert got["slope_bias"] == pytest.approx(slope.mean() - 0.5,
                                                  abs=1e-6)
        assert got["slope_sd"] == pytest.approx(slope.std(ddof=1), rel=1e-6)
        assert got["slope_mean_se"] == pytest.approx(se.mean(), rel=1e-6)
        assert got["slope_coverage"] == np.mean(np.abs(slope - 0.5) <= z * se)
        assert got["psi_slope_bias"] == pytest.approx(var.mean() - 0.2,
                                                      abs=1e-6)
        assert got["psi_slope_sd"] == pytest.approx(var.std(ddof=1),
                                                    rel=1e-6)
    difference = np.abs(hand[:, 0] - hand[:, 3]) / hand[:, 4]
    assert summary["difference"]["slope_max_abs_in_se"] == pytest.approx(
        difference.max(), rel=1e-5)


def test_benchmark_results_are_the_200_replications():
    report = json.loads((ROOT / "benchmarks" / "results"
                         / "two_stage_vs_one_stage.json").read_text())
    assert report["replications"] >= 200
    assert report["design"]["psi"] == study.TRUE_PSI.tolist()
    summary = report["summary"]
    for name in ("two_stage", "mixedlm"):
        got = summary[name]
        # unbiased slope (within 2 Monte Carlo SEs), 95% intervals that
        # cover 90-98% of the time with 20 sites and normal quantiles
        assert abs(got["slope_bias"]) < 2 * got["slope_sd"] / np.sqrt(200)
        assert 0.90 <= got["slope_coverage"] <= 0.98
        assert abs(got["psi_slope_bias"]) < 0.02
    assert summary["not_converged"]["mixedlm"] == 0


# ------------------------------------------------------------- b. Poisson
@pytest.fixture(scope="module", params=[(0, 0.0), (2, 0.1)],
                ids=["common effect", "varying effects"])
def poisson(request):
    seed, effect_sd = request.param
    data = study.poisson_sites(seed, effect_sd=effect_sd)
    two = smm.two_stage(data, "site", study.fit_poisson_site, ["post"])
    glm = smf.glm(study.GLM_FORMULA, data, family=sm.families.Poisson())
    return dict(data=data, two=two, glm=glm.fit(), effect_sd=effect_sd,
                clustered=glm.fit(cov_type="cluster", cov_kwds={
                    "groups": pd.factorize(data["site"])[0]}))


def test_poisson_fixed_effects_pooling_is_the_glm_to_second_order(poisson):
    """
    Not to 1e-4: the GLM solves one score equation over all sites, with
    each site's information at the common estimate; the two-stage pooling
    averages each site's own MLE with the inverse of its information at
    that MLE.  The pooled estimate is one scoring step from the site MLEs
    towards the joint MLE; the two differ in terms of second order in the
    spread of the site estimates.  Measured here: 0.0006 SE (common
    effect) and 0.009 SE (varying effects) apart, standard errors within
    0.07%.  Tolerance: 0.05 SE, SEs within 1%.
    """
    fixed = poisson["two"].fit(method="fixed")
    glm = poisson["glm"]
    se = glm.bse["post"]
    difference = fixed.params["post"] - glm.params["post"]
    assert abs(difference) < 0.05 * se
    assert fixed.bse["post"] == pytest.approx(se, rel=0.01)
    assert abs(difference) > 1e-6 * se       # close, but not an identity
    if poisson["effect_sd"] == 0:            # quoted in README's guide
        assert f"{abs(difference) / se:.4f}" == "0.0006"
    # the pooling by hand: inverse-variance weighted site MLEs
    y = poisson["two"].y["post"].to_numpy()
    v = poisson["two"].S[:, 0, 0]
    assert fixed.params["post"] == pytest.approx(
        np.sum(y / v) / np.sum(1 / v), rel=1e-10)
    assert fixed.bse["post"] == pytest.approx(np.sqrt(1 / np.sum(1 / v)),
                                              rel=1e-10)


def test_poisson_random_effects_pooling_beside_the_glm(poisson):
    """The REML pooled effect is the mean of varying site effects; its
    variance ``1 / sum(1 / (v_i + tau2))`` includes the between-site
    variance tau2.  The GLM's model-based SE is that of a common effect
    (``1 / sum(1 / v_i)``, about the fixed-effects one); clustering by
    site lets the spread of the site effects back into the GLM's SE."""
    reml = poisson["two"].fit()
    tau2 = reml.psi.iloc[0, 0]
    y = poisson["two"].y["post"].to_numpy()
    v = poisson["two"].S[:, 0, 0]
    w = 1 / (v + tau2)
    assert reml.params["post"] == pytest.approx(np.sum(w * y) / np.sum(w),
                                                rel=1e-8)
    assert reml.bse["post"] == pytest.approx(np.sqrt(1 / np.sum(w)),
                                             rel=1e-8)
    naive = poisson["glm"].bse["post"]
    clustered = poisson["clustered"].bse["post"]
    if poisson["effect_sd"] == 0:
        # no between-site variance: all three SEs within 10-20%
        assert tau2 == 0
        assert reml.bse["post"] == pytest.approx(naive, rel=0.01)
        assert clustered == pytest.approx(naive, rel=0.2)
    else:
        # seed 2: tau2 = 0.018; REML SE 0.0435 = 2.5 x the GLM's 0.0174;
        # cluster-robust 0.0459
        assert tau2 > 0.01
        assert reml.bse["post"] > 2 * naive
        assert clustered == pytest.approx(reml.bse["post"], rel=0.1)
        assert abs(reml.params["post"] - poisson["glm"].params["post"]) \
            < reml.bse["post"]


def test_poisson_replications_are_summarised_as_computed_by_hand(poisson):
    """Three replications of the script's Poisson study, each figure
    recomputed from the fits of the fixture's data and by hand."""
    frame = study.poisson_run(3, seed=5, effect_sd=poisson["effect_sd"])
    summary = study.poisson_summarise(frame)
    rng = np.random.default_rng(5)
    for row in frame.itertuples():
        data = study.poisson_sites(rng, effect_sd=poisson["effect_sd"])
        fits = study.poisson_fits(data)
        assert row.glm == fits["glm"].params["post"]
        assert row.clustered_se == fits["clustered"].bse["post"]
        y = fits["first"].y["post"].to_numpy()
        v = fits["first"].S[:, 0, 0]
        assert row.fixed == pytest.approx(np.sum(y / v) / np.sum(1 / v),
                                          rel=1e-10)
        assert row.reml_se == fits["reml"].bse["post"]
    z = stats.norm.ppf(0.975)
    apart = np.abs(frame["fixed"] - frame["glm"]) / frame["glm_se"]
    assert summary["fixed_vs_glm"]["max_abs_in_se"] == apart.max()
    for name, estimate, se in [("reml", "reml", "reml_se"),
                               ("glm", "glm", "glm_se"),
                               ("glm_clustered", "glm", "clustered_se")]:
        covered = np.abs(frame[estimate] + 0.15) <= z * frame[se]
        assert summary[name]["coverage"] == covered.mean()
        assert summary[name]["mean_se"] == pytest.approx(frame[se].mean())


# ---------------------------------------------- c. correlated estimates
def correlated_studies(seed, n_studies=15, rho=0.8):
    """Patients of ``n_studies`` studies with two correlated
    characteristics ``x1``, ``x2`` (correlation ``rho``) and an outcome
    depending on both."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_studies):
        n = rng.integers(40, 120)
        x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
        b1, b2 = rng.multivariate_normal([0.3, 0.2], [[0.02, 0.01],
                                                      [0.01, 0.02]])
        frames.append(pd.DataFrame({
            "study": f"s{s:02d}", "x1": x[:, 0], "x2": x[:, 1],
            "y": b1 * x[:, 0] + b2 * x[:, 1] + rng.normal(size=n)}))
    return pd.concat(frames, ignore_index=True)


def fit_study(rows):
    return smf.ols("y ~ x1 + x2", data=rows).fit()


@pytest.fixture(scope="module")
def correlated():
    data = correlated_studies(3)
    both = smm.two_stage(data, "study", fit_study, ["x1", "x2"])
    x1 = smm.two_stage(data, "study", fit_study, ["x1"])
    x2 = smm.two_stage(data, "study", fit_study, ["x2"])
    return both, both.fit(), x1.fit(), x2.fit()


def test_bivariate_pooling_is_the_hand_gls(correlated):
    both, multi, _, _ = correlated
    psi = multi.psi.to_numpy()
    weights = np.linalg.inv(both.S + psi)                  # (S_i + Psi)^-1
    information = weights.sum(axis=0)
    beta = np.linalg.solve(information,
                           np.einsum("gij,gj->i", weights, both.y.to_numpy()))
    np.testing.assert_allclose(np.asarray(multi.params), beta, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(multi.cov_params()),
                               np.linalg.inv(information), rtol=1e-8)
    # within-study estimates strongly negatively correlated (rho = 0.8)
    corr = both.S[:, 0, 1] / np.sqrt(both.S[:, 0, 0] * both.S[:, 1, 1])
    assert np.all(corr < -0.7)


@pytest.mark.parametrize("contrast, naive_vs_multi", [
    ("x1 + x2", (1.5, 2.2)), ("x1 - x2", (0.5, 0.9))])
def test_naive_univariate_pooling_misstates_the_se(correlated, contrast,
                                                   naive_vs_multi):
    """The SE of a summary of both coefficients: from the bivariate fit
    (t_test) and from two univariate fits treated as independent.  The SE
    of their sum is over-, that of their difference under-stated by the
    naive pooling (seed 3: 0.129 for both, against 0.072 and 0.167)."""
    _, multi, x1, x2 = correlated
    sign = 1 if "+" in contrast else -1
    test = multi.t_test(f"{contrast} = 0")
    c = np.array([1.0, sign])
    cov = np.asarray(multi.cov_params())
    assert test.sd[0, 0] == pytest.approx(np.sqrt(c @ cov @ c), rel=1e-10)
    naive = np.sqrt(x1.bse["x1"] ** 2 + x2.bse["x2"] ** 2)
    low, high = naive_vs_multi
    assert low < naive / test.sd[0, 0] < high


# ------------------------------------------- the guide in README.rst
GUIDE_TITLE = "Two-stage or one-stage? Three questions"


@pytest.fixture(scope="module")
def guide():
    """README's guide section: its text, and the namespace its Python
    blocks leave (they run on their own, in order)."""
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    start = text.index(f"\n{GUIDE_TITLE}\n")
    section = text[start:text.index("\nFrom R to Python\n", start)]
    blocks, lines, i = [], section.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() != ".. code-block:: python":
            i += 1
            continue
        i += 1
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or lines[i].startswith(" ")):
            body.append(lines[i][4:])
            i += 1
        blocks.append("\n".join(body))
    assert len(blocks) == 3
    namespace = {"__name__": "__guide__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"README guide block {number}", "exec"),
                 namespace)
    # prose wraps lines; compare with single spaces
    return " ".join(section.split()), namespace


def _quoted(text, *phrases):
    for phrase in phrases:
        assert phrase in text, f"README guide no longer says {phrase!r}"


def test_guide_gaussian_numbers(guide):
    text, ns = guide
    pooled, mixed = ns["pooled_fit"], ns["mixed"]
    assert ns["first"].table["nobs"].sum() == len(ns["site_rows"]) == 840
    _quoted(text, "is 0.4797 (standard error 0.0841) in two stages and "
            "0.4803 (0.0828) in MixedLM: 0.006 standard errors apart",
            "between-site variance is 0.111 and 0.105")
    assert f"{pooled.params['x']:.4f} {pooled.bse['x']:.4f}" == \
        "0.4797 0.0841"
    assert f"{mixed.fe_params['x']:.4f} {mixed.bse_fe['x']:.4f}" == \
        "0.4803 0.0828"
    apart = abs(pooled.params["x"] - mixed.fe_params["x"]) / \
        mixed.bse_fe["x"]
    assert f"{apart:.3f}" == "0.006"
    no_slope = ns["no_slope"]
    _quoted(text, "MixedLM reports the slope 0.4697 with standard error "
            "0.0385, less than half")
    assert f"{no_slope.fe_params['x']:.4f} {no_slope.bse_fe['x']:.4f}" == \
        "0.4697 0.0385"
    assert no_slope.bse_fe["x"] < 0.5 * mixed.bse_fe["x"]
    assert ns["table"].names[2] == "no slope"
    assert list(ns["table"].between.index) == [
        "Var(Intercept)", "Cov(Intercept, x)", "Var(x)"]
    assert ns["table"].between.loc["Var(Intercept)", "no slope"] == \
        np.asarray(no_slope.cov_re)[0, 0]
    between = ns["table"].between.loc["Var(x)"]
    assert f"{between['two-stage']:.3f} {between['MixedLM']:.3f}" == \
        "0.111 0.105"


def test_guide_simulation_figures_are_the_benchmark_json(guide):
    text, _ = guide
    report = json.loads((ROOT / "benchmarks" / "results"
                         / "two_stage_vs_one_stage.json").read_text())
    two, mixed = report["summary"]["two_stage"], report["summary"]["mixedlm"]
    difference = report["summary"]["difference"]
    assert report["replications"] == 200
    _quoted(text, "Over 200 simulated data sets", "(bias -0.001)",
            "(SD 0.110, mean reported standard error 0.105)",
            "cover 92.0% (two-stage) and 91.5% (MixedLM)",
            "at most 0.12 standard errors apart (0.03 on average)",
            "bias -0.004 and SD 0.073 in two stages, bias -0.002 and SD "
            "0.078 in MixedLM", "correlated at 0.93",
            "in 12 of the 200 data sets")
    assert f"{two['slope_bias']:.3f}" == f"{mixed['slope_bias']:.3f}" \
        == "-0.001"
    assert f"{two['slope_sd']:.3f}" == f"{mixed['slope_sd']:.3f}" == "0.110"
    assert f"{two['slope_mean_se']:.3f}" == \
        f"{mixed['slope_mean_se']:.3f}" == "0.105"
    assert f"{100 * two['slope_coverage']:.1f}" == "92.0"
    assert f"{100 * mixed['slope_coverage']:.1f}" == "91.5"
    assert f"{difference['slope_max_abs_in_se']:.2f}" == "0.12"
    assert f"{difference['slope_mean_abs_in_se']:.2f}" == "0.03"
    assert f"{two['psi_slope_bias']:.3f} {two['psi_slope_sd']:.3f}" == \
        "-0.004 0.073"
    assert f"{mixed['psi_slope_bias']:.3f} {mixed['psi_slope_sd']:.3f}" \
        == "-0.002 0.078"
    assert f"{difference['psi_slope_correlation']:.2f}" == "0.93"
    not_converged = report["summary"]["not_converged"]
    assert not_converged["mixedlm_default_optimiser"] == 12
    assert not_converged["mixedlm"] == 0


def test_guide_poisson_simulation_figures_are_the_benchmark_json(guide):
    text, _ = guide
    report = json.loads((ROOT / "benchmarks" / "results"
                         / "two_stage_vs_one_stage.json").read_text())
    poisson = report["poisson"]
    common, varying = poisson["common_effect"], poisson["varying_effects"]
    assert poisson["replications"] == 100
    _quoted(text, "Over 100 data sets of this design",
            "at most 0.042 standard errors apart (0.011 with a common "
            "effect) and their standard errors within 0.4%",
            "covered the mean effect -0.15 in 59 of them (its standard "
            "error averages 0.0174 while its estimates spread with SD "
            "0.038), the clustered GLM's in 91 and the REML one in 92")
    assert f"{varying['fixed_vs_glm']['max_abs_in_se']:.3f}" == "0.042"
    assert f"{common['fixed_vs_glm']['max_abs_in_se']:.3f}" == "0.011"
    assert max(common["fixed_vs_glm"]["max_abs_se_ratio_minus_1"],
               varying["fixed_vs_glm"]["max_abs_se_ratio_minus_1"]) < 0.004
    assert round(100 * varying["glm"]["coverage"]) == 59
    assert f"{varying['glm']['mean_se']:.4f}" == "0.0174"
    assert f"{varying['glm']['sd']:.3f}" == "0.038"
    assert round(100 * varying["glm_clustered"]["coverage"]) == 91
    assert round(100 * varying["reml"]["coverage"]) == 92


def test_guide_poisson_numbers(guide):
    text, ns = guide
    common, glm = ns["common"], ns["glm"]
    varying, clustered = ns["varying"], ns["glm_clustered"]
    _quoted(text, "-0.1749 and -0.1748, both with standard error 0.0174",
            "(0.009 standard errors apart here)",
            "(between-site variance 0.0183, Cochran's Q p < 1e-9), -0.154 "
            "with standard error 0.0435, 2.5 times the GLM's 0.0174",
            "0.0459, close to the REML one")
    assert f"{common.params['post']:.4f} {glm.params['post']:.4f}" == \
        "-0.1749 -0.1748"
    assert f"{common.bse['post']:.4f} {glm.bse['post']:.4f}" == \
        "0.0174 0.0174"
    apart = abs(common.params["post"] - glm.params["post"]) / glm.bse["post"]
    assert f"{apart:.3f}" == "0.009"
    assert f"{varying.psi.iloc[0, 0]:.4f}" == "0.0183"
    assert np.asarray(varying.q_test().pvalue).item() < 1e-9
    assert f"{varying.params['post']:.3f} {varying.bse['post']:.4f}" == \
        "-0.154 0.0435"
    assert f"{varying.bse['post'] / glm.bse['post']:.1f}" == "2.5"
    assert f"{clustered.bse['post']:.4f}" == "0.0459"
    # the table sets the four side by side, the site nuisances left out
    assert list(ns["effects"].params.index) == ["post"]
    assert ns["effects"].info.loc["observations"].tolist() == [1440] * 4


def test_guide_correlated_numbers(guide):
    text, ns = guide
    both, multi, alone = ns["both"], ns["multi"], ns["alone"]
    _quoted(text, "(about -0.79 here,",
            "is 0.072 from the bivariate pooling and 0.129 from the naive "
            "one, overstated 1.8 times",
            "0.167 jointly against the same naive 0.129")
    corr = both.S[:, 0, 1] / np.sqrt(both.S[:, 0, 0] * both.S[:, 1, 1])
    assert f"{np.median(corr):.2f}" == "-0.79"
    sums = multi.t_test("x1 + x2 = 0").sd[0, 0]
    differences = multi.t_test("x1 - x2 = 0").sd[0, 0]
    naive = np.hypot(alone["x1"].bse["x1"], alone["x2"].bse["x2"])
    assert f"{sums:.3f} {differences:.3f} {naive:.3f}" == "0.072 0.167 0.129"
    assert f"{naive / sums:.1f}" == "1.8"
