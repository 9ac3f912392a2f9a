"""
``smm.escalc``: effect sizes from raw data against the shipped bcg columns,
against hand computations from the textbook formulas (explicit numbers), the
zero-cell rules of metafor (add/to/drop00), missing values, and every error.
"""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.effectsize.continuous import hedges_correction

TABLE = dict(ai="tpos", bi="tneg", ci="cpos", di="cneg")


@pytest.fixture(scope="module")
def bcg():
    return datasets.load_bcg()


def _one(measure, **kwargs):
    """yi and vi of a single study, as floats."""
    es = smm.escalc(measure, **kwargs)
    assert es.shape == (1, 2)
    return es["yi"].iloc[0], es["vi"].iloc[0]


# --------------------------------------------------------------------------
# bcg: the shipped columns rebuilt from the counts
# --------------------------------------------------------------------------

def test_bcg_log_risk_ratios(bcg):
    es = smm.escalc("RR", data=bcg, **TABLE)
    np.testing.assert_allclose(es["yi"], bcg["logrr"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(es["vi"], bcg["logrrvar"], rtol=0, atol=1e-10)
    assert es.index.equals(bcg.index)


def test_bcg_log_odds_ratios(bcg):
    es = smm.escalc("OR", data=bcg, **TABLE)
    a, b, c, d = (bcg[k].to_numpy(float) for k in TABLE.values())
    np.testing.assert_allclose(es["yi"], np.log(a * d / (b * c)), atol=1e-12)
    np.testing.assert_allclose(es["vi"], 1 / a + 1 / b + 1 / c + 1 / d,
                               atol=1e-12)
    # the shipped logor/logorvar were stored in single precision (as in R's
    # mixmeta): they agree to within half a float32 spacing, 2**-24 relative
    half_ulp = 2.0 ** -24
    np.testing.assert_allclose(es["yi"], bcg["logor"], rtol=half_ulp, atol=0)
    np.testing.assert_allclose(es["vi"], bcg["logorvar"], rtol=half_ulp,
                               atol=0)
    assert np.abs(es["yi"] - bcg["logor"]).max() > 1e-10   # really float32


def test_group_totals_give_the_same_tables(bcg):
    by_cells = smm.escalc("OR", data=bcg, **TABLE)
    totals = bcg.assign(n1=bcg.tpos + bcg.tneg, n2=bcg.cpos + bcg.cneg)
    by_totals = smm.escalc("OR", ai="tpos", n1i="n1", ci="cpos", n2i="n2",
                           data=totals)
    pd.testing.assert_frame_equal(by_cells, by_totals)
    arrays = smm.escalc("OR", ai=bcg.tpos.to_numpy(), bi=bcg.tneg.to_list(),
                        ci=bcg.cpos.to_numpy(), di=bcg.cneg.to_numpy())
    assert isinstance(arrays.index, pd.RangeIndex)
    np.testing.assert_array_equal(arrays.to_numpy(), by_cells.to_numpy())


def test_meta_regression_on_escalc_output(bcg):
    es = smm.escalc("RR", ai="tpos", bi="tneg", ci="cpos", di="cneg",
                    data=bcg)
    ours = smf.mixmeta("yi ~ ablat", data=bcg.join(es), S="vi").fit()
    shipped = smf.mixmeta("logrr ~ ablat", data=bcg, S="logrrvar").fit()
    np.testing.assert_allclose(ours.params, shipped.params, rtol=1e-8)
    np.testing.assert_allclose(ours.bse, shipped.bse, rtol=1e-7)
    assert ours.llf == pytest.approx(shipped.llf, abs=1e-8)


def test_index_of_data_is_kept():
    data = pd.DataFrame({"r": [0.1, 0.5], "n": [30, 40]},
                        index=["study A", "study B"])
    es = smm.escalc("ZCOR", ri="r", ni="n", data=data)
    assert list(es.index) == ["study A", "study B"]
    assert list(es.columns) == ["yi", "vi"]
    series = smm.escalc("ZCOR", ri=data["r"], ni=data["n"])
    assert list(series.index) == ["study A", "study B"]


# --------------------------------------------------------------------------
# every measure against the textbook formula with explicit numbers
# --------------------------------------------------------------------------

def test_two_by_two_measures_by_hand():
    table = dict(ai=12, bi=5, ci=6, di=9)          # n1 = 17, n2 = 15
    yi, vi = _one("OR", **table)
    assert yi == pytest.approx(math.log(12 * 9 / (5 * 6)), abs=1e-14)
    assert vi == pytest.approx(1 / 12 + 1 / 5 + 1 / 6 + 1 / 9, abs=1e-14)
    yi, vi = _one("RR", **table)
    assert yi == pytest.approx(math.log((12 / 17) / (6 / 15)), abs=1e-14)
    assert vi == pytest.approx(1 / 12 - 1 / 17 + 1 / 6 - 1 / 15, abs=1e-14)
    yi, vi = _one("RD", **table)
    assert yi == pytest.approx(12 / 17 - 6 / 15, abs=1e-14)
    assert vi == pytest.approx((12 / 17) * (5 / 17) / 17
                               + (6 / 15) * (9 / 15) / 15, abs=1e-14)
    # Peto: O = 12; E = 18 * 17 / 32 = 9.5625;
    # V = 18 * 14 * 17 * 15 / (32**2 * 31) = 64260 / 31744
    yi, vi = _one("PETO", **table)
    assert yi == pytest.approx((12 - 9.5625) / (64260 / 31744), abs=1e-13)
    assert vi == pytest.approx(31744 / 64260, abs=1e-14)


def test_mean_measures_by_hand():
    groups = dict(m1i=10.0, sd1i=2.0, n1i=20, m2i=8.0, sd2i=3.0, n2i=25)
    yi, vi = _one("MD", **groups)
    assert (yi, vi) == (pytest.approx(2.0), pytest.approx(4 / 20 + 9 / 25))
    # pooled variance (19 * 4 + 24 * 9) / 43 = 292 / 43; m = 43
    cm = math.gamma(21.5) / (math.sqrt(21.5) * math.gamma(21.0))
    g = cm * 2.0 / math.sqrt(292 / 43)
    yi, vi = _one("SMD", **groups)
    assert yi == pytest.approx(g, abs=1e-13)
    assert vi == pytest.approx(1 / 20 + 1 / 25 + g ** 2 / 90, abs=1e-13)
    yi, vi = _one("ROM", **groups)
    assert yi == pytest.approx(math.log(10 / 8), abs=1e-14)
    assert vi == pytest.approx(4 / (20 * 100) + 9 / (25 * 64), abs=1e-14)


def test_correlation_measures_by_hand():
    yi, vi = _one("COR", ri=0.3, ni=50)
    assert (yi, vi) == (pytest.approx(0.3), pytest.approx(0.91 ** 2 / 49))
    yi, vi = _one("ZCOR", ri=0.3, ni=50)
    assert yi == pytest.approx(0.5 * math.log(1.3 / 0.7), abs=1e-14)
    assert vi == pytest.approx(1 / 47, abs=1e-14)


def test_single_group_measures_by_hand():
    yi, vi = _one("PR", xi=7, ni=20)
    assert (yi, vi) == (pytest.approx(0.35), pytest.approx(0.35 * 0.65 / 20))
    assert _one("PR", xi=7, mi=13) == (yi, vi)
    yi, vi = _one("PLO", xi=7, ni=20)
    assert yi == pytest.approx(math.log(7 / 13), abs=1e-14)
    assert vi == pytest.approx(1 / 7 + 1 / 13, abs=1e-14)


def test_rate_measures_by_hand():
    rates = dict(x1i=10, t1i=1000.0, x2i=5, t2i=800.0)
    yi, vi = _one("IRR", **rates)
    assert yi == pytest.approx(math.log(0.01 / 0.00625), abs=1e-14)
    assert vi == pytest.approx(1 / 10 + 1 / 5, abs=1e-14)
    yi, vi = _one("IRD", **rates)
    assert yi == pytest.approx(0.01 - 0.00625, abs=1e-16)
    assert vi == pytest.approx(10 / 1000 ** 2 + 5 / 800 ** 2, abs=1e-18)


@pytest.mark.parametrize("m", [2, 3, 5, 10, 43, 100, 170])
def test_hedges_correction_is_the_gamma_ratio(m):
    exact = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    assert hedges_correction(m) == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("m", [5, 10, 100, 1000, 10 ** 5])
def test_hedges_correction_against_its_approximation(m):
    # 1 - 3 / (4m - 1) overstates c(m) by about 1 / (32 m**2) (from the
    # asymptotic series of the gamma ratio); gamma itself overflows beyond
    # m = 342, where the log-gamma form still works to about 1e-10
    approximation = 1 - 3 / (4 * m - 1)
    gap = approximation - hedges_correction(m)
    assert 0.030 / m ** 2 < gap < 0.035 / m ** 2
    via_lgamma = math.exp(math.lgamma(m / 2) - math.lgamma((m - 1) / 2)
                          - 0.5 * math.log(m / 2))
    assert hedges_correction(m) == pytest.approx(via_lgamma, rel=1e-10)


# --------------------------------------------------------------------------
# zero cells: add, to, drop00
# --------------------------------------------------------------------------

TABLES = pd.DataFrame({"a": [3, 4, 0, 10], "b": [7, 6, 10, 0],
                       "c": [0, 5, 0, 10], "d": [10, 5, 10, 0]},
                      index=["zero c", "no zero", "no events", "all events"])
CELLS = dict(ai="a", bi="b", ci="c", di="d", data=TABLES)


def _log_or(a, b, c, d):
    return math.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d


def test_only0_adds_half_to_tables_with_a_zero():
    es = smm.escalc("OR", **CELLS)
    np.testing.assert_allclose(es.loc["zero c"], _log_or(3.5, 7.5, 0.5,
                                                         10.5))
    np.testing.assert_allclose(es.loc["no zero"], _log_or(4, 6, 5, 5))
    np.testing.assert_allclose(es.loc["no events"], _log_or(.5, 10.5, .5,
                                                            10.5))
    pd.testing.assert_frame_equal(es, smm.escalc("OR", to="only0", add=0.5,
                                                 **CELLS))


def test_all_adds_to_every_table():
    es = smm.escalc("OR", to="all", add=0.25, **CELLS)
    np.testing.assert_allclose(es.loc["no zero"],
                               _log_or(4.25, 6.25, 5.25, 5.25))
    np.testing.assert_allclose(es.loc["zero c"],
                               _log_or(3.25, 7.25, 0.25, 10.25))


def test_if0all_adds_to_every_table_only_when_one_has_a_zero():
    es = smm.escalc("OR", to="if0all", **CELLS)
    np.testing.assert_allclose(es.loc["no zero"],
                               _log_or(4.5, 6.5, 5.5, 5.5))
    without_zeros = smm.escalc("OR", to="if0all", ai=[4, 2], bi=[6, 8],
                               ci=[5, 3], di=[5, 7])
    np.testing.assert_allclose(without_zeros.iloc[0], _log_or(4, 6, 5, 5))


def test_none_leaves_zeros_and_warns_about_the_rows():
    with pytest.warns(UserWarning, match=r"'zero c', 'no events', "
                                         r"'all events'"):
        es = smm.escalc("OR", to="none", **CELLS)
    assert es.loc[["zero c", "no events", "all events"]].isna().all().all()
    np.testing.assert_allclose(es.loc["no zero"], _log_or(4, 6, 5, 5))
    with pytest.warns(UserWarning):
        same = smm.escalc("OR", add=0, **CELLS)
    pd.testing.assert_frame_equal(es, same)


def test_drop00_drops_tables_without_events_or_without_non_events():
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # dropping is silent
        es = smm.escalc("OR", drop00=True, **CELLS)
    assert es.loc[["no events", "all events"]].isna().all().all()
    np.testing.assert_allclose(es.loc["zero c"], _log_or(3.5, 7.5, 0.5,
                                                         10.5))
    # dropped tables do not trigger if0all
    only_double_zeros = TABLES.loc[["no zero", "no events"]]
    es = smm.escalc("OR", ai="a", bi="b", ci="c", di="d", to="if0all",
                    drop00=True, data=only_double_zeros)
    np.testing.assert_allclose(es.loc["no zero"], _log_or(4, 6, 5, 5))


def test_risk_difference_and_peto_use_the_default_correction():
    # metafor adds 1/2 to zero tables for RD and PETO as well
    yi, vi = _one("RD", ai=0, bi=10, ci=3, di=7)
    assert yi == pytest.approx(0.5 / 11 - 3.5 / 11, abs=1e-14)
    yi, vi = _one("PETO", ai=0, bi=10, ci=3, di=7)
    # cells 0.5, 10.5, 3.5, 7.5: N = 22, events 4, n1 = n2 = 11
    v = 4 * 18 * 11 * 11 / (22 ** 2 * 21)
    assert yi == pytest.approx((0.5 - 4 * 11 / 22) / v, abs=1e-13)
    assert vi == pytest.approx(1 / v, abs=1e-13)


def test_zero_counts_of_single_groups_and_rates():
    yi, vi = _one("PR", xi=0, ni=10)                  # 0.5 / 11
    assert yi == pytest.approx(0.5 / 11) and vi == pytest.approx(
        (0.5 / 11) * (10.5 / 11) / 11)
    yi, vi = _one("PLO", xi=10, ni=10, add=1)         # 11 events, 1 non
    assert (yi, vi) == (pytest.approx(math.log(11)), pytest.approx(1 + 1 / 11))
    yi, vi = _one("IRR", x1i=0, t1i=100.0, x2i=4, t2i=50.0)
    assert yi == pytest.approx(math.log((0.5 / 100) / (4.5 / 50)))
    assert vi == pytest.approx(1 / 0.5 + 1 / 4.5)
    es = smm.escalc("IRD", x1i=[0, 2], t1i=[10.0, 10.0], x2i=[0, 1],
                    t2i=[20.0, 20.0], drop00=True)
    assert es.iloc[0].isna().all()
    np.testing.assert_allclose(es.iloc[1], [0.2 - 0.05, 2 / 100 + 1 / 400])


# --------------------------------------------------------------------------
# missing values and the caller's data
# --------------------------------------------------------------------------

def test_missing_inputs_give_missing_rows_without_warning():
    data = TABLES.astype(float)
    data.loc["no zero", "a"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        es = smm.escalc("OR", ai="a", bi="b", ci="c", di="d", data=data,
                        drop00=True)
    assert es.loc["no zero"].isna().all()
    np.testing.assert_allclose(es.loc["zero c"], _log_or(3.5, 7.5, .5, 10.5))


def test_small_correlation_samples_lose_their_variance_as_in_metafor():
    with pytest.warns(UserWarning, match=r"rows \[0\] have ni < 5"):
        es = smm.escalc("COR", ri=[0.5, 0.2], ni=[4, 50])
    assert es["yi"].iloc[0] == 0.5 and np.isnan(es["vi"].iloc[0])
    assert es["vi"].iloc[1] == pytest.approx(0.96 ** 2 / 49)


def test_data_is_never_modified():
    data = TABLES.copy()
    data["n1"] = data.a + data.b
    before = data.copy()
    for to in ("only0", "all", "if0all"):
        smm.escalc("RR", ai="a", n1i="n1", ci="c", di="d", data=data, to=to,
                   drop00=True)
    with pytest.warns(UserWarning):
        smm.escalc("RR", ai=data["a"], n1i="n1", ci="c", di="d", data=data,
                   to="none")
    pd.testing.assert_frame_equal(data, before)
    a = np.array([0.0, 3.0])
    smm.escalc("OR", ai=a, bi=[1, 2], ci=[3, 4], di=[5, 6])
    np.testing.assert_array_equal(a, [0.0, 3.0])


# --------------------------------------------------------------------------
# errors: each names what is wrong and what would be valid
# --------------------------------------------------------------------------

BAD = pd.DataFrame({"a": [1, -2, 3], "b": [4, 5, 6], "c": [1, 1, 1],
                    "d": [2, 2, 2], "n1": [5, 3, 9]},
                   index=["s1", "s2", "s3"])


@pytest.mark.parametrize("call, message", [
    (dict(measure="XX"), r"unknown measure 'XX'.*2x2 tables: OR, RR, RD, "
                         r"PETO.*rates: IRR, IRD"),
    (dict(measure="OR", ai="a", ci="c", di="d"),
     r"is missing bi or n1i; its arguments are ai, bi, n1i, ci, di, n2i"),
    (dict(measure="OR", ai="a", bi="b", ci="c", di="d", ri=0.5),
     r"does not take ri; its arguments are ai, bi, n1i"),
    (dict(measure="OR", ai="A", bi="b", ci="c", di="d"),
     r"column 'A' given for ai is not in data; its columns are a, b, c, d"),
    (dict(measure="OR", ai="a", bi="b", ci="c", di="d", to="some"),
     r"to must be one of 'only0', 'all', 'if0all', 'none'"),
    (dict(measure="OR", ai="a", bi="b", ci="c", di="d", add=-1),
     r"add must be a finite number >= 0"),
    (dict(measure="OR", ai="a", bi="b", ci="c", di="d", add="half"),
     r"add must be a finite number >= 0"),
    (dict(measure="OR", ai="a", bi="b", ci="c", di="d", vtype="UB"),
     r"vtype must be 'LS'"),
])
def test_argument_errors(call, message):
    with pytest.raises(ValueError, match=message):
        smm.escalc(data=BAD.drop(columns="n1"), **call)


def test_negative_counts_name_rows_and_columns():
    with pytest.raises(ValueError, match=r"negative counts in rows \['s2'\] "
                                         r"of ai \(column 'a'\)"):
        smm.escalc("OR", ai="a", bi="b", ci="c", di="d", data=BAD)


def test_events_above_group_size():
    data = BAD.assign(a=[1, 4, 10])
    with pytest.raises(ValueError, match=r"ai larger than n1i in rows "
                                         r"\['s2', 's3'\].*between 0 and n1i"):
        smm.escalc("RR", ai="a", n1i="n1", ci="c", di="d", data=data)
    with pytest.raises(ValueError, match=r"xi larger than ni in rows \[1\]"):
        smm.escalc("PR", xi=[1, 12], ni=[10, 10])


def test_inconsistent_cells_and_totals():
    data = BAD.assign(a=[1, 2, 3])
    with pytest.raises(ValueError, match=r"ai \+ bi differs from n1i in rows "
                                         r"\['s2'\] of ai"):
        smm.escalc("OR", ai="a", bi="b", n1i="n1", ci="c", di="d",
                   data=data)


def test_group_sizes_below_one():
    with pytest.raises(ValueError, match=r"group 1 size < 1 in rows \[1\]"):
        smm.escalc("OR", ai=[1, 0], bi=[2, 0], ci=[1, 1], di=[2, 2])
    with pytest.raises(ValueError, match=r"group size < 1 in rows \[0\] of "
                                         r"n2i"):
        smm.escalc("MD", m1i=1, sd1i=1, n1i=5, m2i=0, sd2i=1, n2i=[0, 3])
    with pytest.raises(ValueError, match=r"sample size < 1 in rows \[0\]"):
        smm.escalc("ZCOR", ri=[0.2, 0.1], ni=[0, 10])
    with pytest.raises(ValueError, match=r"n1i \+ n2i < 4.*n1i \+ n2i - 2 "
                                         r"> 1"):
        smm.escalc("SMD", m1i=1, sd1i=1, n1i=1, m2i=0, sd2i=1, n2i=2)


def test_standard_deviations_must_be_positive():
    with pytest.raises(ValueError, match=r"standard deviations <= 0 in rows "
                                         r"\[1\] of sd2i.*must be > 0"):
        smm.escalc("SMD", m1i=[1, 2], sd1i=[1, 1], n1i=[10, 10],
                   m2i=[0, 0], sd2i=[1, 0], n2i=[10, 10])


def test_correlations_of_one_are_refused():
    for r in (1.0, -1.0, 1.2):
        with pytest.raises(ValueError, match=r"\|r\| >= 1 in rows \[1\].*"
                                             r"metafor accepts"):
            smm.escalc("COR", ri=[0.5, r], ni=[20, 20])


def test_ratio_of_means_needs_positive_means():
    with pytest.raises(ValueError, match=r"means <= 0 in rows \[0\] of m2i"):
        smm.escalc("ROM", m1i=[3.0], sd1i=1, n1i=10, m2i=[-1.0], sd2i=1,
                   n2i=10)


def test_rates_need_positive_person_time():
    with pytest.raises(ValueError, match=r"person-times <= 0 in rows \[0\] "
                                         r"of t1i"):
        smm.escalc("IRR", x1i=[1], t1i=[0.0], x2i=[2], t2i=[10.0])
    with pytest.raises(ValueError, match=r"negative counts.*x2i"):
        smm.escalc("IRD", x1i=[1], t1i=[5.0], x2i=[-2], t2i=[10.0])


def test_zero_cell_options_outside_counts_are_refused():
    means = dict(m1i=1, sd1i=1, n1i=5, m2i=0, sd2i=1, n2i=5)
    with pytest.raises(ValueError, match=r"add and to apply to counts"):
        smm.escalc("MD", add=1, **means)
    with pytest.raises(ValueError, match=r"drop00 applies to 2x2 tables and "
                                         r"rates"):
        smm.escalc("PR", xi=1, ni=5, drop00=True)


def test_shapes_sources_and_alignment():
    with pytest.raises(ValueError, match=r"inputs must have 3 rows \(as "
                                         r"data\); bi has 2"):
        smm.escalc("OR", ai="a", bi=[1, 2], ci="c", di="d", data=BAD)
    with pytest.raises(ValueError, match=r"names a column, but no data"):
        smm.escalc("OR", ai="a", bi=1, ci=1, di=1)
    shuffled = BAD["b"].iloc[::-1]
    with pytest.raises(ValueError, match=r"Series given for bi is not "
                                         r"indexed like data"):
        smm.escalc("OR", ai="c", bi=shuffled, ci="c", di="d", data=BAD)
    with pytest.raises(ValueError, match=r"data must be a pandas DataFrame"):
        smm.escalc("OR", ai="a", bi="b", ci="c", di="d", data={"a": [1]})
    with pytest.raises(ValueError, match=r"infinite values in rows \[0\]"):
        smm.escalc("PR", xi=[np.inf], ni=[3])


def test_two_arm_network_contrasts_agree_with_escalc():
    # two independent implementations: network_contrasts (arm-level, the
    # zero-cell rule of netmeta's pairwise) and escalc (metafor's only0)
    arms = pd.DataFrame({"study": [1, 1, 2, 2, 3, 3],
                         "treatment": ["A", "B"] * 3,
                         "events": [3, 0, 5, 9, 12, 20],
                         "n": [30, 30, 40, 41, 60, 58]})
    wide = arms.pivot(index="study", columns="treatment")
    for measure in ("OR", "RR", "RD"):
        net = smm.network_contrasts(arms, "study", "treatment", "A",
                                    measure=measure, events="events", n="n")
        es = smm.escalc(measure, ai=wide["events"]["B"], n1i=wide["n"]["B"],
                        ci=wide["events"]["A"], n2i=wide["n"]["A"])
        np.testing.assert_allclose(net.frame["y_B"], es["yi"], atol=1e-12)
        np.testing.assert_allclose(net.frame["S_B_B"], es["vi"], atol=1e-12)


@pytest.mark.parametrize("measure", ["OR", "RR"])
def test_correlated_outcomes_have_escalc_on_their_diagonal(measure):
    # escalc_correlated (several outcomes on the same patients) must give
    # each outcome escalc's effect size and variance, zero cells included
    data = pd.DataFrame({"d1": [0, 8, 30], "h1": [30, 25, 0], "n1": [100] * 3,
                         "d0": [20, 15, 41], "h0": [41, 33, 80],
                         "n0": [100, 100, 205]})
    outcomes = {"death": dict(ai="d1", n1i="n1", ci="d0", n2i="n0"),
                "admit": dict(ai="h1", n1i="n1", ci="h0", n2i="n0")}
    eff = smm.escalc_correlated(measure, data=data, rho=0.3,
                                outcomes=outcomes)
    for k, (name, cells) in enumerate(outcomes.items()):
        es = smm.escalc(measure, data=data, **cells)
        np.testing.assert_allclose(eff.y[name], es["yi"], atol=1e-12)
        np.testing.assert_allclose(eff.S[:, k, k], es["vi"], atol=1e-12)
