"""
Every statsmodels method a user reaches on MixMeta results works, or says why
not (issue 8, section 5): pickling, ``save``/``load`` and ``remove_data``;
``wald_test_terms`` over all outcomes; ``predict`` at new data; ``use_t``,
``cov_type``, ``df_resid``/``df_model``/``k_constant``; ``bscov`` in any case;
and the other inherited methods, each against a hand computation.

Fits cover one outcome, several outcomes and several grouping levels, from
formulas (both engines) and from arrays, with every estimator.
"""
import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.iolib.summary2 import summary_col

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from conftest import formula_engine
from reference_models import _gliomas, _gliomas_addS

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]
NMMAPS_S = [f"vcov{i}" for i in range(1, 11)]
NMMAPS_Y = "coef1 + coef2 + coef3 + coef4"
SAME = dict(rtol=1e-12, atol=1e-14)


def berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    data["g"] = ["a", "b", "c", "a", "b"]
    return data


def shift(x):
    """A user function a formula calls (pickled by reference)."""
    return x - 30.0


# ------------------------------------------------------------- the fits
def _formula_fits():
    bcg, school = datasets.load_bcg(), datasets.load_school()
    nmmaps = datasets.load_nmmaps_tmeanagepar()
    return {
        "uni-reml": (lambda: smf.mixmeta(
            "logor ~ shift(ablat)", data=bcg, S="logorvar").fit(),
            pd.DataFrame({"ablat": [10.0, 30.0, 55.0]}, index=list("abc"))),
        "uni-vc": (lambda: smf.mixmeta(
            "logor ~ np.log(ablat)", data=bcg, S="logorvar",
            method="vc").fit(), {"ablat": [15.0, 40.0]}),
        "multi-ml": (lambda: smf.mixmeta(
            "PD + AL ~ year", data=berkey(), S=BERKEY_S,
            method="ml").fit(), pd.DataFrame({"year": [-3.0, 0.0, 6.0]})),
        "multi-mm": (lambda: smf.mixmeta(
            "PD + AL ~ year", data=berkey(), S=BERKEY_S,
            method="mm").fit(), {"year": 2.0}),
        "multi-fixed": (lambda: smf.mixmeta(
            "PD + AL ~ C(g)", data=berkey(), S=BERKEY_S,
            method="fixed").fit(), pd.DataFrame({"g": ["c", "a"]})),
        "multilevel-reml": (lambda: smf.mixmeta(
            "effect ~ year", data=school, S="var",
            random="~ 1 | district/study").fit(),
            pd.DataFrame({"year": [1975.0, 1990.0]})),
        "multilevel-multi-ml": (lambda: smf.mixmeta(
            f"{NMMAPS_Y} ~ agecat", data=nmmaps, S=NMMAPS_S,
            random="~ 1 | city", method="ml").fit(),
            pd.DataFrame({"agecat": ["75p", "under65", "65to74"]})),
        "addS-ml": (lambda: smf.mixmeta(
            "logOR ~ time", data=_gliomas(), random="~ I(time - 15) | study",
            bscov="diag", addS=_gliomas_addS(), method="ml").fit(),
            pd.DataFrame({"time": [6.0, 20.0]})),
    }


def _array_fits():
    bcg, school, data = datasets.load_bcg(), datasets.load_school(), berkey()
    x_bcg = np.c_[np.ones(len(bcg)), bcg["ablat"]]
    x_berkey = np.c_[np.ones(len(data)), data["year"]]
    return {
        "array-uni-reml": (lambda: smm.MixMeta(
            bcg["logor"].to_numpy(), x_bcg, S=bcg["logorvar"].to_numpy()
        ).fit(), np.array([[1.0, 10.0], [1.0, 50.0]])),
        "array-multi-reml": (lambda: smm.MixMeta(
            data[["PD", "AL"]].to_numpy(), x_berkey,
            S=data[BERKEY_S].to_numpy()).fit(),
            np.array([[1.0, -2.0], [1.0, 4.0]])),
        "array-multi-fixed": (lambda: smm.MixMeta(
            data[["PD", "AL"]].to_numpy(), x_berkey,
            S=data[BERKEY_S].to_numpy(), method="fixed").fit(),
            np.array([[1.0, 1.0]])),
        "array-multilevel-ml": (lambda: smm.MixMeta(
            school["effect"].to_numpy(), None, S=school["var"].to_numpy(),
            groups=school[["district", "study"]], method="ml").fit(),
            np.ones((2, 1))),
    }


