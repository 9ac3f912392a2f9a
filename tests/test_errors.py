"""
Bad input is refused when the model is built, before anything is fitted,
with a ``ValueError`` that names the rows, columns or options at fault and
says what would be valid.

Every ``pytest.raises`` below wraps only the construction of the model
(``smf.mixmeta(...)`` or ``smm.MixMeta(...)``), never ``.fit()``: the errors
must come from validating the input.
"""
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from conftest import ENGINES, formula_engine

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]
SMOKING_S = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]




@pytest.fixture
def bcg():
    """BCG trials, rows labelled by author (so messages can name them)."""
    return datasets.load_bcg().set_index("author")


@pytest.fixture
def berkey():
    """Berkey 1998, rows labelled by trial; ``year = pubyear - 1983``."""
    data = datasets.load_berkey98().set_index("trial")
    data["year"] = data["pubyear"] - 1983
    return data


def _number_after(text, message):
    """The number that follows ``text`` in ``message``."""
    found = re.search(re.escape(text) + r"\s*(-?[0-9.]+(?:e-?\d+)?)", message)
    assert found, f"no number after {text!r} in: {message}"
    return float(found.group(1))


def _listed_after_colon(message):
    """The comma-separated names after ``"): "`` in ``message``."""
    return [name.strip() for name in message.split("): ", 1)[1].split(",")]


# --------------------------------------------------------------------------
# within-study covariances S
# --------------------------------------------------------------------------

def test_S_not_positive_semidefinite_gives_smallest_eigenvalue(berkey):
    berkey.loc["Knowles", "cov_PD_AL"] = 0.01     # |cov| > sqrt(var_PD var_AL)
    S_knowles = np.array([[0.0021, 0.01], [0.01, 0.0014]])
    smallest = np.linalg.eigvalsh(S_knowles).min()
    assert smallest < 0
    with pytest.raises(ValueError, match="not positive semi-definite") as err:
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)
    message = str(err.value)
    assert "Knowles" in message
    for trial in ("Pihlstrom", "Lindhe", "Ramfjord", "Becker"):
        assert trial not in message
    reported = _number_after("smallest eigenvalue", message)
    np.testing.assert_allclose(reported, smallest, rtol=1e-5)


def test_S_not_positive_semidefinite_array_interface():
    S = np.array([[[1.0, 2.0], [2.0, 1.0]],       # eigenvalues -1 and 3
                  [[1.0, 0.0], [0.0, 1.0]]])
    with pytest.raises(ValueError, match="not positive semi-definite") as err:
        smm.MixMeta(np.zeros((2, 2)), None, S=S)
    message = str(err.value)
    assert re.search(r"\brow 0\b", message)
    assert _number_after("smallest eigenvalue", message) == pytest.approx(-1.0)


def test_S_missing_where_outcome_observed_names_the_row(berkey):
    berkey.loc["Ramfjord", "var_AL"] = np.nan
    with pytest.raises(ValueError, match="S is missing for observed "
                                         "outcomes in row Ramfjord"):
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)


def test_S_missing_where_outcome_observed_univariate(bcg):
    bcg.loc["Comstock & Webster", "logorvar"] = np.nan
    with pytest.raises(ValueError, match="S is missing .*Comstock & Webster"):
        smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar")


def test_S_missing_where_outcome_observed_names_the_outcome(berkey):
    # the message should say which outcome lacks its variance: "AL", not a
    # position
    berkey.loc["Ramfjord", "var_AL"] = np.nan
    with pytest.raises(ValueError, match="S is missing") as err:
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)
    assert re.search(r"\bAL\b", str(err.value)), str(err.value)


def test_S_missing_where_outcome_missing_is_accepted(berkey):
    # the control case: the same NaN is harmless when AL is missing too
    berkey.loc["Ramfjord", ["AL", "var_AL", "cov_PD_AL"]] = np.nan
    model = smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)
    assert model.nobs == 9
    assert model.n_groups == 5


def test_negative_variance_names_the_row(bcg):
    bcg.loc["Frimodt-Moller et al", "logorvar"] = -0.1
    with pytest.raises(ValueError, match="negative variances in S at row "
                                         "Frimodt-Moller et al") as err:
        smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar")
    assert "-0.1" in str(err.value)
    assert "Aronson" not in str(err.value)


def test_negative_variance_multivariate_names_the_row(berkey):
    berkey.loc["Becker", "var_AL"] = -0.03
    with pytest.raises(ValueError, match="negative variances in S at row "
                                         "Becker") as err:
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)
    assert "-0.03" in str(err.value)


def test_negative_variance_names_the_outcome(berkey):
    berkey.loc["Becker", "var_AL"] = -0.03
    with pytest.raises(ValueError, match="negative variances") as err:
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)
    assert re.search(r"\bAL\b", str(err.value)), str(err.value)


