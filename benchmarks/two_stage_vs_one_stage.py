"""
Two-stage pooling against a one-stage mixed model over repeated simulations
(issue 10, "Next to a one-stage model").

    python benchmarks/two_stage_vs_one_stage.py [--replications 200]
                                                [--seed 2026]

Each replication draws Gaussian data from ``n_sites = 20`` sites with
``n_i`` rows each (``n_i`` uniform on 20..60) and a random intercept and
slope,

    y_ij = (1.0 + a_i) + (0.5 + b_i) x_ij + e_ij,   x_ij ~ N(0, 1),
    (a_i, b_i) ~ N(0, Psi),  Psi = [[0.5, 0.1], [0.1, 0.2]],  e_ij ~ N(0, 1),

and fits it twice:

* two-stage: OLS ``y ~ x`` in each site (first stage), then a bivariate
  REML MixMeta ``~ 1`` (``bscov="unstr"``) of the two coefficients with the
  OLS ``cov_params()`` as within-site covariance;
* one-stage: statsmodels ``MixedLM.from_formula("y ~ x", groups="site",
  re_formula="~x")``, REML.

It reports, for each estimator, the bias and the spread (SD over
replications) of the pooled slope and of the slope's between-site variance
``Psi[x, x]`` (MixedLM: ``cov_re``), the mean of the reported standard
errors of the slope, and the coverage of the slope's 95% Wald interval.
Writes ``benchmarks/results/two_stage_vs_one_stage.json``.  Not a timing:
the figures are statistical, quoted by README's "Two-stage or one-stage?"
section; ``tests/test_two_stage_vs_one_stage.py`` runs 20 replications
through the same functions.
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import statsmodels.formula.api as smf  # noqa: E402
import statsmodels_mixmeta as smm  # noqa: E402

TRUE_BETA = np.array([1.0, 0.5])
TRUE_PSI = np.array([[0.5, 0.1], [0.1, 0.2]])
N_SITES = 20
ROWS = (20, 60)


def simulate_sites(rng, n_sites=N_SITES, rows=ROWS, beta=TRUE_BETA,
                   psi=TRUE_PSI, sigma=1.0):
    """One data set: ``site``, ``x``, ``y`` for ``n_sites`` sites with a
    random intercept and slope (see the module docstring)."""
    effects = rng.multivariate_normal(beta, psi, size=n_sites)
    sizes = rng.integers(rows[0], rows[1] + 1, size=n_sites)
    site = np.repeat([f"site{i:02d}" for i in range(n_sites)], sizes)
    x = rng.normal(size=sizes.sum())
    a, b = np.repeat(effects, sizes, axis=0).T
    y = a + b * x + sigma * rng.normal(size=sizes.sum())
    return pd.DataFrame({"site": site, "x": x, "y": y})


def first_stage(data):
    """The first stage: OLS ``y ~ x`` per site, through ``smm.two_stage``."""
    return smm.two_stage(data, "site", lambda rows: smf.ols(
        "y ~ x", data=rows).fit(), params=["Intercept", "x"])


def fit_mixedlm(data):
    """MixedLM by REML with its default optimiser; refitted by L-BFGS when
    that did not converge (it stops at a wrong ``cov_re`` in about 1 data
    set in 15 of this design).  Returns (results, default converged)."""
    model = smf.mixedlm("y ~ x", data, groups="site", re_formula="~x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = model.fit(reml=True)
        if one.converged:
            return one, True
        return model.fit(reml=True, method=["lbfgs"]), False


def fit_both(data):
    """The two fits of one data set: (two-stage REML results, MixedLM
    results, whether MixedLM's default optimiser converged)."""
    two = first_stage(data).fit("~ 1", method="reml", bscov="unstr")
    one, default_converged = fit_mixedlm(data)
    return two, one, default_converged


def replication(data):
    """The figures of one replication, from the side-by-side table."""
    two, one, default_converged = fit_both(data)
    table = smm.side_by_side(two, one, names=["two_stage", "mixedlm"])
    out = {}
    for name in table.names:
        out[f"{name}_slope"] = table.params.loc["x", name]
        out[f"{name}_slope_se"] = table.bse.loc["x", name]
        out[f"{name}_psi_slope"] = table.between.loc["Var(x)", name]
    out["mixedlm_converged"] = bool(one.converged)
    out["mixedlm_default_converged"] = default_converged
    out["two_stage_converged"] = bool(two.converged)
    return out


def run(replications, seed):
    """``replications`` data sets from one seed; one row of figures each."""
    rng = np.random.default_rng(seed)
    rows = [replication(simulate_sites(rng)) for _ in range(replications)]
    return pd.DataFrame(rows)


def summarise(frame, beta=TRUE_BETA, psi=TRUE_PSI, level=0.95):
    """Bias, SD, mean reported SE and interval coverage of each estimator:
    a dict by estimator."""
    from scipy import stats
    z = stats.norm.ppf(0.5 + level / 2)
    out = {}
    for name in ("two_stage", "mixedlm"):
        slope = frame[f"{name}_slope"]
        se = frame[f"{name}_slope_se"]
        var = frame[f"{name}_psi_slope"]
        covered = (slope - z * se <= beta[1]) & (beta[1] <= slope + z * se)
        out[name] = {
            "slope_bias": float(slope.mean() - beta[1]),
            "slope_sd": float(slope.std(ddof=1)),
            "slope_mean_se": float(se.mean()),
            "slope_coverage": float(covered.mean()),
            "psi_slope_bias": float(var.mean() - psi[1, 1]),
            "psi_slope_sd": float(var.std(ddof=1)),
            "psi_slope_zero": float((var < 1e-8).mean()),
        }
    difference = frame["two_stage_slope"] - frame["mixedlm_slope"]
    out["difference"] = {
        "slope_mean_abs_in_se": float(
            (difference.abs() / frame["mixedlm_slope_se"]).mean()),
        "slope_max_abs_in_se": float(
            (difference.abs() / frame["mixedlm_slope_se"]).max()),
        "psi_slope_correlation": float(np.corrcoef(
            frame["two_stage_psi_slope"], frame["mixedlm_psi_slope"])[0, 1]),
    }
    out["not_converged"] = {
        "two_stage": int((~frame["two_stage_converged"]).sum()),
        "mixedlm": int((~frame["mixedlm_converged"]).sum()),
        "mixedlm_default_optimiser": int(
            (~frame["mixedlm_default_converged"]).sum()),
    }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", default=str(
        Path(__file__).resolve().parent / "results"
        / "two_stage_vs_one_stage.json"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    frame = run(args.replications, args.seed)
    report = {
        "design": {"n_sites": N_SITES, "rows_per_site": list(ROWS),
                   "beta": TRUE_BETA.tolist(), "psi": TRUE_PSI.tolist(),
                   "sigma": 1.0},
        "replications": args.replications, "seed": args.seed,
        "summary": summarise(frame),
        "seconds": time.perf_counter() - start,
    }
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    return report


if __name__ == "__main__":
    main()