FORMULA_FITS = _formula_fits()
ARRAY_FITS = _array_fits()
ALL_FITS = [(name, engine) for name in FORMULA_FITS
            for engine in ("patsy", "formulaic")] + \
           [(name, None) for name in ARRAY_FITS]


def make_fit(name, engine):
    """The fit called ``name`` (under formula ``engine``) and its new data."""
    if engine is None:
        build, new = ARRAY_FITS[name]
        return build(), new
    build, new = FORMULA_FITS[name]
    with formula_engine(engine):
        return build(), new


def snapshot(res, new):
    """The numbers a stored fit must reproduce."""
    psi = res.psi
    psi = ({key: frame.to_numpy() for key, frame in psi.items()}
           if isinstance(psi, dict) else psi.to_numpy())
    pred = res.get_prediction(new)
    return dict(params=np.asarray(res.params), bse=np.asarray(res.bse),
                cov=np.asarray(res.cov_params()), llf=res.llf, psi=psi,
                q=np.asarray(res.q_test().statistic), i2=np.asarray(res.i2),
                summary=res.summary().as_text(),
                predict=np.asarray(res.predict(new)),
                predicted=pred.predicted.to_numpy(), se=pred.se.to_numpy(),
                wald=res.wald_test_terms().table.to_numpy())


def assert_same_snapshot(a, b):
    assert a["summary"] == b["summary"]
    for key in a:
        if key == "summary":
            continue
        if key == "psi" and isinstance(a[key], dict):
            assert a[key].keys() == b[key].keys()
            for level in a[key]:
                np.testing.assert_array_equal(a[key][level], b[key][level])
        else:
            np.testing.assert_array_equal(a[key], b[key])


# ------------------------------------------- pickle, save/load, remove_data
@pytest.mark.parametrize("name,engine", ALL_FITS)
def test_pickle_round_trip_gives_identical_numbers(name, engine):
    res, new = make_fit(name, engine)
    before = snapshot(res, new)
    loaded = pickle.loads(pickle.dumps(res))
    assert_same_snapshot(before, snapshot(loaded, new))
    assert type(loaded) is type(res)


@pytest.mark.parametrize("name,engine", ALL_FITS)
def test_remove_data_keeps_summary_inference_and_new_predictions(name,
                                                                 engine):
    res, new = make_fit(name, engine)
    before = snapshot(res, new)
    size = len(pickle.dumps(res))
    res.remove_data()
    assert_same_snapshot(before, snapshot(res, new))
    # and it pickles, smaller, to the same numbers
    stored = pickle.dumps(res)
    assert len(stored) < size
    assert_same_snapshot(before, snapshot(pickle.loads(stored), new))
    # the data are gone, and what needs them says so
    model = res.model
    assert model.endog is None and model.exog is None
    assert getattr(model.data, "frame", None) is None
    for needs_data in (lambda: res.fittedvalues, lambda: res.resid,
                       lambda: res.blup(), lambda: res.predict(),
                       lambda: model.design.endog, lambda: model.fit()):
        with pytest.raises(AttributeError, match="remove_data"):
            needs_data()


@pytest.mark.parametrize("name,engine", [("multi-ml", "patsy"),
                                         ("multilevel-reml", "formulaic"),
                                         ("array-multi-reml", None)])
def test_save_and_load(name, engine, tmp_path):
    res, new = make_fit(name, engine)
    before = snapshot(res, new)
    res.save(tmp_path / "fit.pickle")
    assert_same_snapshot(before, snapshot(
        smm.MixMetaResults.load(tmp_path / "fit.pickle"), new))
    res.save(tmp_path / "small.pickle", remove_data=True)
    small = smm.MixMetaResults.load(tmp_path / "small.pickle")
    assert small.model.endog is None
    assert_same_snapshot(before, snapshot(small, new))


