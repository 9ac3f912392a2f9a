"""
Hostile inputs, class by class (issue 8, section 6): each is refused with a
``ValueError`` naming the rows, columns or argument at fault, or is handled
the way the docs say (pandas types converted, pandas rows aligned by label,
unused factor levels dropped), through the public API: ``MixMeta(...)`` and
``smf.mixmeta(...)``, then ``.fit()``.

Where a ``pytest.raises`` wraps only the construction of a model, nothing
was fitted on the bad input.
"""
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from conftest import formula_engine

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]


@pytest.fixture
def bcg():
    """BCG trials, rows labelled by a unique text label per trial."""
    data = datasets.load_bcg()
    data.index = [f"trial{t:02d}" for t in data["trial"]]
    return data


@pytest.fixture
def berkey():
    data = datasets.load_berkey98().set_index("trial")
    data["year"] = data["pubyear"] - 1983
    return data


@pytest.fixture
def school():
    data = datasets.load_school()
    data.index = [f"s{i}" for i in range(data.shape[0])]
    return data


def _fit_params(model):
    return np.asarray(model.fit().params, dtype=float)


# --------------------------------------------------------------------------
# infinite values: an error naming the rows and the column; NaN is missing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("column, role", [("logrr", "endog"),
                                          ("ablat", "exog"),
                                          ("logrrvar", "S")])
@pytest.mark.parametrize("method", ["reml", "fixed"])
def test_infinite_value_in_formula_names_row_and_column(bcg, value, column,
                                                        role, method):
    bcg[column] = bcg[column].astype(float)
    bcg.loc["trial04", column] = value
    with pytest.raises(ValueError, match="infinite") as err:
        smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar", method=method)
    message = str(err.value)
    assert f"'{column}'" in message and "trial04" in message
    assert role in message
    assert "trial03" not in message and "trial05" not in message


@pytest.mark.parametrize("column", ["AL", "cov_PD_AL", "var_PD"])
def test_infinite_value_multivariate_formula(berkey, column):
    berkey.loc["Lindhe", column] = np.inf
    with pytest.raises(ValueError, match="infinite") as err:
        smf.mixmeta("PD + AL ~ year", berkey, S=BERKEY_S)
    assert f"'{column}'" in str(err.value) and "Lindhe" in str(err.value)


def test_infinite_from_a_transformation_names_the_term(bcg):
    bcg.loc["trial07", "ablat"] = 0
    with pytest.raises(ValueError, match=r"infinite in column "
                                         r"'np.log\(ablat\)' at row trial07"):
        smf.mixmeta("logrr ~ np.log(ablat)", bcg, S="logrrvar")


def test_infinite_values_in_arrays_name_rows_by_label(bcg):
    y, v = bcg["logrr"].copy(), bcg["logrrvar"].copy()
    X = np.column_stack([np.ones(13), bcg["ablat"]])
    y_bad = y.copy()
    y_bad.iloc[[2, 9]] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"endog is infinite in column "
                                         r"'logrr' at rows trial03, trial10"):
        smm.MixMeta(y_bad, X, S=v)
    X_bad = X.copy()
    X_bad[5, 1] = np.inf
    with pytest.raises(ValueError, match=r"exog is infinite in column '1' "
                                         r"at row trial06"):
        smm.MixMeta(y, X_bad, S=v)
    v_bad = v.copy()
    v_bad.iloc[0] = np.inf
    with pytest.raises(ValueError, match=r"S is infinite .*at row trial01"):
        smm.MixMeta(y, X, S=v_bad)
    full = v.to_numpy()[:, None, None].copy()
    full[12] = -np.inf
    with pytest.raises(ValueError, match=r"S is infinite at row trial13"):
        smm.MixMeta(y, X, S=full)


def test_infinite_value_in_unobserved_outcome_slot_is_still_refused(berkey):
    """NaN is the missing marker; inf never is, even where y is missing."""
    berkey.loc["Lindhe", ["AL", "var_AL"]] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"S is infinite in column 'var_AL' "
                                         r"at row Lindhe"):
        smf.mixmeta("PD + AL ~ year", berkey, S=BERKEY_S)
    berkey.loc["Lindhe", "var_AL"] = np.nan          # missing: accepted
    res = smf.mixmeta("PD + AL ~ year", berkey, S=BERKEY_S).fit()
    assert res.model.nobs == 9


def test_nan_is_missing_and_drops_the_row(bcg):
    bcg.loc["trial04", "logrr"] = np.nan
    res = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar").fit()
    ref = smf.mixmeta("logrr ~ ablat", bcg.drop(index="trial04"),
                      S="logrrvar").fit()
    assert res.model.nobs == 12
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-10)


