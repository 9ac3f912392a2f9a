"""
The two-stage workflow (issue 10): what the first stage costs, where.

    python benchmarks/two_stage.py [--sites 2000] [--rows 500] [--repeats 3]
                                   [--quick]

Simulates (seeded) ``--sites`` sites of ``--rows`` rows each: a count
``deaths ~ Poisson(exp(a_i + 0.3 x + b_i treat))`` with site-specific
``a_i`` and ``b_i``.  The first stage fits a Poisson GLM
(``sm.GLM(deaths, [1, x, treat])``) in every site and carries ``x`` and
``treat`` (``k = 2``, the covariance block included).  Timed with
``time.perf_counter`` (wall) and ``time.process_time`` (this process's
CPU), the median of ``--repeats`` runs:

* ``hand_loop``: what a user writes without the helper, a ``groupby``
  loop that fits each site and collects ``params`` and the
  ``cov_params()`` block (no checks);
* ``serial``: ``smm.two_stage(data, "site", fit_site, ["x1", "x2"])``,
  and ``serial_by_position`` the same with ``params=[1, 2]`` (as the hand
  loop picks them: statsmodels then names the coefficients of one group
  only, instead of scanning every group's ``exog`` for a constant to name
  ``x1``, ``x2``); ``hand_loop_by_name`` is the hand loop picking the
  coefficients by the names statsmodels gives them, what ``serial`` does;
  the hand loops and the helpers run alternately (``--serial-repeats``,
  default 5), so that other load on the machine falls on all, and the
  overhead is ``helper / hand loop - 1`` (target: under 10%), like
  against like (by name against the loop by name, by position against
  the loop by position), of the median wall and CPU times, and of the
  fastest CPU times (the runs least disturbed by other processes);
* ``process_pool``: the same on a ``ProcessPoolExecutor(2)`` (pool start
  included);
* ``dask``: on a ``dask.distributed.LocalCluster(n_workers=2,
  threads_per_worker=1)`` (cluster start not included, the first run
  warms the workers up and is not timed);
* ``second_stage``: ``res2.fit()``, REML ``~ 1`` on the sites' estimates.

Peak memory: ``tracemalloc``'s peak of the Python and numpy allocations in
this process during one (untimed) serial and one pool run, and the
process's maximum resident set size.  Writes
``benchmarks/results/two_stage.json``.
"""
import argparse
import concurrent.futures as cf
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

# one BLAS thread per process, as run.py's default
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                  "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels  # noqa: E402
import statsmodels.api as sm  # noqa: E402

import statsmodels_mixmeta as smm  # noqa: E402

TARGET_OVERHEAD = 0.10
PARAMS = ["x1", "x2"]          # statsmodels' names of the x and treat columns
POSITIONS = [1, 2]             # the same by position in params


def simulate(n_sites, n_rows, seed=20261207):
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), n_rows)
    x = rng.normal(size=n_sites * n_rows)
    treat = rng.integers(0, 2, n_sites * n_rows)
    level = rng.normal(1.0, 0.3, n_sites)
    effect = rng.normal(0.2, 0.1, n_sites)
    mu = np.exp(level[site] + 0.3 * x + effect[site] * treat)
    return pd.DataFrame({"site": site, "x": x, "treat": treat,
                         "deaths": rng.poisson(mu)})


def fit_site(frame):
    """The first stage of one site (module level: picklable)."""
    exog = np.column_stack([np.ones(len(frame)), frame["x"].to_numpy(),
                            frame["treat"].to_numpy()])
    return sm.GLM(frame["deaths"].to_numpy(), exog,
                  family=sm.families.Poisson()).fit()


def hand_loop(data):
    """The loop the helper replaces: fit, collect params and cov_params."""
    labels, y, S = [], [], []
    for label, frame in data.groupby("site"):
        res = fit_site(frame)
        y.append(res.params[1:3])
        S.append(res.cov_params()[1:3, 1:3])
        labels.append(label)
    return labels, np.array(y), np.array(S)


def hand_loop_by_name(data):
    """The same loop picking the coefficients by name, as the helper's
    ``params=["x1", "x2"]`` does (statsmodels names them per fit)."""
    labels, y, S = [], [], []
    for label, frame in data.groupby("site"):
        res = fit_site(frame)
        names = res.model.exog_names
        pick = [names.index(name) for name in PARAMS]
        y.append(res.params[pick])
        S.append(res.cov_params()[np.ix_(pick, pick)])
        labels.append(label)
    return labels, np.array(y), np.array(S)


def timed(call):
    start, start_cpu = time.perf_counter(), time.process_time()
    out = call()
    return time.perf_counter() - start, time.process_time() - start_cpu, out