def test_formula_namespace_keeps_only_the_names_the_formulas_use(engine):
    bcg = datasets.load_bcg()
    centre = 33.0
    unused = np.arange(10)    # noqa: F841 - must not be kept
    res = smf.mixmeta("logor ~ np.log(ablat) + I(ablat - centre)",
                      data=bcg, S="logorvar").fit()
    namespace = res.model.formula_terms.namespace
    assert set(namespace) == {"np", "centre"}
    assert namespace["np"] is np and namespace["centre"] == 33.0
    # names that are columns of the data are not looked up outside it
    res = smf.mixmeta("logor ~ ablat", data=bcg.assign(np=1.0),
                      S="logorvar").fit()
    assert set(res.model.formula_terms.namespace) == set()
    # random= formulas' names are kept too
    school = datasets.load_school()
    res = smf.mixmeta("effect ~ 1", data=school, S="var",
                      random="~ shift(year) | district").fit()
    assert set(res.model.formula_terms.namespace) == {"shift"}


def test_unpickled_formula_uses_the_kept_names_for_new_data(engine):
    bcg = datasets.load_bcg()
    centre = 33.0
    res = smf.mixmeta("logor ~ I(ablat - centre) + I(shift(ablat) ** 2)",
                      data=bcg, S="logorvar", method="fixed").fit()
    loaded = pickle.loads(pickle.dumps(res))
    centre = 0.0    # noqa: F841 - the fit's value is kept, not this one
    new = pd.DataFrame({"ablat": [20.0, 44.0]})
    b = loaded.params.to_numpy()
    hand = (b[0] + b[1] * (new["ablat"] - 33.0)
            + b[2] * (new["ablat"] - 30) ** 2)
    np.testing.assert_allclose(loaded.predict(new), hand, **SAME)


def test_patsy_stateful_transform_survives_pickle():
    bcg = datasets.load_bcg()
    with formula_engine("patsy"):
        res = smf.mixmeta("logor ~ center(ablat)", data=bcg, S="logorvar",
                          method="fixed").fit()
        loaded = pickle.loads(pickle.dumps(res))
    new = pd.DataFrame({"ablat": [20.0, 44.0]})
    b = res.params.to_numpy()
    hand = b[0] + b[1] * (new["ablat"] - bcg["ablat"].mean())
    np.testing.assert_allclose(loaded.predict(new), hand, rtol=1e-12)
    assert type(loaded.model.data.model_spec).__name__ == "DesignInfo"


# ------------------------------------------------------- wald_test_terms
def rows_of(res, names):
    """Rows of the identity at the named params."""
    index = list(res.params.index)
    return np.eye(len(index))[[index.index(n) for n in names]]


def test_wald_test_terms_tests_a_term_over_all_outcomes(engine):
    res = smf.mixmeta("PD + AL ~ year", data=berkey(), S=BERKEY_S).fit()
    table = res.wald_test_terms().table
    joint = res.wald_test(rows_of(res, ["PD:year", "AL:year"]),
                          scalar=True)
    assert table.loc["year", "df_constraint"] == 2
    np.testing.assert_allclose(table.loc["year", "statistic"],
                               joint.statistic, **SAME)
    np.testing.assert_allclose(table.loc["year", "pvalue"],
                               stats.chi2.sf(joint.statistic, 2), rtol=1e-12)
    # the numbers: 0.398 on 2 df, not PD:year's 0.0495 on 1 df
    assert round(table.loc["year", "statistic"], 3) == 0.398
    single = res.wald_test("PD:year = 0", scalar=True).statistic
    assert round(single, 4) == 0.0495
    intercepts = res.wald_test(rows_of(res, ["PD:Intercept",
                                             "AL:Intercept"]), scalar=True)
    np.testing.assert_allclose(table.loc["Intercept", "statistic"],
                               intercepts.statistic, **SAME)
    assert list(table.index) == ["Intercept", "year"]


