"""
What ``summary()`` says about small-sample inference (covariance type,
reference distribution, df; a df column when the df differ), and the df of
prediction and BLUP intervals under a df rule.
"""
import numpy as np
from scipy import stats

from test_kenward_roger import berkey
from test_summary import _block, _header


def test_summary_header_with_normal_reference():
    head = _header(berkey().fit().summary().as_text())
    assert head["Covariance type:"] == "nonrobust"
    assert head["Reference:"] == "normal (z)"
    assert "Df:" not in head and "Df method:" not in head


def test_summary_with_one_df():
    text = berkey().fit(use_t=True).summary().as_text()
    head = _header(text)
    assert head["Reference:"] == "t"
    assert head["Df method:"] == "residual"
    assert head["Df:"] == "6"
    assert "t tests and intervals with 6 degrees of freedom" in \
        " ".join(text.split())
    # no df column when all coefficients share one df
    assert len(_block(text, "PD", ["Intercept", "year"])["year"]) == 6


def test_summary_with_kenward_roger_df_column():
    res = berkey().fit(use_t=True, df_method="kenward-roger")
    text = res.summary().as_text()
    head = _header(text)
    df = np.asarray(res.df_inference)
    assert head["Df method:"] == "kenward-roger"
    assert head["Df:"] == f"{df.min():.2f} to {df.max():.2f}"
    rows = _block(text, "AL", ["Intercept", "year"])
    for row, j in zip(rows.values(), [2, 3]):
        coef, se, t, dfj, p = map(float, row[:5])
        assert abs(dfj - df[j]) <= 0.005
        assert abs(se - res.bse.iloc[j]) <= 5e-5     # the adjusted se
        assert abs(p - 2 * stats.t.sf(abs(t), df[j])) <= 2e-3
    flat = " ".join(text.split())
    assert "adjusted by the kenward-roger rule" in flat
    assert "Roger's approximation per coefficient" in flat


def test_prediction_and_blup_intervals_use_each_contrasts_df():
    res = berkey().fit(use_t=True, df_method="kenward-roger")
    rule = res._results._df_rule
    x = np.asarray(res.model.design.exog)
    frame = res.get_prediction().summary_frame()
    blups = res.blup(pi=True)
    for n in (0, 3):
        for j, outcome in enumerate(["PD", "AL"]):
            L = np.zeros(4)
            L[2 * j:2 * j + 2] = x[n]
            df = rule.t_df(L[None])[0]
            q = stats.t.isf(0.025, df)
            row = frame.loc[(n, outcome)]
            var = L @ np.asarray(res.cov_params()) @ L
            np.testing.assert_allclose(row["mean_se"], np.sqrt(var),
                                       rtol=1e-10)
            np.testing.assert_allclose(row["mean_ci_upper"],
                                       row["mean"] + q * np.sqrt(var),
                                       rtol=1e-10)
            b = blups.loc[(n, outcome)]
            np.testing.assert_allclose(b["pi_upper"],
                                       b["blup"] + q * b["pi_se"], rtol=1e-10)
    # the residual rule keeps one df, df_resid
    plain = berkey().fit(use_t=True).get_prediction()
    assert plain.df == 6.0