@pytest.mark.parametrize("column, role", [("year", "exog_re"),
                                          ("district", "groups")])
def test_infinite_value_in_random_part_names_row_and_column(school, column,
                                                            role):
    school[column] = school[column].astype(float)
    school.loc["s5", column] = np.inf
    with pytest.raises(ValueError, match="infinite") as err:
        smf.mixmeta("effect ~ 1", school, S="var",
                    random="~ year | district")
    message = str(err.value)
    assert role in message and f"'{column}'" in message and "s5" in message


def test_infinite_grouping_label_arrays(school):
    groups = school["district"].astype(float)
    groups.iloc[3] = -np.inf
    with pytest.raises(ValueError, match=r"groups is infinite in column "
                                         r"'district' at row s3"):
        smm.MixMeta(school["effect"], None, S=school["var"], groups=groups)
    z = school[["year"]].astype(float)
    z.iloc[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"exog_re is infinite in column "
                                         r"'year' at row s7"):
        smm.MixMeta(school["effect"], None, S=school["var"],
                    groups=school["district"], exog_re=[z])


def test_infinite_per_study_correlation_names_the_row(berkey):
    Scor = pd.Series(0.3, index=berkey.index)
    Scor["Knowles"] = np.inf
    with pytest.raises(ValueError, match=r"Scor is infinite at row Knowles"):
        smm.MixMeta(berkey[["PD", "AL"]], None,
                    S=berkey[["var_PD", "var_AL"]], Scor=Scor)
    Scor["Knowles"] = 1.5
    with pytest.raises(ValueError, match=r"Scor must lie between -1 and 1; "
                                         r"got 1.5 at row Knowles"):
        smm.MixMeta(berkey[["PD", "AL"]], None,
                    S=berkey[["var_PD", "var_AL"]], Scor=Scor)


def test_infinite_addS_names_the_group(school):
    groups = school["district"]
    addS = {g: np.diag(school.loc[groups == g, "var"].to_numpy())
            for g in groups.unique()}
    addS[18] = addS[18].copy()
    addS[18][0, 0] = np.inf
    with pytest.raises(ValueError, match="addS for group 18 has infinite"):
        smm.MixMeta(school["effect"], None, groups=groups, addS=addS)


# --------------------------------------------------------------------------
# zero or tiny within-study variances
# --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["fixed", "mm", "vc"])
@pytest.mark.parametrize("variance", [0.0, 1e-300, 1e-14])
def test_zero_or_tiny_variance_refused_by_fixed_weights(bcg, method,
                                                       variance):
    bcg.loc["trial06", "logrrvar"] = variance
    with pytest.raises(ValueError, match="singular") as err:
        smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar", method=method)
    message = str(err.value)
    assert "trial06" in message and method in message
    assert "trial05" not in message and "trial07" not in message


def test_tiny_is_relative_to_the_scale_of_the_data(bcg):
    """Scaling every variance by 1e-20 changes nothing: no row is tiny."""
    ref = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar",
                      method="fixed").fit()
    bcg["logrrvar"] *= 1e-20
    res = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar",
                      method="fixed").fit()
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-10)
    # a variance 1e-9 times the largest is small but not singular
    bcg.loc["trial02", "logrrvar"] = 1e-9 * bcg["logrrvar"].max()
    res = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar",
                      method="fixed").fit()
    # the nearly exact study pins the line: its residual is ~0
    fitted = res.params.iloc[0] + res.params.iloc[1] * bcg.loc["trial02",
                                                               "ablat"]
    assert abs(fitted - bcg.loc["trial02", "logrr"]) < 1e-6


def test_zero_variance_multivariate_all_forms(berkey):
    berkey.loc["Becker", ["var_AL", "cov_PD_AL"]] = 0.0
    with pytest.raises(ValueError, match=r"singular .* at row Becker"):
        smf.mixmeta("PD + AL ~ year", berkey, S=BERKEY_S, method="fixed")
    full = np.stack([[[a, b], [b, c]] for a, b, c in
                     berkey[BERKEY_S].to_numpy()])
    with pytest.raises(ValueError, match=r"singular .* at row Becker"):
        smm.MixMeta(berkey[["PD", "AL"]], None, S=full, method="fixed")
    with pytest.raises(ValueError, match=r"singular .* at row Becker"):
        smm.MixMeta(berkey[["PD", "AL"]], None,
                    S=berkey[["var_PD", "var_AL"]], Scor=0.0,
                    method="fixed")


