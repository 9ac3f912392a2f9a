"""Shipped data sets, and the conversion of the R reference results to our conventions."""

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import reference_cases as rc
from statsmodels_mixmeta import datasets

# name -> (shape, column, first value)
EXPECTED = {
    "alcohol": ((48, 7), "peryears", 22185.73046875),
    "bcg": ((13, 13), "logor", -0.93869411945343),
    "berkey98": ((5, 8), "PD", 0.47),
    "dbs": ((46, 12), "eff_month3", -33.4),
    "fibrinogen": ((31, 15), "b2", 0.252366632223129),
    "gliomas": ((68, 8), "logOR", -0.628608659422374),
    "hsls": ((8, 10), "b2", 7.4015),
    "hyp": ((10, 7), "sbp", -6.66),
    "nmmaps_tmeanagepar": ((324, 19), "coef1", 0.613206787206464),
    "nmmaps_tmeanpar": ((108, 21), "coef1", 0.208919967239005),
    "p53": ((6, 5), "y1", -0.58),
    "school": ((56, 5), "effect", -0.18),
    "smoking": ((24, 19), "yC", 1.05129301548004),
    "thrombolytic": ((38, 10), "absrisk", -0.0748),
}


def test_names_lists_every_shipped_set():
    assert datasets.names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_shape_and_first_value(name):
    shape, column, first = EXPECTED[name]
    frame = getattr(datasets, f"load_{name}")()
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == shape
    assert_allclose(frame[column].iloc[0], first, rtol=1e-12)
    assert_array_equal(frame.columns, datasets.load(name).columns)


def test_bcg_values():
    bcg = datasets.load_bcg()
    assert list(bcg.columns[:3]) == ["trial", "author", "year"]
    assert bcg["author"].iloc[0] == "Aronson"
    assert_allclose(bcg["logor"].iloc[0], -0.9387, atol=1e-4)
    assert_allclose(bcg["logorvar"].iloc[0], 0.357124954462051, rtol=1e-12)
    assert bcg["ablat"].tolist()[:3] == [44, 55, 42]
    assert sorted(bcg["alloc"].unique()) == ["alternate", "random", "systematic"]


def test_berkey98_covariance_columns():
    berkey = datasets.load_berkey98()
    assert list(berkey.columns[-3:]) == ["var_PD", "cov_PD_AL", "var_AL"]
    assert_allclose(berkey.loc[0, ["var_PD", "cov_PD_AL", "var_AL"]].astype(float),
                    [0.0075, 0.003, 0.0077])


def test_na_becomes_nan():
    p53 = datasets.load_p53()
    assert np.isnan(p53["y1"].iloc[1]) and np.isnan(p53["V1"].iloc[1])
    assert p53["y1"].notna().sum() == 3
    alcohol = datasets.load_alcohol()
    assert alcohol["se"].isna().sum() == 8
    assert (alcohol.loc[alcohol["se"].isna(), "logrr"] == 0).all()


def test_load_returns_a_fresh_frame():
    first = datasets.load_bcg()
    first.loc[0, "logor"] = 99.0
    assert_allclose(datasets.load_bcg()["logor"].iloc[0], -0.93869411945343)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown data set 'nope'.*bcg.*thrombolytic"):
        datasets.load("nope")


def test_data_path_points_at_the_packaged_csv():
    path = datasets.data_path("hyp")
    assert path.name == "hyp.csv"
    assert path.read_text(encoding="utf-8").startswith('"study","sbp"')


# --- the data behind the reference cases ------------------------------------

# case -> number of rows R used, computed from our copy of the data
def _rows_used():
    gliomas = datasets.load_gliomas()
    alcohol = datasets.load_alcohol()
    dbs = datasets.load_dbs()
    return {
        "bcg": len(datasets.load_bcg()),
        "berkey": len(datasets.load_berkey98()),
        "fibrinogen": len(datasets.load_fibrinogen()),
        "smoking": len(datasets.load_smoking()),
        "p53": len(datasets.load_p53()),
        "hyp": len(datasets.load_hyp()),
        "hsls": len(datasets.load_hsls()),
        "school": len(datasets.load_school()),
        "thrombolytic": len(datasets.load_thrombolytic()),
        "gliomas": int(gliomas["logOR"].notna().sum()),
        "alcohol": int(alcohol["se"].notna().sum()),
        "dbs_wide": len(dbs),
        "dbs_long": int(dbs.filter(like="eff_").notna().sum().sum()),
    }


@pytest.mark.parametrize("name", rc.case_names())
def test_row_counts_match_reference_dim_n(name):
    rows = _rows_used()
    family = name.split("_")[0]
    key = {"dbs": "dbs_long" if name.startswith("dbs_long") else "dbs_wide"}.get(family, family)
    ref = rc.case(name)
    assert ref.n == rows[key]
    assert len(ref.row_labels) == ref.n
    assert ref.fitted.shape == (ref.n, ref.k)


