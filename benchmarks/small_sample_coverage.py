"""
Coverage of 95% confidence intervals of the fixed effects with m = 10
groups: the scenarios of the reference paper's Table 6 (Sera et al. 2019),
measured for every small-sample method of the package on the same data
sets.  Not a test (it takes minutes); the CI-sized check is
``tests/test_small_sample_coverage.py``.

Design (Table 6, as ``benchmarks/designs.py``'s ``nested_cs``): k = 3
outcomes, intercepts only (true beta = 0), two nested levels
``random="~ 1 | outer/inner"`` with compound-symmetry Psi at both (REML),
m = 10 outer groups of 10 inner groups (one study each).  Outer and inner
Psi have variance 1 and the scenario's between-outcome correlation;
within-study variances are uniform on (0.1, 2), drawn once per scenario.
Factors:

* between-outcome correlation of Psi: 0 or 0.8 (the paper's factor);
* within-study correlation (our second factor): 0 or 0.8 (the paper's
  value), which changes how much the outcomes borrow from each other.

Intervals, all from one REML fit per data set:

* ``wald_z``: ``b -+ z se``, se from ``(X' Sigma^-1 X)^-1``;
* ``t_m-1``: the same se with t on m - 1 = 9 df;
* ``containment``: t on metafor's containment df (3m - 3 = 27);
* ``satterthwaite``: model-based se, t on Satterthwaite df;
* ``kenward_roger``: Kenward-Roger adjusted se, t on its df;
* ``cr2_t``: the CR2 cluster-robust covariance with its own t df, when
  the package has ``cov_type="cr2"`` (computed from the same fit through
  the inference seam).

Coverage is reported for beta_1 (the first outcome's intercept, as the
paper) and pooled over the three intercepts, each with its Monte-Carlo
standard error (binomial for beta_1; from the per-data-set rates for the
pooled one), plus the median df.  Results go to
``benchmarks/results/coverage.json``.

Usage::

    python benchmarks/small_sample_coverage.py               # 2,000 data sets per scenario
    python benchmarks/small_sample_coverage.py --quick       # 200
    python benchmarks/small_sample_coverage.py --n-sim 500 --jobs 4
"""
import argparse
import json
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import statsmodels.formula.api as smf  # noqa: E402
from scipy import stats  # noqa: E402

import statsmodels_mixmeta as smm  # noqa: E402
from statsmodels_mixmeta.model import MixMeta  # noqa: E402
from statsmodels_mixmeta.results import inference  # noqa: E402

N_OUTER, N_INNER, K = 10, 10, 3
TAU2 = (1.0, 1.0)
WITHIN_VAR = (0.1, 2.0)
SCENARIOS = [(rho, within) for rho in (0.0, 0.8) for within in (0.0, 0.8)]
HERE = os.path.dirname(os.path.abspath(__file__))


def design(rho, within_corr, seed):
    rng = np.random.default_rng(seed)
    n = N_OUTER * N_INNER
    data = pd.DataFrame({"outer": np.repeat(np.arange(N_OUTER), N_INNER),
                         "inner": np.tile(np.arange(N_INNER), N_OUTER)})
    v = rng.uniform(*WITHIN_VAR, size=(n, K))
    s_cols = []
    for a in range(K):
        for b in range(a, K):
            data[f"s{a}{b}"] = (v[:, a] if a == b else
                                within_corr * np.sqrt(v[:, a] * v[:, b]))
            s_cols.append(f"s{a}{b}")
    for a in range(K):
        data[f"y{a}"] = 0.0
    model = smf.mixmeta(" + ".join(f"y{a}" for a in range(K)) + " ~ 1",
                        data=data, S=s_cols, random="~ 1 | outer/inner",
                        bscov="cs")
    cs = (1 - rho) * np.eye(K) + rho * np.ones((K, K))
    return model, data, s_cols, [TAU2[0] * cs, TAU2[1] * cs]


