"""
The 24 multilevel, longitudinal and dose-response reference cases of R
mixmeta 1.2.1 (cases with ``random=`` or within-group matrices, and the wide
dbs and thrombolytic fixed-effects cases that go with them).

Agreement follows tests/README.md (applied by tests/agreement.py). Where R
stops early (the reference README lists gliomas_diag, gliomas_har1S_*,
gliomas_slope_ml and dbs_har1), our fit matches R's tight refit, or, where
even that did not converge, reaches a higher optimum; in thrombolytic's
two-level models a variance sits on its boundary at zero, which we reach
exactly while R stops at 1e-12 to 1e-9, so our log-likelihood is up to
1.3e-5 higher with Psi equal to R's within 1e-5. The agreement helpers prove
in each case that our objective, evaluated at R's own Psi, gives R's
log-likelihood; per-row values are checked at R's Psi in
tests/test_reference_at_psi.py.
"""
import numpy as np
import pandas as pd
import pytest

from agreement import FitCache, assert_estimates, assert_loglike
from reference_cases import case
from reference_models import (MULTILEVEL, _dbs_long, _gliomas,
                              har1_within_cov, r_style_names,
                              reference_addS)
import statsmodels.formula.api as smf

BLUP_TOL = dict(rtol=1e-3, atol=1e-5)


@pytest.fixture(scope="module")
def fits():
    return FitCache(MULTILEVEL)


@pytest.mark.parametrize("name", list(MULTILEVEL))
def test_estimates(fits, name):
    ref = case(name)
    res = fits(name)
    assert res.converged
    ours = sorted(n.replace(" ", "") for n in
                  r_style_names(list(res.model.data.param_names)))
    assert ours == sorted(n.replace(" ", "") for n in ref.coef_names)
    assert res.n_groups == ref.dim["m"]
    assert res.nobs == ref.dim["n"] * ref.dim["k"] - np.isnan(
        ref.fitted).sum()
    assert_estimates(res, ref, name)


@pytest.mark.parametrize("name", list(MULTILEVEL))
def test_loglike_aic_bic(fits, name):
    ref = case(name)
    res = fits(name)
    assert_loglike(res, ref)


@pytest.mark.parametrize("name", list(MULTILEVEL))
def test_heterogeneity(fits, name):
    ref = case(name)
    res = fits(name)
    q = res.q_test()
    np.testing.assert_allclose(q.statistic, ref.qtest.Q, rtol=1e-8)
    np.testing.assert_allclose(q.df, ref.qtest.df)
    np.testing.assert_allclose(res.i2.values, ref.i2, rtol=1e-8, atol=1e-12)


#: Where R's answer is not the optimum: R stopped early (the reference
#: README's list), or left a variance at 1e-9 to 1e-12 that our optimum puts
#: on its boundary at 0 (a higher log-likelihood).  Our per-row values
#: follow our Psi, which differs from R's by what test_estimates allows; the
#: function itself is held to 1e-6 at R's own Psi in
#: test_reference_at_psi.py, for these cases as for all others.
R_BELOW_OPTIMUM = [n for n in MULTILEVEL if case(n).early_stop] + [
    "thrombolytic_reml_2level_reg", "thrombolytic_reml_2level_inv"]
AT_OPTIMUM = [n for n in MULTILEVEL if n not in R_BELOW_OPTIMUM]


def _r_best(ref):
    return max(ref.logLik, ref.tight.logLik if ref.tight else -np.inf)


@pytest.mark.parametrize("name", R_BELOW_OPTIMUM)
def test_r_below_optimum(fits, name):
    """The list above is honest: R's answer is below ours."""
    ref = case(name)
    res = fits(name)
    assert ref.early_stop or res.llf > _r_best(ref) + 1e-6


@pytest.mark.parametrize("name", AT_OPTIMUM)
def test_fitted_and_blup(fits, name):
    """
    Where R reached the optimum, the per-row values of our fit are R's to
    Psi's tolerance.
    """
    ref = case(name)
    res = fits(name)
    assert res.llf <= _r_best(ref) + 1e-6
    np.testing.assert_allclose(res.fittedvalues.values, ref.fitted,
                               equal_nan=True, **BLUP_TOL)
    np.testing.assert_allclose(res.get_prediction().se.values,
                               ref.predict_se, **BLUP_TOL)
    values, errors = res.blup(se=True)
    np.testing.assert_allclose(values.values, ref.blup, **BLUP_TOL)
    np.testing.assert_allclose(errors.values, ref.blup_se, **BLUP_TOL)


MULTILEVEL_BLUP1 = [n for n in MULTILEVEL if case(n).blup_level1 is not None]


@pytest.mark.parametrize("name", MULTILEVEL_BLUP1)
def test_blup_outer_level(fits, name):
    ref = case(name)
    res = fits(name)
    if name in AT_OPTIMUM:
        np.testing.assert_allclose(res.blup(level=1).values,
                                   ref.blup_level1, **BLUP_TOL)
    # the innermost BLUPs are the default
    pd.testing.assert_frame_equal(res.blup(), res.blup(level=2))


def test_alcohol_prediction_at_new_dose(fits):
    ref = case("alcohol_lin").predict_newdata
    frame = fits("alcohol_lin").get_prediction(
        pd.DataFrame({"dose": [12.0]})).summary_frame()
    np.testing.assert_allclose(frame["mean"], ref["fit"], rtol=1e-6)
    np.testing.assert_allclose(frame["mean_se"], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(frame["mean_ci_lower"], ref["ci_lb"],
                               rtol=1e-6)
    np.testing.assert_allclose(frame["mean_ci_upper"], ref["ci_ub"],
                               rtol=1e-6)


@pytest.mark.parametrize("name, group, time, variance, rho, data", [
    ("gliomas_har1S_diag", "study", "time", "logORvar", 0.61, _gliomas),
    ("dbs_long_har1S", "author", "time", "var", 0.97, _dbs_long),
])
def test_within_group_matrices_built_here_equal_r(name, group, time,
                                                  variance, rho, data):
    """The heterogeneous AR(1) matrices we build equal those R was given."""
    ours = har1_within_cov(data(), group, time, variance, rho)
    theirs = reference_addS(name)
    theirs = (theirs.values() if isinstance(theirs, dict) else theirs)
    for mine, given in zip(ours.values(), theirs):
        np.testing.assert_allclose(mine, given, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, formula, random, kwargs, data", [
    ("gliomas_har1S_unstr", "logOR ~ 0 + C(time)", "~ 0 + C(time) | study",
     dict(bscov="unstr"), _gliomas),
    ("dbs_long_har1S", "eff ~ 0 + C(time)", "~ 0 + C(time) | author",
     dict(bscov="har1"), _dbs_long),
])
def test_addS_from_r_matrices(name, formula, random, kwargs, data):
    """The second route: R's own matrices (in sorted group order, as a
    list) give R's fit."""
    # R stored its matrices with gliomas_har1S_diag; the unstr fit used the
    # same ones
    given = reference_addS(name if name != "gliomas_har1S_unstr"
                           else "gliomas_har1S_diag")
    given = list(given.values()) if isinstance(given, dict) else given
    res = smf.mixmeta(formula, data=data(), addS=given, random=random,
                      **kwargs).fit()
    ref = case(name)
    assert_estimates(res, ref, name)
    assert_loglike(res, ref)