def test_S_wrong_width_lists_valid_widths_k2(berkey):
    with pytest.raises(ValueError, match="S has 4 columns") as err:
        smf.mixmeta("PD + AL ~ year", data=berkey,
                    S=BERKEY_S + ["npat"])
    message = str(err.value)
    assert "k=2" in message
    assert "2 columns" in message and "3 columns" in message
    assert "(n, 2, 2)" in message


def test_S_wrong_width_lists_valid_widths_k3():
    smoking = datasets.load_smoking()
    endog = smoking[["yB", "yC", "yD"]].to_numpy()
    with pytest.raises(ValueError, match="S has 4 columns") as err:
        smm.MixMeta(endog, None, S=smoking[SMOKING_S[:4]].to_numpy())
    message = str(err.value)
    assert "k=3" in message
    assert "3 columns" in message and "6 columns" in message
    assert "(n, 3, 3)" in message


def test_S_required(bcg):
    with pytest.raises(ValueError, match="S, the known within-study "
                                         r"\(co\)variances, is required"):
        smf.mixmeta("logor ~ ablat", data=bcg)


def test_S_column_not_in_data(bcg):
    with pytest.raises(ValueError, match="S names columns not in data: "
                                         "logvar$"):
        smf.mixmeta("logor ~ ablat", data=bcg, S="logvar")


def test_S_columns_not_in_data_names_only_the_absent_ones(berkey):
    with pytest.raises(ValueError, match="S names columns not in data: "
                                         "covPDAL, varAL$"):
        smf.mixmeta("PD + AL ~ year", data=berkey,
                    S=["var_PD", "covPDAL", "varAL"])


def test_Scor_column_not_in_data():
    with pytest.raises(ValueError, match="Scor names columns not in data: "
                                         "rho$"):
        smf.mixmeta("y1 + y2 ~ 1", data=datasets.load_p53(),
                    S=["V1", "V2"], Scor="rho")


# --------------------------------------------------------------------------
# Scor
# --------------------------------------------------------------------------

def test_Scor_wrong_length_k2():
    with pytest.raises(ValueError, match=r"Scor has shape \(2,\)") as err:
        smf.mixmeta("y1 + y2 ~ 1", data=datasets.load_p53(),
                    S=["V1", "V2"], Scor=[0.1, 0.2])
    message = str(err.value)
    assert "n=6 studies and k=2 outcomes" in message
    assert "length 1" in message and "length 6" in message
    assert "(6, 1)" in message


def test_Scor_wrong_length_k3_lists_the_pairs():
    smoking = datasets.load_smoking()
    endog = smoking[["yB", "yC", "yD"]].to_numpy()
    S = smoking[["SBB", "SCC", "SDD"]].to_numpy()
    with pytest.raises(ValueError, match=r"Scor has shape \(2,\)") as err:
        smm.MixMeta(endog, None, S=S, Scor=[0.1, 0.2])
    message = str(err.value)
    assert "length 3" in message and "length 24" in message
    assert "(2,1), (3,1), (3,2)" in message


def test_Scor_per_study_wrong_rows():
    with pytest.raises(ValueError, match="Scor has 5 rows; .*one row per "
                                         r"study \(6\)"):
        smf.mixmeta("y1 + y2 ~ 1", data=datasets.load_p53(),
                    S=["V1", "V2"], Scor=np.zeros((5, 1)))


def test_Scor_out_of_range():
    with pytest.raises(ValueError, match="between -1 and 1; got 1.5"):
        smf.mixmeta("y1 + y2 ~ 1", data=datasets.load_p53(),
                    S=["V1", "V2"], Scor=1.5)


# --------------------------------------------------------------------------
# estimability of the fixed effects
# --------------------------------------------------------------------------

def test_fewer_values_than_coefficients(bcg):
    with pytest.raises(ValueError, match=r"fewer observed outcome values "
                                         r"\(2\) than fixed coefficients "
                                         r"\(3\)") as err:
        smf.mixmeta("logor ~ ablat + year", data=bcg.iloc[:2], S="logorvar")
    assert _listed_after_colon(str(err.value)) == ["Intercept", "ablat",
                                                   "year"]


def test_fewer_values_than_coefficients_multivariate(berkey):
    berkey.loc["Lindhe", "AL"] = np.nan
    with pytest.raises(ValueError, match=r"fewer observed outcome values "
                                         r"\(3\) than fixed coefficients "
                                         r"\(4\)"):
        smf.mixmeta("PD + AL ~ year", data=berkey.iloc[:2], S=BERKEY_S)


def test_rank_deficient_formula_names_collinear_terms(bcg):
    with pytest.raises(ValueError, match="rank deficient") as err:
        smf.mixmeta("logor ~ ablat + I(2*ablat)", data=bcg, S="logorvar")
    assert _listed_after_colon(str(err.value)) == ["ablat", "I(2 * ablat)"]


