"""
Knapp-Hartung / HKSJ (``cov_type="hksj"``,
:mod:`statsmodels_mixmeta.results.hksj`) against hand computation on bcg,
the truncation option, and the models and options it refuses.
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm  # noqa: F401  (registers smf.mixmeta)
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.results import inference


def hand_hksj(y, v, X, tau2, truncate=False):
    """GLS with w = 1 / (v + tau2), s^2 = sum w e^2 / (n - p),
    cov = s^2 (X'WX)^-1."""
    w = 1 / (v + tau2)
    M = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = M @ X.T @ (w * y)
    n, p = X.shape
    s2 = np.sum(w * (y - X @ beta) ** 2) / (n - p)
    if truncate:
        s2 = max(1.0, s2)
    return beta, s2 * M, n - p


@pytest.mark.parametrize("formula", ["logrr ~ 1", "logrr ~ ablat"])
def test_bcg_against_hand_computation(formula):
    data = datasets.load_bcg()
    model = smf.mixmeta(formula, data=data, S="logrrvar")
    tau2 = model.fit().psis[0][0, 0]           # REML, as the hksj fit's
    res = model.fit(cov_type="hksj", use_t=True)
    X = np.column_stack([np.ones(13)] + ([data["ablat"]]
                                         if "ablat" in formula else []))
    beta, cov, df = hand_hksj(data["logrr"].to_numpy(),
                              data["logrrvar"].to_numpy(), X, tau2)
    assert df == 13 - X.shape[1]
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(res.params, beta, rtol=1e-8)
    np.testing.assert_allclose(res.bse, se, rtol=1e-8)
    np.testing.assert_allclose(res.cov_params(), cov, rtol=1e-8)
    np.testing.assert_array_equal(res.df_inference, [df] * X.shape[1])
    np.testing.assert_allclose(
        res.pvalues, 2 * stats.t.sf(abs(beta / se), df), rtol=1e-7)
    q = stats.t.isf(0.025, df)
    np.testing.assert_allclose(
        res.conf_int(), np.column_stack([beta - q * se, beta + q * se]),
        rtol=1e-8)
    # the test of the last coefficient: F = t^2 on (1, n - p)
    f = res.f_test(np.eye(X.shape[1])[-1:])
    np.testing.assert_allclose(f.fvalue, (beta[-1] / se[-1]) ** 2,
                               rtol=1e-8)
    assert (f.df_num, f.df_denom) == (1, df)
    same = model.fit(cov_type="hksj", use_t=True, df_method="residual")
    np.testing.assert_allclose(same.pvalues, res.pvalues, rtol=1e-12)
    assert res._df_rule.name == "knapp-hartung"


def test_bcg_scale_above_one_truncation_changes_nothing():
    data = datasets.load_bcg()
    model = smf.mixmeta("logrr ~ 1", data=data, S="logrrvar")
    res = model.fit(cov_type="hksj", use_t=True)
    truncated = model.fit(cov_type="hksj", use_t=True,
                          cov_kwds={"truncate": True})
    assert res.bse.iloc[0] > model.fit().bse.iloc[0]    # s^2 > 1 here
    np.testing.assert_allclose(truncated.bse, res.bse, rtol=1e-12)


def test_truncation_when_scale_below_one():
    """Estimates closer together than their variances: tau^2 = 0 and
    s^2 = Q / (n - p) < 1; truncation restores the model-based variance."""
    data = pd.DataFrame({"y": [0.10, 0.12, 0.09, 0.11, 0.13, 0.08],
                         "v": [0.02, 0.03, 0.025, 0.04, 0.03, 0.02]})
    model = smf.mixmeta("y ~ 1", data=data, S="v")
    classic = model.fit()
    res = model.fit(cov_type="hksj", use_t=True)
    truncated = model.fit(cov_type="hksj", use_t=True,
                          cov_kwds={"truncate": True})
    beta, cov, df = hand_hksj(data["y"].to_numpy(), data["v"].to_numpy(),
                              np.ones((6, 1)), classic.psis[0][0, 0])
    assert cov[0, 0] < classic.bse.iloc[0] ** 2
    np.testing.assert_allclose(res.bse.iloc[0] ** 2, cov[0, 0], rtol=1e-8)
    np.testing.assert_allclose(truncated.bse, classic.bse, rtol=1e-10)
    assert truncated.cov_kwds["truncate"] is True


@pytest.fixture
def other_df_method():
    inference.DF_METHODS["other"] = inference.DfMethod(
        lambda model, cov_type: None,
        lambda res, cov: inference.DfRule(3.0))
    yield "other"
    del inference.DF_METHODS["other"]


def test_refused_df_method(other_df_method):
    model = smf.mixmeta("logrr ~ 1", data=datasets.load_bcg(), S="logrrvar")
    with pytest.raises(ValueError, match="its own degrees of freedom, n - p;"
                       " df_method='other' does not combine"):
        model.fit(cov_type="hksj", use_t=True, df_method=other_df_method)


def berkey():
    data = datasets.load_berkey98()
    return smf.mixmeta("PD + AL ~ 1", data=data,
                       S=["var_PD", "cov_PD_AL", "var_AL"])


def school():
    data = pd.DataFrame({"y": [0.1, 0.3, 0.2, 0.5, 0.4, 0.2],
                         "v": [0.02] * 6, "g": [1, 1, 2, 2, 3, 3],
                         "s": [1, 2, 3, 4, 5, 6]})
    return data


@pytest.mark.parametrize("make, kwargs, message", [
    (berkey, {}, "has 2 outcomes: use cov_type='cr2'"),
    (lambda: smf.mixmeta("y ~ 1", data=school(), S="v",
                         random="~ 1 | g/s"), {}, "2 grouping levels"),
    (lambda: smf.mixmeta("y ~ 1", data=school(), S="v", random="~ 1 | g"),
     {}, "several values in a group"),
    (lambda: smf.mixmeta("logrr ~ 1", data=datasets.load_bcg(),
                         S="logrrvar"),
     dict(use_t=False), "is a t method"),
    (lambda: smf.mixmeta("logrr ~ 1", data=datasets.load_bcg(),
                         S="logrrvar"),
     dict(cov_kwds={"truncate": "yes"}), "must be True or False"),
    (lambda: smf.mixmeta("logrr ~ 1", data=datasets.load_bcg(),
                         S="logrrvar"),
     dict(cov_kwds={"groups": [1]}), r"takes cov_kwds \['truncate'\]"),
])
def test_refused_before_fitting(make, kwargs, message):
    kwargs = dict(dict(cov_type="hksj", use_t=True), **kwargs)
    with pytest.raises(ValueError, match=message):
        make().fit(**kwargs)
