"""
``MixMetaResults.summary()``: the numbers it prints.

Printed values are read back from the text and compared with R mixmeta 1.2.1
(``tests/results/mixmeta_reference.json``) for the worked cases, and with the
results' own attributes for every single-level reference case.  A printed
value agrees when it is within half a unit of its last digit (plus 1e-6 for
the difference between our fit and R's).
"""
import re
import warnings

import numpy as np
import pytest
from scipy import stats
from statsmodels.iolib.summary import Summary

import statsmodels.formula.api as smf
import statsmodels_mixmeta as smm
from reference_cases import EARLY_STOP_CASES, case
from reference_models import MULTILEVEL, SINGLE_LEVEL
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.results.summary import format_number, format_pvalue

RULE = re.compile(r"^[=-]+$")
Z975 = stats.norm.ppf(0.975)


@pytest.fixture(scope="module")
def fits():
    cache = {}

    def get(name, **fit_kw):
        key = (name, tuple(sorted(fit_kw.items())))
        if key not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[key] = SINGLE_LEVEL[name]().fit(**fit_kw)
        return cache[key]
    return get


# --------------------------------------------------------------------------
# reading the text back
# --------------------------------------------------------------------------

def _block(text, title, labels):
    """Rows ``label -> [values]`` of the table headed ``title``."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.split()[:1] == [title] and RULE.match(lines[i + 1]):
            break
    else:
        raise AssertionError(f"no table {title!r} in\n{text}")
    rows = {}
    for line in lines[i + 2:]:
        if RULE.match(line):
            break
        label = next(lab for lab in labels if line.startswith(lab + " "))
        rows[label] = line[len(label):].split()
    assert list(rows) == list(labels)
    return rows


def _header(text):
    """``label -> value`` of the first table (two columns of pairs)."""
    lines = text.splitlines()
    start = lines.index("=" * len(lines[1]))
    end = lines.index("=" * len(lines[1]), start + 1)
    pairs = {}
    for line in lines[start + 1:end]:
        tokens = re.split(r"\s{2,}", line.strip())
        assert len(tokens) % 2 == 0, line
        pairs.update(zip(tokens[::2], tokens[1::2]))
    return pairs


def _close(printed, expected, digits=4, rtol=1e-9):
    """``printed`` shows ``expected`` rounded to ``digits`` decimals.

    ``rtol`` allows for the difference between our fit and R's: the
    reference tests accept 1e-4 relative (tests/test_reference_single_level).
    """
    if printed == "nan":
        return np.isnan(expected)
    slack = max(1e-9, rtol * abs(expected))
    return abs(float(printed) - expected) <= 0.5 * 10.0 ** -digits + slack


def _check_row(row, expected, digits, rtol=1e-9):
    assert len(row) == len(expected)
    for printed, value, d in zip(row, expected, digits):
        assert _close(printed, value, d, rtol), (row, expected)


#: agreement with R's numbers, as in the reference tests
R_RTOL = 1e-4


COEF_DIGITS = (4, 4, 4, 3, 4, 4)


def _coef_rows(coef, se, z=Z975):
    """coef, se, z, p, limits: what the coefficient table should show."""
    coef, se = np.asarray(coef), np.asarray(se)
    return np.column_stack([coef, se, coef / se,
                            2 * stats.norm.sf(np.abs(coef / se)),
                            coef - z * se, coef + z * se])


# --------------------------------------------------------------------------
# worked cases against R
# --------------------------------------------------------------------------

def test_bcg_reml_against_r(fits):
    ref = case("bcg_reg_reml")
    text = fits("bcg_reg_reml").summary().as_text()
    assert "-0.0315" in text                       # the ablat slope

    head = _header(text)
    assert head["Method:"] == "REML"
    assert head["Psi structure:"] == "unstr"
    assert head["Outcomes (k):"] == "1"
    assert head["Observed values (n):"] == "13"
    assert head["Groups (m):"] == "13"
    assert head["Fixed coefs (p):"] == "2"
    assert head["Converged:"] == "yes"
    assert head["Log-likelihood:"] == "-7.9358"    # R -7.93582919655505
    assert _close(head["AIC:"], ref.AIC)
    assert _close(head["BIC:"], ref.BIC)

    rows = _block(text, "logor", ["Intercept", "ablat"])
    expected = _coef_rows(ref.coef, np.sqrt(np.diag(ref.vcov)))
    for row, exp in zip(rows.values(), expected):
        _check_row(row, exp, COEF_DIGITS, R_RTOL)

    tau = _block(text, "Psi", ["logor"])["logor"]
    assert tau == ["0.2246"]                       # sqrt(0.0504339460683041)

    het = _block(text, "Heterogeneity", ["overall"])["overall"]
    assert het[0] == "25.0954"                     # R 25.0954185235939
    assert het[1] == "11"
    assert _close(het[2], ref.qtest.pvalue[0], 3)
    assert het[3] == "56.17"                       # R 56.1672980681388 %


def test_berkey_ml_blocks_per_outcome(fits):
    ref = case("berkey_ml")
    res = fits("berkey_ml")
    text = res.summary().as_text()
    expected = _coef_rows(ref.coef, np.sqrt(np.diag(ref.vcov)))
    # outcome-major: PD's terms, then AL's
    for j, outcome in enumerate(["PD", "AL"]):
        rows = _block(text, outcome, ["Intercept", "year"])
        for row, exp in zip(rows.values(), expected[2 * j:2 * j + 2]):
            _check_row(row, exp, COEF_DIGITS, R_RTOL)
    assert text.index("PD        ") < text.index("AL        ")

    psi = ref.psi
    sd = np.sqrt(np.diag(psi))
    corr = psi[1, 0] / (sd[0] * sd[1])
    rows = _block(text, "Psi", ["PD", "AL"])
    assert len(rows["PD"]) == 1                    # upper triangle left blank
    assert _close(rows["PD"][0], sd[0], rtol=R_RTOL)       # 0.0897
    assert _close(rows["AL"][0], sd[1], rtol=R_RTOL)       # 0.1582
    assert _close(rows["AL"][1], corr, rtol=R_RTOL)        # R 0.65877
    ours = res.psi.values
    assert rows["AL"][1] == format_number(
        ours[1, 0] / np.sqrt(ours[0, 0] * ours[1, 1]))
    assert "corr PD" in text

    het = _block(text, "Heterogeneity", ["overall", "PD", "AL"])
    for i, row in enumerate(het.values()):
        assert _close(row[0], ref.qtest.Q[i])
        assert row[1] == str(int(ref.qtest.df[i]))
        assert _close(row[2], ref.qtest.pvalue[i], 3)
        assert _close(row[3], 100 * ref.i2[i], 2)

    head = _header(text)
    assert head["Method:"] == "ML"
    assert head["Outcomes (k):"] == "2"
    assert head["Observed values (n):"] == "10"
    assert head["Groups (m):"] == "5"
    assert head["Fixed coefs (p):"] == "4"
    assert head["Psi parameters:"] == "3"
    assert _close(head["Log-likelihood:"], ref.logLik)     # 6.0043
    assert "Multivariate random-effects meta-regression" in text


@pytest.mark.parametrize("name, label", [("berkey_mm", "Method of moments"),
                                         ("bcg_mm", "Method of moments"),
                                         ("berkey_vc_adj",
                                          "Variance components")])
def test_moment_estimators_omit_likelihood(fits, name, label):
    ref = case(name)
    res = fits(name)
    assert np.isnan(res.llf)
    text = res.summary().as_text()
    head = _header(text)
    assert head["Method:"] == label
    for key in ("Log-likelihood:", "AIC:", "BIC:"):
        assert key not in head
    assert "maximises no likelihood: no log-likelihood, AIC or BIC" in text
    outcomes = list(res.model.design.outcome_names)
    rows = _block(text, "Psi", outcomes)
    sd = np.sqrt(np.diag(ref.psi))
    for i, outcome in enumerate(outcomes):
        assert _close(rows[outcome][0], sd[i], rtol=1e-8)
    first = _block(text, outcomes[0], list(res.model.design.term_names))
    se = np.sqrt(np.diag(ref.vcov))
    _check_row(next(iter(first.values())), _coef_rows(ref.coef, se)[0],
               COEF_DIGITS)


@pytest.mark.parametrize("name", ["berkey_fixed", "bcg_fixed"])
def test_fixed_effects_say_no_random_effect(fits, name):
    ref = case(name)
    text = fits(name).summary().as_text()
    assert "Fixed-effects model: there is no random effect (Psi = 0)." in text
    assert "fixed-effects meta-" in text.splitlines()[0]
    head = _header(text)
    assert head["Method:"] == "Fixed"
    assert head["Psi structure:"] == "none"
    assert head["Psi parameters:"] == "0"
    assert _close(head["Log-likelihood:"], ref.logLik)
    with pytest.raises(AssertionError, match="no table 'Psi'"):
        _block(text, "Psi", [])


def test_alpha_sets_the_limits(fits):
    res = fits("bcg_reg_reml")
    text = res.summary(alpha=0.1).as_text()
    assert "[0.05" in text and "0.95]" in text
    rows = _block(text, "logor", ["Intercept", "ablat"])
    expected = _coef_rows(res.params, res.bse, stats.norm.ppf(0.95))
    for row, exp in zip(rows.values(), expected):
        _check_row(row, exp, COEF_DIGITS)


def test_not_converged_warns(fits):
    res = fits("berkey_reml", maxiter=1, scoring_iter=0, igls_iter=0,
               method="nm")
    assert not res.converged
    text = res.summary().as_text()
    assert _header(text)["Converged:"] == "no"
    assert "WARNING: the optimiser stopped before convergence" in text


def test_missing_outcomes_give_nan_per_outcome_q(fits):
    ref = case("smoking_unstr")
    text = fits("smoking_unstr").summary().as_text()
    het = _block(text, "Heterogeneity", ["overall", "yB", "yC", "yD"])
    assert _close(het["overall"][0], ref.qtest.Q[0])
    for outcome in ("yB", "yC", "yD"):
        assert het[outcome][0] == het[outcome][2] == het[outcome][3] == "nan"
    assert [row[1] for row in het.values()] == \
        [str(int(d)) for d in ref.qtest.df]
    assert "per-outcome Q is nan when that outcome is missing" in text


# --------------------------------------------------------------------------
# every reference case: the text shows the results, on one grid
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SINGLE_LEVEL))
def test_prints_the_results(fits, name):
    res = fits(name)
    smry = res.summary()
    assert isinstance(smry, Summary)
    text = smry.as_text()
    assert str(smry) == text

    design = res.model.design
    expected = _coef_rows(res.params, res.bse)
    p = len(design.term_names)
    for j, outcome in enumerate(design.outcome_names):
        rows = _block(text, outcome, list(design.term_names))
        for row, exp in zip(rows.values(), expected[j * p:(j + 1) * p]):
            _check_row(row, exp, COEF_DIGITS)

    q = res.q_test()
    het = _block(text, "Heterogeneity", list(q.names))
    for i, row in enumerate(het.values()):
        _check_row(row, [q.statistic[i], q.df[i], q.pvalue[i],
                         100 * res.i2.iloc[i]], (4, 0, 3, 2))

    head = _header(text)
    if res.method in ("mm", "vc"):
        assert "Log-likelihood:" not in head
    else:
        assert _close(head["Log-likelihood:"], res.llf)
        ref = case(name)
        if name not in EARLY_STOP_CASES:
            assert _close(head["Log-likelihood:"], ref.logLik)

    tables = text.split("\n\nNotes:")[0].splitlines()
    assert len({len(line) for line in tables}) == 1     # one grid width
    assert len(tables[0]) >= 78


@pytest.mark.parametrize("name", ["berkey_ml", "bcg_mm", "berkey_fixed"])
def test_html_and_latex(fits, name):
    res = fits(name)
    smry = res.summary()
    html = smry.as_html()
    assert html.count('<table class="simpletable">') == len(smry.tables)
    for outcome in res.model.design.outcome_names:
        assert f"<th>{outcome}</th>" in html
    assert f"<td>{format_number(res.params.iloc[0])}</td>" in html
    assert "<caption>MixMeta: " in html
    assert "Notes:" in html
    assert smry._repr_html_() == html
    assert "\\begin{tabular}" in smry.as_latex()
    assert format_number(res.params.iloc[-1]) in smry.as_csv()


def test_long_term_names_widen_the_grid():
    data = datasets.load_bcg()
    data["a_rather_long_predictor_name"] = data["ablat"]
    res = smf.mixmeta("logor ~ a_rather_long_predictor_name", data=data,
                      S="logorvar").fit()
    lines = res.summary().as_text().split("\n\nNotes:")[0].splitlines()
    assert len({len(line) for line in lines}) == 1
    row = _block("\n".join(lines), "logor",
                 ["Intercept", "a_rather_long_predictor_name"])
    assert row["a_rather_long_predictor_name"][0] == "-0.0315"


# --------------------------------------------------------------------------
# number formatting
# --------------------------------------------------------------------------

@pytest.mark.parametrize("value, digits, text", [
    (-0.0315337899563941, 4, "-0.0315"),
    (25.0954185235939, 4, "25.0954"),
    (56.1672980681388, 2, "56.17"),
    (0.0, 4, "0.0000"),
    (4.2e-6, 4, "4.20e-06"),
    (-3.0e-7, 4, "-3.00e-07"),
    (0.00005, 4, "0.0001"),
    (np.nan, 4, "nan"),
])
def test_format_number(value, digits, text):
    assert format_number(value, digits) == text


def test_format_pvalue():
    assert format_pvalue(1e-24) == "0.000"
    assert format_pvalue(0.00882792) == "0.009"
    assert format_pvalue(np.nan) == "nan"


def test_multilevel_summary_shows_psi_of_every_level():
    """school 2-level REML: one Psi block per level with R's standard
    deviations, and the structures of both levels named."""
    ref = case("school_reml_2level")
    text = str(MULTILEVEL["school_reml_2level"]().fit().summary())
    assert "Psi district" in text and "Psi study" in text
    for level in ("district", "study"):
        sd = float(np.sqrt(np.asarray(ref.psi[level])[0, 0]))
        assert f"{sd:.4f}" in text
    assert "unstr/unstr" in text


def test_summary_of_a_level_fixed_at_zero():
    text = str(MULTILEVEL["gliomas_cs_fixed0"]().fit().summary())
    assert "unstr/fixed" in text
    assert "unit: fixed" in text


def test_summary_of_a_fit_with_a_zero_within_study_variance():
    # ML/REML accept a study with zero within-study variance while Psi > 0,
    # but Cochran's Q (weights 1/S) does not exist: the summary leaves the
    # Q table out and says why, naming the row, instead of raising
    bcg = datasets.load_bcg()
    var = bcg["logorvar"].to_numpy().copy()
    var[2] = 0.0
    res = smm.MixMeta(bcg["logor"].to_numpy(), None, S=var).fit()
    assert res.psi.iloc[0, 0] > 0.1
    with pytest.raises(ValueError, match="row 2"):
        res.q_test()
    text = res.summary().as_text()
    assert "Heterogeneity" not in text and "P>Q" not in text
    assert "Cochran's Q and I2 are not shown" in text
    assert "row 2" in " ".join(text.split())
    # the rest of the summary is that of the fit
    assert f"{res.params[0]:.4f}" in text
