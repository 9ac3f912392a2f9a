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
    none = smm.escalc_correlated("OR", data=TABLES, outcomes=OUT_OR, rho=0.4,
                                 to="none")
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