def test_zero_variance_of_a_missing_outcome_is_fine(berkey):
    berkey.loc["Becker", ["AL", "var_AL", "cov_PD_AL"]] = [np.nan, 0.0, 0.0]
    res = smf.mixmeta("PD + AL ~ year", berkey, S=BERKEY_S,
                      method="fixed").fit()
    assert res.model.nobs == 9 and np.all(np.isfinite(res.params))


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("variance", [0.0, 1e-14])
def test_ml_reml_reaching_psi_zero_names_the_rows(method, variance):
    """Homogeneous studies: Psi goes to 0, where a zero-variance study's
    marginal variance vanishes; the error names it (through .fit())."""
    y = pd.Series([0.10, 0.12, 0.09, 0.11, 0.10], index=list("abcde"))
    v = pd.Series([0.01, variance, 0.01, 0.01, 0.02], index=y.index)
    model = smm.MixMeta(y, None, S=v, method=method)
    with pytest.raises(ValueError, match="singular") as err:
        model.fit()
    assert re.search(r"\brow b\b", str(err.value))
    assert not re.search(r"\brow [acde]\b", str(err.value))


def test_ml_reml_reaching_psi_zero_multivariate():
    Y = pd.DataFrame([[0.1, 0.2], [0.12, 0.22], [0.09, 0.19], [0.11, 0.2],
                      [0.1, 0.21]], columns=["y1", "y2"], index=list("abcde"))
    S = np.tile([0.01, 0.005, 0.01], (5, 1))
    S[3] = [0.0, 0.0, 0.01]
    with pytest.raises(ValueError, match=r"singular.*\brow d\b"):
        smm.MixMeta(Y, None, S=S).fit()


def test_ml_reml_reaching_psi_zero_multilevel(school):
    """A grouped model whose Psi reaches 0: the kernel's failure is traced
    back to the row with a zero variance."""
    y = pd.Series([0.1, 0.12, 0.09, 0.11, 0.1, 0.1], index=list("abcdef"))
    v = pd.Series([0.01, 0.0, 0.01, 0.01, 0.02, 0.01], index=y.index)
    groups = pd.Series([1, 1, 2, 2, 3, 3], index=y.index)
    with pytest.raises(ValueError, match=r"singular.*\brow b\b"):
        smm.MixMeta(y, None, S=v, groups=groups).fit()


def test_zero_variance_with_heterogeneity_fits_as_in_R(bcg):
    """R's mixmeta accepts a singular S for ML/REML: Psi > 0 keeps every
    marginal covariance positive definite."""
    bcg.loc["trial03", "logrrvar"] = 0.0
    res = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar").fit()
    assert res.converged and float(np.asarray(res.psi)[0, 0]) > 0.01
    fitted = res.params.iloc[0] + res.params.iloc[1] * bcg.loc["trial03",
                                                               "ablat"]
    assert np.isfinite(fitted)


def test_singular_addS_refused_for_fixed_names_the_group(school):
    groups = school["district"]
    addS = {g: np.diag(school.loc[groups == g, "var"].to_numpy())
            for g in groups.unique()}
    addS[56] = np.zeros_like(addS[56])
    with pytest.raises(ValueError, match=r"addS is singular .* group 56"):
        smm.MixMeta(school["effect"], None, groups=groups, addS=addS,
                    method="fixed")


# --------------------------------------------------------------------------
# pandas types
# --------------------------------------------------------------------------

