"""
The analytic derivatives the optimisers rely on, and the kernels under them.

The score and the observed Hessian of the profiled (restricted)
log-likelihood are checked against central differences of the
log-likelihood and of the score, away from the optimum (where a wrong
gradient cannot hide behind a zero), for the vectorised univariate kernel
and the batched one, several Psi structures and a nested model.  The
univariate kernel must also give the batched kernel's log-likelihood,
gradient, expected information and Hessian on the same data.  Every Psi
structure x {ML, REML} x {one level, nested, addS, missing outcomes} is in
test_derivatives_grid.py.
"""
import numpy as np
import pytest
import statsmodels.formula.api as smf
from statsmodels.tools.numdiff import approx_fprime

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.kernels.likelihood import inverse_lower
from statsmodels_mixmeta.kernels.univariate import UnivariateLikelihood

SMOKING_S = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]
NUMERIC = dict(rtol=2e-5, atol=1e-6)        # central differences
SAME = dict(rtol=1e-9, atol=1e-10)          # two kernels, one quantity


def bcg_model(method, **kw):
    return smf.mixmeta("logor ~ ablat", data=datasets.load_bcg(),
                       S="logorvar", method=method, **kw)


def slope_model(method):
    """One value per study with a random slope: Sigma_i = v_i + z_i^2 psi."""
    data = datasets.load_bcg()
    return smm.MixMeta(data["logor"], data[["ablat"]].assign(one=1.0),
                       S=data["logorvar"], method=method,
                       groups=data["trial"], exog_re=data[["ablat"]] / 30)


def smoking_model(bscov):
    return smf.mixmeta("yB + yC + yD ~ 1", data=datasets.load_smoking(),
                       S=SMOKING_S, bscov=bscov)


def school_model(method):
    return smf.mixmeta("effect ~ 1", data=datasets.load_school(), S="var",
                       random="~ 1 | district/study", method=method)


MODELS = {
    "bcg_reml": lambda: bcg_model("reml"),
    "bcg_ml": lambda: bcg_model("ml"),
    "slope_reml": lambda: slope_model("reml"),
    "slope_ml": lambda: slope_model("ml"),
    "smoking_unstr": lambda: smoking_model("unstr"),
    "smoking_cs": lambda: smoking_model("cs"),
    "smoking_hcs": lambda: smoking_model("hcs"),
    "smoking_ar1": lambda: smoking_model("ar1"),
    "school_reml": lambda: school_model("reml"),
    "school_ml": lambda: school_model("ml"),
}


def off_optimum(model):
    """A point near, but not at, the starting values."""
    theta = model.start_params()
    return theta + 0.1 * np.where(theta >= 0, 1.0, -1.0) * \
        np.maximum(np.abs(theta), 0.1)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_score_is_the_gradient_of_loglike(name):
    model = MODELS[name]()
    theta = off_optimum(model)
    numeric = approx_fprime(theta, model.loglike, centered=True).ravel()
    np.testing.assert_allclose(model.score(theta), numeric, **NUMERIC)
    assert np.abs(numeric).max() > 1e-3       # the check has a slope to see


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hessian_is_the_jacobian_of_score(name):
    model = MODELS[name]()
    theta = off_optimum(model)
    numeric = approx_fprime(theta, model.score, centered=True)
    numeric = (numeric + numeric.T) / 2
    np.testing.assert_allclose(model.hessian(theta), numeric, **NUMERIC)


@pytest.mark.parametrize("name", ["bcg_reml", "bcg_ml", "slope_reml",
                                  "slope_ml"])
def test_univariate_kernel_equals_batched(name):
    model = MODELS[name]()
    assert isinstance(model.objective, UnivariateLikelihood)
    batched = model.profiled_likelihood(batched=True)
    theta = off_optimum(model)
    psis, jacs = model.psis(theta), model.psi_jacobians(theta)
    fast, slow = model.objective.evaluate(psis), batched.evaluate(psis)
    np.testing.assert_allclose(fast.llf, slow.llf, **SAME)
    np.testing.assert_allclose(fast.beta, slow.beta, **SAME)
    np.testing.assert_allclose(fast.cov_beta, slow.cov_beta, **SAME)
    np.testing.assert_allclose(model.objective.psi_gradient(fast)[0],
                               batched.psi_gradient(slow)[0], **SAME)
    np.testing.assert_allclose(model.objective.information(fast, jacs),
                               batched.information(slow, jacs), **SAME)
    np.testing.assert_allclose(model.objective.hessian(fast, jacs),
                               batched.hessian(slow, jacs), **SAME)


@pytest.mark.parametrize("n", [1, 5, 8, 9, 30, 47])
def test_inverse_lower_is_the_inverse(n):
    rng = np.random.default_rng(n)
    A = rng.normal(size=(6, n, n))
    chol = np.linalg.cholesky(A @ np.swapaxes(A, 1, 2) + n * np.eye(n))
    inverse = inverse_lower(chol)
    np.testing.assert_allclose(inverse @ chol, np.broadcast_to(np.eye(n),
                                                               chol.shape),
                               atol=1e-12)
    np.testing.assert_array_equal(np.triu(inverse, 1), 0.0)


def test_loglike_is_smooth_with_collinear_predictors():
    """
    An intercept beside calendar years (1979-1983) makes X'WX nearly
    singular (condition 5e12); the kernels work in a well-conditioned basis,
    so the log-likelihood moves smoothly at the scale of rounding, and the
    optimisers can resolve its maximum.
    """
    model = smf.mixmeta("PD + AL ~ pubyear", data=datasets.load_berkey98(),
                        S=["var_PD", "cov_PD_AL", "var_AL"])
    theta = model.start_params()
    rng = np.random.default_rng(0)
    llf, score = model.loglike(theta), model.score(theta)
    shifts = 1e-13 * rng.standard_normal((20, theta.size))
    noise = [model.loglike(theta + d) - llf - score @ d for d in shifts]
    assert np.abs(noise).max() < 1e-12
    step = 1e-6 * np.abs(theta)
    numeric = [(model.loglike(theta + h * e) - model.loglike(theta - h * e))
               / (2 * h) for h, e in zip(step, np.eye(theta.size))]
    np.testing.assert_allclose(model.score(theta), numeric, rtol=1e-5,
                               atol=1e-7)
