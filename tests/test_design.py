"""
Tests of the frozen design (statsmodels_mixmeta.design): ``subset`` and
``with_endog`` give models that fit exactly as models built from scratch on
the same data, their errors, and rebuilding a model from its init keywords.

"Exactly" is bitwise: a design derived from another shares or restricts the
same validated arrays in the same row order, so the kernels do the same
floating-point operations.
"""
import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.builder import design_from_arrays
from reference_models import _gliomas, _gliomas_addS

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]
SCHOOL_RANDOM = "~ 1 | district/study"


def berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return data


def psi_list(res):
    psi = res.psi
    return [np.asarray(p) for p in (psi.values() if isinstance(psi, dict)
                                    else [psi])]


def assert_same_fit(a, b):
    """Bitwise the same estimates, standard errors, likelihood and Psi."""
    np.testing.assert_array_equal(np.asarray(a.params), np.asarray(b.params))
    np.testing.assert_array_equal(np.asarray(a.bse), np.asarray(b.bse))
    assert a.llf == b.llf
    for pa, pb in zip(psi_list(a), psi_list(b), strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert (a.nobs, a.n_groups) == (b.nobs, b.n_groups)


# ------------------------------------------------------------ subset
def test_leave_one_out_bcg_equals_fit_without_the_study():
    bcg = datasets.load_bcg()
    model = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar")
    labels = model.design.levels.outer_labels
    np.testing.assert_array_equal(labels, bcg.index)
    for left_out in labels:
        design = model.design.subset([g for g in labels if g != left_out])
        loo = smm.MixMeta.from_design(design).fit()
        fresh = smf.mixmeta("logor ~ ablat", data=bcg.drop(index=left_out),
                            S="logorvar").fit()
        assert_same_fit(loo, fresh)
        assert list(loo.params.index) == ["Intercept", "ablat"]
        assert loo.nobs == 12


def test_model_from_design_predicts_new_data_and_pickles():
    bcg = datasets.load_bcg()
    model = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar")
    loo = smm.MixMeta.from_design(model.design.subset(bcg.index[1:])).fit()
    fresh = smf.mixmeta("logor ~ ablat", data=bcg.iloc[1:],
                        S="logorvar").fit()
    new = pd.DataFrame({"ablat": [20.0, 40.0]})
    pd.testing.assert_frame_equal(
        loo.get_prediction(new).summary_frame(),
        fresh.get_prediction(new).summary_frame())
    back = pickle.loads(pickle.dumps(loo))
    np.testing.assert_array_equal(back.params, loo.params)
    assert back.llf == loo.llf
    predicted = loo.get_prediction(new).summary_frame()
    loo.remove_data()
    small = pickle.loads(pickle.dumps(loo))
    pd.testing.assert_frame_equal(small.get_prediction(new).summary_frame(),
                                  predicted)


def test_leave_one_out_bcg_arrays():
    bcg = datasets.load_bcg()
    X = np.c_[np.ones(13), bcg["ablat"]]
    y, v = bcg["logor"].to_numpy(), bcg["logorvar"].to_numpy()
    model = smm.MixMeta(y, X, S=v)
    loo = smm.MixMeta.from_design(model.design.subset(np.arange(1, 13)))
    fresh = smm.MixMeta(y[1:], X[1:], S=v[1:])
    assert_same_fit(loo.fit(), fresh.fit())
    assert isinstance(loo.fit().params, np.ndarray)     # as the array model


@pytest.mark.parametrize("method", ["fixed", "mm", "vc", "ml"])
def test_subset_for_every_estimator(method):
    data = berkey()
    model = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S,
                        method=method)
    keep = data.index[1:]
    sub = smm.MixMeta.from_design(model.design.subset(keep), method=method)
    fresh = smf.mixmeta("PD + AL ~ year", data=data.loc[keep], S=BERKEY_S,
                        method=method)
    a, b = sub.fit(), fresh.fit()
    np.testing.assert_array_equal(np.asarray(a.params), np.asarray(b.params))
    for pa, pb in zip(psi_list(a), psi_list(b), strict=True):
        np.testing.assert_array_equal(pa, pb)