def test_reference_row_labels_match_data():
    berkey = datasets.load_berkey98()
    assert rc.case("berkey_ml").row_labels == berkey["trial"].tolist()
    alcohol = datasets.load_alcohol()
    used = [str(i + 1) for i in alcohol.index[alcohol["se"].notna()]]
    assert rc.case("alcohol_lin").row_labels == used


def test_smoking_fitted_missing_where_outcome_missing():
    smoking = datasets.load_smoking()
    ref = rc.case("smoking_unstr")
    assert_array_equal(np.isnan(ref.fitted), smoking[["yB", "yC", "yD"]].isna().to_numpy())


def test_addslist_sizes_match_data():
    alcohol = datasets.load_alcohol()
    ref = rc.case("alcohol_lin")
    assert ref.addSlist_order == sorted(alcohol["id"].unique())
    sizes = alcohol[alcohol["se"].notna()].groupby("id").size()
    assert [m.shape[0] for m in ref.addSlist] == sizes.loc[ref.addSlist_order].tolist()
    assert_allclose(ref.addSlist[0][0, 0], 0.0630499995688261)

    gliomas = datasets.load_gliomas()
    ref = rc.case("gliomas_har1S_diag")
    sizes = gliomas[gliomas["logOR"].notna()].groupby("study").size()
    assert ref.addSlist_order == [str(s) for s in sizes.index]
    assert [m.shape for m in ref.addSlist] == [(s, s) for s in sizes]
    # diagonal = within-study variances of that study, in time order
    assert_allclose(np.diag(ref.addSlist[0]), gliomas.loc[gliomas["study"] == 1, "logORvar"])

    dbs = datasets.load_dbs()
    ref = rc.case("dbs_long_har1S")
    assert ref.addSlist_order is None
    assert [m.shape[0] for m in ref.addSlist] == dbs.filter(like="eff_").notna().sum(axis=1).tolist()
    assert ref.addSlist_names[1] == ["var_month3", "var_month12"]


# --- reference_cases: conversions ------------------------------------------

def test_fixture_files_match_recorded_hashes():
    source = (rc.RESULTS_DIR / "SOURCE.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", source))
    assert set(recorded) == {"mixmeta_reference.json", "make_reference.R", "README.md"}
    for fname, digest in recorded.items():
        assert hashlib.sha256((rc.RESULTS_DIR / fname).read_bytes()).hexdigest() == digest


def test_load_reference_is_cached_and_complete():
    ref = rc.load_reference()
    assert rc.load_reference() is ref
    assert len(ref["cases"]) == 57
    assert ref["meta"]["generator"].startswith("R mixmeta 1.2.1")


def test_single_and_multilevel_partition():
    single, multi = rc.single_level_names(), rc.multilevel_names()
    assert len(single) == 33 and len(multi) == 24
    assert set(single) | set(multi) == set(rc.case_names())
    assert not set(single) & set(multi)
    for name in single:
        c = rc.case(name)
        assert not c.has_random and not c.uses_addslist and not c.multilevel
        assert not isinstance(c.dim["q"], list)
    for name in multi:
        assert rc.case(name).multilevel
    no_random = [n for n in multi if not rc.case(n).has_random and not rc.case(n).uses_addslist]
    assert no_random == ["thrombolytic_fixed", "dbs_diag", "dbs_har1"]


def test_berkey_ml_names_and_order():
    c = rc.case("berkey_ml")
    assert c.coef_names == ["PD:Intercept", "PD:year", "AL:Intercept", "AL:year"]
    assert c.coef_names_r == ["PD.(Intercept)", "AL.(Intercept)", "PD.year", "AL.year"]
    assert c.outcomes == ["PD", "AL"] and c.terms == ["Intercept", "year"]
    assert_array_equal(c.order, [0, 2, 1, 3])
    assert c.name_map["AL.(Intercept)"] == "AL:Intercept"
    assert_allclose(c.coef_by_name["PD:year"], c.raw["coef"][2])
    assert_allclose(c.coef_by_name["AL:Intercept"], c.raw["coef"][1])


