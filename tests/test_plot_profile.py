"""
The profile log-likelihood plot (``res.plot_profile``,
:mod:`statsmodels_mixmeta.plots.profile`), drawn to PNG with Agg and
checked for what was drawn: one panel per parameter, the curve's points
equal to ``profile_loglike``, the cut-off line at ``llf - chi2_1/2``, the
maximum and the profile interval.
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
from scipy import stats  # noqa: E402

from statsmodels_mixmeta import datasets  # noqa: E402
from statsmodels_mixmeta.plots.profile import plot_profile  # noqa: E402


@pytest.fixture(scope="module")
def hyp_cs():
    data = datasets.load_hyp()
    data["sbp_var"] = data["sbp_se"] ** 2
    data["dbp_var"] = data["dbp_se"] ** 2
    data["sd_cov"] = data["rho"] * data["sbp_se"] * data["dbp_se"]
    return smf.mixmeta("sbp + dbp ~ 1", data=data,
                       S=["sbp_var", "sd_cov", "dbp_var"], bscov="cs").fit()


def _check_panel(ax, res, name, alpha=0.05):
    profile = res.profile_loglike(name)
    ci = res.conf_int_psi(alpha=alpha, method="profile").loc[name]
    curve, cutoff, maximum = ax.lines[:3]
    np.testing.assert_allclose(curve.get_xdata(), profile["value"])
    np.testing.assert_allclose(curve.get_ydata(), profile["llf"])
    expected = res.llf - stats.chi2.ppf(1 - alpha, 1) / 2
    np.testing.assert_allclose(cutoff.get_ydata(), [expected, expected])
    assert maximum.get_xdata()[0] == pytest.approx(ci["estimate"])
    assert maximum.get_ydata()[0] == pytest.approx(res.llf, abs=1e-10)
    span = ax.patches[0]
    assert span.get_x() == pytest.approx(ci["lower"])
    assert span.get_x() + span.get_width() == pytest.approx(ci["upper"])
    assert ax.get_xlabel() == name
    low, high = ax.get_ylim()
    assert np.isfinite([low, high]).all() and low < expected < res.llf < high


def test_plot_profile_variances_by_default(hyp_cs, tmp_path):
    fig = hyp_cs.plot_profile()
    path = tmp_path / "profile.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    assert len(fig.axes) == 1              # cs: one variance
    _check_panel(fig.axes[0], hyp_cs, "var")
    plt.close(fig)


def test_plot_profile_named_params_into_given_axes(hyp_cs, tmp_path):
    fig, axes = plt.subplots(1, 2)
    out = hyp_cs.plot_profile(params=["var", "rho"], ax=axes)
    assert out is fig
    fig.savefig(tmp_path / "two.png")
    _check_panel(axes[0], hyp_cs, "var")
    _check_panel(axes[1], hyp_cs, "rho")
    plt.close(fig)


def test_plot_profile_multilevel_panel_per_level(tmp_path):
    school = datasets.load_school()
    res = smf.mixmeta("effect ~ 1", data=school, S="var",
                      random="~ 1 | district/study").fit()
    fig = res.plot_profile(alpha=0.1)
    fig.savefig(tmp_path / "levels.png")
    assert [ax.get_title() for ax in fig.axes] == [
        "district:var[Intercept]", "study:var[Intercept]"]
    cutoff = res.llf - stats.chi2.ppf(0.9, 1) / 2
    for ax in fig.axes:
        assert ax.lines[1].get_ydata()[0] == pytest.approx(cutoff)
    plt.close(fig)


def test_plot_profile_grid_and_errors(hyp_cs):
    fig = hyp_cs.plot_profile(params="rho", grid=[-0.5, 0.0, 0.5, 0.9])
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(),
                               [-0.5, 0.0, 0.5, 0.9])
    plt.close(fig)
    with pytest.raises(ValueError, match="grid is for one parameter"):
        hyp_cs.plot_profile(params=["var", "rho"], grid=[0.1, 0.2])
    with pytest.raises(ValueError, match="valid names are"):
        hyp_cs.plot_profile(params="tau")
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="needs a sequence of 2 Axes"):
        hyp_cs.plot_profile(params=["var", "rho"], ax=ax)
    plt.close(fig)
    with pytest.raises(ValueError, match=r"panel 0 lacks \['cutoff'"):
        plot_profile([dict(name="v", value=[0, 1], llf=[0, 1], estimate=0,
                           llf_max=1, lower=0, upper=1)])
