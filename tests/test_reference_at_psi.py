"""
The GLS, fitted values, predictions and BLUPs of every R reference case,
evaluated at R's own Psi.

Given Psi, everything R reports per coefficient and per row is a closed
form: the GLS coefficients and their covariance, the fitted values and
their standard errors, the BLUPs and R's standard errors of them.  So
instead of comparing our fit with R's fit (where the two optima may differ
within the Psi tolerance, and the per-row values inherit that difference),
the model is evaluated at R's reported Psi
(:func:`agreement.results_at_psi`) and held to

* coefficients and their covariance: ``CLOSED`` (1e-8 relative, the
  closed-form rule of tests/README.md); the largest error measured is
  3.6e-9 in the variance-components cases (R's ``mixmeta.vc`` returns the
  GLS of its last-but-one Psi iterate beside its last Psi, which differ
  within R's tolerance), 1e-12 elsewhere;
* fitted values, their standard errors, BLUPs and BLUP standard errors:
  ``PER_ROW`` (1e-6 relative; absolute 1e-10 only for values at 0); the
  largest error measured is 1.7e-9 (bcg_vc, for the reason above), 6e-11
  for ML and REML (berkey_reml), 7e-13 for the multilevel cases.

One thing R computes differently: where a row has missing outcomes, R's
``blup.mixmeta`` first fills them in with ``inputna`` (outcome 0, variance
1e4 times the largest observed variance of that outcome, covariances 0)
and predicts from the filled-in data, while we condition on the observed
values only (the limit of R's formula as the filled-in variance grows).
On those rows our BLUPs differ from R's by up to 7.0e-5 relative (p53_scor;
dbs_har1 4.9e-5, dbs_diag 2.6e-5, smoking_* 1e-7 to 7e-7).  The rows with
every outcome observed are held to ``PER_ROW``; for the rows with missing
outcomes, :func:`test_missing_outcome_blups` proves with a dense
computation written here that R's numbers are R's filled-in formula and
ours are the exact conditional ones, so the whole difference is R's
approximation.
"""
import numpy as np
import pandas as pd
import pytest

from agreement import reference_psis, results_at_psi
from reference_cases import case
from reference_models import (MULTILEVEL, SINGLE_LEVEL, SMOKING_S,
                              r_style_names)
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.covariance import unvech

CLOSED = dict(rtol=1e-8, atol=0.0)
PER_ROW = dict(rtol=1e-6, atol=1e-10)
CASES = {**SINGLE_LEVEL, **MULTILEVEL}
# R's inputna: a missing variance becomes this times the largest observed
R_INPUT_VARIANCE = 1e4


@pytest.fixture(scope="module")
def at_r_psi():
    """Each case's model, evaluated once at R's Psi."""
    cache = {}

    def get(name):
        if name not in cache:
            model = CASES[name]()
            cache[name] = results_at_psi(
                model, reference_psis(model, case(name).psi))
        return cache[name]
    return get


@pytest.mark.parametrize("name", list(CASES))
def test_gls_at_r_psi_is_rs(at_r_psi, name):
    """Our GLS at R's Psi gives R's coefficients and covariance."""
    ref = case(name)
    res = at_r_psi(name)
    ours = [n.replace(" ", "") for n in
            r_style_names(list(res.model.data.param_names))]
    order = [ours.index(n.replace(" ", "")) for n in ref.coef_names]
    np.testing.assert_allclose(np.asarray(res.params)[order], ref.coef,
                               **CLOSED)
    cov = np.asarray(res.cov_params())[np.ix_(order, order)]
    # the covariance relative to the variances' scale (covariances may be 0)
    scale = np.sqrt(np.outer(np.diag(ref.vcov), np.diag(ref.vcov)))
    np.testing.assert_allclose(cov / scale, ref.vcov / scale, rtol=0,
                               atol=CLOSED["rtol"])


def _complete_rows(ref):
    """Rows with every outcome observed (R's fitted values are NaN at the
    missing ones)."""
    return ~np.isnan(ref.fitted).any(axis=1)


@pytest.mark.parametrize("name", list(CASES))
def test_predictions_at_r_psi_are_rs(at_r_psi, name):
    ref = case(name)
    res = at_r_psi(name)
    np.testing.assert_allclose(res.fittedvalues.values, ref.fitted,
                               equal_nan=True, **PER_ROW)
    np.testing.assert_allclose(res.get_prediction().se.values,
                               ref.predict_se, **PER_ROW)
    values, errors = res.blup(se=True)
    # rows with missing outcomes: test_missing_outcome_blups
    rows = _complete_rows(ref)
    assert rows.all() != (name in MISSING_OUTCOMES)
    np.testing.assert_allclose(values.values[rows], ref.blup[rows],
                               **PER_ROW)
    np.testing.assert_allclose(errors.values[rows], ref.blup_se[rows],
                               **PER_ROW)
    if ref.blup_level1 is not None:
        np.testing.assert_allclose(res.blup(level=1).values[rows],
                                   ref.blup_level1[rows], **PER_ROW)