def test_nullable_float_outcome_with_NA_is_missing(bcg):
    ref = bcg.copy()
    ref.loc["trial02", "logrr"] = np.nan
    bcg["logrr"] = bcg["logrr"].astype("Float64")
    bcg.loc["trial02", "logrr"] = pd.NA
    np.testing.assert_allclose(
        _fit_params(smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar")),
        _fit_params(smf.mixmeta("logrr ~ ablat", ref, S="logrrvar")),
        rtol=1e-10)


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
def test_nullable_int_predictor_with_NA_is_missing(bcg, engine):
    ref = bcg.copy()
    ref["ablat"] = ref["ablat"].astype(float)
    ref.loc["trial02", "ablat"] = np.nan
    bcg["ablat"] = bcg["ablat"].astype("Int64")
    bcg.loc["trial02", "ablat"] = pd.NA
    bcg["logrrvar"] = bcg["logrrvar"].astype("Float64")
    with formula_engine(engine):
        got = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar")
        want = smf.mixmeta("logrr ~ ablat", ref, S="logrrvar")
        assert got.nobs == 12
        np.testing.assert_allclose(_fit_params(got), _fit_params(want),
                                   rtol=1e-10)


@pytest.mark.parametrize("dtype", ["string", object])
def test_text_outcome_is_refused_naming_the_column(bcg, dtype):
    bcg["logrr"] = bcg["logrr"].astype(str).astype(dtype)
    with pytest.raises(ValueError, match="'logrr'") as err:
        smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar")
    assert "non-numeric" in str(err.value)
    assert "columns" not in str(err.value)    # not a story about S widths


def test_object_outcome_holding_numbers_is_numeric(bcg):
    ref = _fit_params(smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar"))
    bcg["logrr"] = bcg["logrr"].astype(object)
    bcg["ablat"] = bcg["ablat"].astype(object)     # a predictor too
    model = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar")
    assert model.exog_names == ["Intercept", "ablat"]
    assert model.endog_names == "logrr"
    np.testing.assert_allclose(_fit_params(model), ref, rtol=1e-10)


def test_boolean_outcome_is_zero_one(bcg):
    bcg["high"] = bcg["logrr"] > -0.5
    model = smf.mixmeta("high ~ ablat", bcg, S="logrrvar")
    bcg["high01"] = bcg["high"].astype(float)
    ref = smf.mixmeta("high01 ~ ablat", bcg, S="logrrvar")
    assert model.n_outcomes == 1
    np.testing.assert_allclose(_fit_params(model), _fit_params(ref),
                               rtol=1e-10)


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
def test_outcome_made_into_dummies_by_the_engine_is_refused(bcg, engine):
    with formula_engine(engine):
        with pytest.raises(ValueError, match="not numeric"):
            smf.mixmeta("C(alloc) ~ ablat", bcg, S="logrrvar")


def test_string_dtype_predictor_is_a_factor(bcg):
    ref = _fit_params(smf.mixmeta("logrr ~ alloc", bcg, S="logrrvar"))
    bcg["alloc"] = bcg["alloc"].astype(str).astype("string")
    bcg.loc["trial05", "alloc"] = pd.NA
    model = smf.mixmeta("logrr ~ alloc", bcg, S="logrrvar")
    assert model.nobs == 12
    assert len(_fit_params(model)) == len(ref)


def test_text_S_column_is_refused_naming_it(bcg):
    bcg["logrrvar"] = bcg["logrrvar"].astype(str)
    with pytest.raises(ValueError, match="S column 'logrrvar' holds "
                                         "non-numeric"):
        smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar")


def test_pandas_types_in_arrays(school):
    ref = smm.MixMeta(school["effect"], None, S=school["var"],
                      groups=school[["district", "study"]]).fit()
    effect = school["effect"].astype("Float64")
    var = school["var"].astype("Float64")
    groups = school[["district", "study"]].astype("Int64")
    got = smm.MixMeta(effect, None, S=var, groups=groups).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-10)
    z = school[["year"]].astype("Int64")
    with_z = smm.MixMeta(effect, None, S=var, groups=school["district"],
                         exog_re=z)
    assert with_z.design.long.Z[0].dtype == float
    with pytest.raises(ValueError, match="endog column 'effect' holds "
                                         "non-numeric"):
        smm.MixMeta(school["effect"].astype(str), None, S=school["var"])
    with pytest.raises(ValueError, match="exog_re column 'year' holds "
                                         "non-numeric"):
        smm.MixMeta(school["effect"], None, S=school["var"],
                    groups=school["district"],
                    exog_re=school[["year"]].astype(str))


# --------------------------------------------------------------------------
# pandas alignment: by index label, never by position when labels differ
# --------------------------------------------------------------------------

def test_arrays_align_pandas_inputs_by_label(bcg):
    y = bcg["logrr"]
    X = bcg[["ablat"]].assign(const=1.0)
    ref = smm.MixMeta(y, X, S=bcg["logrrvar"]).fit()
    order = np.random.default_rng(0).permutation(13)
    got = smm.MixMeta(y, X.iloc[order], S=bcg["logrrvar"].iloc[order]).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-12)
    np.testing.assert_allclose(got.bse, ref.bse, rtol=1e-12)


def test_arrays_align_groups_and_random_predictors(school):
    ref = smm.MixMeta(school["effect"], None, S=school["var"],
                      groups=school["district"],
                      exog_re=school[["year"]].assign(one=1.0) - [1980, 0])
    order = np.random.default_rng(1).permutation(school.shape[0])
    got = smm.MixMeta(school["effect"], None, S=school["var"].iloc[order],
                      groups=school["district"].iloc[order],
                      exog_re=(school[["year"]].assign(one=1.0)
                               - [1980, 0]).iloc[order])
    np.testing.assert_allclose(got.fit().params, ref.fit().params,
                               rtol=1e-8)


