"""
Simulation and the parametric bootstrap (issue 9): what they cost.

    python benchmarks/simulation.py [--refits 1000] [--draws 1000]
                                    [--problem nested_cs_50] [--repeats 3]

Fits the workload's model once (REML, as ``run.py`` does; untimed), then
times, with ``time.perf_counter``,

* ``res.simulate(draws, seed=1)``: the draws alone (one batched Cholesky
  factor per group, reused by every draw);
* ``res.simulate(refits, seed=1, refit=True)``: the parametric bootstrap,
  every draw refitted through ``design.with_endog`` and
  ``MixMeta.from_design`` (target: 1,000 refits of ``nested_cs_50``, k = 3,
  ``random="~ 1 | outer/inner"``, ``bscov=["cs", "cs"]``, under 15 s).

Each is repeated ``--repeats`` times and the median reported (wall time,
and the process's CPU time, which other load on the machine disturbs less),
with the
bootstrap's count of non-converged refits and warnings.  Writes
``benchmarks/results/simulation.json``.
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

from benchmarks import designs  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
import statsmodels_mixmeta  # noqa: E402,F401  (registers smf.mixmeta)

TARGET_SECONDS = 15.0
RANDOM = {"nested_cs_50": "~ 1 | outer/inner",
          "nested_cs_500": "~ 1 | outer/inner"}


def fitted(name):
    problem = designs.problem(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixmeta(problem.formula, data=problem.frame, S=problem.S,
                           random=RANDOM.get(name), bscov=problem.bscov
                           or "unstr").fit()


def timed(call, repeats):
    """Median, min and max wall time, the median CPU time of this process
    (less sensitive to other load on the machine), and the last output."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = call()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return (statistics.median(times), min(times), max(times), out,
            statistics.median(cpu))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="nested_cs_50")
    parser.add_argument("--refits", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(
        Path(__file__).resolve().parent / "results" / "simulation.json"))
    args = parser.parse_args(argv)

    res = fitted(args.problem)
    draws = timed(lambda: res.simulate(args.draws, seed=1), args.repeats)
    boot = timed(lambda: res.simulate(args.refits, seed=1, refit=True),
                 args.repeats)
    frame = boot[3]
    report = {
        "problem": args.problem,
        "draws": {"nsim": args.draws, "median_s": draws[0],
                  "min_s": draws[1], "max_s": draws[2],
                  "cpu_s": draws[4]},
        "bootstrap": {"refits": args.refits, "median_s": boot[0],
                      "min_s": boot[1], "max_s": boot[2], "cpu_s": boot[4],
                      "per_refit_ms": 1e3 * boot[0] / args.refits,
                      "not_converged": int((~frame["converged"]).sum()),
                      "warnings": int(frame["n_warnings"].sum()),
                      "target_s": TARGET_SECONDS
                      if args.problem == "nested_cs_50"
                      and args.refits == 1000 else None},
        "repeats": args.repeats,
    }
    print(f"{args.problem}: simulate({args.draws}) {draws[0] * 1e3:.1f} ms;"
          f" {args.refits} refits {boot[0]:.2f} s "
          f"({report['bootstrap']['per_refit_ms']:.1f} ms each, "
          f"{report['bootstrap']['not_converged']} not converged, "
          f"{report['bootstrap']['warnings']} warnings; CPU {boot[4]:.2f} s)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    report["load_average"] = os.getloadavg()[0]
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
