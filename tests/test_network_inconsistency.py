"""
The design-by-treatment interaction (inconsistency) model and its global
Wald test: the smoking network of Higgins et al. (2012) and White et al.
(2012) against the paper's numbers, a network whose test is computed by hand,
a network with a known loop inconsistency, other references, and bad input.
"""
import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import statsmodels_mixmeta as smm
from reference_cases import case
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.network.container import NetworkContrasts
from statsmodels_mixmeta.network.inconsistency_design import (
    design_treatments, long_format, network_designs)

S_COLS = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]
PROP = dict(bscov="prop", psi_fix=np.eye(3) + 1)


def _smoking_contrasts(data=None):
    data = datasets.load_smoking() if data is None else data
    y = data[["yB", "yC", "yD"]].rename(columns=lambda c: "y_" + c[1])
    S = smm.unvech(data[S_COLS].to_numpy(float))
    return NetworkContrasts(y, S, design=data["design"], treatments="ABCD",
                            reference="A")


def _smoking_arms():
    """The smoking arms in long form, one row per arm, without the data
    set's augmented A arms (0.001 events among 0.01)."""
    wide = datasets.load_smoking()
    arms = pd.concat([pd.DataFrame({"study": wide["study"], "treatment": t,
                                    "events": wide["d" + t],
                                    "n": wide["n" + t]})
                      for t in "ABCD"]).dropna()
    designs = dict(zip(wide["study"], wide["design"]))
    real = [t.lower() in designs[s]
            for s, t in zip(arms["study"], arms["treatment"])]
    return arms[real]


@pytest.fixture(scope="module")
def smoking_prop():
    return smm.network_inconsistency_test(_smoking_contrasts(), **PROP)


# ------------------------------------------------------------ criterion 3
def test_smoking_prop_has_ten_coefficients_and_the_papers_p_value(
        smoking_prop):
    result = smoking_prop
    assert len(result.inconsistency.params) == 10
    assert result.df == 7
    assert result.distribution == "chi2"
    assert round(result.pvalue, 3) == 0.646
    assert round(result.statistic, 2) == 5.11
    assert result.pvalue == pytest.approx(stats.chi2.sf(result.statistic, 7),
                                          rel=1e-12)
    assert list(result.designs.names) == ["ab", "ac", "acd", "ad", "bc",
                                          "bcd", "bd", "cd"]
    assert result.designs.deviation_names == [
        "acd: C vs A", "acd: D vs A", "bc: C vs B", "bcd: C vs B",
        "bcd: D vs B", "bd: D vs B", "cd: D vs C"]
    assert list(result.inconsistency.params.index[:3]) == ["y_B", "y_C",
                                                           "y_D"]


def test_consistency_model_inside_is_the_smoking_prop_reference(
        smoking_prop):
    ref = case("smoking_prop")
    fit = smoking_prop.consistency
    assert fit.llf == pytest.approx(ref.logLik, abs=1e-6)
    np.testing.assert_allclose(fit.params.to_numpy(), ref.coef, rtol=1e-4)
    np.testing.assert_allclose(fit.bse.to_numpy(),
                               np.sqrt(np.diag(ref.vcov)), rtol=1e-4)