def test_per_study_Scor_aligned_by_label(berkey):
    Scor = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5], index=berkey.index)
    ref = smm.MixMeta(berkey[["PD", "AL"]], None,
                      S=berkey[["var_PD", "var_AL"]], Scor=Scor).fit()
    got = smm.MixMeta(berkey[["PD", "AL"]], None,
                      S=berkey[["var_PD", "var_AL"]],
                      Scor=Scor.iloc[::-1]).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-10)


def test_formula_aligns_S_and_Scor_given_as_series(berkey, bcg):
    ref = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar").fit()
    shuffled = bcg["logrrvar"].sample(frac=1, random_state=3)
    got = smf.mixmeta("logrr ~ ablat", bcg, S=shuffled).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-12)
    # a subset of the rows picks its S by label
    sub = smf.mixmeta("logrr ~ ablat", bcg, S=shuffled,
                      subset=bcg.index[:8]).fit()
    want = smf.mixmeta("logrr ~ ablat", bcg.iloc[:8], S="logrrvar").fit()
    np.testing.assert_allclose(sub.params, want.params, rtol=1e-12)
    Scor = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5], index=berkey.index)
    ref = smf.mixmeta("PD + AL ~ 1", berkey, S=["var_PD", "var_AL"],
                      Scor=Scor).fit()
    got = smf.mixmeta("PD + AL ~ 1", berkey, S=["var_PD", "var_AL"],
                      Scor=Scor.iloc[[3, 1, 4, 0, 2]]).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-12)


def test_misaligned_pandas_inputs_are_refused(bcg):
    y = bcg["logrr"]
    other = bcg["logrrvar"].copy()
    other.index = [f"x{i}" for i in range(13)]
    with pytest.raises(ValueError, match=r"S is a pandas object whose index "
                                         r"does not match.*trial01"):
        smm.MixMeta(y, None, S=other)
    with pytest.raises(ValueError, match=r"exog .*index does not match"):
        smm.MixMeta(y, bcg[["ablat"]].set_axis(other.index), S=bcg.logrrvar)
    repeated = bcg["logrrvar"].copy()
    repeated.index = ["a"] * 13
    with pytest.raises(ValueError, match="index labels repeat"):
        smf.mixmeta("logrr ~ ablat", bcg, S=repeated)
    with pytest.raises(ValueError, match=r"groups .*index does not match"):
        smm.MixMeta(y, None, S=bcg["logrrvar"],
                    groups=bcg["alloc"].set_axis(other.index))


def test_positions_are_used_for_numpy_inputs(bcg):
    ref = smm.MixMeta(bcg["logrr"], None, S=bcg["logrrvar"]).fit()
    got = smm.MixMeta(bcg["logrr"], None,
                      S=bcg["logrrvar"].to_numpy()).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-12)


# --------------------------------------------------------------------------
# factor levels left without rows by the missing rule are dropped
# --------------------------------------------------------------------------

def _without_district(data, district, column="effect"):
    data = data.copy()
    data.loc[data["district"] == district, column] = np.nan
    return data


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
def test_level_only_in_rows_without_outcome_is_dropped(school, engine):
    holed = _without_district(school, 11)
    with formula_engine(engine):
        got = smf.mixmeta("effect ~ C(district)", holed, S="var",
                          method="fixed")
        want = smf.mixmeta("effect ~ C(district)",
                           school[school["district"] != 11], S="var",
                           method="fixed")
    assert got.exog_names == want.exog_names
    assert not any("11" in name for name in got.exog_names)
    np.testing.assert_allclose(_fit_params(got), _fit_params(want),
                               rtol=1e-10)


def test_level_only_in_rows_with_missing_predictor_is_dropped(school):
    holed = _without_district(school, 18, column="year")
    got = smf.mixmeta("effect ~ C(district) + year", holed, S="var",
                      method="fixed")
    assert not any("18" in name for name in got.exog_names)
    assert got.nobs == (school["district"] != 18).sum()


def test_unused_categories_of_a_categorical_column_are_dropped(school):
    school["district"] = pd.Categorical(school["district"])
    kept = school[school["district"] != 11]
    got = smf.mixmeta("effect ~ C(district)", kept, S="var", method="fixed")
    assert len(got.exog_names) == kept["district"].nunique()
    grouped = smf.mixmeta("effect ~ 1", kept, S="var",
                          random="~ 1 | district/study")
    assert grouped.n_groups == kept["district"].nunique()


def test_grouping_level_only_in_dropped_rows(school):
    holed = _without_district(school, 11)
    got = smf.mixmeta("effect ~ 1", holed, S="var",
                      random="~ 1 | district/study")
    want = smf.mixmeta("effect ~ 1", school[school["district"] != 11],
                       S="var", random="~ 1 | district/study")
    assert got.n_groups == want.n_groups
    np.testing.assert_allclose(_fit_params(got), _fit_params(want),
                               rtol=1e-8)


