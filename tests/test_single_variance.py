"""
Fits whose Psi is a single variance, refined by Newton's method in the
variance (``optimizer.variance_newton``) before statsmodels' Newton
finishes.

The optimum is checked against an independent one-dimensional search of
the same profiled log-likelihood (``scipy.optimize.minimize_scalar``), and
a homogeneous data set must put the variance exactly on its boundary at 0,
where the fit is the fixed-effects fit.
"""
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets


def bcg_arrays(method, slope=False):
    data = datasets.load_bcg()
    exog = np.column_stack([np.ones(len(data)), data["ablat"]])
    kw = {}
    if slope:
        kw = dict(groups=data["trial"], exog_re=data[["ablat"]] / 30)
    return smm.MixMeta(data["logor"].to_numpy(), exog,
                       S=data["logorvar"].to_numpy(), method=method, **kw)


def best_variance(model, upper=10.0):
    """The maximising variance by a bounded scalar search on the same
    objective (independent of the model's optimisers)."""
    lik = model.kernel

    def negative(psi):
        return -lik.loglike((np.array([[psi]]),))

    out = minimize_scalar(negative, bounds=(0.0, upper), method="bounded",
                          options={"xatol": 1e-12})
    return out.x, -out.fun


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("slope", [False, True])
def test_optimum_matches_a_scalar_search(method, slope):
    model = bcg_arrays(method, slope)
    res = model.fit()
    psi, llf = best_variance(model)
    assert res.converged
    assert res.llf >= llf - 1e-10
    np.testing.assert_allclose(res.psi.iloc[0, 0], psi, rtol=1e-6)


def test_homogeneous_studies_put_the_variance_on_zero():
    y = np.array([0.10, 0.12, 0.09, 0.11, 0.10, 0.08])
    v = np.full(6, 0.04)
    x = np.array([0.0, 1.0, 0.0, 1.0, 2.0, 2.0])
    exog = np.column_stack([np.ones(6), x])
    res = smm.MixMeta(y, exog, S=v).fit()
    fixed = smm.MixMeta(y, exog, S=v, method="fixed").fit()
    assert res.converged
    assert res.psi.iloc[0, 0] == 0.0
    np.testing.assert_allclose(res.params, fixed.params, rtol=1e-12)
    np.testing.assert_allclose(res.bse, fixed.bse, rtol=1e-12)
    # REML's slope at zero points into the boundary
    lik = res.model.kernel
    state = lik.evaluate((np.zeros((1, 1)),))
    assert lik.psi_gradient(state)[0][0, 0] < 0
    np.testing.assert_allclose(res.llf, state.llf, rtol=0, atol=1e-12)
