"""
Leave-one-out and influence diagnostics (issue 11): what they cost.

    python benchmarks/influence.py [--repeats 3] [--problem NAME ...]

For each problem (100 outer groups by default), fits the model once from the
data as a user does (formula + ``fit()``, timed: "one full fit"), then times

* ``res.leave_one_out()``: every outer group left out in turn, refitted
  through ``design.subset`` from the fit's ``theta``
  (target: under 20 x one full fit);
* ``res.get_influence().summary_frame()`` on top of those refits (the
  diagnostics themselves);
* for reference, 100 fits from scratch of the data without a group (formula
  + ``fit()`` each; timed once).

Each is repeated ``--repeats`` times (the refits' cache cleared in between)
and the median reported, wall time and this process's CPU time (less
sensitive to other load on the machine); the ratio to one full fit is
reported for both.  Writes ``benchmarks/results/influence.json``.

Problems: ``metareg_100`` (univariate meta-regression ``y ~ x1 + x2 + x3``,
100 studies, REML: the single-variance path with its certified scan),
``nested_cs_100`` (k = 3 outcomes, ``random="~ 1 | outer/inner"``, cs Psi
at both levels, 100 outer groups of 10 inner groups, REML) and ``nmmaps``
(k = 4, ``random="~ 1 | city"``, 108 cities, ML, Psi on its boundary: every
refit runs the second start).
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

# one BLAS thread, as run.py's default (set before numpy is imported)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                  "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks import designs  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
import statsmodels_mixmeta  # noqa: E402,F401  (registers smf.mixmeta)

TARGET_RATIO = 20.0
PROBLEMS = {
    "metareg_100": (lambda: designs.metareg(100), None, {}),
    "nested_cs_100": (lambda: designs.nested_cs(100), "~ 1 | outer/inner",
                      {}),
    "nmmaps": (designs.nmmaps_tmeanagepar, "~ 1 | city", {"method": "ml"}),
}


def timed(call, repeats, before=None):
    """Median wall and CPU time over ``repeats`` calls, and the last
    output."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), time.process_time()
        out = call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), out


def run_problem(name, repeats):
    make, random, options = PROBLEMS[name]
    problem = make()
    options = dict(options, S=problem.S, random=random,
                   bscov=problem.bscov or "unstr")

    def fit(data=problem.frame):
        return smf.mixmeta(problem.formula, data=data, **options).fit()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit()                                   # warm-up
        full_wall, full_cpu, res = timed(fit, max(repeats, 5))
        inner = res._results

        def forget():
            inner._cache.pop("_leave_one_out", None)

        loo_wall, loo_cpu, loo = timed(res.leave_one_out, repeats, forget)
        infl_wall, infl_cpu, _ = timed(
            lambda: res.get_influence().summary_frame(), repeats, forget)
        group = (problem.groups or [None])[0]
        keys = (problem.frame.index if group is None
                else problem.frame[group])
        scratch_wall, scratch_cpu, _ = timed(
            lambda: [fit(problem.frame[np.asarray(keys != label)])
                     for label in loo.index], 1)
    report = {
        "n_groups": int(len(loo)),
        "full_fit": {"wall_s": full_wall, "cpu_s": full_cpu},
        "leave_one_out": {"wall_s": loo_wall, "cpu_s": loo_cpu,
                          "ratio_wall": loo_wall / full_wall,
                          "ratio_cpu": loo_cpu / full_cpu,
                          "not_converged": int((~loo["converged"]).sum()),
                          "target_ratio": TARGET_RATIO},
        "influence_summary_frame": {"wall_s": infl_wall, "cpu_s": infl_cpu,
                                    "ratio_cpu": infl_cpu / full_cpu},
        "fits_from_scratch": {"wall_s": scratch_wall, "cpu_s": scratch_cpu,
                              "ratio_cpu": scratch_cpu / full_cpu},
    }
    print(f"{name} ({report['n_groups']} groups): full fit "
          f"{full_cpu * 1e3:.1f} ms CPU; leave_one_out {loo_cpu:.3f} s CPU "
          f"= {report['leave_one_out']['ratio_cpu']:.1f} x (wall "
          f"{report['leave_one_out']['ratio_wall']:.1f} x); influence "
          f"{report['influence_summary_frame']['ratio_cpu']:.1f} x; fits "
          f"from scratch {report['fits_from_scratch']['ratio_cpu']:.1f} x")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", action="append",
                        choices=sorted(PROBLEMS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(
        Path(__file__).resolve().parent / "results" / "influence.json"))
    args = parser.parse_args(argv)
    report = {name: run_problem(name, args.repeats)
              for name in (args.problem or list(PROBLEMS))}
    report["repeats"] = args.repeats
    report["load_average"] = os.getloadavg()[0]
    print(f"load average {report['load_average']:.1f} on "
          f"{os.cpu_count()} CPUs")
    if args.problem is None:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