def test_random_factor_level_only_in_dropped_rows(school):
    school["era"] = np.where(school["year"] < 1980, "early", "late")
    school.loc[school["district"] == 11, "era"] = "first"
    holed = _without_district(school, 11)
    got = smf.mixmeta("effect ~ 1", holed, S="var",
                      random="~ 0 + C(era) | district", bscov="diag")
    names = got.design.levels.effect_names[0]
    assert len(names) == 2 and not any("first" in n for n in names)
    assert np.all(np.abs(got.design.long.Z[0]).sum(axis=0) > 0)


# --------------------------------------------------------------------------
# shapes and options
# --------------------------------------------------------------------------

@pytest.mark.parametrize("endog, message", [
    (np.zeros(0), "endog has no rows"),
    (1.0, "endog is a scalar"),
    (np.zeros((4, 1, 1)), r"endog has shape \(4, 1, 1\)"),
    (np.zeros((4, 0)), "endog has no columns"),
])
def test_bad_endog_shapes(endog, message):
    with pytest.raises(ValueError, match=message):
        smm.MixMeta(endog, None, S=np.ones(4))


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
@pytest.mark.parametrize("formula", ["logrr ~ ablat", "logrr ~ C(alloc)"])
def test_empty_data_frame(bcg, engine, formula):
    with formula_engine(engine):
        with pytest.raises(ValueError, match="data has no rows"):
            smf.mixmeta(formula, bcg.iloc[:0], S="logrrvar")
        with pytest.raises(ValueError, match="no rows are left: all 13 "):
            smf.mixmeta(formula, bcg.assign(logrr=np.nan), S="logrrvar")
        with pytest.raises(ValueError, match="no rows are left: all 13 "):
            smf.mixmeta(formula, bcg.assign(grp=np.nan), S="logrrvar",
                        random="~ 1 | grp")


def test_all_rows_dropped_arrays(school):
    with pytest.raises(ValueError, match="no rows are left: all 56 rows"):
        smm.MixMeta(school["effect"], None, S=school["var"],
                    groups=np.full(56, np.nan))


def test_bad_subset_and_formula(bcg):
    with pytest.raises(ValueError, match="subset names rows that are not in "
                                         "data: nowhere"):
        smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar",
                    subset=["trial01", "nowhere"])
    with pytest.raises(ValueError, match=r"boolean mask with one entry per "
                                         r"row of data \(13\)"):
        smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar",
                    subset=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="formula must be a string"):
        smf.mixmeta(None, bcg, S="logrrvar")


@pytest.mark.parametrize("exog, message", [
    (np.ones((4, 1, 1)), r"exog has shape \(4, 1, 1\); it must be \(n,\) "
                         r"or \(n, p\)"),
    (np.ones((5, 1)), "endog has 4 rows but exog has 5"),
    (np.ones((4, 0)), "exog has no columns"),
    (np.ones(()), r"exog has shape \(\)"),
])
def test_bad_exog_shapes(exog, message):
    with pytest.raises(ValueError, match=message):
        smm.MixMeta(np.zeros(4), exog, S=np.ones(4))


def test_bad_random_part_shapes():
    y, v = np.zeros(4), np.ones(4)
    with pytest.raises(ValueError, match=r"groups has shape \(4, 1, 1\)"):
        smm.MixMeta(y, None, S=v, groups=np.ones((4, 1, 1)))
    with pytest.raises(ValueError, match=r"exog_re has shape \(4, 1, 1\)"):
        smm.MixMeta(y, None, S=v, groups=[1, 1, 2, 2],
                    exog_re=np.ones((4, 1, 1)))


def test_groups_and_random_together_are_refused(school):
    with pytest.raises(ValueError, match="random= .* or groups=, not both"):
        smf.mixmeta("effect ~ 1", school, S="var", random="~ 1 | district",
                    groups=school["district"])


def test_groups_given_to_from_formula_follow_dropped_rows(school):
    holed = school.copy()
    holed.loc["s3", "year"] = np.nan
    got = smf.mixmeta("effect ~ year", holed, S="var",
                      groups=holed["district"])
    want = smf.mixmeta("effect ~ year", holed, S="var",
                       random="~ 1 | district")
    np.testing.assert_allclose(_fit_params(got), _fit_params(want),
                               rtol=1e-10)


# --------------------------------------------------------------------------
# messages name the caller's row labels, after rows were dropped
# --------------------------------------------------------------------------

def _berkey_first_row_dropped(berkey):
    data = berkey.copy()
    data.loc["Pihlstrom", ["PD", "AL"]] = np.nan
    return data