def test_leave_one_out_multivariate_berkey():
    data = berkey()
    model = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S)
    for left_out in data.index:
        keep = data.index.drop(left_out)
        loo = smm.MixMeta.from_design(model.design.subset(keep)).fit()
        fresh = smf.mixmeta("PD + AL ~ year", data=data.loc[keep],
                            S=BERKEY_S).fit()
        assert_same_fit(loo, fresh)
        assert loo.nobs == 8


def test_leave_one_district_out_multilevel_school():
    school = datasets.load_school()
    model = smf.mixmeta("effect ~ 1", data=school, S="var",
                        random=SCHOOL_RANDOM, method="ml")
    districts = model.design.levels.outer_labels
    assert len(districts) == 11
    for left_out in districts:
        design = model.design.subset(districts[districts != left_out])
        loo = smm.MixMeta.from_design(design, method="ml").fit()
        fresh = smf.mixmeta("effect ~ 1",
                            data=school[school["district"] != left_out],
                            S="var", random=SCHOOL_RANDOM,
                            method="ml").fit()
        assert_same_fit(loo, fresh)
        assert loo.n_groups == 10
        # predictions read the levels from the design
        pd.testing.assert_frame_equal(loo.blup(), fresh.blup())
        for name in ("district", "study"):
            pd.testing.assert_frame_equal(loo.random_effects()[name],
                                          fresh.random_effects()[name])


def test_subset_with_per_group_covariance_addS():
    data, addS = _gliomas(), _gliomas_addS()
    kw = dict(random="~ 0 + C(time) | study", bscov="diag")
    model = smf.mixmeta("logOR ~ 0 + C(time)", data=data, addS=addS, **kw)
    studies = model.design.levels.outer_labels
    keep = studies[2:]
    sub = smm.MixMeta.from_design(model.design.subset(keep), bscov="diag")
    fresh = smf.mixmeta("logOR ~ 0 + C(time)",
                        data=data[data["study"].isin(keep)],
                        addS={s: addS[s] for s in keep}, **kw)
    assert len(sub.design.group_cov) == len(studies) - 2
    assert_same_fit(sub.fit(), fresh.fit())


def test_subset_keeps_row_order_and_recodes_inner_levels():
    school = datasets.load_school()
    model = smf.mixmeta("effect ~ 1", data=school, S="var",
                        random=SCHOOL_RANDOM)
    # the order of the labels given does not matter
    a = model.design.subset([644, 11])
    b = model.design.subset([11, 644])
    np.testing.assert_array_equal(a.row_labels, b.row_labels)
    rows = school.index[school["district"].isin([11, 644])]
    np.testing.assert_array_equal(a.row_labels, rows)
    fresh = smf.mixmeta("effect ~ 1", data=school.loc[rows], S="var",
                        random=SCHOOL_RANDOM).design
    for ours, theirs in zip(a.levels.codes, fresh.levels.codes,
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(a.levels.outer_labels, [11, 644])


def test_subset_errors():
    model = smf.mixmeta("logor ~ ablat", data=datasets.load_bcg(),
                        S="logorvar")
    with pytest.raises(ValueError, match=r"\[99, 'x'\] are not outer groups"
                       r".*row labels: 0, 1, 2"):
        model.design.subset([0, 99, "x"])
    with pytest.raises(ValueError, match=r"\[-1, 13\] are not outer groups"):
        model.design.subset(np.array([2, -1, 13]))
    with pytest.raises(ValueError, match="at least one outer group"):
        model.design.subset([])
    school = smf.mixmeta("effect ~ 1", data=datasets.load_school(),
                         S="var", random=SCHOOL_RANDOM).design
    with pytest.raises(ValueError, match="labels of 'district': 11, 12"):
        school.subset([7])


def test_subset_that_loses_estimability_names_the_coefficient():
    bcg = datasets.load_bcg()
    model = smf.mixmeta("logor ~ C(alloc)", data=bcg, S="logorvar")
    keep = bcg.index[bcg["alloc"] != "systematic"]
    with pytest.raises(ValueError, match=r"rank deficient.*systematic"):
        model.design.subset(keep)


# -------------------------------------------------------- with_endog
def test_with_endog_refit_equals_fresh_fit_univariate():
    bcg = datasets.load_bcg()
    model = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar")
    y = np.random.default_rng(0).normal(size=13)
    refit = smm.MixMeta.from_design(model.design.with_endog(y)).fit()
    fresh = smf.mixmeta("logor ~ ablat", data=bcg.assign(logor=y),
                        S="logorvar").fit()
    assert_same_fit(refit, fresh)
    # the parent design is untouched, and shares what does not change
    np.testing.assert_array_equal(model.design.endog[:, 0], bcg["logor"])
    assert model.design.with_endog(y).exog is model.design.exog


def test_with_endog_multivariate_with_missing_outcomes():
    data = berkey()
    data.loc[[1, 3], "AL"] = np.nan
    model = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S)
    rng = np.random.default_rng(1)
    y = model.design.endog + rng.normal(scale=0.1, size=(5, 2))
    refit = smm.MixMeta.from_design(model.design.with_endog(y)).fit()
    fresh = smf.mixmeta("PD + AL ~ year",
                        data=data.assign(PD=y[:, 0], AL=y[:, 1]),
                        S=BERKEY_S).fit()
    assert_same_fit(refit, fresh)
    assert refit.nobs == 8