def test_wald_test_terms_with_use_t_is_f_on_df_resid():
    res = smf.mixmeta("PD + AL ~ year", data=berkey(), S=BERKEY_S).fit(
        use_t=True)
    table = res.wald_test_terms().table
    R = rows_of(res, ["PD:year", "AL:year"])
    beta, V = res.params.to_numpy(), np.asarray(res.cov_params())
    chi2 = (R @ beta) @ np.linalg.solve(R @ V @ R.T, R @ beta)
    assert table.loc["year", "df_constraint"] == 2
    assert table.loc["year", "df_denom"] == 6 == res.df_resid
    np.testing.assert_allclose(table.loc["year", "statistic"], chi2 / 2,
                               rtol=1e-10)
    np.testing.assert_allclose(table.loc["year", "pvalue"],
                               stats.f.sf(chi2 / 2, 2, 6), rtol=1e-10)
    assert res.wald_test_terms().distribution == "F"


def test_wald_test_terms_of_a_factor_in_a_multilevel_multivariate_fit(
        engine):
    res = FORMULA_FITS["multilevel-multi-ml"][0]()
    table = res.wald_test_terms().table
    names = [n for n in res.params.index if "agecat" in n]
    assert len(names) == 8      # 2 columns x 4 outcomes
    joint = res.wald_test(rows_of(res, names), scalar=True)
    assert table.loc["agecat", "df_constraint"] == 8
    np.testing.assert_allclose(table.loc["agecat", "statistic"],
                               joint.statistic, **SAME)


def test_wald_test_terms_multilevel_and_arrays():
    res = FORMULA_FITS["multilevel-reml"][0]()
    z = res.params["year"] / res.bse["year"]
    np.testing.assert_allclose(res.wald_test_terms().table.loc[
        "year", "statistic"], z ** 2, rtol=1e-10)
    res, _ = make_fit("array-multi-reml", None)
    table = res.wald_test_terms().table
    # a model from arrays: one term per column of exog, over all outcomes
    assert list(table.index) == ["const", "x1"]
    assert list(table["df_constraint"]) == [2, 2]
    joint = res.wald_test(np.eye(4)[[1, 3]], scalar=True)
    np.testing.assert_allclose(table.loc["x1", "statistic"],
                               joint.statistic, **SAME)


def test_wald_test_terms_options():
    res = FORMULA_FITS["multi-fixed"][0]()
    out = res.wald_test_terms(combine_terms=["g"], skip_single=False,
                              extra_constraints=[("PD:g=b", rows_of(
                                  res, ["PD:C(g)[T.b]"]))])
    table = out.table
    assert list(table.index) == ["Intercept", "C(g)", "g", "PD:g=b"]
    assert table.loc["C(g)", "df_constraint"] == 4
    np.testing.assert_allclose(table.loc["g", "statistic"],
                               table.loc["C(g)", "statistic"], **SAME)
    single = res.wald_test("PD:C(g)[T.b] = 0", scalar=True).statistic
    np.testing.assert_allclose(table.loc["PD:g=b", "statistic"], single,
                               **SAME)
    with pytest.raises(ValueError, match="no term name contains 'zz'"):
        res.wald_test_terms(combine_terms=["zz"])
    uni = FORMULA_FITS["uni-reml"][0]()
    with pytest.raises(ValueError, match="skip_single"):
        uni.wald_test_terms(skip_single=True)


# --------------------------------------------------------------- predict
def test_predict_new_data_one_outcome_is_a_series(engine):
    res, new = make_fit("uni-reml", engine)
    out = res.predict(new)
    b = res.params.to_numpy()
    assert isinstance(out, pd.Series) and list(out.index) == list("abc")
    np.testing.assert_allclose(out, b[0] + b[1] * (new["ablat"] - 30),
                               **SAME)
    pd.testing.assert_series_equal(
        out, res.get_prediction(new).predicted.iloc[:, 0])
    # a dict of scalars is one row, a dict of lists several
    np.testing.assert_allclose(res.predict({"ablat": 10.0}), out.iloc[:1],
                               **SAME)
    np.testing.assert_allclose(res.predict({"ablat": [10.0, 30.0]}),
                               out.iloc[:2], **SAME)