def test_asymmetric_S_named_by_label_after_dropped_row(berkey):
    data = _berkey_first_row_dropped(berkey)
    full = np.stack([np.eye(2)] * 5) * 0.01
    full[3, 0, 1] = 0.005
    with pytest.raises(ValueError, match=r"not symmetric at row Ramfjord"):
        smm.MixMeta(data[["PD", "AL"]], None, S=full)


@pytest.mark.parametrize("change, pattern", [
    ({"var_PD": -0.01}, r"negative variances .*row Ramfjord"),
    ({"cov_PD_AL": 0.5}, r"not positive semi-definite .*row Ramfjord"),
    ({"var_AL": np.nan}, r"S is missing .*row Ramfjord"),
])
def test_S_errors_named_by_label_after_dropped_row(berkey, change, pattern):
    data = _berkey_first_row_dropped(berkey)
    for column, value in change.items():
        data.loc["Ramfjord", column] = value
    with pytest.raises(ValueError, match=pattern) as err:
        smf.mixmeta("PD + AL ~ year", data, S=BERKEY_S)
    assert not re.search(r"\brows? [0-9]", str(err.value))
    with pytest.raises(ValueError, match=pattern):
        smm.MixMeta(data[["PD", "AL"]], data[["year"]].assign(c=1.0),
                    S=data[BERKEY_S])


def test_singular_S_named_by_label_after_dropped_row(berkey):
    data = _berkey_first_row_dropped(berkey)
    data.loc["Becker", ["var_AL", "cov_PD_AL"]] = 0.0
    with pytest.raises(ValueError, match=r"singular .*row Becker") as err:
        smf.mixmeta("PD + AL ~ year", data, S=BERKEY_S, method="fixed")
    assert not re.search(r"\brows? [0-9]", str(err.value))


# --------------------------------------------------------------------------
# the caller's data are never modified
# --------------------------------------------------------------------------

def test_formula_inputs_are_not_modified(school):
    data = school.copy()
    data["effect"] = data["effect"].astype("Float64")
    data.loc["s2", "effect"] = pd.NA
    data["year"] = data["year"].astype(object)
    data["district"] = pd.Categorical(data["district"])
    data.loc["s4", "var"] = np.nan
    data.loc["s4", "effect"] = np.nan
    before = data.copy(deep=True)
    Scor_like = data["var"].copy()
    model = smf.mixmeta("effect ~ year", data, S=data["var"],
                        random="~ 1 | district/study")
    model.fit()
    pd.testing.assert_frame_equal(data, before)
    pd.testing.assert_series_equal(data["var"], Scor_like)


def test_array_inputs_are_not_modified(berkey):
    y = berkey[["PD", "AL"]].copy()
    y.iloc[0, 1] = np.nan
    X = np.column_stack([np.ones(5), berkey["year"]])
    S = berkey[BERKEY_S].to_numpy().copy()
    S[0, 1:] = np.nan
    copies = (y.copy(), X.copy(), S.copy())
    groups = np.array([1, 1, 2, 2, 3])
    smm.MixMeta(y, X, S=S).fit()
    smm.MixMeta(y, X, S=S, method="fixed").fit()
    smm.MixMeta(y, X, S=S[:, [0, 2]], Scor=np.full(5, 0.2)).fit()
    full = np.stack([[[a, b], [b, c]] for a, b, c in S])
    full_copy = full.copy()
    smm.MixMeta(y.iloc[:, 0], X, S=full[:, :1, :1], groups=groups).fit()
    pd.testing.assert_frame_equal(y, copies[0])
    np.testing.assert_array_equal(X, copies[1])
    np.testing.assert_array_equal(S, copies[2])
    np.testing.assert_array_equal(full, full_copy)
    np.testing.assert_array_equal(groups, [1, 1, 2, 2, 3])


# --------------------------------------------------------------------------
# more variants: nullable grouping labels, addS under REML, odd containers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["Int64", "string", "category"])
def test_nullable_grouping_labels_with_NA_are_missing(school, dtype):
    ref = smm.MixMeta(school["effect"].drop(index="s3"), None,
                      S=school["var"].drop(index="s3"),
                      groups=school["district"].drop(index="s3")).fit()
    groups = school["district"].astype(str).astype(dtype) \
        if dtype == "string" else school["district"].astype(dtype)
    groups.loc["s3"] = pd.NA if dtype != "category" else np.nan
    got = smm.MixMeta(school["effect"], None, S=school["var"],
                      groups=groups).fit()
    assert got.nobs == 55
    np.testing.assert_allclose(got.params, ref.params, rtol=1e-10)