def summary(times):
    return {"median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times)}


def peak_memory_mb(call):
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()


def run_serial(data, repeats):
    """Hand loop and helper (by name, by position) alternately, ``repeats``
    times each."""
    calls = {"hand_loop": lambda: hand_loop(data),
             "hand_loop_by_name": lambda: hand_loop_by_name(data),
             "serial": lambda: smm.two_stage(data, "site", fit_site, PARAMS),
             "serial_by_position": lambda: smm.two_stage(
                 data, "site", fit_site, POSITIONS)}
    wall = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    out = {}
    for _ in range(repeats):
        for name, call in calls.items():
            w, c, out[name] = timed(call)
            wall[name].append(w)
            cpu[name].append(c)
    ref = out["hand_loop"]
    for name in ("serial", "serial_by_position"):
        np.testing.assert_allclose(out[name].y.to_numpy(), ref[1], rtol=1e-12)
        np.testing.assert_allclose(out[name].S, ref[2], rtol=1e-12)
    report = {name: dict(summary(wall[name]),
                         cpu_s=statistics.median(cpu[name]))
              for name in calls}
    # like against like: by name against the loop that picks by name
    for name, base in (("serial", "hand_loop_by_name"),
                       ("serial_by_position", "hand_loop")):
        hand = report[base]
        report[name]["overhead_against"] = base
        report[name]["overhead_wall"] = (report[name]["median_s"]
                                         / hand["median_s"] - 1)
        report[name]["overhead_cpu"] = report[name]["cpu_s"] / hand["cpu_s"] - 1
        # the fastest runs are the least disturbed by other load
        report[name]["overhead_cpu_min"] = min(cpu[name]) / min(
            cpu[base]) - 1
    report["overhead_target"] = TARGET_OVERHEAD
    report["serial_repeats"] = repeats
    return report, out["serial"]


def run_pool(data, repeats, reference):
    times = []
    for _ in range(repeats):
        with cf.ProcessPoolExecutor(max_workers=2) as pool:
            wall, _, out = timed(lambda: smm.two_stage(
                data, "site", fit_site, PARAMS, executor=pool))
        times.append(wall)
        np.testing.assert_array_equal(out.S, reference.S)
    return summary(times)


def run_dask(data, repeats, reference):
    try:
        import distributed
    except ImportError:
        return {"skipped": "dask.distributed is not installed"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        head = data[data["site"] < data["site"].iloc[0] + 4]
        smm.two_stage(head, "site", fit_site, PARAMS, executor=client)
        times = []
        for _ in range(repeats):
            wall, _, out = timed(lambda: smm.two_stage(
                data, "site", fit_site, PARAMS, executor=client))
            times.append(wall)
            np.testing.assert_array_equal(out.S, reference.S)
        return summary(times)
    finally:
        client.close()
        cluster.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serial-repeats", type=int, default=5,
                        help="alternating hand-loop / helper runs (overhead)")
    parser.add_argument("--quick", action="store_true",
                        help="200 sites, 2 repeats")
    parser.add_argument("--output", default=str(
        Path(__file__).resolve().parent / "results" / "two_stage.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.sites, args.repeats = min(args.sites, 200), 2
    data = simulate(args.sites, args.rows)
    serial, res2 = run_serial(data, args.serial_repeats)
    pool = run_pool(data, args.repeats, res2)
    dask = run_dask(data, args.repeats, res2)
    second = [timed(lambda: res2.fit())[0] for _ in range(args.repeats)]
    pooled = res2.fit()
    memory = {
        "tracemalloc_peak_serial_mb": peak_memory_mb(
            lambda: smm.two_stage(data, "site", fit_site, PARAMS)),
        "tracemalloc_peak_hand_loop_mb": peak_memory_mb(
            lambda: hand_loop(data)),
        "data_mb": data.memory_usage(deep=True).sum() / 2 ** 20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024,
    }
    report = {
        "sites": args.sites, "rows_per_site": args.rows,
        "repeats": args.repeats, "quick": args.quick,
        "first_stage": dict(serial, process_pool_2=pool, dask_2_workers=dask),
        "second_stage_reml": dict(summary(second),
                                  params=pooled.params.to_dict(),
                                  psi=np.asarray(pooled.psi).tolist()),
        "memory": memory,
        "machine": {"python": platform.python_version(),
                    "statsmodels": statsmodels.__version__,
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()[0]},
    }
    fs = report["first_stage"]
    print(f"{args.sites} sites x {args.rows} rows, Poisson GLM, median of "
          f"{args.repeats}")
    print(f"  hand loop     {fs['hand_loop']['median_s']:.2f} s "
          f"(cpu {fs['hand_loop']['cpu_s']:.2f} s); by name "
          f"{fs['hand_loop_by_name']['median_s']:.2f} s "
          f"(cpu {fs['hand_loop_by_name']['cpu_s']:.2f} s)")
    for name, text in (("serial", "by name"),
                       ("serial_by_position", "by position")):
        row = fs[name]
        print(f"  two_stage     {row['median_s']:.2f} s (cpu "
              f"{row['cpu_s']:.2f} s) {text}: overhead "
              f"{100 * row['overhead_wall']:.1f}% wall, "
              f"{100 * row['overhead_cpu']:.1f}% cpu, "
              f"{100 * row['overhead_cpu_min']:.1f}% cpu of the fastest runs")
    print(f"  process pool  {pool['median_s']:.2f} s (2 workers)")
    if "median_s" in dask:
        print(f"  dask          {dask['median_s']:.2f} s (2 workers)")
    print(f"  second stage  {report['second_stage_reml']['median_s']:.3f} s"
          " (REML ~ 1)")
    print(f"  memory        tracemalloc peak {memory['tracemalloc_peak_serial_mb']:.1f}"
          f" MB (hand loop {memory['tracemalloc_peak_hand_loop_mb']:.1f} MB),"
          f" data {memory['data_mb']:.1f} MB, max RSS {memory['max_rss_mb']:.0f} MB")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