def test_rank_deficient_formula_both_engines(bcg, engine):
    with pytest.raises(ValueError, match="rank deficient") as err:
        smf.mixmeta("logor ~ ablat + I(2*ablat)", data=bcg, S="logorvar")
    listed = _listed_after_colon(str(err.value))
    assert "Intercept" not in listed
    assert listed[0] == "ablat" and len(listed) == 2


def test_rank_deficient_duplicated_column_names_it(bcg):
    exog = pd.DataFrame({"const": 1.0, "ablat": bcg["ablat"],
                         "ablat_copy": bcg["ablat"], "year": bcg["year"]})
    with pytest.raises(ValueError, match="rank deficient") as err:
        smm.MixMeta(bcg["logor"], exog, S=bcg["logorvar"].to_numpy())
    assert _listed_after_colon(str(err.value)) == ["ablat", "ablat_copy"]


def test_rank_deficient_duplicated_column_plain_arrays(bcg):
    exog = np.c_[np.ones(len(bcg)), bcg["ablat"], bcg["ablat"]]
    with pytest.raises(ValueError, match="rank deficient") as err:
        smm.MixMeta(bcg["logor"].to_numpy(), exog,
                    S=bcg["logorvar"].to_numpy())
    assert _listed_after_colon(str(err.value)) == ["x1", "x2"]


def test_outcome_never_observed_names_its_coefficients(berkey):
    berkey["AL"] = np.nan
    with pytest.raises(ValueError, match="never observed") as err:
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S)
    assert _listed_after_colon(str(err.value)) == ["AL:Intercept", "AL:year"]


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["foo", "REMLL", None])
def test_unknown_method(bcg, method):
    with pytest.raises(ValueError, match=f"unknown method {method!r}; "
                                         "valid values are reml, ml, fixed, "
                                         "mm, vc"):
        smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar", method=method)


def test_unknown_method_array_interface(bcg):
    with pytest.raises(ValueError, match="unknown method 'gls'"):
        smm.MixMeta(bcg["logor"], None, S=bcg["logorvar"].to_numpy(),
                    method="gls")


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_unknown_bscov(berkey, method):
    with pytest.raises(ValueError, match="unknown bscov='unstructured'") \
            as err:
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S,
                    method=method, bscov="unstructured")
    for valid in ("unstr", "diag", "id", "cs", "hcs", "ar1", "har1", "prop",
                  "cor", "fixed"):
        assert f"'{valid}'" in str(err.value)


@pytest.mark.parametrize("bscov, what", [
    ("prop", "symmetric positive definite matrix"),
    ("cor", "correlation matrix"),
    ("fixed", "positive semi-definite matrix"),
])
def test_bscov_needing_psi_fix_without_it(berkey, bscov, what):
    with pytest.raises(ValueError, match=f"bscov='{bscov}' needs psi_fix, "
                                         f"a 2x2 (symmetric )?{what}"):
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S, bscov=bscov)


def test_psi_fix_of_wrong_size(berkey):
    with pytest.raises(ValueError, match=r"psi_fix must be a 2x2 matrix.*"
                                         r"\(3, 3\)"):
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S, bscov="prop",
                    psi_fix=np.eye(3))


def test_psi_fix_with_a_structure_that_ignores_it(berkey):
    with pytest.raises(ValueError, match="bscov='unstr' does not use "
                                         "psi_fix"):
        smf.mixmeta("PD + AL ~ year", data=berkey, S=BERKEY_S,
                    psi_fix=np.eye(2))


@pytest.mark.parametrize("missing", ["omit", "Drop", None])
def test_unknown_missing_option(bcg, missing):
    with pytest.raises(ValueError, match="missing must be one of .*'drop', "
                                         "'raise', 'none'.*got "
                                         + re.escape(repr(missing))):
        smm.MixMeta(bcg["logor"], None, S=bcg["logorvar"].to_numpy(),
                    missing=missing)


def test_unknown_missing_option_formula(bcg, engine):
    with pytest.raises(ValueError, match="missing must be one of .*got "
                                         "'omit'"):
        smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar", missing="omit")


# --------------------------------------------------------------------------
# array interface: lengths
# --------------------------------------------------------------------------

def test_endog_exog_lengths_differ(bcg):
    with pytest.raises(ValueError, match="endog has 13 rows but exog has "
                                         "12"):
        smm.MixMeta(bcg["logor"].to_numpy(), np.ones((12, 1)),
                    S=bcg["logorvar"].to_numpy())


def test_endog_S_lengths_differ(bcg):
    with pytest.raises(ValueError, match=r"S must have one row per study: "
                                         r"endog has 13 rows, S has shape "
                                         r"\(12,\)"):
        smm.MixMeta(bcg["logor"].to_numpy(), None,
                    S=bcg["logorvar"].to_numpy()[:12])


