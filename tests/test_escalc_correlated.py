"""
escalc_correlated: effect sizes of several outcomes on the same patients and
their within-study covariances, against hand computations and against
simulated patient-level trials (issue 14, criterion 4).
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.special import gamma

import statsmodels_mixmeta as smm

TABLES = pd.DataFrame(
    {"a1": [12, 0, 30], "b1": [88, 50, 170], "c1": [20, 6, 41],
     "d1": [80, 44, 159], "a2": [30, 9, 60], "b2": [70, 41, 140],
     "c2": [41, 12, 77], "d2": [59, 38, 123], "r": [0.2, 0.5, -0.3]},
    index=["Ames", "Bonn", "Cork"])
OUT_OR = [dict(ai="a1", bi="b1", ci="c1", di="d1"),
          dict(ai="a2", bi="b2", ci="c2", di="d2")]

MEANS = pd.DataFrame(
    {"m1a": [10.0, 12.5], "s1a": [3.0, 4.0], "m2a": [9.0, 10.0],
     "s2a": [2.5, 3.5], "m1b": [50.0, 47.0], "s1b": [10.0, 12.0],
     "m2b": [45.0, 49.0], "s2b": [11.0, 9.0], "m1c": [1.2, 0.9],
     "s1c": [0.5, 0.4], "m2c": [1.0, 1.1], "s2c": [0.6, 0.5],
     "n1": [20, 35], "n2": [25, 30]})


def _smd_outcome(tag):
    return dict(m1i=f"m1{tag}", sd1i=f"s1{tag}", n1i="n1", m2i=f"m2{tag}",
                sd2i=f"s2{tag}", n2i="n2")


OUT_SMD = [_smd_outcome(tag) for tag in "abc"]


def test_log_odds_ratios_by_hand():
    eff = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR, rho=0.4)
    # Ames, no zero cell: y = log(ad/bc), variance 1/a + 1/b + 1/c + 1/d
    assert eff.y.loc["Ames", "y1"] == pytest.approx(np.log(12 * 80 / (88 * 20)),
                                                    rel=1e-12)
    var1 = 1 / 12 + 1 / 88 + 1 / 20 + 1 / 80
    var2 = 1 / 30 + 1 / 70 + 1 / 41 + 1 / 59
    cov = 0.4 * (np.sqrt((1 / 12 + 1 / 88) * (1 / 30 + 1 / 70))
                 + np.sqrt((1 / 20 + 1 / 80) * (1 / 41 + 1 / 59)))
    np.testing.assert_allclose(eff.S[0], [[var1, cov], [cov, var2]],
                               rtol=1e-12)
    # Bonn has a zero cell in outcome 1 only: 0.5 is added to that table
    a, b, c, d = 0.5, 50.5, 6.5, 44.5
    assert eff.y.loc["Bonn", "y1"] == pytest.approx(np.log(a * d / (b * c)),
                                                    rel=1e-12)
    assert eff.S[1, 0, 0] == pytest.approx(1 / a + 1 / b + 1 / c + 1 / d,
                                           rel=1e-12)
    assert eff.S[1, 1, 1] == pytest.approx(1 / 9 + 1 / 41 + 1 / 12 + 1 / 38,
                                           rel=1e-12)
    cov = 0.4 * (np.sqrt((1 / a + 1 / b) * (1 / 9 + 1 / 41))
                 + np.sqrt((1 / c + 1 / d) * (1 / 12 + 1 / 38)))
    assert eff.S[1, 0, 1] == pytest.approx(cov, rel=1e-12)
    assert eff.S_columns == ["S_y1_y1", "S_y1_y2", "S_y2_y2"]
    assert list(eff.y.index) == ["Ames", "Bonn", "Cork"]


def test_log_risk_ratios_by_hand_from_group_sizes():
    data = TABLES.assign(n1a=TABLES.a1 + TABLES.b1, n2a=TABLES.c1 + TABLES.d1,
                         n1b=TABLES.a2 + TABLES.b2, n2b=TABLES.c2 + TABLES.d2)
    outcomes = {"death": dict(ai="a1", n1i="n1a", ci="c1", n2i="n2a"),
                "stroke": dict(ai="a2", n1i="n1b", ci="c2", n2i="n2b")}
    eff = smm.escalc_correlated("RR", data=data, outcomes=outcomes, rho=0.3,
                                rho2=0.6)
    assert eff.outcomes == ["death", "stroke"]
    # Cork: n1 = 200, n2 = 200
    u = {"a1": 1 / 30 - 1 / 200, "c1": 1 / 41 - 1 / 200,
         "a2": 1 / 60 - 1 / 200, "c2": 1 / 77 - 1 / 200}
    assert eff.y.loc["Cork", "death"] == pytest.approx(
        np.log((30 / 200) / (41 / 200)), rel=1e-12)
    np.testing.assert_allclose(np.diag(eff.S[2]),
                               [u["a1"] + u["c1"], u["a2"] + u["c2"]],
                               rtol=1e-12)
    cov = 0.3 * np.sqrt(u["a1"] * u["a2"]) + 0.6 * np.sqrt(u["c1"] * u["c2"])
    assert eff.S[2, 0, 1] == pytest.approx(cov, rel=1e-12)
    assert eff.S_columns == ["S_death_death", "S_death_stroke",
                             "S_stroke_stroke"]


def _hedges(m1, s1, n1, m2, s2, n2):
    df = n1 + n2 - 2
    J = gamma(df / 2) / (np.sqrt(df / 2) * gamma((df - 1) / 2))
    sp = np.sqrt(((n1 - 1) * s1 ** 2 + (n2 - 1) * s2 ** 2) / df)
    return J * (m1 - m2) / sp


def test_standardised_mean_differences_by_hand():
    R = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, -0.1], [0.2, -0.1, 1.0]])
    eff = smm.escalc_correlated("SMD", data=MEANS, outcomes=OUT_SMD, rho=R,
                                names=["a", "b", "c"])
    row = MEANS.iloc[1]
    n1, n2 = 35, 30
    g = [_hedges(row[f"m1{t}"], row[f"s1{t}"], n1, row[f"m2{t}"],
                 row[f"s2{t}"], n2) for t in "abc"]
    np.testing.assert_allclose(eff.y.iloc[1], g, rtol=1e-12)
    # diagonal: metafor's LS variance; off it Gleser & Olkin's covariance
    expected = (R * (1 / n1 + 1 / n2)
                + R ** 2 * np.outer(g, g) / (2 * (n1 + n2)))
    np.testing.assert_allclose(eff.S[1], expected, rtol=1e-12)
    assert eff.S[1, 0, 0] == pytest.approx(1 / 35 + 1 / 30 + g[0] ** 2 / 130,
                                           rel=1e-12)


@pytest.mark.parametrize("measure", ["OR", "RR", "SMD"])
def test_rho_zero_gives_diagonal_S_with_the_univariate_variances(measure):
    data, outcomes = ((MEANS, OUT_SMD) if measure == "SMD"
                      else (TABLES, OUT_OR))
    zero = smm.escalc_correlated(measure, data=data, outcomes=outcomes, rho=0)
    some = smm.escalc_correlated(measure, data=data, outcomes=outcomes,
                                 rho=0.7)
    k = len(outcomes)
    off = ~np.eye(k, dtype=bool)
    assert (zero.S[:, off] == 0).all()
    assert (some.S[:, off] != 0).all()
    diag = np.arange(k)
    np.testing.assert_allclose(zero.S[:, diag, diag], some.S[:, diag, diag],
                               rtol=1e-14)
    pd.testing.assert_frame_equal(zero.y, some.y)


def test_the_forms_of_rho_agree():
    n = len(TABLES)
    base = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR,
                                 rho="r")
    same = [np.array([0.2, 0.5, -0.3]),
            np.array([[[1, r], [r, 1]] for r in (0.2, 0.5, -0.3)])]
    for rho in same:
        other = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR,
                                      rho=rho)
        np.testing.assert_array_equal(other.S, base.S)
    one = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR, rho=0.5)
    matrix = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR,
                                   rho=[[1, 0.5], [0.5, 1]], rho2=0.5)
    np.testing.assert_array_equal(one.S, matrix.S)
    assert base.S[1, 0, 1] == pytest.approx(one.S[1, 0, 1], rel=1e-12)
    assert base.S[2, 0, 1] == pytest.approx(-0.6 * one.S[2, 0, 1], rel=1e-12)
    # arrays without data: positions label the studies
    arrays = [{key: TABLES[col].to_numpy() for key, col in spec.items()}
              for spec in OUT_OR]
    bare = smm.escalc_correlated("OR", outcomes=arrays, rho=np.full(n, 0.5))
    np.testing.assert_array_equal(bare.S, one.S)
    assert list(bare.y.index) == [0, 1, 2]


def test_zero_cell_rules():
    def y1(**kwargs):
        return smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR,
                                     rho=0.4, **kwargs).y["y1"]

    only0, every = y1(), y1(to="all")
    assert only0["Ames"] == pytest.approx(np.log(12 * 80 / (88 * 20)))
    assert every["Ames"] == pytest.approx(np.log(12.5 * 80.5 / (88.5 * 20.5)))
    assert y1(to="if0all")["Ames"] == every["Ames"]
    assert every["Bonn"] == only0["Bonn"]
    assert y1(add=1.0)["Bonn"] == pytest.approx(np.log(1 * 45 / (51 * 7)))
    with pytest.warns(UserWarning, match=r"outcome 'y1': the log ratio is "
                      r"infinite in row Bonn \(a zero cell with to='none'\)"):
        none = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR,
                                     rho=0.4, to="none")
    assert np.isnan(none.y.loc["Bonn", "y1"])
    assert np.isnan(none.S[1, 0]).all() and np.isnan(none.S[1, :, 0]).all()
    assert none.S[1, 1, 1] == pytest.approx(1 / 9 + 1 / 41 + 1 / 12 + 1 / 38)
    no_events = TABLES.assign(c1=[20, 0, 41], d1=[80, 50, 159])
    dropped = smm.escalc_correlated("OR", data=no_events, outcomes=OUT_OR,
                                     rho=0.4, drop00=True)
    kept = smm.escalc_correlated("OR", data=no_events, outcomes=OUT_OR,
                                 rho=0.4)
    assert np.isnan(dropped.y.loc["Bonn", "y1"])
    assert kept.y.loc["Bonn", "y1"] == pytest.approx(0.0, abs=1e-15)
    assert kept.S[1, 0, 0] == pytest.approx(2 / 0.5 + 2 / 50.5, rel=1e-12)


def test_fits_from_the_frame_equal_the_array_fit():
    data = TABLES.copy()
    data.loc["Bonn", "a2"] = np.nan    # outcome 2 missing in Bonn
    more = pd.concat([data, data.rename(lambda s: s + "2").assign(
        a1=[15, 3, 25], b1=[85, 47, 175], c2=[35, 17, 90],
        d2=[65, 33, 110])])
    eff = smm.escalc_correlated("OR", data=more, outcomes=OUT_OR, rho=0.4)
    assert np.isnan(eff.y.loc["Bonn", "y2"])
    assert np.isnan(eff.S[1, 1]).all() and not np.isnan(eff.S[1, 0, 0])
    formula = smf.mixmeta("y1 + y2 ~ 1", data=eff.frame,
                          S=eff.S_columns).fit()
    arrays = smm.MixMeta(eff.y.to_numpy(), None, S=eff.S).fit()
    assert formula.llf == pytest.approx(arrays.llf, abs=1e-10)
    np.testing.assert_allclose(formula.params, arrays.params, rtol=1e-10)
    assert formula.nobs == 10    # 12 values, outcome 2 of two Bonns missing


def test_caller_data_are_not_modified():
    data = TABLES.copy()
    smm.escalc_correlated("OR", data=data, outcomes=OUT_OR, rho="r",
                          to="all")
    pd.testing.assert_frame_equal(data, TABLES)
    arrays = [{key: TABLES[col].to_numpy(float) for key, col in spec.items()}
              for spec in OUT_OR]
    copies = [{key: v.copy() for key, v in spec.items()} for spec in arrays]
    smm.escalc_correlated("RR", outcomes=arrays, rho=0.2, drop00=True)
    for spec, copy in zip(arrays, copies):
        for key in spec:
            np.testing.assert_array_equal(spec[key], copy[key])


# --- criterion 4: the covariances against simulated patient-level trials ---
TRIALS = 10_000


def _moments(y):
    """
    The empirical covariance and correlation of the pairs ``y`` ``(T, 2)``
    with their Monte-Carlo standard errors from the influence functions:
    ``(x - mx)(y - my)`` for the covariance and ``zx zy - r (zx^2 + zy^2)/2``
    (standardised values) for the correlation.
    """
    centred = y - y.mean(axis=0)
    product = centred[:, 0] * centred[:, 1]
    count = len(y)
    cov = product.sum() / (count - 1)
    z = centred / centred.std(axis=0, ddof=1)
    r = (z[:, 0] * z[:, 1]).sum() / (count - 1)
    influence = z[:, 0] * z[:, 1] - r * (z[:, 0] ** 2 + z[:, 1] ** 2) / 2
    return (cov, product.std(ddof=1) / np.sqrt(count),
            r, influence.std(ddof=1) / np.sqrt(count))


def _binary_arm(rng, n, p_a, p_b, rho):
    """
    Events of two binary outcomes among ``n`` patients in each trial: each
    patient falls in one cell of the joint 2x2 table with P(A and B) =
    p_a p_b + rho sqrt(p_a q_a p_b q_b).
    """
    both = p_a * p_b + rho * np.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    u = rng.random((TRIALS, n))
    event_a = u < p_a                                      # A&B, then A only
    event_b = (u < both) | ((u >= p_a) & (u < p_a + p_b - both))  # B only
    return event_a.sum(axis=1), event_b.sum(axis=1)


def test_simulated_log_odds_and_risk_ratios_match_the_delta_method():
    rng = np.random.default_rng(20261207)
    (n1, p1a, p1b, rho1), (n2, p2a, p2b, rho2) = ((400, 0.20, 0.35, 0.6),
                                                  (500, 0.50, 0.45, 0.1))
    events1 = _binary_arm(rng, n1, p1a, p1b, rho1)
    events2 = _binary_arm(rng, n2, p2a, p2b, rho2)
    outcomes = [dict(ai=events1[o], n1i=np.full(TRIALS, n1), ci=events2[o],
                     n2i=np.full(TRIALS, n2)) for o in range(2)]
    for measure, slope in (("OR", lambda p: 1 / (p * (1 - p))),
                           ("RR", lambda p: 1 / p)):
        eff = smm.escalc_correlated(measure, outcomes=outcomes, rho=rho1,
                                    rho2=rho2)
        y = eff.y.to_numpy()
        x1, x2 = np.column_stack(events1), np.column_stack(events2)
        by_hand = (np.log(x1 / (n1 - x1)) - np.log(x2 / (n2 - x2))
                   if measure == "OR" else np.log(x1 / n1) - np.log(x2 / n2))
        np.testing.assert_allclose(y, by_hand, rtol=1e-12)

        def part(n, p_a, p_b, rho):       # delta method at the truth
            return (slope(p_a) * slope(p_b) * rho
                    * np.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b)) / n)
        true_cov = part(n1, p1a, p1b, rho1) + part(n2, p2a, p2b, rho2)
        true_var = [part(n1, p, p, 1) + part(n2, q, q, 1)
                    for p, q in ((p1a, p2a), (p1b, p2b))]
        true_cor = true_cov / np.sqrt(true_var[0] * true_var[1])
        cov, cov_se, cor, cor_se = _moments(y)
        assert abs(cov - true_cov) < 3.5 * cov_se, (measure, cov, true_cov)
        assert abs(cov - eff.S[:, 0, 1].mean()) < 3.5 * cov_se
        assert abs(cor - true_cor) < 3.5 * cor_se, (measure, cor, true_cor)
        # the test can tell: the correlation of one group used for both
        wrong = part(n1, p1a, p1b, rho1) + part(n2, p2a, p2b, rho1)
        assert abs(cov - wrong) > 10 * cov_se
        variances = y.var(axis=0, ddof=1)
        np.testing.assert_allclose(variances, true_var, rtol=0.05)


def test_simulated_standardised_mean_differences_match_gleser_olkin():
    rng = np.random.default_rng(7)
    n1, n2, rho = 120, 90, 0.6
    delta, sd = np.array([0.5, 0.8]), np.array([2.0, 5.0])
    root = np.linalg.cholesky([[1.0, rho], [rho, 1.0]])

    def group(n, mean):
        x = mean + sd * (rng.standard_normal((TRIALS, n, 2)) @ root.T)
        return x.mean(axis=1), x.std(axis=1, ddof=1)

    (m1, s1), (m2, s2) = group(n1, delta * sd), group(n2, 0.0)
    outcomes = [dict(m1i=m1[:, o], sd1i=s1[:, o], n1i=np.full(TRIALS, n1),
                     m2i=m2[:, o], sd2i=s2[:, o], n2i=np.full(TRIALS, n2))
                for o in range(2)]
    eff = smm.escalc_correlated("SMD", outcomes=outcomes, rho=rho)
    y = eff.y.to_numpy()
    total = n1 + n2
    true_cov = rho * (1 / n1 + 1 / n2) + rho ** 2 * delta.prod() / (2 * total)
    true_var = 1 / n1 + 1 / n2 + delta ** 2 / (2 * total)
    cov, cov_se, cor, cor_se = _moments(y)
    assert abs(cov - true_cov) < 3.5 * cov_se, (cov, true_cov)
    assert abs(cov - eff.S[:, 0, 1].mean()) < 3.5 * cov_se
    assert abs(cor - true_cov / np.sqrt(true_var.prod())) < 3.5 * cor_se
    # Hedges' g is unbiased for delta to within Monte-Carlo error
    assert np.all(np.abs(y.mean(axis=0) - delta)
                  < 3.5 * np.sqrt(true_var / TRIALS))


# --- bad input ---

@pytest.mark.parametrize("rho, match", [
    (1.0, r"rows Ames, Bonn, Cork are 1 or more in absolute value"),
    ([[1, 0.3], [0.2, 1]], "not symmetric"),
    ([[2, 0.3], [0.3, 1]], "diagonal other than 1"),
    (np.array([0.2, np.inf, 0.1]), "row Bonn are infinite"),
    (np.array([0.2, np.nan, 0.1]), "row Bonn are missing"),
    (np.array([0.2, -1.2, 0.1]), "row Bonn are 1 or more"),
    ("rr", r"names no column of data \(data has columns"),
    (np.zeros((2, 2, 2)), r"shape \(2, 2, 2\); with 3 studies and 2 "),
    (None, "rho is required"),
    ("a1", "rows Ames, Cork are 1 or more"),
])
def test_bad_rho_names_the_rows(rho, match):
    with pytest.raises(ValueError, match=match):
        smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR, rho=rho)


def test_non_positive_semidefinite_correlations_are_refused():
    with pytest.raises(ValueError, match=r"rows 0, 1 are not positive "
                       r"semi-definite .*at least -1/\(k-1\) = -0.5"):
        smm.escalc_correlated("SMD", data=MEANS, outcomes=OUT_SMD, rho=-0.6)
    R = np.array([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]])
    with pytest.raises(ValueError, match="rho2: the correlation matrices"):
        smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR * 1 + [
            dict(ai="a1", bi="b1", ci="c2", di="d2")], rho=0.2, rho2=R)
    # a missing outcome takes no part in the check
    data = MEANS.assign(m1c=[1.2, np.nan])
    invalid_on_c = [[1, 0.5, -0.9], [0.5, 1, 0.9], [-0.9, 0.9, 1]]
    with pytest.raises(ValueError, match="matrices of rows 0, 1 are not"):
        smm.escalc_correlated("SMD", data=MEANS, outcomes=OUT_SMD,
                              rho=invalid_on_c)
    eff = smm.escalc_correlated("SMD", data=data, outcomes=OUT_SMD,
                                rho=np.array([np.eye(3), invalid_on_c]))
    assert np.isnan(eff.S[1, 2]).all() and np.isnan(eff.S[1, :, 2]).all()
    assert eff.S[1, 0, 1] == pytest.approx(
        0.5 * (1 / 35 + 1 / 30) + 0.25 * eff.y.iloc[1, 0] * eff.y.iloc[1, 1]
        / 130, rel=1e-12)


@pytest.mark.parametrize("change, match", [
    (dict(measure="ROM"), r"measure must be one of \('OR', 'RR', 'SMD'\)"),
    (dict(outcomes=[OUT_OR[0], dict(ai="a2", n1i="b2", ci="c2", di="d2")]),
     r"outcome 'y2' has arguments \['ai', 'ci', 'di', 'n1i'\] but outcome "
     r"'y1' has \['ai', 'bi', 'ci', 'di'\]"),
    (dict(outcomes=[dict(ai="a1", bi="b1", ci="c1")] * 2),
     r"ai, bi, ci, di or ai, n1i, ci, n2i"),
    (dict(outcomes=[OUT_OR[0], dict(ai="a2", bi="b2", ci="c2", di="dd")]),
     r"outcome 'y2', di: column 'dd' is not in data; data has columns"),
    (dict(outcomes=OUT_OR[:1]), "at least 2 outcomes"),
    (dict(outcomes=OUT_OR, names=["x"]), "names must name the 2 outcomes"),
    (dict(outcomes=OUT_OR, names=["x", "x"]), "names must be distinct"),
    (dict(to="some"), "to must be one of"),
    (dict(measure="SMD", outcomes=OUT_SMD, rho2=0.2), "rho2 applies to"),
    (dict(data=TABLES.assign(b1=[88, -1, 170])),
     r"outcome 'y1': bi is negative in row Bonn"),
    (dict(outcomes=[dict(ai="c1", n1i="a1", ci="c1", n2i="d1")] * 2),
     r"outcome 'y1': ai is larger than n1i in rows Ames, Bonn, Cork"),
    (dict(data=MEANS, measure="SMD", outcomes=OUT_SMD,
          rho=0.1), None),
    (dict(data=MEANS.assign(s2b=[11.0, 0.0]), measure="SMD",
          outcomes=OUT_SMD), r"outcome 'y2': sd2i is not positive in row 1"),
    (dict(data=MEANS.assign(n2=[25, 0]), measure="SMD", outcomes=OUT_SMD),
     r"outcome 'y1': n2i is smaller than 1 in row 1"),
    (dict(data=MEANS.assign(n1=[2, 35], n2=[1, 30]), measure="SMD",
          outcomes=OUT_SMD), r"n1i \+ n2i is smaller than 4 .* in row 0"),
    (dict(data=TABLES.assign(c2=[41, 0, 77], d2=[59, 0, 123])),
     r"outcome 'y2': group 2 has no patients in row Bonn"),
    (dict(add=-0.5), r"add must be a finite number >= 0 \(default 1/2\), "
     r"got -0.5"),
    (dict(add="half"), "add must be a finite number"),
    (dict(outcomes=[OUT_OR[0], dict(ai=[1, 2], bi="b2", ci="c2", di="d2")]),
     r"outcome 'y2', ai has 2 values for 3 studies"),
])
def test_bad_input_is_refused_by_name(change, match):
    arguments = dict(measure="OR", data=TABLES, outcomes=OUT_OR, rho=0.3)
    arguments.update(change)
    if match is None:      # the valid call of the parametrisation's pattern
        assert smm.escalc_correlated(**arguments).S.shape == (2, 3, 3)
        return
    with pytest.raises(ValueError, match=match):
        smm.escalc_correlated(**arguments)


def test_group_sizes_differing_across_outcomes_warn_naming_the_rows():
    data = TABLES.assign(d2=[59, 38, 100])
    with pytest.warns(UserWarning, match=r"group sizes of row Cork differ "
                      "across outcomes.*upper bounds"):
        eff = smm.escalc_correlated("OR", data=data, outcomes=OUT_OR,
                                    rho=0.5)
    assert eff.S[2, 0, 1] == pytest.approx(0.5 * (
        np.sqrt((1 / 30 + 1 / 170) * (1 / 60 + 1 / 140))
        + np.sqrt((1 / 41 + 1 / 159) * (1 / 77 + 1 / 100))), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR, rho=0.5)


def test_rho_from_the_joint_table_of_the_two_outcomes():
    # group 1 of Ames: 100 patients, 12 deaths, 30 admissions, 8 both
    phi = smm.effectsize.phi_coefficient([8, 0], [12, 0], [30, 9], [100, 50])
    assert phi[0] == pytest.approx((100 * 8 - 12 * 30)
                                   / np.sqrt(12 * 88 * 30 * 70), rel=1e-12)
    assert np.isnan(phi[1])          # no deaths: no correlation
    with pytest.raises(ValueError, match="joint tables of row 1 are "
                       "impossible"):
        smm.effectsize.phi_coefficient([8, 10], [12, 9], [30, 9], [100, 50])
    # with the sample phi, the arm's covariance of the two logits is the
    # delta method's (p_AB - p_A p_B) / (n p_A q_A p_B q_B)
    eff = smm.escalc_correlated("OR", data=TABLES.iloc[[0]], outcomes=OUT_OR,
                                rho=phi[:1], rho2=0.0)
    p_a, p_b, p_ab = 0.12, 0.30, 0.08
    assert eff.S[0, 0, 1] == pytest.approx(
        (p_ab - p_a * p_b) / (100 * p_a * (1 - p_a) * p_b * (1 - p_b)),
        rel=1e-12)
