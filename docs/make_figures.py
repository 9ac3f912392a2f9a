"""
Draw the figures that README.rst shows, from the package's own data and
code (nothing is drawn by hand):

* ``bcg_forest.png``: the forest plot of the random-effects (REML)
  meta-analysis of the 13 BCG vaccine trials, ``logor ~ 1``;
* ``two_stage_forest.png``: the forest plot of a two-stage analysis: a
  Poisson regression of daily counts on an intervention indicator (with a
  site-specific trend) in each of 12 simulated sites, the intervention's
  log rate ratio pooled by REML (``smm.two_stage``).

Run from the repository root::

    python docs/make_figures.py            # writes docs/images/*.png
    python docs/make_figures.py OUTDIR     # writes OUTDIR/*.png

``tests/test_plots.py`` runs it into a temporary directory.
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # the repository's package, as Sphinx's conf.py

import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402

import statsmodels_mixmeta as smm  # noqa: E402
from statsmodels_mixmeta import datasets  # noqa: E402

IMAGES = ROOT / "docs" / "images"
DPI = 100


def bcg_forest(path):
    """The BCG trials: study log odds ratios, pooled REML estimate, PI."""
    bcg = datasets.load_bcg()
    meta = smf.mixmeta("logor ~ 1", data=bcg, S="logorvar").fit()
    labels = [f"{author} ({year})"
              for author, year in zip(bcg["author"], bcg["year"])]
    fig = meta.plot_forest(labels=labels, refline=0, annotate=True,
                           figsize=(7.2, 5.0))
    fig.axes[0].set_xlabel("log odds ratio of tuberculosis, BCG vs control")
    fig.suptitle("BCG vaccine trials, random-effects meta-analysis (REML)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def simulated_sites(n_sites=12, n_days=200, seed=20261207):
    """Daily counts in ``n_sites`` sites: a site-specific baseline and trend
    and an intervention from day 100 whose log rate ratio varies by site
    around -0.2 (standard deviation 0.1)."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_sites):        # a script building example data
        day = np.arange(n_days)
        after = (day >= n_days // 2).astype(float)
        log_mu = (rng.normal(2.0, 0.5) + rng.normal(0, 0.002) * day
                  + rng.normal(-0.2, 0.1) * after)
        frames.append(pd.DataFrame({
            "site": f"site {s + 1:02d}", "day": day / n_days,
            "after": after, "count": rng.poisson(np.exp(log_mu))}))
    return pd.concat(frames, ignore_index=True)


def fit_site(frame):
    """First stage: Poisson regression of one site's counts."""
    return smf.glm("count ~ day + after", data=frame,
                   family=sm.families.Poisson()).fit()


def two_stage_forest(path):
    """Two-stage pooling of the sites' intervention log rate ratios."""
    data = simulated_sites()
    first = smm.two_stage(data, "site", fit_site, ["after"])
    pooled = first.fit("~ 1", method="reml")
    fig = pooled.plot_forest(refline=0, annotate=True, figsize=(7.2, 4.6))
    fig.axes[0].set_xlabel("log rate ratio after the intervention")
    fig.suptitle("Two-stage analysis: Poisson regression per site, "
                 "pooled by REML", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main(outdir=IMAGES):
    """Write the figures to ``outdir``; returns their paths."""
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = [outdir / "bcg_forest.png", outdir / "two_stage_forest.png"]
    bcg_forest(paths[0])
    two_stage_forest(paths[1])
    return paths


if __name__ == "__main__":
    for written in main(*sys.argv[1:2]):
        print(written)