def test_long_format_consistency_model_equals_the_wide_one(smoking_prop):
    """The layout of the inconsistency fit (one row per contrast, addS per
    study, a random effect per contrast) is the multivariate model itself:
    without deviations it is the wide consistency fit."""
    net = _smoking_contrasts()
    long = long_format(net, network_designs(net), deviations=False)
    fit = smm.MixMeta(long["endog"], long["exog"], groups=long["groups"],
                      exog_re=long["exog_re"], addS=long["addS"],
                      **PROP).fit()
    wide = smoking_prop.consistency
    assert fit.llf == pytest.approx(wide.llf, abs=1e-8)
    np.testing.assert_allclose(fit.params.to_numpy(), wide.params.to_numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(fit.psi.to_numpy(), wide.psi.to_numpy(),
                               rtol=1e-6)


def _refit_with_anchors(net, anchors, **kwargs):
    """The inconsistency model whose deviations leave out ``anchors``
    ((design name, treatment) pairs): its fit and Wald statistic."""
    designs = network_designs(net)
    code = {name: i for i, name in enumerate(designs.names)}
    anchors = tuple((code[name], t) for name, t in anchors)
    rows = [(d, t) for d, design in enumerate(designs.designs)
            for t in design[1:]]
    other = dataclasses.replace(
        designs, anchors=anchors,
        deviations=tuple(r for r in rows if r not in anchors))
    long = long_format(net, other)
    fit = smm.MixMeta(long["endog"], long["exog"], groups=long["groups"],
                      exog_re=long["exog_re"], addS=long["addS"],
                      **kwargs).fit()
    names = other.deviation_names
    omega = fit.params[names].to_numpy()
    cov = fit.cov_params().loc[names, names].to_numpy()
    return fit, names, omega @ np.linalg.solve(cov, omega)


def test_other_anchors_change_the_smoking_test_through_augmentation_only(
        smoking_prop):
    """Deviations on the AB trials instead of BC, BD: the same model up to
    the augmented arms' information -- which is why the paper's p = 0.646
    needs the anchors against the reference (the other choice prints
    0.648)."""
    fit, names, statistic = _refit_with_anchors(
        _smoking_contrasts(), [("bc", "C"), ("bd", "D"), ("ad", "D")],
        **PROP)
    assert "ab: B vs A" in names and "bd: D vs B" not in names
    assert round(statistic, 3) == 5.100          # README: 5.100, not 5.112
    assert round(smoking_prop.statistic, 3) == 5.112
    assert round(stats.chi2.sf(statistic, 7), 3) == 0.648
    assert fit.psi.iloc[0, 0] == pytest.approx(
        smoking_prop.inconsistency.psi.iloc[0, 0], rel=1e-3)


def test_without_augmentation_the_anchors_do_not_matter(three_arm_network):
    """Designs AB, AC, ABC: deviations on the ABC trials, or on the AB and
    AC trials, span the same model: the same fit and statistic."""
    result = smm.network_inconsistency_test(three_arm_network, method="ml",
                                            bscov="id")
    fit, names, statistic = _refit_with_anchors(
        three_arm_network, [("ABC", "B"), ("ABC", "C")], method="ml",
        bscov="id")
    assert names == ["AB: B vs A", "AC: C vs A"]
    assert fit.llf == pytest.approx(result.inconsistency.llf, abs=1e-8)
    assert statistic == pytest.approx(result.statistic, rel=1e-6)
    assert result.statistic > 1


def test_f_version_with_use_t(smoking_prop):
    result = smm.network_inconsistency_test(
        _smoking_contrasts(), fit_kwargs=dict(use_t=True), **PROP)
    assert result.distribution == "F"
    # 31 observed contrasts, 10 coefficients: df_resid 21
    assert result.df_denom == 21
    assert result.statistic == pytest.approx(smoking_prop.statistic / 7,
                                             rel=1e-8)
    assert result.pvalue == pytest.approx(
        stats.f.sf(result.statistic, 7, 21), rel=1e-10)
    assert repr(result).startswith("<InconsistencyTest: F(7, 21) = 0.7302")


def test_repr_and_summary(smoking_prop):
    assert repr(smoking_prop) == ("<InconsistencyTest: chi2(7) = 5.1117, "
                                  "p = 0.6463; 8 designs, 10 coefficients>")
    text = smoking_prop.summary()
    assert "Global Wald test of the 7 deviations: chi2(7) = 5.1117" in text
    assert "Method: reml; Psi structure: prop; converged: yes" in text
    table = smoking_prop.design_table
    assert table.loc["ac", "studies"] == 14
    assert table["deviations"].sum() == 7
    assert table["contrasts"].sum() == 10
    assert list(smoking_prop.deviations.columns) == ["coef", "std err", "z",
                                                     "P>|z|"]
    assert smoking_prop.converged


# ------------------------------------- from the arms, other references
@pytest.mark.parametrize("reference", ["A", "B", "C"])
def test_from_arm_level_data_with_any_reference(reference):
    """smm.network_contrasts from the arms, with the exact augmentation:
    again 10 coefficients and 7 deviations, which now sit on other design
    contrasts; augmentation changes the numbers only slightly (White et
    al. 2012)."""
    net = smm.network_contrasts(_smoking_arms(), "study", "treatment",
                                reference, events="events", n="n")
    with warnings.catch_warnings():
        # with B or C as the reference most studies are augmented: their
        # within-study variances (~1111) set the variance unit, the score
        # of the optimum is rounding, and the fit is still certified
        # (second-order test of fitting.optimizer.negligible_gain)
        warnings.simplefilter("error", ConvergenceWarning)
        result = smm.network_inconsistency_test(net, **PROP)
    assert result.converged
    assert result.df == 7
    assert len(result.inconsistency.params) == 10
    assert round(result.pvalue, 3) == 0.646
    assert result.statistic == pytest.approx(5.11, abs=0.005)
    bases = {name: design[0] for name, design in
             zip(result.designs.names, result.designs.designs)}
    assert all(name.endswith(f" vs {bases[name.split(':')[0]]}")
               for name in result.designs.deviation_names)
    # the basic parameters are the two-arm trials against the reference
    anchored = sorted(result.designs.designs[d] for d, _ in
                      result.designs.anchors)
    assert anchored == sorted(d for d in result.designs.designs
                              if len(d) == 2 and reference in d)


# --------------------------------------------- networks known by hand
def _network(rows, treatments, reference):
    """A NetworkContrasts from rows (design, y dict, S matrix over the
    design's non-reference treatments in network order)."""
    others = [t for t in treatments if t != reference]
    y = pd.DataFrame(np.nan, index=[f"s{i}" for i in range(len(rows))],
                     columns=["y_" + t for t in others])
    S = np.full((len(rows), len(others), len(others)), np.nan)
    for i, (design, values, cov) in enumerate(rows):
        cols = [others.index(t) for t in values]
        y.iloc[i, cols] = list(values.values())
        S[i, np.ix_(cols, cols)[0], np.ix_(cols, cols)[1]] = cov
    return NetworkContrasts(y, S, design=[r[0] for r in rows],
                            treatments=treatments, reference=reference)


AB_TRIALS = [(0.30, 0.04), (0.50, 0.09), (0.20, 0.05), (0.90, 0.06)]
AC_TRIALS = [(0.70, 0.06), (0.40, 0.08), (0.10, 0.05)]
ABC_TRIALS = [((0.90, 1.30), np.array([[0.10, 0.04], [0.04, 0.12]])),
              ((0.60, 1.10), np.array([[0.07, 0.03], [0.03, 0.09]])),
              ((0.20, 1.50), np.array([[0.08, 0.03], [0.03, 0.08]]))]


@pytest.fixture(scope="module")
def three_arm_network():
    rows = ([("AB", {"B": yv}, [[v]]) for yv, v in AB_TRIALS]
            + [("AC", {"C": yv}, [[v]]) for yv, v in AC_TRIALS]
            + [("ABC", {"B": yv[0], "C": yv[1]}, cov)
               for yv, cov in ABC_TRIALS])
    return _network(rows, ["A", "B", "C"], "A")


def test_fixed_effect_test_equals_the_hand_computation(three_arm_network):
    """Designs AB, AC and ABC, no heterogeneity: the basic parameters are
    the inverse-variance means of the AB and AC trials, the ABC design's
    deviations its GLS mean minus them, with covariance the sum of the two
    (independent) parts."""
    ab, ac, abc = AB_TRIALS, AC_TRIALS, ABC_TRIALS
    result = smm.network_inconsistency_test(three_arm_network,
                                            method="fixed")

    def pooled(pairs):
        w = np.array([1 / v for _, v in pairs])
        return w @ np.array([y for y, _ in pairs]) / w.sum(), 1 / w.sum()

    d_b, v_b = pooled(ab)
    d_c, v_c = pooled(ac)
    info = sum(np.linalg.inv(cov) for _, cov in abc)
    mean = np.linalg.solve(info, sum(np.linalg.inv(cov) @ np.array(yv)
                                     for yv, cov in abc))
    omega = mean - [d_b, d_c]
    cov = np.linalg.inv(info) + np.diag([v_b, v_c])
    statistic = omega @ np.linalg.solve(cov, omega)
    assert result.df == 2
    assert result.designs.deviation_names == ["ABC: B vs A", "ABC: C vs A"]
    np.testing.assert_allclose(result.inconsistency.params.to_numpy(),
                               [d_b, d_c, *omega], rtol=1e-10)
    assert result.statistic == pytest.approx(statistic, rel=1e-10)
    assert result.pvalue == pytest.approx(stats.chi2.sf(statistic, 2),
                                          rel=1e-10)


def test_two_arm_loop_fit_is_the_pairwise_estimates():
    """Two-arm designs AB, AC, BC (BC trials with an augmented A arm):
    each design's contrast is estimated by its own trials alone, up to the
    augmented arm's information (1/1111 of a study's)."""
    aug = 1 / 0.001 + 1 / (0.01 - 0.001)
    ab = [(0.30, 0.04), (0.50, 0.09)]
    ac = [(0.70, 0.06), (0.40, 0.08)]
    bc = [(0.90, 0.05), (0.10, 0.07), (0.60, 0.06)]
    rows = ([("AB", {"B": yv}, [[v]]) for yv, v in ab]
            + [("AC", {"C": yv}, [[v]]) for yv, v in ac]
            + [("BC", {"B": 0.2 + i, "C": 0.2 + i + yv},
                [[aug + v / 2, aug], [aug, aug + v / 2]])
               for i, (yv, v) in enumerate(bc)])
    net = _network(rows, ["A", "B", "C"], "A")
    result = smm.network_inconsistency_test(net, method="fixed")

    def pooled(pairs):
        w = np.array([1 / v for _, v in pairs])
        return w @ np.array([y for y, _ in pairs]) / w.sum(), 1 / w.sum()

    params = result.inconsistency.params
    assert result.df == 1
    assert params["y_B"] == pytest.approx(pooled(ab)[0], rel=1e-3)
    assert params["y_C"] == pytest.approx(pooled(ac)[0], rel=1e-3)
    assert (params["y_C"] - params["y_B"] + params["BC: C vs B"]
            == pytest.approx(pooled(bc)[0], rel=1e-3))
    se = np.sqrt(pooled(ab)[1] + pooled(ac)[1] + pooled(bc)[1])
    assert result.inconsistency.bse["BC: C vs B"] == pytest.approx(
        se, rel=1e-3)


def test_a_loop_inconsistency_of_known_size_is_found():
    """Simulated network AB, AC, BC with heterogeneity: the BC trials'
    C-vs-B effect is 1.0 above its consistency value."""
    rng = np.random.default_rng(20121)
    delta = {"B": 0.2, "C": 0.5}
    rows = []
    for design, shift in (("AB", 0.0), ("AC", 0.0), ("BC", 1.0)):
        for _ in range(12):
            v = rng.uniform(0.02, 0.06)
            if design == "BC":
                true = delta["C"] - delta["B"] + shift
                est = true + rng.normal(0, np.sqrt(v + 0.01))
                rows.append(("BC", {"B": 0.0, "C": est},
                             [[1111.0 + v / 2, 1111.0],
                              [1111.0, 1111.0 + v / 2]]))
            else:
                t = design[1]
                est = delta[t] + rng.normal(0, np.sqrt(v + 0.01))
                rows.append((design, {t: est}, [[v]]))
    net = _network(rows, ["A", "B", "C"], "A")
    result = smm.network_inconsistency_test(net, bscov="id")
    omega = result.inconsistency.params["BC: C vs B"]
    se = result.inconsistency.bse["BC: C vs B"]
    assert result.df == 1
    assert abs(omega - 1.0) < 2 * se
    assert result.pvalue < 1e-4


# ------------------------------------------------------------ bad input
def test_design_labels_are_read_in_several_spellings():
    assert design_treatments("acd", "ABCD") == ("A", "C", "D")
    assert design_treatments("D:A:C", "ABCD") == ("A", "C", "D")
    assert design_treatments("CD", "CABD") == ("C", "D")
    assert design_treatments("placebo:drug", ["placebo", "drug", "x"]) == (
        "placebo", "drug")
    assert design_treatments("drugplacebo", ["placebo", "drug"]) == (
        "placebo", "drug")
    assert design_treatments("ae", "ABCD") is None
    assert design_treatments("a", "ABCD") is None
    assert design_treatments("aa", "ABCD") is None


def test_design_labels_that_do_not_match_the_contrasts_are_refused():
    data = datasets.load_smoking()
    data.loc[3, "design"] = "ac"
    with pytest.raises(ValueError, match=r"do not match the observed "
                       r"contrasts at row 3: row 3 has design 'ac' but "
                       r"observes \['y_B'\]"):
        smm.network_inconsistency_test(_smoking_contrasts(data), **PROP)
    data.loc[3, "design"] = "xy"
    with pytest.raises(ValueError, match=r"cannot read the design labels "
                       r"at row 3 \(\['xy'\]\)"):
        smm.network_inconsistency_test(_smoking_contrasts(data), **PROP)


def test_arguments_that_are_not_model_arguments_are_refused():
    net = _smoking_contrasts()
    with pytest.raises(ValueError, match=r"\['S', 'use_t'\] that are not "
                       r"model arguments.*fit_kwargs"):
        smm.network_inconsistency_test(net, S=net.S, use_t=True)
    with pytest.raises(ValueError, match="bscov must name one Psi"):
        smm.network_inconsistency_test(net, bscov={"study": "prop"})
    with pytest.raises(ValueError, match="psi_fix must be one matrix"):
        smm.network_inconsistency_test(net, bscov="prop",
                                       psi_fix=[np.eye(3)])
    with pytest.raises(ValueError, match="must be a NetworkContrasts"):
        smm.network_inconsistency_test(net.frame)


def test_moment_estimators_are_refused_with_augmented_arms(
        three_arm_network):
    with pytest.raises(ValueError, match=r"method='mm' cannot estimate Psi "
                       r".* designs \['bc', 'bcd', 'bd', 'cd'\] lack the "
                       r"reference 'A'"):
        smm.network_inconsistency_test(_smoking_contrasts(), method="mm")
    with pytest.raises(ValueError, match="method='vc'"):
        smm.network_inconsistency_test(_smoking_contrasts(), method="vc")
    # without augmentation they are the usual estimators
    result = smm.network_inconsistency_test(three_arm_network, method="mm")
    assert result.df == 2 and np.isfinite(result.statistic)
    assert result.inconsistency.model.method == "mm"


def test_networks_without_a_test_are_refused():
    star = _network([("AB", {"B": 0.1}, [[0.1]]), ("AC", {"C": 0.2}, [[0.1]]),
                     ("AB", {"B": 0.3}, [[0.2]])], ["A", "B", "C"], "A")
    with pytest.raises(ValueError, match=r"identifies no inconsistency: "
                       r"its designs \['AB', 'AC'\] form no loop"):
        smm.network_inconsistency_test(star)
    apart = _network([("AB", {"B": 0.1}, [[0.1]]),
                      ("CD", {"C": 0.2, "D": 0.4}, [[1e3, 1e3], [1e3, 1e3]])],
                     ["A", "B", "C", "D"], "A")
    with pytest.raises(ValueError, match=r"not connected: no design links "
                       r"the treatments \['C', 'D'\] to the reference 'A'"):
        smm.network_inconsistency_test(apart)


def test_repeated_studies_are_refused_and_the_data_are_untouched():
    net = _smoking_contrasts()
    y, S = net.y.copy(), net.S.copy()
    smm.network_inconsistency_test(net, **PROP)
    pd.testing.assert_frame_equal(net.y, y)
    np.testing.assert_array_equal(net.S, S)
    twice = NetworkContrasts(net.y.set_axis([0] * 24), net.S,
                             design=net.design.to_numpy(),
                             treatments="ABCD", reference="A")
    with pytest.raises(ValueError, match=r"must be unique; repeated: "
                       r"\['0'\]"):
        smm.network_inconsistency_test(twice)


def test_unstructured_psi_converges_with_the_default_iterations():
    """With the default unstructured Psi the smoking inconsistency fit
    crawls towards a singular Psi: on the contrasts as the data store them
    100 iterations stop short (llf 1.3e-9 below the optimum,
    ConvergenceWarning), so the test allows 1000 unless told otherwise; a
    caller's maxiter is kept."""
    net = _smoking_contrasts()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = smm.network_inconsistency_test(net)
    assert result.converged
    assert result.df == 7
    with pytest.warns(ConvergenceWarning):
        short = smm.network_inconsistency_test(net,
                                               fit_kwargs={"maxiter": 100})
    assert not short.converged
    assert short.inconsistency.llf <= result.inconsistency.llf + 1e-10
    assert short.inconsistency.llf == pytest.approx(
        result.inconsistency.llf, abs=1e-6)
