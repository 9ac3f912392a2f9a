"""
The seam every small-sample method plugs into
(:mod:`statsmodels_mixmeta.results.inference`): a cov type gives the
covariance of beta, a df rule the degrees of freedom of each t contrast and
of joint F tests; ``pvalues``, ``conf_int``, ``t_test``, ``wald_test`` and
``f_test`` all go through it.  The default rule reproduces statsmodels'
``df_resid`` arithmetic; a rule with per-contrast df (written here by hand)
reaches every test.
"""
import numpy as np
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm  # noqa: F401  (registers smf.mixmeta)
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.results import inference

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]


def berkey_model():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S)


def test_residual_rule_is_statsmodels_df_resid():
    res = berkey_model().fit(use_t=True)
    assert res.df_method is None and res._df_rule.name == "residual"
    np.testing.assert_array_equal(res.df_inference, [6.0] * 4)
    t = res.params / res.bse
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(abs(t), 6),
                               rtol=1e-12)
    q = stats.t.isf(0.025, 6)
    np.testing.assert_allclose(
        res.conf_int(), np.column_stack([res.params - q * res.bse,
                                         res.params + q * res.bse]),
        rtol=1e-12)
    tt = res.t_test("PD:year - AL:year = 0")
    assert float(tt.df_denom) == 6
    # same numbers as naming df_method="residual"
    same = berkey_model().fit(use_t=True, df_method="residual")
    np.testing.assert_allclose(same.pvalues, res.pvalues, rtol=1e-14)
    # the covariance is the model-based one, not replaced
    assert not hasattr(res, "cov_params_default")
    np.testing.assert_allclose(res.cov_params(), res._state.cov_beta,
                               rtol=0, atol=0)


def test_normal_references_without_use_t():
    res = berkey_model().fit()
    assert res.df_inference is None
    np.testing.assert_allclose(
        res.pvalues, 2 * stats.norm.sf(abs(res.params / res.bse)),
        rtol=1e-12)
    wald = res.wald_test("PD:year = 0, AL:year = 0", scalar=True)
    assert wald.distribution == "chi2"


class _ByRowRule(inference.DfRule):
    """A hand rule: contrast r has df 3 + r (rows counted in L), the joint
    F on 5 denominator df, to see each test use it."""
    name = "by-row"

    def __init__(self):
        super().__init__(np.nan)

    def t_df(self, L):
        return 3.0 + np.arange(np.atleast_2d(L).shape[0])

    def f_test(self, L, q, beta, cov):
        stat, j, _ = super().f_test(L, q, beta, cov)
        return stat, j, 5.0


@pytest.fixture
def by_row_method():
    inference.DF_METHODS["by-row"] = inference.DfMethod(
        lambda model, cov_type: None, lambda res, cov: _ByRowRule())
    yield "by-row"
    del inference.DF_METHODS["by-row"]


def test_a_rule_reaches_every_test(by_row_method):
    res = berkey_model().fit(use_t=True, df_method=by_row_method)
    np.testing.assert_array_equal(res.df_inference, [3, 4, 5, 6])
    t = np.asarray(res.params / res.bse)
    np.testing.assert_allclose(
        res.pvalues, 2 * stats.t.sf(abs(t), [3, 4, 5, 6]), rtol=1e-12)
    q = stats.t.isf(0.05, [3, 4, 5, 6])
    ci = np.asarray(res.conf_int(alpha=0.1))
    np.testing.assert_allclose(ci[:, 1] - res.params, q * res.bse,
                               rtol=1e-12)
    tt = res.t_test("PD:year = 0, AL:year = 0")
    np.testing.assert_array_equal(tt.df_denom, [3, 4])
    np.testing.assert_allclose(
        np.ravel(tt.pvalue), 2 * stats.t.sf(abs(np.ravel(tt.tvalue)), [3, 4]),
        rtol=1e-12)
    f = res.f_test("PD:year = 0, AL:year = 0")
    L = np.zeros((2, 4))
    L[0, 1] = L[1, 3] = 1
    b = np.asarray(res.params)
    V = np.asarray(res.cov_params())
    F = b @ L.T @ np.linalg.solve(L @ V @ L.T, L @ b) / 2
    np.testing.assert_allclose(f.fvalue, F, rtol=1e-10)
    assert (f.df_num, f.df_denom) == (2, 5)
    np.testing.assert_allclose(f.pvalue, stats.f.sf(F, 2, 5), rtol=1e-10)
    assert res.wald_test("PD:year = 0, AL:year = 0",
                         scalar=True).df_denom == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(cov_type="sandwich"), "unknown cov_type='sandwich'; valid"),
    (dict(use_t=True, df_method="welch"), "unknown df_method='welch'"),
    (dict(df_method="residual"), "pass use_t=True"),
    (dict(cov_kwds=[1]), "cov_kwds must be a dict"),
    (dict(cov_kwds={"groups": [1]}), "takes no cov_kwds"),
])
def test_bad_inference_options_refused_before_fitting(kwargs, message):
    model = berkey_model()
    with pytest.raises(ValueError, match=message):
        model.fit(**kwargs)
