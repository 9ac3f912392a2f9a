"""
The plots, drawn with matplotlib's Agg backend to PNG files, and checked for
what they show: rows and labels, marker positions, interval endpoints, the
pooled diamond, panels, groups, the dose-response band; and the errors for
bad input.
"""
import pathlib
import runpy
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

import statsmodels.formula.api as smf  # noqa: E402
import statsmodels_mixmeta as smm  # noqa: E402
from statsmodels_mixmeta import datasets  # noqa: E402
from statsmodels_mixmeta.plots import _base  # noqa: E402

Z95 = stats.norm.ppf(0.975)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def bcg():
    return datasets.load_bcg()


@pytest.fixture(scope="module")
def bcg_reml(bcg):
    return smf.mixmeta("logor ~ 1", data=bcg, S="logorvar").fit()


@pytest.fixture(scope="module")
def school_fit():
    school = datasets.load_school()
    return smf.mixmeta("effect ~ 1", data=school, S="var",
                       random="~ 1 | district/study").fit()


@pytest.fixture(scope="module")
def smoking_fit():
    return smf.mixmeta("yB + yC + yD ~ 1", data=datasets.load_smoking(),
                       S=["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]).fit()


@pytest.fixture(scope="module")
def dose_data():
    alcohol = datasets.load_alcohol()
    within = smm.greenland_longnecker_addS(
        alcohol, study="id", cases="cases", n="peryears", log_rr="logrr",
        var_log_rr=alcohol["se"] ** 2, type="type")
    return alcohol.dropna(subset=["se"]), within


def saved(fig, tmp_path, name="plot.png"):
    path = tmp_path / name
    fig.savefig(path, dpi=50)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 2000
    return path


def artist(ax, label):
    """The one artist of ``ax`` labelled ``label``."""
    found = [a for a in ax.get_children() if a.get_label() == label]
    assert len(found) == 1, (label, found)
    return found[0]


def has_artist(ax, label):
    return any(a.get_label() == label for a in ax.get_children())


def segments(collection):
    """``(n, 2, 2)``: each segment's (x, y) ends."""
    return np.asarray(collection.get_segments(), dtype=float)


def tick_texts(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def finite_limits(ax):
    return np.isfinite(ax.get_xlim()).all() and np.isfinite(
        ax.get_ylim()).all()


# ------------------------------------------------------------------ forest
def test_forest_bcg_rows_estimates_intervals(bcg, bcg_reml, tmp_path):
    labels = [f"{a} {y}" for a, y in zip(bcg["author"], bcg["year"])]
    fig = bcg_reml.plot_forest(labels=labels)
    saved(fig, tmp_path)
    (ax,) = fig.axes
    assert tick_texts(ax) == labels + ["Pooled (REML)",
                                       "95% prediction interval"]
    est = artist(ax, "estimates")
    np.testing.assert_allclose(est.get_xdata(), bcg["logor"])
    # rows top-down, each study on its tick
    np.testing.assert_allclose(est.get_ydata(), ax.get_yticks()[:13])
    ends = segments(artist(ax, "study intervals"))
    half = Z95 * np.sqrt(bcg["logorvar"].to_numpy())
    np.testing.assert_allclose(ends[:, 0, 0], bcg["logor"] - half)
    np.testing.assert_allclose(ends[:, 1, 0], bcg["logor"] + half)
    # pooled REML estimate, CI and PI of the BCG trials (metafor:
    # -0.7452 [-1.1098, -0.3806], PI [-1.9412, 0.4508])
    diamond = artist(ax, "pooled")
    x = diamond.get_xy()[:4, 0]
    np.testing.assert_allclose(x, [-1.109786, -0.745178, -0.380570,
                                   -0.745178], atol=2e-6)
    pi = segments(artist(ax, "prediction interval"))[0]
    np.testing.assert_allclose(pi[:, 0], [-1.941203, 0.450847], atol=2e-6)
    assert finite_limits(ax)
    low, high = ax.get_xlim()
    assert low <= (bcg["logor"] - half).min() and high >= 0.450847
    bold = [t.get_text() for t in ax.get_yticklabels()
            if t.get_fontweight() == "bold"]
    assert bold == ["Pooled (REML)", "95% prediction interval"]


def test_forest_annotations_write_the_numbers(bcg_reml):
    (ax,) = bcg_reml.plot_forest(annotate=True).axes
    texts = [a for a in ax.texts if a.get_label() == "annotation"]
    assert len(texts) == 15
    # Aronson 1948: -0.9387 -+ 1.96 sqrt(0.3571)
    assert texts[0].get_text() == "-0.94 [-2.11, 0.23]"
    assert texts[-2].get_text() == "-0.75 [-1.11, -0.38]"
    assert texts[-1].get_text() == "[-1.94, 0.45]"
    np.testing.assert_allclose([t.get_position()[1] for t in texts],
                               ax.get_yticks())


def test_forest_blups_beside_studies(bcg_reml, tmp_path):
    fig = bcg_reml.plot_forest(blup=True, labels="author", refline=0,
                               alpha=0.1)
    saved(fig, tmp_path)
    (ax,) = fig.axes
    frame = bcg_reml.blup(pi=True, alpha=0.1)
    marks = artist(ax, "BLUP")
    np.testing.assert_allclose(marks.get_xdata(), frame["blup"])
    study_y = artist(ax, "estimates").get_ydata()
    np.testing.assert_allclose(marks.get_ydata(), study_y - 0.3)
    ends = segments(artist(ax, "BLUP intervals"))
    np.testing.assert_allclose(ends[:, 0, 0], frame["pi_lower"])
    np.testing.assert_allclose(ends[:, 1, 0], frame["pi_upper"])
    # 90% study intervals and labels from the data's column
    half = stats.norm.ppf(0.95) * np.sqrt(datasets.load_bcg()["logorvar"])
    np.testing.assert_allclose(
        np.diff(segments(artist(ax, "study intervals"))[:, :, 0], axis=1)[
            :, 0], 2 * half)
    assert tick_texts(ax)[:2] == ["Aronson", "Ferguson & Simes"]
    assert tick_texts(ax)[-1] == "90% prediction interval"
    np.testing.assert_allclose(artist(ax, "reference").get_xdata(), [0, 0])


def test_forest_panel_per_outcome_skips_missing(smoking_fit, tmp_path):
    fig = smoking_fit.plot_forest()
    saved(fig, tmp_path)
    smoking = datasets.load_smoking()
    assert len(fig.axes) == 3
    pred = smoking_fit.get_prediction().summary_frame()
    for ax, name in zip(fig.axes, ["yB", "yC", "yD"]):
        reported = smoking[name].dropna()
        assert ax.get_title() == name
        assert tick_texts(ax) == [str(i) for i in reported.index] + [
            "Pooled (REML)", "95% prediction interval"]
        np.testing.assert_allclose(artist(ax, "estimates").get_xdata(),
                                   reported)
        row = pred.xs(name, level=1).iloc[0]
        x = artist(ax, "pooled").get_xy()[:3, 0]
        np.testing.assert_allclose(x, row[["mean_ci_lower", "mean",
                                           "mean_ci_upper"]])
        assert finite_limits(ax)
    # 31 observed values in all
    assert sum(len(artist(ax, "estimates").get_xdata())
               for ax in fig.axes) == 31


def test_forest_one_outcome_of_several_and_axes(smoking_fit):
    fig, ax = plt.subplots()
    out = smoking_fit.plot_forest(ax=ax, outcome="yD")
    assert out is fig and fig.axes == [ax]
    assert ax.get_title() == "yD"
    assert len(artist(ax, "estimates").get_xdata()) == 6
    fig3, axes = plt.subplots(1, 3)
    assert smoking_fit.plot_forest(ax=axes) is fig3
    assert [a.get_title() for a in axes] == ["yB", "yC", "yD"]


def test_forest_groups_by_outer_level(school_fit, tmp_path):
    school = datasets.load_school()
    fig = school_fit.plot_forest(labels="study", blup=True)
    saved(fig, tmp_path)
    (ax,) = fig.axes
    texts = tick_texts(ax)
    districts = sorted(school["district"].unique())
    headers = [t for t in texts if t.startswith("district ")]
    assert headers == [f"district {d}" for d in districts]
    assert len(texts) == 56 + 11 + 2
    # each header is followed by its district's studies, in data order
    for d in districts:
        at = texts.index(f"district {d}")
        members = [str(s) for s in school.loc[school["district"] == d,
                                              "study"]]
        assert texts[at + 1:at + 1 + len(members)] == members
    bold = {t.get_text() for t in ax.get_yticklabels()
            if t.get_fontweight() == "bold"}
    assert set(headers) <= bold
    # the group's BLUP of the outer level on its header row
    outer = school_fit.blup(level=1, pi=True)
    first = school.groupby("district").head(1).index
    marks = artist(ax, "group BLUP")
    np.testing.assert_allclose(marks.get_xdata(), outer.loc[first, "blup"])
    header_y = [y for y, t in zip(ax.get_yticks(), texts)
                if t.startswith("district ")]
    np.testing.assert_allclose(marks.get_ydata(), header_y)


def test_forest_meta_regression_draws_fitted_values(bcg, tmp_path):
    res = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar").fit()
    fig = res.plot_forest()
    saved(fig, tmp_path)
    (ax,) = fig.axes
    assert tick_texts(ax) == [str(i) for i in bcg.index]
    assert not has_artist(ax, "pooled")
    assert not has_artist(ax, "prediction interval")
    shapes = [p.vertices[:4] for p in artist(ax, "fitted values").get_paths()]
    frame = res.get_prediction().summary_frame()
    np.testing.assert_allclose([s[0, 0] for s in shapes],
                               frame["mean_ci_lower"])
    np.testing.assert_allclose([s[1, 0] for s in shapes], frame["mean"])
    np.testing.assert_allclose([s[2, 0] for s in shapes],
                               frame["mean_ci_upper"])
    with pytest.raises(ValueError, match="meta-regression has no single"):
        res.plot_forest(pi=True)


def test_forest_fixed_effects_has_no_prediction_interval(bcg):
    fixed = smf.mixmeta("logor ~ 1", data=bcg, S="logorvar",
                        method="fixed").fit()
    fig = fixed.plot_forest()
    (ax,) = fig.axes
    assert tick_texts(ax)[-1] == "Pooled (FIXED)"
    assert not has_artist(ax, "prediction interval")
    np.testing.assert_allclose(artist(ax, "pooled").get_xy()[1, 0],
                               fixed.params.iloc[0])
    with pytest.raises(ValueError, match=r"fixed-effects fit .* Psi = 0"):
        fixed.plot_forest(pi=True)


def test_forest_bad_input(bcg_reml, smoking_fit):
    with pytest.raises(ValueError, match=r"outcome \['yE'\] unknown.*yB"):
        smoking_fit.plot_forest(outcome="yE")
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="3 panel.*sequence of 3 Axes"):
        smoking_fit.plot_forest(ax=ax)
    with pytest.raises(ValueError, match="ax must be a matplotlib Axes"):
        bcg_reml.plot_forest(ax="left")
    with pytest.raises(ValueError, match="items \\[1\\]"):
        smoking_fit.plot_forest(ax=[ax, fig, ax])
    with pytest.raises(ValueError, match="labels has 2 entries.*13 rows"):
        bcg_reml.plot_forest(labels=["a", "b"])
    with pytest.raises(ValueError, match="'trialname' is not a column"):
        bcg_reml.plot_forest(labels="trialname")
    with pytest.raises(ValueError, match="alpha must lie in"):
        bcg_reml.plot_forest(alpha=5)


# --------------------------------------------------------------- shrinkage
def test_shrinkage_lines_from_observed_to_blup(bcg, bcg_reml, tmp_path):
    fig = bcg_reml.plot_shrinkage()
    saved(fig, tmp_path)
    (ax,) = fig.axes
    ends = segments(artist(ax, "shrinkage"))
    blup = bcg_reml.blup().iloc[:, 0]
    np.testing.assert_allclose(ends[:, 0], np.column_stack(
        [bcg["logor"], np.ones(13)]))
    np.testing.assert_allclose(ends[:, 1], np.column_stack(
        [blup, np.zeros(13)]))
    np.testing.assert_allclose(artist(ax, "pooled estimate").get_xdata(),
                               [bcg_reml.params.iloc[0]] * 2)
    # every BLUP lies between its study's estimate and the pooled mean
    mu = bcg_reml.params.iloc[0]
    assert np.all((blup - mu) * (bcg["logor"] - blup) >= 0)
    assert tick_texts(ax) == ["observed", "BLUP"] and finite_limits(ax)


def test_shrinkage_meta_regression_panels(tmp_path):
    berkey = datasets.load_berkey98().set_index("trial")
    res = smf.mixmeta("PD + AL ~ pubyear", data=berkey,
                      S=["var_PD", "cov_PD_AL", "var_AL"]).fit()
    fig = res.plot_shrinkage()
    saved(fig, tmp_path)
    assert [ax.get_title() for ax in fig.axes] == ["PD", "AL"]
    for ax, name in zip(fig.axes, ["PD", "AL"]):
        np.testing.assert_allclose(artist(ax, "fitted values").get_xdata(),
                                   res.fittedvalues[name])
        np.testing.assert_allclose(segments(artist(ax, "shrinkage"))[:, 1, 0],
                                   res.blup()[name])
        assert not has_artist(ax, "pooled estimate")


def test_shrinkage_to_the_outer_level(school_fit):
    school = datasets.load_school()
    (ax,) = school_fit.plot_shrinkage(level=1).axes
    ends = segments(artist(ax, "shrinkage"))
    np.testing.assert_allclose(ends[:, 0, 0], school["effect"])
    np.testing.assert_allclose(ends[:, 1, 0],
                               school_fit.blup(level=1).iloc[:, 0])
    # the district BLUPs are shared by the district's studies
    assert len(np.unique(np.round(ends[:, 1, 0], 12))) == 11


def test_shrinkage_refuses_fixed_effects(bcg):
    fixed = smf.mixmeta("logor ~ 1", data=bcg, S="logorvar",
                        method="fixed").fit()
    with pytest.raises(ValueError, match="no random effects"):
        fixed.plot_shrinkage()


# ----------------------------------------------------------- dose-response
def band_limits(collection, grid):
    """Lower and upper edge of a fill_between band at each grid point."""
    xy = collection.get_paths()[0].vertices
    lower = [xy[np.isclose(xy[:, 0], g), 1].min() for g in grid]
    upper = [xy[np.isclose(xy[:, 0], g), 1].max() for g in grid]
    return np.array(lower), np.array(upper)


def test_dose_response_band_is_the_prediction_interval(dose_data, tmp_path):
    doses, within = dose_data
    spline = "bs(dose, knots=[20], degree=2, lower_bound=0, upper_bound=70)"
    curve = smf.mixmeta(f"logrr ~ 0 + {spline}", data=doses, addS=within,
                        random=f"~ 0 + {spline} | id", bscov="diag",
                        method="ml").fit()
    grid = np.linspace(0, 70, 36)
    fig = curve.plot_dose_response("dose", grid=grid)
    saved(fig, tmp_path)
    (ax,) = fig.axes
    frame = curve.get_prediction(pd.DataFrame({"dose": grid})).summary_frame()
    line = artist(ax, "pooled curve")
    np.testing.assert_allclose(line.get_xdata(), grid)
    np.testing.assert_allclose(line.get_ydata(), frame["mean"])
    lower, upper = band_limits(artist(ax, "confidence band"), grid)
    np.testing.assert_allclose(lower, frame["mean_ci_lower"], atol=1e-12)
    np.testing.assert_allclose(upper, frame["mean_ci_upper"], atol=1e-12)
    assert finite_limits(ax) and ax.get_xlabel() == "dose"
    # on the ratio scale, with the studies' BLUP curves and estimates
    fig = curve.plot_dose_response("dose", grid=grid, exp=True,
                                   studies=True, reference=0)
    (ax,) = fig.axes
    np.testing.assert_allclose(artist(ax, "pooled curve").get_ydata(),
                               np.exp(frame["mean"]), rtol=1e-10)
    assert len(artist(ax, "study curves").get_segments()) == 8
    np.testing.assert_allclose(artist(ax, "observed").get_ydata(),
                               np.exp(doses["logrr"]))


def test_dose_response_linear_relative_to_reference(dose_data):
    doses, within = dose_data
    linear = smf.mixmeta("logrr ~ 0 + dose", data=doses, addS=within,
                         random="~ 0 + dose | id", method="ml").fit()
    grid = np.array([0.0, 10.0, 25.0, 60.0])
    fig = linear.plot_dose_response("dose", grid=grid, reference=10,
                                    studies=True, alpha=0.1)
    (ax,) = fig.axes
    beta, se = linear.params.iloc[0], linear.bse.iloc[0]
    np.testing.assert_allclose(artist(ax, "pooled curve").get_ydata(),
                               beta * (grid - 10))
    lower, upper = band_limits(artist(ax, "confidence band"), grid)
    half = stats.norm.ppf(0.95) * se * np.abs(grid - 10)
    np.testing.assert_allclose(lower, beta * (grid - 10) - half, atol=1e-14)
    np.testing.assert_allclose(upper, beta * (grid - 10) + half, atol=1e-14)
    np.testing.assert_allclose(artist(ax, "reference dose").get_xdata(),
                               [10, 10])
    # each study's curve has the slope of its BLUP (blup = dose * slope)
    blup = linear.blup().iloc[:, 0] / doses["dose"]
    slopes = blup.groupby(doses["id"]).first()
    for line, slope in zip(artist(ax, "study curves").get_segments(),
                           slopes):
        np.testing.assert_allclose(line[:, 1], slope * (line[:, 0] - 10),
                                   atol=1e-12)
    # the default grid spans the doses used
    ax = linear.plot_dose_response("dose").axes[0]
    xs = artist(ax, "pooled curve").get_xdata()
    assert xs[0] == doses["dose"].min() and xs[-1] == doses["dose"].max()


def test_dose_response_bad_input(dose_data, bcg_reml, smoking_fit):
    doses, within = dose_data
    linear = smf.mixmeta("logrr ~ 0 + dose", data=doses, addS=within,
                         random="~ 0 + dose | id", method="fixed").fit()
    with pytest.raises(ValueError, match="'dosage' is not a column"):
        linear.plot_dose_response("dosage")
    with pytest.raises(ValueError, match="random effects are on the fixed"):
        linear.plot_dose_response("dose", studies=True)
    with pytest.raises(ValueError, match="draws one outcome"):
        smoking_fit.plot_dose_response("yB")
    arrays = smm.MixMeta(doses["logrr"].to_numpy(),
                         doses[["dose"]].to_numpy(),
                         S=doses["se"].to_numpy() ** 2).fit()
    with pytest.raises(ValueError, match="needs a model fitted from a "
                                         "formula"):
        arrays.plot_dose_response("dose")
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="needs one Axes; got 2"):
        linear.plot_dose_response("dose", ax=axes)


# -------------------------------------------------------------------- base
def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"statsmodels-mixmeta\[plot\]"):
        _base.import_pyplot()


# --------------------------------------------------------- README figures
def png_size(path):
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24],
                                                               "big")


def test_docs_script_draws_the_readme_figures(tmp_path):
    root = pathlib.Path(__file__).resolve().parent.parent
    script = runpy.run_path(str(root / "docs" / "make_figures.py"),
                            run_name="make_figures")
    paths = script["main"](tmp_path)
    assert [p.name for p in paths] == ["bcg_forest.png",
                                       "two_stage_forest.png"]
    for path in paths:
        assert png_size(path) in [(720, 500), (720, 460)]
        assert 10_000 < path.stat().st_size < 300_000
    # README shows the figures the script writes, and they are committed
    readme = (root / "README.rst").read_text(encoding="utf-8")
    for path in paths:
        assert f".. image:: docs/images/{path.name}" in readme
        committed = root / "docs" / "images" / path.name
        assert png_size(committed) == png_size(path)
