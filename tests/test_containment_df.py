"""
Containment degrees of freedom (metafor's ``rma.mv(dfs="contain")``, the
rule of :mod:`statsmodels_mixmeta.results.df_methods`) counted by hand on
designs whose grouping is written here.
"""
import numpy as np
import pytest
from scipy import stats

from statsmodels_mixmeta import datasets
import statsmodels.formula.api as smf

from test_kenward_roger import two_level


def test_outer_and_inner_containment_counted_by_hand():
    # k = 3 outcomes, 6 outer groups of 3 studies; x varies between the
    # studies of an outer group, so the inner level (18 studies, 54
    # study-outcome cells) contains it; the intercepts are contained by
    # the outer groups (18 group-outcome cells); p = 6.
    res = two_level().fit(use_t=True, df_method="containment")
    names = list(res.params.index)
    expected = [18 - 6 if name.endswith("Intercept") else 54 - 6
                for name in names]
    np.testing.assert_array_equal(res.df_inference, expected)
    t = res.params / res.bse
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(abs(t), expected),
                               rtol=1e-12)
    # a joint test takes the smallest df of the coefficients it involves
    L = np.eye(len(names))[[0, 1]]
    assert float(res.f_test(L).df_denom) == min(expected[0], expected[1])
    slopes = [i for i, n in enumerate(names) if n.endswith(":x")]
    assert float(res.f_test(np.eye(len(names))[slopes]).df_denom) == 48
    # the covariance is the cov type's, unchanged
    np.testing.assert_allclose(res.cov_params(),
                               two_level().fit().cov_params(), rtol=1e-12)


def test_outer_moderator_is_contained_by_the_outer_groups():
    model = two_level(n_outer=5)
    data = model.data.frame.copy()
    data["z"] = data["outer"] % 2 + 0.5 * (data["outer"] == 4)
    res = smf.mixmeta("y0 + y1 + y2 ~ z", data=data,
                      S=list(model.data.frame.columns[
                          model.data.frame.columns.str.startswith("s")]),
                      random="~ 1 | outer/inner", bscov="cs").fit(
        use_t=True, df_method="containment")
    # every coefficient constant within the 5 outer groups: 15 - 6
    np.testing.assert_array_equal(res.df_inference, [9.0] * 6)


def test_table6_design_gives_3m_minus_3():
    model = two_level(n_outer=10, n_inner=2)
    data = model.data.frame
    s_cols = [c for c in data.columns if c.startswith("s")]
    res = smf.mixmeta("y0 + y1 + y2 ~ 1", data=data, S=s_cols,
                      random="~ 1 | outer/inner", bscov="cs").fit(
        use_t=True, df_method="containment")
    np.testing.assert_array_equal(res.df_inference, [27.0] * 3)


def test_without_groups_containment_is_the_residual_df():
    bcg = datasets.load_bcg()
    model = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar")
    res = model.fit(use_t=True, df_method="containment")
    np.testing.assert_array_equal(res.df_inference, [11.0, 11.0])
    assert res._results._df_rule.name == "containment"
