"""
Restarts (issue 13): what they cost on each workload, and how many fits they
put right.

    python benchmarks/restarts.py cost [--repeats 15] [--only NAME ...]
    python benchmarks/restarts.py univariate [--problems 20000]

``cost`` times each workload's whole fit with the restarts and without them
(``MixMeta._restart`` replaced by the identity: the schedule of commit
7b22027), alternating the two so that both see the same load, and reports the
medians and their difference.

``univariate`` fits the problems of the issue one by one through
``MixMeta(y, ones, S=v).fit()`` (20 studies, v ~ Gamma(2, rate 20),
tau2 ~ U(0, 0.1), y = 0.1 + N(0, tau2) + N(0, v); problem ``s`` drawn from
``numpy.random.default_rng(s)``), REML and ML, with and without restarts,
and counts the fits more than 1e-8 below the best point of a fine grid
(0, then 4,000 points evenly in log tau2 from 1e-7 to 10), or below the
certified maximum of :func:`statsmodels_mixmeta.kernels.variance_scan.
global_maximum`.
"""
import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import designs, workloads  # noqa: E402
import statsmodels_mixmeta as smm  # noqa: E402
from statsmodels_mixmeta.kernels import variance_scan as vs  # noqa: E402

FINE_GRID = np.concatenate([[0.0], np.geomspace(1e-7, 10.0, 4000)])
_WITH = smm.MixMeta._restart


def _without(self, objective, theta, retvals, refit):
    return theta, retvals


def restarts_on(on):
    smm.MixMeta._restart = _WITH if on else _without


def cost(repeats, only):
    print(f"{'workload':26s} {'without':>11s} {'with':>11s} {'cost':>10s}"
          f" {'%':>7s}   (medians; fastest calls: without, with)")
    for w in workloads.WORKLOADS:
        if w.section == workloads.DERIVED or (only and w.name not in only):
            continue
        call = workloads.fit_call(w, designs.PROBLEMS[w.problem]())
        n = max(3, repeats // 5) if "1000000" in w.name else repeats
        times = {True: [], False: []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for on in (True, False):
                restarts_on(on)
                call()
            for _ in range(n):
                for on in (False, True):
                    restarts_on(on)
                    start = time.perf_counter()
                    call()
                    times[on].append(time.perf_counter() - start)
        restarts_on(True)
        a, b = statistics.median(times[False]), statistics.median(times[True])
        print(f"{w.name:26s} {a * 1e3:9.2f}ms {b * 1e3:9.2f}ms "
              f"{(b - a) * 1e3:8.2f}ms {100 * (b - a) / a:6.1f}%   "
              f"{min(times[False]) * 1e3:.2f}ms {min(times[True]) * 1e3:.2f}ms",
              flush=True)


def simulate(seed, n=20):
    rng = np.random.default_rng(seed)
    v = rng.gamma(2.0, 1 / 20, n)
    tau2 = rng.uniform(0, 0.1)
    y = 0.1 + rng.normal(0, np.sqrt(tau2), n) + rng.normal(0, np.sqrt(v))
    return y, v


def univariate(n_problems):
    data = [simulate(s) for s in range(n_problems)]
    y = np.array([d[0] for d in data])
    v = np.array([d[1] for d in data])
    for method in ("reml", "ml"):
        problems = vs.Problems(y, v, np.ones((20, 1)), reml=method == "reml")
        tau2 = np.broadcast_to(FINE_GRID, (n_problems, FINE_GRID.size))
        grid = vs.loglike_from_terms(
            problems, vs.profile_terms(problems, tau2)).max(axis=1)
        _, certified, gap, _ = vs.global_maximum(problems, tol=1e-10)
        for on in (False, True):
            restarts_on(on)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                llf = np.array([
                    smm.MixMeta(a, np.ones(20), S=b, method=method).fit().llf
                    for a, b in data])
            seconds = time.perf_counter() - start
            below_grid = np.flatnonzero(llf < grid - 1e-8)
            below_max = np.flatnonzero(llf < certified - 1e-8)
            print(f"{method:4s} restarts {'on ' if on else 'off'}: "
                  f"{below_grid.size} of {n_problems} fits more than 1e-8 "
                  f"below the fine grid (largest shortfall "
                  f"{max((grid - llf).max(), 0):.4g}), {below_max.size} "
                  f"below the certified maximum (gap <= {gap.max():.1e}); "
                  f"{seconds:.1f} s; seeds {below_grid[:30].tolist()}",
                  flush=True)
        restarts_on(True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("what", choices=["cost", "univariate"])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", action="append")
    parser.add_argument("--problems", type=int, default=20000)
    args = parser.parse_args()
    if args.what == "cost":
        cost(args.repeats, args.only)
    else:
        univariate(args.problems)


if __name__ == "__main__":
    main()