def test_predict_new_data_several_outcomes_is_a_frame(engine):
    res, _ = make_fit("multi-fixed", engine)
    new = pd.DataFrame({"g": ["c", "a", "b"]}, index=["x", "y", "z"])
    out = res.predict(new)
    b = res.params
    assert list(out.columns) == ["PD", "AL"] and list(out.index) == list(
        "xyz")
    for outcome in ("PD", "AL"):
        hand = [b[f"{outcome}:Intercept"] + b[f"{outcome}:C(g)[T.c]"],
                b[f"{outcome}:Intercept"],
                b[f"{outcome}:Intercept"] + b[f"{outcome}:C(g)[T.b]"]]
        np.testing.assert_allclose(out[outcome], hand, **SAME)
    pd.testing.assert_frame_equal(out, res.get_prediction(new).predicted)
    # the rows of the fit by default, as the model's linear predictor
    np.testing.assert_allclose(res.predict(),
                               res.model.predict(res.params), **SAME)


def test_predict_arrays_and_untransformed_rows():
    res, new = make_fit("array-multi-reml", None)
    b = np.asarray(res.params).reshape(2, 2)
    out = res.predict(new)
    np.testing.assert_allclose(out, new @ b.T, **SAME)
    assert list(out.columns) == ["y1", "y2"]
    with pytest.raises(ValueError, match="exog needs 2 columns"):
        res.predict(np.ones((2, 3)))
    formula, _ = make_fit("multi-ml", "patsy")
    rows = pd.DataFrame({"Intercept": [1.0, 1.0], "year": [0.0, 2.0]})
    np.testing.assert_allclose(
        formula.predict(rows, transform=False),
        formula.predict(pd.DataFrame({"year": [0.0, 2.0]})), **SAME)


# ---------------------------------------------------- use_t and cov_type
def test_use_t_gives_t_and_f_everywhere():
    res = smf.mixmeta("PD + AL ~ year", data=berkey(), S=BERKEY_S,
                      method="ml").fit(use_t=True)
    normal = res.model.fit()
    df = res.df_resid
    assert res.use_t and not normal.use_t and df == 6
    np.testing.assert_allclose(res.tvalues, normal.tvalues, **SAME)
    t = res.tvalues.to_numpy()
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(abs(t), df),
                               rtol=1e-12)
    np.testing.assert_allclose(normal.pvalues, 2 * stats.norm.sf(abs(t)),
                               rtol=1e-12)
    q = stats.t.isf(0.025, df)
    lower = res.params - q * res.bse
    np.testing.assert_allclose(res.conf_int()[0], lower, rtol=1e-12)
    test = res.t_test("AL:year = 0")
    assert test.distribution == "t" and test.df_denom == df
    assert normal.t_test("AL:year = 0").distribution == "norm"
    new = pd.DataFrame({"year": [0.0, 5.0]})
    pred = res.get_prediction(new)
    low, _ = pred.conf_int()
    np.testing.assert_allclose(low, pred.predicted - q * pred.se,
                               rtol=1e-12)
    text = res.summary().as_text()
    assert "P>|t|" in text and "P>|z|" not in text
    assert "6 degrees of freedom" in text
    text = normal.summary().as_text()
    assert "P>|z|" in text and "P>|t|" not in text


def test_cov_type_nonrobust_only_for_now():
    model = smm.MixMeta.from_formula("PD + AL ~ year", data=berkey(),
                                     S=BERKEY_S)
    res = model.fit(cov_type="nonrobust")
    assert res.cov_type == "nonrobust"
    assert "description" in res.cov_kwds
    with pytest.raises(ValueError,
                       match="unknown cov_type='HC0'.*'nonrobust'"):
        model.fit(cov_type="HC0")
    with pytest.raises(ValueError, match="takes no cov_kwds"):
        model.fit(cov_kwds={"groups": [1, 2]})
    state = model.gls_state(res.theta)
    with pytest.raises(ValueError, match="valid types are 'nonrobust'"):
        smm.MixMetaResults(model, state, res.theta, True, {},
                           cov_type="cluster")


@pytest.mark.parametrize("formula,k_constant,df_model", [
    ("PD + AL ~ year", 1, 2),
    ("PD + AL ~ 0 + year", 0, 2),
    ("PD + AL ~ 0 + C(g)", 1, 4),         # the dummies span the constant
    ("PD ~ year + C(g)", 1, 3),
])
def test_k_constant_df_model_df_resid(formula, k_constant, df_model):
    res = smf.mixmeta(formula, data=berkey(),
                      S=BERKEY_S if "AL" in formula else "var_PD",
                      method="fixed").fit()
    k = res.model.n_outcomes
    assert res.k_constant == res.model.k_constant == k_constant
    assert res.df_model == df_model
    assert res.df_resid == res.nobs - res.k_fe
    assert res.nobs == res.df_model + res.df_resid + k * res.k_constant


