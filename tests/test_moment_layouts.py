"""
The moment estimators (MM, VC) and Cochran's Q on layouts that R mixmeta's
``"mm"``/``"vc"`` do not take: known covariances per group (``addS``) and one
grouping level whose rows report different outcomes (long format).

Each case is the same model as a wide one with ``S`` per row, so the numbers
must agree with the wide fit (which agrees with R) to rounding.
"""
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.covariance import within_cov_from_input
from statsmodels_mixmeta.kernels.moments import (method_of_moments,
                                                 variance_components)

RTOL = 1e-10

SMOKING_S = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]


def berkey_wide():
    data = datasets.load_berkey98()
    S = within_cov_from_input(
        data[["var_PD", "cov_PD_AL", "var_AL"]].to_numpy(), 2)
    exog = pd.DataFrame({"Intercept": 1.0, "year": data.pubyear - 1983})
    return data[["PD", "AL"]], exog, S


def smoking_wide():
    data = datasets.load_smoking()
    S = within_cov_from_input(data[SMOKING_S].to_numpy(), 3)
    return data[["yB", "yC", "yD"]], None, S


def long_format(endog, S):
    """One row per observed (study, outcome), grouped by study, with the
    observed block of each study's S as its addS matrix."""
    rows, blocks = [], {}
    for i, (label, values) in enumerate(endog.iterrows()):
        observed = np.flatnonzero(values.notna().to_numpy())
        for j in observed:
            rows.append({"study": label, "outcome": endog.columns[j],
                         "y": values.iloc[j]})
        blocks[label] = S[i][np.ix_(observed, observed)]
    return pd.DataFrame(rows), blocks


def fit_pair(method, build, **options):
    endog, exog, S = build()
    wide = smm.MixMeta(endog, exog, S=S, method=method, **options).fit()
    observed = endog.notna().to_numpy()
    blocks = [S[i][np.ix_(o, o)] for i, o in enumerate(observed)]
    per_row = smm.MixMeta(endog, exog, method=method, addS=blocks,
                          **options).fit()
    return wide, per_row


@pytest.mark.parametrize("method", ["mm", "vc"])
@pytest.mark.parametrize("build", [berkey_wide, smoking_wide])
def test_addS_per_row_equals_S(method, build):
    # addS with each row's own matrix is the S form, value for value
    endog, exog, S = build()
    wide, per_row = fit_pair(method, build)
    assert_allclose(per_row.psi.values, wide.psi.values, rtol=RTOL)
    assert_allclose(per_row.params, wide.params, rtol=RTOL)
    assert_allclose(per_row.bse, wide.bse, rtol=RTOL)
    # and both are the array estimators' numbers
    X = np.ones((len(endog), 1)) if exog is None else exog.to_numpy()
    y = endog.to_numpy()
    expected = (method_of_moments(y, X, S) if method == "mm"
                else variance_components(y, X, S)[0])
    assert_allclose(wide.psi.values, expected, rtol=RTOL)


def test_unadjusted_vc_with_addS_equals_S():
    wide, per_row = fit_pair("vc", berkey_wide, vc_adjust=False)
    assert_allclose(per_row.psi.values, wide.psi.values, rtol=RTOL)
    y, X, S = (berkey_wide()[0].to_numpy(), berkey_wide()[1].to_numpy(),
               berkey_wide()[2])
    assert_allclose(wide.psi.values,
                    variance_components(y, X, S, adjust=False)[0], rtol=RTOL)


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_long_format_with_addS_equals_wide(method):
    # smoking has missing outcomes: the long layout gives each study only
    # the outcomes it reports, with its block of S as addS
    endog, _, S = smoking_wide()
    wide = smm.MixMeta(endog, None, S=S, method=method).fit()
    data, blocks = long_format(endog, S)
    long = smm.mixmeta("y ~ 0 + outcome", data=data,
                       random="~ 0 + outcome | study", addS=blocks,
                       method=method).fit()
    assert_allclose(long.psi.values, wide.psi.values, rtol=RTOL)
    assert_allclose(np.asarray(long.params), np.asarray(wide.params),
                    rtol=RTOL)
    assert_allclose(np.asarray(long.bse), np.asarray(wide.bse), rtol=RTOL)


