"""
The methods issues 10 and 11 added to the results (Psi intervals, profiles,
leave-one-out, influence, small-sample and robust inference, forest plots)
give the same numbers on a model built from arrays as on the same model
built from a formula: univariate (bcg), multivariate (berkey98) and
multilevel (school, two nested levels).
"""
import matplotlib
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]


def bcg():
    data = datasets.load_bcg()
    formula = smf.mixmeta("logor ~ ablat", data=data, S="logorvar")
    arrays = smm.MixMeta(data["logor"].to_numpy(),
                         np.c_[np.ones(len(data)), data["ablat"]],
                         S=data["logorvar"].to_numpy())
    return formula, arrays


def berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    formula = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S)
    arrays = smm.MixMeta(data[["PD", "AL"]].to_numpy(),
                         np.c_[np.ones(len(data)), data["year"]],
                         S=data[BERKEY_S].to_numpy())
    return formula, arrays


def school():
    data = datasets.load_school()
    formula = smf.mixmeta("effect ~ year", data=data, S="var",
                          random="~ 1 | district/study")
    arrays = smm.MixMeta(data["effect"].to_numpy(),
                         np.c_[np.ones(len(data)), data["year"]],
                         S=data["var"].to_numpy(),
                         groups=data[["district", "study"]].to_numpy())
    return formula, arrays


MODELS = {"bcg": bcg, "berkey": berkey, "school": school}
CLOSE = dict(rtol=1e-8, atol=1e-10)


def values(frame):
    return np.asarray(pd.DataFrame(frame).select_dtypes("number"),
                      dtype=float)


@pytest.fixture(scope="module", params=sorted(MODELS))
def pair(request):
    formula, arrays = MODELS[request.param]()
    return request.param, formula.fit(), arrays.fit()


def test_psi_intervals_and_profiles(pair):
    name, f, a = pair
    for method in ("wald", "profile"):
        np.testing.assert_allclose(values(a.conf_int_psi(method=method)),
                                   values(f.conf_int_psi(method=method)),
                                   **CLOSE)
    grid = [0.5 * float(np.diag(f.psis[0])[0]),
            float(np.diag(f.psis[0])[0])]
    np.testing.assert_allclose(values(a.profile_loglike(0, grid)),
                               values(f.profile_loglike(0, grid)), **CLOSE)


def test_leave_one_out_and_influence(pair):
    name, f, a = pair
    np.testing.assert_allclose(values(a.leave_one_out()),
                               values(f.leave_one_out()), rtol=1e-6,
                               atol=1e-8)
    fi = f.get_influence().summary_frame()
    ai = a.get_influence().summary_frame()
    assert fi.shape == ai.shape and len(fi) == f.n_groups
    np.testing.assert_allclose(values(ai), values(fi), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kw", [
    dict(use_t=True, df_method="kenward-roger"),
    dict(use_t=True, df_method="satterthwaite"),
    dict(use_t=True, df_method="containment"),
    dict(cov_type="cr2", use_t=True),
    dict(cov_type="cr0"),
])
def test_small_sample_inference(pair, kw):
    name, _, _ = pair
    formula, arrays = MODELS[name]()
    f, a = formula.fit(**kw), arrays.fit(**kw)
    np.testing.assert_allclose(np.asarray(a.bse), np.asarray(f.bse),
                               **CLOSE)
    np.testing.assert_allclose(np.asarray(a.pvalues),
                               np.asarray(f.pvalues), **CLOSE)
    if f.use_t:
        np.testing.assert_allclose(a.df_inference, f.df_inference, **CLOSE)
    # a joint test of every slope
    L = np.zeros((f.model.n_outcomes, len(f.params)))
    p = len(f.params) // f.model.n_outcomes
    for o in range(f.model.n_outcomes):
        L[o, o * p + 1] = 1
    fw, aw = f.wald_test(L, scalar=True), a.wald_test(L, scalar=True)
    np.testing.assert_allclose(aw.statistic, fw.statistic, **CLOSE)
    np.testing.assert_allclose(aw.pvalue, fw.pvalue, **CLOSE)


def test_forest_plot_rows(pair, tmp_path):
    name, f, a = pair
    figs = [f.plot_forest(), a.plot_forest()]
    ticks = []
    for fig in figs:
        fig.savefig(tmp_path / "forest.png")
        ticks.append([len(ax.get_yticks()) for ax in fig.axes])
        plt.close(fig)
    assert ticks[0] == ticks[1]
    # one row per observed value of each outcome at least
    n_rows = f.model.design.endog.shape[0]
    assert min(ticks[0]) >= n_rows - np.isnan(
        f.model.design.endog).sum(axis=0).max()