def test_k_constant_of_arrays_and_multilevel():
    res, _ = make_fit("array-multilevel-ml", None)
    assert res.k_constant == 1 and res.df_model == 0
    assert res.df_resid == 56 - 1
    res = FORMULA_FITS["multilevel-multi-ml"][0]()
    assert res.k_constant == 1 and res.df_model == 8
    assert res.df_resid == res.nobs - 12
    assert res.model.data.const_idx == 0


# ----------------------------------------------------------------- bscov
def test_bscov_is_case_insensitive():
    data = berkey()
    lower = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S,
                        bscov="cs").fit()
    upper = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S,
                        bscov="Cs").fit()
    np.testing.assert_allclose(upper.llf, lower.llf, **SAME)
    np.testing.assert_allclose(upper.params, lower.params, **SAME)
    assert upper.bscov == "cs"
    mm = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S, method="mm",
                     bscov="UNSTR").fit()
    assert mm.bscov == "unstr"
    school = datasets.load_school()
    by_list = smf.mixmeta("effect ~ 1", data=school, S="var",
                          random="~ 1 | district/study",
                          bscov=["ID", "Unstr"]).fit()
    by_dict = smf.mixmeta("effect ~ 1", data=school, S="var",
                          random="~ 1 | district/study",
                          bscov={"district": "ID", "study": "UNSTR"}).fit()
    plain = smf.mixmeta("effect ~ 1", data=school, S="var",
                        random="~ 1 | district/study",
                        bscov=["id", "unstr"]).fit()
    for res in (by_list, by_dict):
        assert [s.name for s in res.model.random.structures] == ["id",
                                                                 "unstr"]
        np.testing.assert_allclose(res.llf, plain.llf, **SAME)
    with pytest.raises(ValueError, match="unknown bscov='Nope'"):
        smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S, bscov="Nope")


# ------------------------------------------- the other inherited methods
@pytest.fixture(scope="module", params=["multi-ml", "multilevel-multi-ml"])
def fitted(request):
    with formula_engine("patsy"):
        return FORMULA_FITS[request.param][0]()


def test_f_test_t_test_and_cov_params_by_hand(fitted):
    res = fitted
    beta, V = res.params.to_numpy(), np.asarray(res.cov_params())
    R = np.eye(len(beta))[[1, len(beta) - 1]]
    chi2 = (R @ beta) @ np.linalg.solve(R @ V @ R.T, R @ beta)
    f = res.f_test(R)
    np.testing.assert_allclose(f.fvalue, chi2 / 2, rtol=1e-10)
    assert f.df_num == 2 and f.df_denom == res.df_resid
    np.testing.assert_allclose(f.pvalue, stats.f.sf(chi2 / 2, 2,
                                                    res.df_resid),
                               rtol=1e-10)
    t = res.t_test(R)
    np.testing.assert_allclose(t.effect, R @ beta, **SAME)
    np.testing.assert_allclose(t.sd, np.sqrt(np.diag(R @ V @ R.T)),
                               rtol=1e-12)
    np.testing.assert_allclose(res.cov_params(r_matrix=R), R @ V @ R.T,
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.normalized_cov_params), V,
                               **SAME)
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(V)), **SAME)
    ci = np.asarray(res.conf_int(alpha=0.1))
    np.testing.assert_allclose(
        ci, beta[:, None] + np.array([-1, 1]) * stats.norm.isf(0.05)
        * np.sqrt(np.diag(V))[:, None], rtol=1e-12)
    # string constraints on the coefficient names, any formula engine
    names = list(res.params.index)
    text = f"{names[1]} = {names[-1]}"
    by_name = res.wald_test(text, scalar=True).statistic
    R = np.zeros((1, len(beta)))
    R[0, 1], R[0, -1] = 1.0, -1.0
    diff = R @ beta
    np.testing.assert_allclose(
        by_name, diff @ np.linalg.solve(R @ V @ R.T, diff), rtol=1e-10)
    with formula_engine("formulaic"):
        np.testing.assert_allclose(
            res.wald_test(f"`{names[1]}` - {names[-1]} = 0",
                          scalar=True).statistic, by_name, rtol=1e-12)