def test_endog_S_lengths_differ_multivariate(berkey):
    with pytest.raises(ValueError, match=r"endog has 5 rows, S has shape "
                                         r"\(4, 3\)"):
        smm.MixMeta(berkey[["PD", "AL"]], None,
                    S=berkey[BERKEY_S].to_numpy()[:4])


def test_S_array_of_wrong_length_formula(berkey):
    with pytest.raises(ValueError, match=r"endog has 5 rows, S has shape "
                                         r"\(4, 3\)"):
        smf.mixmeta("PD + AL ~ year", data=berkey,
                    S=berkey[BERKEY_S].to_numpy()[:4])


# --------------------------------------------------------------------------
# missing="raise"
# --------------------------------------------------------------------------

def _bcg_missing_latitude(bcg):
    bcg.loc[["Hart & Sutherland", "Coetzee & Berjak"], "ablat"] = np.nan
    return bcg


def test_missing_raise_names_rows_array_interface(bcg):
    bcg = _bcg_missing_latitude(bcg)
    exog = bcg[["ablat"]].assign(const=1.0)
    with pytest.raises(ValueError, match="missing values in predictors at "
                                         "rows Hart & Sutherland, Coetzee & "
                                         "Berjak"):
        smm.MixMeta(bcg["logor"], exog, S=bcg["logorvar"].to_numpy(),
                    missing="raise")


def test_missing_raise_names_rows_formula(bcg, engine):
    bcg = _bcg_missing_latitude(bcg)
    # patsy raises PatsyError, formulaic a ValueError naming only the column
    with pytest.raises(ValueError) as err:
        smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar", missing="raise")
    message = str(err.value)
    assert "Hart & Sutherland" in message, message
    assert "Coetzee & Berjak" in message, message


def test_missing_raise_with_all_outcomes_missing_names_rows(bcg):
    bcg.loc["Rosenthal et al", "logor"] = np.nan
    with pytest.raises(ValueError, match="all outcomes are missing at rows "
                                         "Rosenthal et al"):
        smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar", missing="raise")


def test_missing_raise_all_outcomes_missing_multivariate(berkey):
    berkey.loc["Lindhe", ["PD", "AL"]] = np.nan
    with pytest.raises(ValueError, match="all outcomes are missing at rows "
                                         "Lindhe"):
        smm.MixMeta(berkey[["PD", "AL"]], None, S=berkey[BERKEY_S].to_numpy(),
                    missing="raise")


def test_missing_raise_accepts_partly_missing_outcomes(berkey):
    # one of two outcomes missing is not an error, even with "raise"
    berkey.loc["Lindhe", "AL"] = np.nan
    model = smm.MixMeta(berkey[["PD", "AL"]], None,
                        S=berkey[BERKEY_S].to_numpy(), missing="raise")
    assert model.nobs == 9
    assert model.n_groups == 5


def test_unknown_keyword_is_an_error_not_silently_ignored():
    # statsmodels' Model would attach an unknown keyword as an attribute; a
    # misspelt option must not fit another model without a word
    bcg = datasets.load_bcg()
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['bsocv'\]"):
        smf.mixmeta("logor ~ 1", data=bcg, S="logorvar", bsocv="diag")
    with pytest.raises(TypeError, match="unexpected keyword"):
        smm.MixMeta(bcg.logor.values, None, S=bcg.logorvar.values,
                    randm="~ 1 | trial")


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_moment_estimators_refuse_a_structure(method):
    # the moment estimators give an unstructured Psi; a structure asked for
    # must not be silently ignored
    bcg = datasets.load_bcg()
    with pytest.raises(ValueError, match="estimates an unstructured Psi"):
        smf.mixmeta("logor ~ 1", data=bcg, S="logorvar", method=method,
                    bscov="diag")


@pytest.mark.parametrize("method", ["reml", "mm", "vc"])
def test_no_residual_degrees_of_freedom_for_psi(method):
    # one study and an intercept: the REML likelihood is flat in Psi, so any
    # value would be an "optimum"; refuse instead of returning the start
    one = datasets.load_bcg().iloc[:1]
    with pytest.raises(ValueError, match="no residual degrees of freedom"):
        smf.mixmeta("logor ~ 1", data=one, S="logorvar", method=method)


def test_ml_with_as_many_values_as_coefficients_puts_psi_at_zero():
    one = datasets.load_bcg().iloc[:1]
    res = smf.mixmeta("logor ~ 1", data=one, S="logorvar",
                      method="ml").fit()
    assert res.psi.values[0, 0] < 1e-12
    assert res.params.iloc[0] == pytest.approx(one.logor.iloc[0])
