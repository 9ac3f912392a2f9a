"""
Likelihood-ratio comparisons: ``compare_lr_test``, ``drop1`` and
``smm.compare``.

The statistics are checked by hand, ``LR = 2 (llf_full - llf_restricted)``
on ``df_diff`` degrees of freedom, with R's log-likelihoods from the
reference JSON where R fitted both models, and ``drop1`` against the smaller
models fitted from their own formulas.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import statsmodels.formula.api as smf
import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets

from reference_cases import load_reference
from reference_models import MULTILEVEL, SINGLE_LEVEL, _berkey, BERKEY_S

BCG = datasets.load_bcg()


def r_loglik(name):
    """R's log-likelihood at its optimum: the better of its default answer
    and its tight refit (where R stopped early, see agreement.py)."""
    case = load_reference()["cases"][name]
    tight = (case.get("tight") or {}).get("logLik")
    return case["logLik"] if tight is None else max(case["logLik"], tight)


def bcg(formula, **kw):
    return smf.mixmeta(formula, data=BCG, S="logorvar", **kw).fit()


def berkey(formula, **kw):
    return smf.mixmeta(formula, data=_berkey(), S=BERKEY_S, **kw).fit()


def hand_lr(full_llf, restricted_llf, df):
    lr = 2 * (full_llf - restricted_llf)
    return lr, stats.chi2.sf(lr, df)


# ------------------------------------------------------- compare_lr_test
@pytest.mark.parametrize("full, restricted, df", [
    ("bcg_reg_ml", "bcg_ml", 1),            # logor ~ ablat vs ~ 1, ML
    ("bcg_ml", "bcg_fixed", 1),             # tau2 tested at 0 (boundary)
    ("smoking_unstr", "smoking_cs", 4),     # REML, same fixed part
    ("smoking_diag", "smoking_id", 2),
    ("berkey_ml", "berkey_fixed", 3),       # Psi (3 parameters) vs none
])
def test_lr_test_matches_r_loglikelihoods(full, restricted, df):
    res_full = SINGLE_LEVEL[full]().fit()
    res_restricted = SINGLE_LEVEL[restricted]().fit()
    lr, pvalue, df_diff = res_full.compare_lr_test(res_restricted)
    r_lr, r_p = hand_lr(r_loglik(full), r_loglik(restricted), df)
    assert df_diff == df
    assert abs(lr - r_lr) < 4e-6
    assert abs(pvalue - r_p) < 1e-5 * max(r_p, 1e-3)
    # and exactly the hand computation on our own log-likelihoods
    own_lr, own_p = hand_lr(res_full.llf, res_restricted.llf, df)
    assert lr == pytest.approx(own_lr, rel=1e-12, abs=1e-12)
    assert pvalue == pytest.approx(own_p, rel=1e-10)


def test_lr_test_bcg_numbers():
    lr, pvalue, df = bcg("logor ~ ablat", method="ml").compare_lr_test(
        bcg("logor ~ 1", method="ml"))
    # R: 2 * (-6.9634339515289 - -13.0727596661347)
    assert lr == pytest.approx(12.2186514292116, abs=4e-6)
    assert pvalue == pytest.approx(stats.chi2.sf(12.2186514292116, 1),
                                   rel=1e-5)
    assert df == 1


def test_lr_test_berkey_bivariate_two_coefficients():
    full = berkey("PD + AL ~ year", method="ml")
    restricted = berkey("PD + AL ~ 1", method="ml")
    lr, pvalue, df = full.compare_lr_test(restricted)
    assert df == 2                          # year, for PD and for AL
    assert full.llf == pytest.approx(r_loglik("berkey_ml"), abs=1e-6)
    assert lr == pytest.approx(2 * (full.llf - restricted.llf), rel=1e-12)
    assert pvalue == pytest.approx(stats.chi2.sf(lr, 2), rel=1e-12)
    assert lr > 0 and 0 < pvalue < 1


def test_lr_test_multilevel_ml():
    full = MULTILEVEL["school_ml_2level"]().fit()
    restricted = MULTILEVEL["school_ml_1level"]().fit()
    lr, pvalue, df = full.compare_lr_test(restricted)
    r_lr, r_p = hand_lr(r_loglik("school_ml_2level"),
                        r_loglik("school_ml_1level"), 1)
    assert df == 1
    assert lr == pytest.approx(r_lr, abs=4e-6)
    assert pvalue == pytest.approx(r_p, rel=1e-4)


def test_reml_refused_when_fixed_parts_differ():
    with pytest.raises(ValueError, match="REML fits with different "
                                         "fixed-effects parts.*method='ml'"):
        bcg("logor ~ ablat").compare_lr_test(bcg("logor ~ 1"))


def test_reml_and_ml_refused_together():
    with pytest.raises(ValueError, match="one fit is by REML and the other "
                                         "by ML"):
        bcg("logor ~ ablat").compare_lr_test(bcg("logor ~ 1", method="ml"))


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_moment_fits_refused(method):
    with pytest.raises(ValueError, match=f"method='{method}' maximises no "
                                         "likelihood"):
        bcg("logor ~ ablat", method="ml").compare_lr_test(
            bcg("logor ~ 1", method=method))


def test_not_nested_refused():
    ml = bcg("logor ~ ablat", method="ml")
    with pytest.raises(ValueError, match="not fewer than the full model's"):
        ml.compare_lr_test(bcg("logor ~ year", method="ml"))
    with pytest.raises(ValueError, match="not fewer"):
        bcg("logor ~ 1", method="ml").compare_lr_test(ml)
    other = smf.mixmeta("logor ~ 1", data=BCG.iloc[1:], S="logorvar",
                        method="ml").fit()
    with pytest.raises(ValueError, match="not of the same data"):
        ml.compare_lr_test(other)
    other_s = smf.mixmeta("logor ~ 1", data=BCG.assign(v=BCG.logorvar * 2),
                          S="v", method="ml").fit()
    with pytest.raises(ValueError, match="different within-study"):
        ml.compare_lr_test(other_s)


def test_restricted_fitting_better_is_reported():
    # a "full" model with more parameters but a lower likelihood: the
    # nesting cannot be seen from the fits, the likelihoods show it fails
    full = bcg("logor ~ year", method="ml")            # 3 parameters
    restricted = bcg("logor ~ ablat", method="fixed")  # 2 parameters
    assert restricted.llf > full.llf
    with pytest.raises(ValueError, match="is above the full model's.*"
                                         "not reached its maximum"):
        full.compare_lr_test(restricted)


def test_lr_test_accepts_wrapped_results():
    full = bcg("logor ~ ablat", method="ml")
    restricted = bcg("logor ~ 1", method="ml")
    assert full.compare_lr_test(restricted) \
        == full._results.compare_lr_test(restricted._results)


# ------------------------------------------------------------------ drop1
def test_drop1_respects_marginality(engine):
    res = bcg("logor ~ ablat * year", method="ml")
    table = res.drop1()
    assert list(table.index) == ["<none>", "ablat:year"]
    smaller = bcg("logor ~ ablat + year", method="ml")
    lr, p = hand_lr(res.llf, smaller.llf, 1)
    assert table.loc["ablat:year", "df"] == 1
    assert table.loc["ablat:year", "lr"] == pytest.approx(lr, abs=1e-8)
    assert table.loc["ablat:year", "pvalue"] == pytest.approx(p, rel=1e-7)
    assert table.loc["ablat:year", "aic"] == pytest.approx(smaller.aic,
                                                           abs=1e-8)
    assert table.loc["<none>", "aic"] == res.aic
    assert table.loc["<none>", ["df", "lr", "pvalue"]].isna().all()


def test_drop1_main_effects_and_factor_equal_refits_from_scratch(engine):
    res = bcg("logor ~ ablat + year + alloc", method="ml")
    table = res.drop1()
    # in the order of the design's columns (patsy puts the factor first)
    assert list(table.index) == ["<none>", "alloc", "ablat", "year"]
    for term, formula, df in [("ablat", "logor ~ year + alloc", 1),
                              ("year", "logor ~ ablat + alloc", 1),
                              ("alloc", "logor ~ ablat + year", 2)]:
        smaller = bcg(formula, method="ml")
        lr, p = hand_lr(res.llf, smaller.llf, df)
        assert table.loc[term, "df"] == df
        assert table.loc[term, "aic"] == pytest.approx(smaller.aic,
                                                       abs=1e-8)
        assert table.loc[term, "lr"] == pytest.approx(lr, abs=1e-8)
        assert table.loc[term, "pvalue"] == pytest.approx(p, rel=1e-6,
                                                          abs=1e-12)


def test_drop1_of_reml_fit_refits_by_ml():
    reml = bcg("logor ~ ablat + year")
    table = reml.drop1()
    assert table.attrs["method"] == "ml"
    full = bcg("logor ~ ablat + year", method="ml")
    assert table.loc["<none>", "aic"] == pytest.approx(full.aic, abs=1e-8)
    smaller = bcg("logor ~ year", method="ml")
    assert table.loc["ablat", "lr"] == pytest.approx(
        2 * (full.llf - smaller.llf), abs=1e-8)


def test_drop1_bivariate_drops_both_outcomes_coefficients(engine):
    res = berkey("PD + AL ~ year", method="ml")
    table = res.drop1()
    lr, pvalue, df = res.compare_lr_test(berkey("PD + AL ~ 1", method="ml"))
    assert list(table.index) == ["<none>", "year"]
    assert table.loc["year", "df"] == df == 2
    assert table.loc["year", "lr"] == pytest.approx(lr, abs=1e-8)
    assert table.loc["year", "pvalue"] == pytest.approx(pvalue, rel=1e-6)


def test_drop1_multilevel_and_fixed_methods():
    res = MULTILEVEL["school_ml_reg"]().fit()
    table = res.drop1()
    smaller = MULTILEVEL["school_ml_1level"]().fit()
    assert table.loc["yearcen", "lr"] == pytest.approx(
        2 * (r_loglik("school_ml_reg") - r_loglik("school_ml_1level")),
        abs=4e-6)
    assert table.loc["yearcen", "aic"] == pytest.approx(smaller.aic,
                                                        abs=1e-8)
    fixed = bcg("logor ~ ablat", method="fixed")
    table = fixed.drop1()
    assert table.attrs["method"] == "fixed"
    assert table.loc["ablat", "lr"] == pytest.approx(
        2 * (fixed.llf - r_loglik("bcg_fixed")), abs=4e-6)


def test_drop1_array_model_keeps_the_constant():
    X = np.c_[np.ones(13), BCG["ablat"], BCG["year"]]
    res = smm.MixMeta(BCG["logor"].to_numpy(), X,
                      S=BCG["logorvar"].to_numpy(), method="ml").fit()
    table = res.drop1()
    assert list(table.index) == ["<none>", "x1", "x2"]
    smaller = smm.MixMeta(BCG["logor"].to_numpy(), X[:, [0, 2]],
                          S=BCG["logorvar"].to_numpy(), method="ml").fit()
    assert table.loc["x1", "lr"] == pytest.approx(
        2 * (res.llf - smaller.llf), abs=1e-8)


def test_drop1_refusals():
    with pytest.raises(ValueError, match="no likelihood"):
        bcg("logor ~ ablat", method="mm").drop1()
    with pytest.raises(ValueError, match="no fixed term to drop"):
        bcg("logor ~ 1", method="ml").drop1()
    with pytest.raises(ValueError, match="dropping 'ablat' leaves no fixed"):
        bcg("logor ~ 0 + ablat", method="ml").drop1()


def test_lr_test_with_addS_multilevel():
    full = MULTILEVEL["gliomas_har1S_unstr"]().fit()
    restricted = MULTILEVEL["gliomas_har1S_diag"]().fit()
    lr, pvalue, df = full.compare_lr_test(restricted)     # REML, same X
    r_lr, r_p = hand_lr(r_loglik("gliomas_har1S_unstr"),
                        r_loglik("gliomas_har1S_diag"), 6)
    assert df == 6
    assert lr == pytest.approx(r_lr, abs=4e-6)
    assert pvalue == pytest.approx(r_p, rel=1e-4)


def test_drop_columns_design():
    model = smf.mixmeta("PD + AL ~ year", data=_berkey(), S=BERKEY_S)
    design = model.design.drop_columns([1])
    assert design.term_names == ("Intercept",)
    assert design.exog.shape == (5, 1)
    assert model.design.exog.shape == (5, 2)     # the parent is unchanged
    with pytest.raises(ValueError, match=r"in 0\.\.1"):
        model.design.drop_columns([2])
    with pytest.raises(ValueError, match="no fixed effects"):
        model.design.drop_columns([0, 1])


# ---------------------------------------------------------------- compare
def test_compare_table():
    fits = [bcg("logor ~ 1", method="ml"), bcg("logor ~ ablat", method="ml"),
            bcg("logor ~ ablat + year", method="ml"),
            bcg("logor ~ ablat + year")]
    table = smm.compare(fits, names=["null", "ablat", "both", "both reml"])
    assert list(table.index) == ["null", "ablat", "both", "both reml"]
    assert list(table.columns) == ["method", "llf", "df", "aic", "bic",
                                   "lr", "df_diff", "pvalue", "note"]
    np.testing.assert_allclose(table.llf, [f.llf for f in fits], rtol=0)
    assert table.llf.iloc[0] == pytest.approx(r_loglik("bcg_ml"), abs=1e-6)
    assert list(table.df) == [2, 3, 4, 4]
    np.testing.assert_allclose(table.aic, -2 * table.llf + 2 * table.df)
    n = 13
    np.testing.assert_allclose(table.bic.iloc[:3], -2 * table.llf.iloc[:3]
                               + np.log(n) * table.df.iloc[:3])
    assert np.isnan(table.lr.iloc[0]) and table.note.iloc[0] == ""
    for i in (1, 2):
        lr, p = hand_lr(table.llf.iloc[i], table.llf.iloc[i - 1], 1)
        assert table.lr.iloc[i] == pytest.approx(lr, rel=1e-12)
        assert table.pvalue.iloc[i] == pytest.approx(p, rel=1e-10)
        assert table.df_diff.iloc[i] == 1
    assert table.lr.iloc[1] == pytest.approx(
        2 * (r_loglik("bcg_reg_ml") - r_loglik("bcg_ml")), abs=4e-6)
    assert np.isnan(table.lr.iloc[3]) and np.isnan(table.pvalue.iloc[3])
    assert "REML and the other by ML" in table.note.iloc[3]


def test_compare_orders_each_pair_and_checks_names():
    small, large = bcg("logor ~ 1", method="ml"), bcg("logor ~ ablat",
                                                      method="ml")
    down = smm.compare([large, small])
    assert down.lr.iloc[1] == pytest.approx(
        large.compare_lr_test(small)[0], rel=1e-12)
    assert list(down.index) == ["model 1", "model 2"]
    with pytest.raises(ValueError, match="1 names for 2 models"):
        smm.compare([large, small], names=["a"])
    with pytest.raises(ValueError, match="at least one"):
        smm.compare([])


def test_compare_with_removed_data_keeps_the_fit_statistics():
    small, large = bcg("logor ~ 1", method="ml"), bcg("logor ~ ablat",
                                                      method="ml")
    llf, aic = large.llf, large.aic
    large.remove_data()
    table = smm.compare([small, large])
    assert table.llf.iloc[1] == llf and table.aic.iloc[1] == aic
    assert np.isnan(table.lr.iloc[1])
    assert "remove_data() removed" in table.note.iloc[1]


def test_compare_notes_a_variance_tested_at_zero():
    table = smm.compare([SINGLE_LEVEL["bcg_fixed"]().fit(),
                         SINGLE_LEVEL["bcg_ml"]().fit(),
                         SINGLE_LEVEL["bcg_reg_ml"]().fit()])
    lr, p = hand_lr(r_loglik("bcg_ml"), r_loglik("bcg_fixed"), 1)
    assert table.lr.iloc[1] == pytest.approx(lr, abs=4e-6)
    assert table.pvalue.iloc[1] == pytest.approx(p, rel=1e-4, abs=1e-300)
    assert "conservative" in table.note.iloc[1]
    assert table.note.iloc[2] == ""