def test_fittedvalues_and_resid_by_hand_with_a_missing_outcome():
    data = berkey()
    data.loc[2, "AL"] = np.nan
    res = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S,
                      method="ml").fit()
    b = res.params
    for outcome in ("PD", "AL"):
        hand = b[f"{outcome}:Intercept"] + b[f"{outcome}:year"] * data["year"]
        if outcome == "AL":
            hand[2] = np.nan
        np.testing.assert_allclose(res.fittedvalues[outcome], hand,
                                   rtol=1e-12)
        np.testing.assert_allclose(res.resid[outcome],
                                   data[outcome] - hand, rtol=1e-12)


def test_t_test_pairwise_within_an_outcome(engine):
    res = FORMULA_FITS["multi-fixed"][0]()
    out = res.t_test_pairwise("C(g)", outcome="AL").result_frame
    b = res.params
    np.testing.assert_allclose(out.loc["b-a", "coef"], b["AL:C(g)[T.b]"],
                               **SAME)
    np.testing.assert_allclose(out.loc["c-b", "coef"],
                               b["AL:C(g)[T.c]"] - b["AL:C(g)[T.b]"],
                               rtol=1e-12)
    direct = res.t_test("AL:C(g)[T.c] - AL:C(g)[T.b] = 0")
    np.testing.assert_allclose(out.loc["c-b", "std err"],
                               direct.sd.ravel()[0], rtol=1e-12)
    with pytest.raises(ValueError, match="outcome= one of"):
        res.t_test_pairwise("C(g)")
    uni = smf.mixmeta("PD ~ C(g)", data=berkey(), S="var_PD",
                      method="fixed").fit()
    frame = uni.t_test_pairwise("C(g)").result_frame
    np.testing.assert_allclose(frame.loc["c-a", "coef"],
                               uni.params["C(g)[T.c]"], **SAME)
    arrays, _ = make_fit("array-multi-reml", None)
    with pytest.raises(ValueError, match="formula model"):
        arrays.t_test_pairwise("x1", outcome="y1")


def test_initialize_refuses_new_params(fitted):
    with pytest.raises(NotImplementedError, match="fit the model again"):
        fitted.initialize(fitted.model, fitted.params * 2)


def test_summary_col_shows_the_fit(fitted):
    text = summary_col([fitted]).as_text()
    first = fitted.params.index[0]
    assert first in text
    assert f"{fitted.params.iloc[0]:.4f}" in text
    assert f"({fitted.bse.iloc[0]:.4f})" in text


def test_predict_of_the_model_is_x_beta_by_outcome(fitted):
    model = fitted.model
    k, p = model.n_outcomes, model.design.n_terms
    beta = fitted.params.to_numpy().reshape(k, p)
    rows = model.design.exog[:3]
    np.testing.assert_allclose(model.predict(fitted.params, rows),
                               rows @ beta.T, **SAME)


@pytest.mark.parametrize("method", ["fixed", "mm", "vc", "ml"])
def test_use_t_reaches_every_estimator(method):
    res = smf.mixmeta("PD + AL ~ year", data=berkey(), S=BERKEY_S,
                      method=method).fit(use_t=True)
    assert res.use_t and res.df_resid == 6
    t = np.asarray(res.tvalues)
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(abs(t), 6),
                               rtol=1e-12)
    assert "P>|t|" in res.summary().as_text()


def test_models_and_results_copy_and_pickle_alone(engine):
    import copy
    res, new = make_fit("multilevel-multi-ml", engine)
    model = pickle.loads(pickle.dumps(res.model))
    refit = model.fit()
    np.testing.assert_allclose(refit.params, res.params, rtol=1e-10)
    np.testing.assert_allclose(refit.llf, res.llf, rtol=1e-12)
    np.testing.assert_allclose(copy.deepcopy(res).predict(new),
                               res.predict(new), **SAME)