def one_data_set(model, y):
    """Hits (method -> (K,) bool) and df (method -> (K,)) of one fit."""
    fit = MixMeta.from_design(model.design.with_endog(y), bscov="cs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit.fit(use_t=True, df_method="kenward-roger")._results
    beta = np.asarray(res.params)
    se0 = np.sqrt(np.diag(res._state.cov_beta))
    eye = np.eye(len(beta))
    sat_df = inference.DF_METHODS["satterthwaite"].build(res, None).t_df(eye)
    cont_df = inference.DF_METHODS["containment"].build(res, None).t_df(eye)
    out = {
        "wald_z": (se0, np.inf),
        "t_m-1": (se0, np.full(len(beta), N_OUTER - 1.0)),
        "containment": (se0, cont_df),
        "satterthwaite": (se0, sat_df),
        "kenward_roger": (np.asarray(res.bse), res.df_inference),
    }
    if "cr2" in inference.COV_TYPES:
        cr2 = inference.COV_TYPES["cr2"]
        cov, rule = cr2.build(res, cr2.check(res.model, {}))
        df = rule.t_df(eye) if rule is not None else np.full(
            len(beta), res.df_resid)
        out["cr2_t"] = (np.sqrt(np.diag(cov)), df)
    hits, dfs = {}, {}
    for name, (se, df) in out.items():
        q = (stats.norm.isf(0.025) if np.all(np.isinf(df))
             else stats.t.isf(0.025, df))
        hits[name] = np.abs(beta) < q * se
        dfs[name] = np.broadcast_to(np.asarray(df, float), beta.shape)
    return hits, dfs


def run_chunk(args):
    rho, within_corr, seed, start, stop, n_sim = args
    model, data, s_cols, psi = design(rho, within_corr, seed)
    draws = smm.simulate(np.zeros((len(data), K)),
                         S=data[s_cols].to_numpy(), psi=psi,
                         random="~ 1 | outer/inner", data=data, nsim=n_sim,
                         seed=seed + 1)
    return [one_data_set(model, y) for y in draws[start:stop]]


def summarise(results):
    names = list(results[0][0])
    out = {}
    for name in names:
        hits = np.array([h[name] for h, _ in results], dtype=float)
        dfs = np.array([d[name] for _, d in results], dtype=float)
        n = len(hits)
        first = hits[:, 0].mean()
        pooled = hits.mean(axis=1)
        out[name] = {
            "coverage_beta1": first,
            "mc_se_beta1": float(np.sqrt(first * (1 - first) / n)),
            "coverage_pooled": float(pooled.mean()),
            "mc_se_pooled": float(pooled.std(ddof=1) / np.sqrt(n)),
            "median_df_beta1": float(np.median(dfs[:, 0])),
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--n-sim", type=int, default=2000)
    parser.add_argument("--quick", action="store_true",
                        help="200 data sets per scenario")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--output", default=os.path.join(
        HERE, "results", "coverage.json"))
    args = parser.parse_args(argv)
    n_sim = 200 if args.quick else args.n_sim
    report = {"design": {"k": K, "m": N_OUTER, "inner_per_outer": N_INNER,
                         "psi_variances": TAU2,
                         "within_variances_uniform": WITHIN_VAR,
                         "method": "REML",
                         "n_sim": n_sim},
              "python": platform.python_version(), "scenarios": []}
    start_time = time.time()
    for i, (rho, within_corr) in enumerate(SCENARIOS):
        seed = 1000 * (i + 1)
        edges = np.linspace(0, n_sim, args.jobs * 4 + 1).astype(int)
        chunks = [(rho, within_corr, seed, a, b, n_sim)
                  for a, b in zip(edges[:-1], edges[1:]) if b > a]
        t0 = time.time()
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                parts = list(pool.map(run_chunk, chunks))
        else:
            parts = [run_chunk(c) for c in chunks]
        results = [r for part in parts for r in part]
        entry = {"between_outcome_corr": rho, "within_corr": within_corr,
                 "seed": seed, "seconds": round(time.time() - t0, 1),
                 "coverage": summarise(results)}
        report["scenarios"].append(entry)
        print(f"rho={rho} within_corr={within_corr}: " + ", ".join(
            f"{k} {v['coverage_beta1']:.3f}"
            for k, v in entry["coverage"].items()), flush=True)
        write(report, start_time, args.output)   # after every scenario
    print(f"written {args.output}")


def write(report, start_time, path):
    report["seconds"] = round(time.time() - start_time, 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