def test_with_endog_multilevel_school():
    school = datasets.load_school()
    model = smf.mixmeta("effect ~ 1", data=school, S="var",
                        random=SCHOOL_RANDOM, method="ml")
    y = np.random.default_rng(2).normal(scale=0.3, size=56)
    refit = smm.MixMeta.from_design(model.design.with_endog(y),
                                    method="ml").fit()
    fresh = smf.mixmeta("effect ~ 1", data=school.assign(effect=y),
                        S="var", random=SCHOOL_RANDOM, method="ml").fit()
    assert_same_fit(refit, fresh)


def test_with_endog_errors():
    data = berkey()
    data.loc[3, "AL"] = np.nan
    design = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S).design
    y = np.nan_to_num(design.endog, nan=0.0)
    with pytest.raises(ValueError, match=r"shape \(5, 2\).*got \(5,\)"):
        design.with_endog(y[:, 0])
    with pytest.raises(ValueError, match=r"shape \(5, 2\).*got \(4, 2\)"):
        design.with_endog(y[:4])
    with pytest.raises(ValueError, match="pattern differs at rows 3$"):
        design.with_endog(y)
    moved = design.endog.copy()
    moved[0, 1] = np.nan
    with pytest.raises(ValueError, match="pattern differs at rows 0$"):
        design.with_endog(moved)
    infinite = design.endog.copy()
    infinite[2, 0] = np.inf
    with pytest.raises(ValueError, match="infinite outcomes at rows 2$"):
        design.with_endog(infinite)
    shuffled = pd.DataFrame(design.endog, index=design.row_labels[::-1])
    with pytest.raises(ValueError, match="not the design's row labels"):
        design.with_endog(shuffled)


# --------------------------------------------------- the frozen design
def test_design_is_frozen_and_fit_does_not_change_the_model():
    model = smf.mixmeta("PD + AL ~ year", data=berkey(), S=BERKEY_S)
    design = model.design
    before = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    endog = design.endog.copy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.endog = endog
    model.fit()
    model.fit(method="bfgs")
    assert model.design is design
    np.testing.assert_array_equal(design.endog, endog)
    after = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)


def test_design_holds_levels_specs_and_long_format():
    school = datasets.load_school()
    model = smf.mixmeta("effect ~ 1", data=school, S="var",
                        random=SCHOOL_RANDOM)
    d = model.design
    assert d.levels.names == ("district", "study")
    assert [t.group for t in d.random_terms] == ["district", "study"]
    assert d.fixed_spec is not None and d.labelled
    assert d.n_groups == 11 and d.n_values == 56
    np.testing.assert_array_equal(d.long.y, school["effect"])
    np.testing.assert_allclose(d.xtx, [[56.0]])
    assert d.basis is None
    assert model.level_names == ["district", "study"]
    # pickles (patsy's spec is dropped, as statsmodels does)
    back = pickle.loads(pickle.dumps(d))
    np.testing.assert_array_equal(back.levels.codes[1], d.levels.codes[1])