def test_singular_addS_reaching_psi_zero_names_the_group():
    y = pd.Series([0.1, 0.12, 0.09, 0.11, 0.1, 0.1], index=list("abcdef"))
    groups = pd.Series([1, 1, 2, 2, 3, 3], index=y.index)
    addS = {1: np.diag([0.01, 0.0]), 2: np.diag([0.01, 0.01]),
            3: np.diag([0.02, 0.01])}
    model = smm.MixMeta(y, None, groups=groups, addS=addS)
    with pytest.raises(ValueError, match=r"addS is singular .* group 1\b"):
        model.fit()


def test_endog_that_is_not_an_array():
    with pytest.raises(ValueError, match="endog must be an array, Series or "
                                         "DataFrame .*got a dict"):
        smm.MixMeta({"y": [1.0, 2.0]}, None, S=[1.0, 1.0])


def test_non_numeric_exog_column_is_named():
    y = pd.Series([0.1, 0.2, 0.3])
    exog = pd.DataFrame({"const": 1.0, "when": pd.date_range("2020",
                                                             periods=3)})
    with pytest.raises(ValueError, match="exog column 'when' holds "
                                         "non-numeric"):
        smm.MixMeta(y, exog, S=[1.0, 1.0, 1.0])


def test_q_test_of_a_fit_with_a_zero_variance_names_the_row(bcg):
    """REML accepts the zero variance (Psi > 0), but Cochran's Q weights by
    S^-1: its error names the row by label, not by position."""
    bcg.loc["trial03", "logrrvar"] = 0.0
    res = smf.mixmeta("logrr ~ ablat", bcg, S="logrrvar").fit()
    with pytest.raises(ValueError, match=r"singular .*row trial03.*"
                                         r"Cochran's Q") as err:
        res.q_test()
    assert not re.search(r"\brows? [0-9]", str(err.value))


@pytest.mark.parametrize("formula, message", [
    ("1 ~ ablat", "holds the constant 1"),
    ("logrr + logrr ~ ablat", r"names \['logrr'\] more than once"),
])
def test_outcome_side_that_is_not_a_set_of_columns(bcg, formula, message):
    with pytest.raises(ValueError, match=message):
        smf.mixmeta(formula, bcg, S=["logrrvar", "logrrvar"][:formula.count(
            "logrr") or 1])


@pytest.mark.parametrize("S, message", [
    (1.0, r"S must have one row per study: endog has 3 rows, S has shape"),
    ([1.0, np.inf], "S holds infinite values"),
    (np.ones((3, 2)), "S has 2 columns; for k=1 outcome"),
])
def test_S_of_the_wrong_form(S, message):
    with pytest.raises(ValueError, match=message):
        smm.MixMeta(np.zeros(3), None, S=S)


def test_tiny_variance_with_psi_zero_multilevel_and_addS():
    """Grouped models whose Psi ends at 0 with a tiny within-study
    variance: degenerate fits, refused naming the row or the group."""
    y = pd.Series([0.1, 0.12, 0.09, 0.11, 0.1, 0.1], index=list("abcdef"))
    v = pd.Series([0.01, 1e-14, 0.01, 0.01, 0.02, 0.01], index=y.index)
    groups = pd.Series([1, 1, 2, 2, 3, 3], index=y.index)
    with pytest.raises(ValueError, match=r"degenerate.*\brow b\b"):
        smm.MixMeta(y, None, S=v, groups=groups).fit()
    addS = {1: np.diag([0.01, 1e-14]), 2: np.diag([0.01, 0.01]),
            3: np.diag([0.02, 0.01])}
    with pytest.raises(ValueError, match=r"degenerate.*addS .*group 1\b"):
        smm.MixMeta(y, None, groups=groups, addS=addS).fit()


@pytest.mark.parametrize("engine", ["patsy", "formulaic"])
def test_fit_with_dropped_levels_and_converted_columns_pickles(school,
                                                               engine):
    """The predictor spec is rebuilt, after unpickling, from the rows and
    converted columns the formula was evaluated on."""
    import pickle
    data = _without_district(school, 11)
    data["year"] = data["year"].astype("Int64")
    with formula_engine(engine):
        res = smf.mixmeta("effect ~ C(district) + year", data, S="var",
                          method="fixed").fit()
        back = pickle.loads(pickle.dumps(res))
        np.testing.assert_allclose(back.params, res.params, rtol=0)
        new = school[school["district"] != 11].iloc[:4]
        np.testing.assert_allclose(
            back.model.formula_terms.exog(new),
            res.model.formula_terms.exog(new), rtol=0)
    assert not any("11" in name for name in res.model.exog_names)