@pytest.mark.parametrize("name", [n for n in CASES
                                  if case(n).predict_newdata is not None])
def test_new_data_predictions_at_r_psi_are_rs(at_r_psi, name):
    ref = case(name).predict_newdata
    frame = at_r_psi(name).get_prediction(
        pd.DataFrame(ref["newdata"])).summary_frame()
    for ours, theirs in [("mean", "fit"), ("mean_se", "se"),
                         ("mean_ci_lower", "ci_lb"),
                         ("mean_ci_upper", "ci_ub")]:
        np.testing.assert_allclose(frame[ours], ref[theirs], **PER_ROW)


# ------------------------------------------------ rows with missing outcomes


def _smoking():
    data = datasets.load_smoking()
    return (data[["yB", "yC", "yD"]].to_numpy(),
            unvech(data[SMOKING_S].to_numpy(), 3))


def _p53():
    data = datasets.load_p53()
    var = data[["V1", "V2"]].to_numpy()
    cov = 0.95 * np.sqrt(var[:, 0] * var[:, 1])
    S = np.stack([np.c_[var[:, 0], cov], np.c_[cov, var[:, 1]]], axis=1)
    return data[["y1", "y2"]].to_numpy(), S


def _dbs():
    data = datasets.load_dbs()
    times = ["month3", "month6", "month12", "long"]
    var = data[[f"var_{t}" for t in times]].to_numpy()
    S = np.zeros(var.shape + (4,))
    S[:, np.arange(4), np.arange(4)] = var
    return data[[f"eff_{t}" for t in times]].to_numpy(), S


#: the cases with missing outcomes (all intercept-only, one row per group):
#: their outcomes and within-study matrices, NaN where missing, from the
#: shipped data
MISSING_OUTCOMES = {
    **{name: _smoking for name in SINGLE_LEVEL if name.startswith("smoking")},
    "p53_scor": _p53,
    "dbs_diag": _dbs,
    "dbs_har1": _dbs,
}


def _dense_blups(y, S, beta, vcov, psi, fill_variance=None):
    """
    BLUPs and R's standard errors of intercept-only rows, one row at a time:
    ``beta + Psi[:, o] Sigma_oo^-1 (y_o - beta_o)`` and
    ``sqrt(diag(V(beta) + Psi - Psi[:, o] Sigma_oo^-1 Psi[o, :]))`` with
    ``Sigma = S + Psi`` over the observed outcomes ``o`` -- or, with
    ``fill_variance``, R's filled-in version: every outcome used, a missing
    one as 0 with variance ``fill_variance`` times the largest observed
    variance of that outcome and covariances 0.
    """
    k = y.shape[1]
    missing = np.isnan(y)
    if fill_variance is not None:
        largest = np.nanmax(S[:, np.arange(k), np.arange(k)], axis=0)
        S = np.where(np.isnan(S), 0.0, S)
        S[:, np.arange(k), np.arange(k)] += (missing * largest
                                             * fill_variance)
        y, missing = np.where(missing, 0.0, y), np.zeros_like(missing)
    values, errors = np.empty_like(y), np.empty_like(y)
    for i in range(len(y)):
        o = ~missing[i]
        sigma = S[i][np.ix_(o, o)] + psi[np.ix_(o, o)]
        gain = np.linalg.solve(sigma, psi[o, :]).T          # Psi_.o Sigma^-1
        values[i] = beta + gain @ (y[i, o] - beta[o])
        cov = vcov + psi - gain @ psi[o, :]
        errors[i] = np.sqrt(np.diag(cov))
    return values, errors


@pytest.mark.parametrize("name", sorted(MISSING_OUTCOMES))
def test_missing_outcome_blups(at_r_psi, name):
    """
    R's BLUPs are its filled-in formula; ours are the exact conditional
    ones; the two formulas meet as the filled-in variance grows.
    """
    ref = case(name)
    res = at_r_psi(name)
    y, S = MISSING_OUTCOMES[name]()
    assert np.isnan(y).any() and y.shape == ref.blup.shape
    beta, vcov, psi = ref.coef, ref.vcov, reference_psis(res.model,
                                                         ref.psi)[0]
    r_values, r_errors = _dense_blups(y, S, beta, vcov, psi,
                                      fill_variance=R_INPUT_VARIANCE)
    np.testing.assert_allclose(ref.blup, r_values, **PER_ROW)
    np.testing.assert_allclose(ref.blup_se, r_errors, **PER_ROW)
    exact_values, exact_errors = _dense_blups(y, S, beta, vcov, psi)
    values, errors = res.blup(se=True)
    np.testing.assert_allclose(values.values, exact_values, **CLOSED)
    np.testing.assert_allclose(errors.values, exact_errors, **CLOSED)
    # R's approximation error shrinks with the filled-in variance (1/v)
    far_values, _ = _dense_blups(y, S, beta, vcov, psi, fill_variance=1e9)
    gap = np.abs(r_values - exact_values).max()
    assert np.abs(far_values - exact_values).max() < 1e-4 * gap + 1e-12