def test_builder_returns_the_rows_used():
    y = pd.Series([0.1, np.nan, 0.3, 0.2], index=list("abcd"), name="y")
    design, endog, exog = design_from_arrays(y, None, S=np.ones(4))
    assert list(design.row_labels) == ["a", "c", "d"]
    assert list(endog.index) == ["a", "c", "d"]
    assert list(exog.columns) == ["Intercept"]


# ------------------------------------------------------------ cloning
def _clone(model):
    """statsmodels' way of rebuilding a model (e.g. in MLEInfluence)."""
    return type(model)(model.endog, model.exog, **model._get_init_kwds())


def _clone_cases():
    bcg, school = datasets.load_bcg(), datasets.load_school()
    data = berkey()
    X = np.c_[np.ones(5), data["year"]]
    S = data[BERKEY_S].to_numpy()
    return {
        "univariate formula": lambda: smf.mixmeta(
            "logor ~ ablat", data=bcg, S="logorvar"),
        "univariate arrays": lambda: smm.MixMeta(
            bcg["logor"].to_numpy(), np.c_[np.ones(13), bcg["ablat"]],
            S=bcg["logorvar"].to_numpy(), method="ml"),
        "multivariate formula": lambda: smf.mixmeta(
            "PD + AL ~ year", data=data, S=BERKEY_S, bscov="cs"),
        "multivariate arrays": lambda: smm.MixMeta(
            data[["PD", "AL"]].to_numpy(), X, S=S, init_psi=np.eye(2)),
        "multilevel formula": lambda: smf.mixmeta(
            "effect ~ 1", data=school, S="var", random=SCHOOL_RANDOM,
            method="ml", bscov={"district": "unstr", "study": "id"}),
        "multilevel arrays": lambda: smm.MixMeta(
            school["effect"].to_numpy(), np.ones((56, 1)),
            S=school["var"].to_numpy(),
            groups=school[["district", "study"]].to_numpy()),
        "addS formula": lambda: smf.mixmeta(
            "logOR ~ 0 + C(time)", data=_gliomas(), addS=_gliomas_addS(),
            random="~ 0 + C(time) | study", bscov="diag"),
    }


@pytest.mark.parametrize("case", list(_clone_cases()))
def test_model_rebuilds_from_its_init_keywords(case):
    model = _clone_cases()[case]()
    clone = _clone(model)
    res, again = model.fit(), clone.fit()
    np.testing.assert_array_equal(np.asarray(again.params),
                                  np.asarray(res.params))
    assert again.llf == res.llf
    for pa, pb in zip(psi_list(again), psi_list(res), strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert clone.design.param_names == model.design.param_names
    assert clone.level_names == model.level_names
    if model.formula_terms is not None:     # new data through the formula
        new = model.data.frame.iloc[:3]
        pd.testing.assert_frame_equal(
            again.get_prediction(new).summary_frame(),
            res.get_prediction(new).summary_frame())
    assert (clone.method, clone.bscov) == (model.method, model.bscov)


def test_init_keywords_name_the_data_and_options():
    model = smf.mixmeta("effect ~ 1", data=datasets.load_school(), S="var",
                        random=SCHOOL_RANDOM, method="ml")
    kwds = model._get_init_kwds()
    assert kwds["formula"] == "effect ~ 1"
    assert kwds["model_spec"] is model.design.fixed_spec.model_spec
    assert kwds["formula_terms"] is model.formula_terms is not None
    assert kwds["method"] == "ml" and kwds["bscov"] == "unstr"
    assert kwds["S"].shape == (56,) and kwds["addS"] is None
    assert list(kwds["groups"].columns) == ["district", "study"]
    assert [list(z.columns) for z in kwds["exog_re"]] == [["Intercept"]] * 2
    assert "hasconst" not in kwds
    assert model.endog.shape == (56,) and model.exog.shape == (56, 1)