def test_berkey_ml_vcov_reordering():
    c = rc.case("berkey_ml")
    raw_vcov = np.array(c.raw["vcov"]["values"])
    # R entry (AL.(Intercept), PD.year) lands at (AL:Intercept, PD:year)
    i, j = c.coef_names.index("AL:Intercept"), c.coef_names.index("PD:year")
    assert_allclose(c.vcov[i, j], -8.95492569326289e-05, rtol=1e-14)
    assert_allclose(c.vcov[j, i], raw_vcov[2, 1], rtol=1e-14)
    assert_allclose(c.vcov[0, 0], raw_vcov[0, 0])
    assert_array_equal(c.naming.to_r(c.vcov), raw_vcov)
    assert_array_equal(c.naming.to_ours(c.naming.to_r(c.vcov)), c.vcov)
    assert_array_equal(c.naming.to_r(c.coef), c.raw["coef"])
    assert_allclose(c.vcov, c.vcov.T)
    # the tight refit is reordered the same way
    assert_allclose(c.tight.coef, c.coef, atol=1e-5)
    assert_allclose(c.tight.vcov[i, j], -8.95521259994026e-05, rtol=1e-14)


@pytest.mark.parametrize("name", rc.case_names())
def test_conversion_by_name(name):
    c = rc.case(name)
    raw = c.raw
    k = raw["dim"]["k"]
    position = {n: i for i, n in enumerate(c.coef_names)}
    for r_index, r_name in enumerate(raw["coef_names"]):
        ours = position[c.name_map[r_name]]
        assert c.coef[ours] == raw["coef"][r_index]
        for s_index, s_name in enumerate(raw["coef_names"]):
            assert c.vcov[ours, position[c.name_map[s_name]]] == raw["vcov"]["values"][r_index][s_index]
    assert all(":" in n for n in c.coef_names) == (k > 1)
    assert "(Intercept)" not in " ".join(c.coef_names)
    if k > 1:  # outcome-major: each outcome's terms are contiguous
        assert [n.split(":")[0] for n in c.coef_names] == [o for o in c.outcomes for _ in c.terms]
        assert c.qtest.names == [".all"] + c.outcomes
        assert c.psi is None or c.psi.shape == (k, k)
    else:
        assert c.qtest.names == [".all"]


@pytest.mark.parametrize("name", rc.case_names())
def test_i2_is_a_fraction(name):
    c = rc.case(name)
    percent = np.array([np.nan if v is None else v for v in c.raw["i2"]])
    assert_allclose(c.i2, percent / 100.0, equal_nan=True)
    assert np.nanmax(c.i2) <= 1.0
    # I2 = max(0, (Q - df) / Q), for the overall test and each outcome
    q, df = c.qtest.Q, c.qtest.df
    assert_allclose(c.i2, np.maximum(0.0, (q - df) / q), rtol=1e-10, equal_nan=True)
    assert np.isfinite(c.i2[0])


def test_i2_known_values():
    assert_allclose(rc.case("berkey_ml").i2, [0.952288447709795, 0.785029505063614,
                                              0.972337187185813])
    assert np.isnan(rc.case("p53_scor").i2[1])


def test_multilevel_psi_is_keyed_by_level_outer_first():
    c = rc.case("school_ml_2level")
    assert list(c.psi) == ["district", "study"]
    assert_allclose(c.psi["district"], [[0.0577388097187196]])
    assert c.blup_level1.shape == (56, 1)
    assert list(rc.case("thrombolytic_reml_2level").tight.psi) == ["trial", "subtrial"]


def test_predict_newdata():
    p = rc.case("bcg_reg_reml").predict_newdata
    assert_array_equal(p["newdata"]["ablat"], [10, 20, 30, 40, 50])
    assert p["fit"].shape == p["se"].shape == (5,)
    assert_allclose(p["fit"][0], -0.0142934825339128)
    assert np.all(p["ci_lb"] < p["fit"]) and np.all(p["fit"] < p["ci_ub"])
    p = rc.case("alcohol_lin").predict_newdata
    assert_array_equal(p["newdata"]["dose"], [12.0])
    assert_allclose([p["fit"][0], p["se"][0]], [0.077250453631308, 0.0162245055737765])


def test_early_stop_cases():
    readme = (rc.RESULTS_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where R stops early", 1)[1]
    assert set(re.findall(r"`([a-z0-9_A-Z]+)`", section)) >= set(rc.EARLY_STOP_CASES)
    for name in rc.case_names():
        c = rc.case(name)
        if c.tight is None:
            assert c.method in ("fixed", "mm", "vc") and name not in rc.EARLY_STOP_CASES
            continue
        gain = c.tight.logLik - c.logLik
        if name in rc.EARLY_STOP_CASES:
            assert gain > 1e-6 and c.early_stop
        else:
            assert abs(gain) < 1e-6


def test_unknown_case():
    with pytest.raises(KeyError, match="berkey_ml"):
        rc.case("nope")


def test_case_returns_independent_arrays():
    c = rc.case("bcg_ml")
    c.coef[0] = 99.0
    assert rc.case("bcg_ml").coef[0] != 99.0
    assert c["method"] == "ml"