def test_q_test_with_addS_equals_S():
    # the overall Q and the per-outcome Q's (R has no per-outcome Q with
    # addSlist; here from the diagonal of the group matrices)
    for build in (berkey_wide, smoking_wide):
        wide, per_row = fit_pair("mm", build)
        q_wide, q_add = wide.q_test(), per_row.q_test()
        assert q_add.names == q_wide.names
        assert_allclose(q_add.statistic, q_wide.statistic, rtol=RTOL)
        assert np.array_equal(q_add.df, q_wide.df)
    endog, _, S = berkey_wide()
    data, blocks = long_format(endog, S)
    long = smm.mixmeta("y ~ 0 + outcome", data=data,
                       random="~ 0 + outcome | study", addS=blocks,
                       method="mm").fit()
    q_long = long.q_test()
    wide = smm.MixMeta(endog, None, S=S, method="mm").fit().q_test()
    assert q_long.names == ("overall",)
    assert_allclose(q_long.statistic, wide.statistic[:1], rtol=RTOL)
    assert q_long.df[0] == wide.df[0]


def test_unadjusted_vc_needs_one_effect_per_outcome():
    endog, _, S = berkey_wide()
    data, blocks = long_format(endog, S)
    with pytest.raises(ValueError, match="vc_adjust=False needs one random "
                                         "effect per outcome"):
        smm.mixmeta("y ~ 0 + outcome", data=data,
                    random="~ 0 + outcome | study", addS=blocks,
                    method="vc", vc_adjust=False)


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_random_slopes_are_refused(method):
    endog, _, S = berkey_wide()
    data, blocks = long_format(endog, S)
    data["x"] = np.arange(len(data)) % 3
    with pytest.raises(ValueError, match="not one indicator per value"):
        smm.mixmeta("y ~ 0 + outcome", data=data, random="~ x | study",
                    addS=blocks, method=method)


def test_mm_by_hand_with_addS():
    # k = 1, three groups of one value each given as addS: DerSimonian-Laird
    y = np.array([0.1, 0.3, 0.35, -0.2])
    v = np.array([0.01, 0.02, 0.04, 0.03])
    w = 1 / v
    mean = np.sum(w * y) / w.sum()
    q = np.sum(w * (y - mean) ** 2)
    tau2 = (q - 3) / (w.sum() - np.sum(w ** 2) / w.sum())
    assert tau2 > 0
    res = smm.MixMeta(y, None, method="mm",
                      addS=[np.array([[vi]]) for vi in v]).fit()
    assert_allclose(res.psi.values, [[tau2]], rtol=1e-12)
    assert_allclose(res.q_test().statistic, [q], rtol=1e-12)


def test_q_is_either_kernel_at_psi_zero():
    # the univariate kernel (one value per group) and the batched kernel
    # are the same GLS: both give Q = sum w r^2 at Psi = 0
    data = datasets.load_bcg()
    model = smm.mixmeta("logor ~ ablat", data=data, S="logorvar")
    zero = (np.zeros((1, 1)),)
    fast = model.profiled_likelihood(reml=False).evaluate(zero)
    slow = model.profiled_likelihood(reml=False, batched=True).evaluate(zero)
    q_fast = np.sum(fast.weights * fast.resid ** 2)
    q_slow = sum(np.sum(e ** 2) for e in slow.resid_w)
    q = model.fit().q_test().statistic[0]
    assert_allclose([q_fast, q_slow], [q, q], rtol=1e-12)
    # by hand: weighted least squares on the two columns
    X = np.column_stack([np.ones(len(data)), data.ablat])
    w = 1 / data.logorvar.to_numpy()
    beta = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * data.logor))
    assert_allclose(q, np.sum(w * (data.logor - X @ beta) ** 2), rtol=1e-12)


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_effects_never_together_are_refused_at_construction(method):
    # every study reports one outcome only: no pair of outcomes is ever
    # observed together, so their covariance has no moment
    endog, _, S = berkey_wide()
    endog = endog.copy()
    endog.iloc[:3, 1] = np.nan
    endog.iloc[3:, 0] = np.nan
    with pytest.raises(ValueError, match="outcomes PD and AL are never "
                                         "observed in the same study"):
        smm.MixMeta(endog, None, S=S, method=method)
