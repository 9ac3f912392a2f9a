"""
Many univariate meta-analyses at once (issue 12): ``fit_many`` against
PyMARE's vectorised REML and a loop of single fits, and its peak memory.

    python benchmarks/many.py [--repeats 5] [--quick]
                              [--only speed|memory|bivariate]

* **speed**: 100,000 problems x 20 studies (intercept only, REML; a third
  of the problems without heterogeneity): ``smm.fit_many`` and
  ``pymare.estimators.VarianceBasedLikelihoodEstimator(method="REML")``
  (the ``benchmarks`` extra) on the same arrays, timed alternately
  (``fit_many``, PyMARE, ``fit_many``, ...) over ``--repeats`` rounds in
  the same run, so that the machine's load falls on both alike (with
  numba installed, the compiled engine ``fit_many(engine="numba")`` is a
  third call of each round, ``fit_many_numba``, its JIT cache loaded
  before timing, compared with the numpy engine's answers); median
  wall and CPU times, their ratio and the ratio of each round; the loop
  of single ``MixMeta(...).fit()`` is timed on a sample of 1,000 problems
  (once, same run; its cost a problem and extrapolated to all of them,
  said so in the output); a cProfile breakdown of one more ``fit_many``
  run (``profile_s``: cumulative seconds of its stages).  The answers are
  compared: ``fit_many`` against the single fits of the sample (largest
  log-likelihood difference, relative ``tau2`` and coefficient
  differences) and against PyMARE on all problems.
* **memory**: 1,000,000 problems x 50 studies (float64 input: 400 MB for
  each of ``endog`` and ``S``), fitted in chunks in a child process; its
  peak resident set size (``ru_maxrss``, input included) and the peak of
  Python allocations traced by ``tracemalloc`` during the fit (target:
  under 2 GB), for each engine.

* **bivariate**: 10,000 bivariate problems x 30 studies (10% of the
  outcomes missing), REML, ``fit_many`` against a loop of single fits
  timed on a sample of 200 problems and extrapolated (said so in the
  output); the answers are compared on the sample's certified problems
  (``--only bivariate`` runs this part alone and updates its entry).

``--quick`` runs 10,000 problems, a sample of 200 single fits, one repeat
and the memory check on 100,000 x 50.  Writes
``benchmarks/results/many.json``.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                  "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import statsmodels_mixmeta as smm  # noqa: E402

TARGET_SPEEDUP = 10.0
TARGET_MEMORY = 2 * 2 ** 30


def problems(n_problems, n_studies, seed=0):
    """Random-intercept problems in PyMARE's layout ``(n_studies, n)``,
    generated in blocks of studies (no temporaries of the full size)."""
    rng = np.random.default_rng(seed)
    tau2 = rng.choice([0.0, 0.1, 0.5], n_problems)
    y = np.empty((n_studies, n_problems))
    v = np.empty((n_studies, n_problems))
    for i in range(n_studies):
        v[i] = rng.uniform(0.05, 1.0, n_problems)
        y[i] = 0.3 + rng.standard_normal(n_problems) * np.sqrt(v[i] + tau2)
    return y, v


def timed(call, repeats):
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), out


def alternating(calls, repeats):
    """Time ``calls`` (name -> function) in turn, ``repeats`` rounds (A, B,
    A, B, ...: the machine's load falls on both alike); per name the
    wall and CPU times of every round and the last output."""
    times = {name: {"wall_s": [], "cpu_s": []} for name in calls}
    outs = {}
    for _ in range(repeats):
        for name, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            outs[name] = call()
            times[name]["wall_s"].append(time.perf_counter() - wall)
            times[name]["cpu_s"].append(time.process_time() - cpu)
    return times, outs


def profile_breakdown(y, v):
    """Cumulative seconds of ``fit_many``'s stages in one profiled run
    (cProfile; its overhead inflates the small calls)."""
    import cProfile
    import pstats
    profiler = cProfile.Profile()
    profiler.enable()
    smm.fit_many(y, v, engine="numpy")
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    wanted = {("fit.py", "fit_many"): "fit_many",
              ("fit.py", "_fit_chunk"): "chunks",
              ("many.py", "climb"): "climb (with its evaluations)",
              ("many.py", "certify"): "certify (with its evaluations)",
              ("many.py", "_points"): "certify's evaluations",
              ("many_bounds.py", "between"): "certify's interval bounds",
              ("many.py", "evaluate"): "all kernel evaluations",
              ("many.py", "__init__"): "Stack (per chunk)",
              ("validation.py", "check_inputs"): "input checks"}
    out = {}
    for (path, _, name), row in stats.items():
        key = (os.path.basename(path), name)
        if key in wanted and "statsmodels_mixmeta" in path:
            out[wanted[key]] = out.get(wanted[key], 0.0) + round(row[3], 4)
    return out


def pymare_reml(y, v):
    from pymare.estimators import VarianceBasedLikelihoodEstimator
    est = VarianceBasedLikelihoodEstimator(method="REML")
    est.fit(y=y, v=v, X=np.ones((y.shape[0], 1)))
    params = est.params_
    return (np.asarray(params["fe_params"])[0],
            np.asarray(params["tau2"]).ravel())


def _llf_gain(y, v, tau2, llf):
    from statsmodels_mixmeta.kernels import many as kernel
    stack = kernel.Stack(y, v, np.ones((y.shape[0], 1)), reml=True)
    other = kernel.evaluate(stack, np.maximum(tau2, 0.0),
                            derivatives=False).llf
    return [float(np.min(llf - other)), float(np.max(llf - other))]


def single_loop(y, v, columns):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in columns:
            res = smm.MixMeta(y[:, j], None, S=v[:, j]).fit()
            out.append((res.llf, float(res.params[0]),
                        float(res.psi.values[0, 0])))
    return np.array(out)


def _has_numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _compiled_entry(res, fast, times, pymare_times):
    """The compiled engine's times, its agreement with the numpy engine
    and its ratios to PyMARE (median and each round)."""
    wall, cpu = statistics.median(times["wall_s"]), statistics.median(
        times["cpu_s"])
    both = np.isfinite(res.tau2)
    entry = {"wall_s": wall, "cpu_s": cpu, "wall_s_each": times["wall_s"],
             "cpu_s_each": times["cpu_s"], "engine": fast.engine,
             "converged": int(fast.converged.sum()),
             "max_abs_diff_llf_vs_numpy": float(np.max(np.abs(
                 fast.llf - res.llf)[both])),
             "max_rel_diff_tau2_vs_numpy": float(np.max((np.abs(
                 fast.tau2 - res.tau2) / np.maximum(res.tau2, 1e-300))[
                     both & (res.tau2 > 0)], initial=0.0)),
             "n_tau2_zero_mismatch": int(np.sum((fast.tau2 == 0)
                                                != (res.tau2 == 0))),
             "max_rel_diff_params_vs_numpy": float(np.max(np.abs(
                 fast.params - res.params)[both] / np.abs(
                     res.params)[both])),
             "status_identical": bool(np.array_equal(fast.status,
                                                     res.status)),
             "converged_identical": bool(np.array_equal(fast.converged,
                                                        res.converged))}
    if pymare_times is not None:
        p_wall = statistics.median(pymare_times["wall_s"])
        p_cpu = statistics.median(pymare_times["cpu_s"])
        entry.update({
            "speedup_wall_vs_pymare": p_wall / wall,
            "speedup_cpu_vs_pymare": p_cpu / cpu,
            "speedup_wall_each_round": [
                b / a for a, b in zip(times["wall_s"],
                                      pymare_times["wall_s"])],
            "speedup_cpu_each_round": [
                b / a for a, b in zip(times["cpu_s"],
                                      pymare_times["cpu_s"])],
            "target_speedup": TARGET_SPEEDUP})
    return entry


def speed(n_problems, n_studies, sample, repeats):
    """``fit_many`` and PyMARE timed alternately in the same run; a loop
    of single fits timed on a sample in the same run."""
    y, v = problems(n_problems, n_studies)
    calls = {"fit_many": lambda: smm.fit_many(y, v, engine="numpy")}
    if _has_numba():
        # load (or compile) the compiled engine before timing it
        smm.fit_many(y[:, :100], v[:, :100], engine="numba")
        calls["fit_many_numba"] = lambda: smm.fit_many(y, v, engine="numba")
    try:
        import pymare
        calls["pymare"] = lambda: pymare_reml(y, v)
    except ImportError:
        pymare = None
    times, outs = alternating(calls, repeats)
    res = outs["fit_many"]
    ours = times["fit_many"]
    out = {"problems": n_problems, "studies": n_studies,
           "fit_many": {"wall_s": statistics.median(ours["wall_s"]),
                        "cpu_s": statistics.median(ours["cpu_s"]),
                        "wall_s_each": ours["wall_s"],
                        "converged": int(res.converged.sum()),
                        "mean_n_iter": float(res.n_iter.mean()),
                        "max_gap": float(np.nanmax(res.gap))}}
    if "fit_many_numba" in outs:
        out["fit_many_numba"] = _compiled_entry(
            res, outs["fit_many_numba"], times["fit_many_numba"],
            times.get("pymare"))
    if pymare is not None:
        p_beta, p_tau2 = outs["pymare"]
        theirs = times["pymare"]
        wall, p_wall = out["fit_many"]["wall_s"], statistics.median(
            theirs["wall_s"])
        cpu, p_cpu = out["fit_many"]["cpu_s"], statistics.median(
            theirs["cpu_s"])
        out["pymare"] = {
            "version": pymare.__version__, "wall_s": p_wall, "cpu_s": p_cpu,
            "wall_s_each": theirs["wall_s"],
            "speedup_wall": p_wall / wall, "speedup_cpu": p_cpu / cpu,
            "speedup_wall_each_round": [
                b / a for a, b in zip(ours["wall_s"], theirs["wall_s"])],
            "target_speedup": TARGET_SPEEDUP,
            "max_abs_diff_tau2": float(np.max(np.abs(p_tau2 - res.tau2))),
            "max_abs_diff_params": float(np.max(np.abs(
                p_beta - res.params[:, 0]))),
            "n_tau2_diff_above_1e-6": int(np.sum(
                np.abs(p_tau2 - res.tau2) > 1e-6)),
            # fit_many's REML log-likelihood minus that at PyMARE's tau2
            "llf_minus_pymare_min_max": _llf_gain(y, v, p_tau2, res.llf)}
    else:
        out["pymare"] = "not installed (pip install pymare: the benchmarks "\
            "extra)"
    columns = np.random.default_rng(1).choice(n_problems, sample,
                                              replace=False)
    s_wall, s_cpu, single = timed(lambda: single_loop(y, v, columns), 1)
    scale = n_problems / sample
    tau2, psi = res.tau2[columns], single[:, 2]
    wall = out["fit_many"]["wall_s"]
    out["single_loop"] = {
        "sample": sample, "extrapolated": True,
        "wall_s_sample": s_wall, "wall_s_all": s_wall * scale,
        "ms_per_problem": 1e3 * s_wall / sample,
        "fit_many_us_per_problem": 1e6 * wall / n_problems,
        "cpu_s_all": s_cpu * scale,
        "speedup_wall": s_wall * scale / wall,
        "max_abs_diff_llf": float(np.max(np.abs(single[:, 0]
                                               - res.llf[columns]))),
        "max_rel_diff_params": float(np.max(np.abs(
            single[:, 1] - res.params[columns, 0]) / np.abs(single[:, 1]))),
        "max_rel_diff_tau2_positive": float(np.max(
            np.abs(tau2 - psi)[psi > 1e-6] / psi[psi > 1e-6])),
        "max_abs_diff_tau2_zero": float(np.max(
            np.abs(tau2 - psi)[psi <= 1e-6], initial=0.0))}
    out["profile_s"] = profile_breakdown(y, v)
    return out


def bivariate_problems(n_problems, n_studies, seed=2):
    """Bivariate problems: within-study correlations in (-0.5, 0.5), Psi
    from none to correlated heterogeneity, 10% of outcomes missing."""
    rng = np.random.default_rng(seed)
    sd = rng.uniform(0.2, 1.0, (n_studies, 2, n_problems))
    corr = rng.uniform(-0.5, 0.5, (n_studies, n_problems))
    S = np.empty((n_studies, 2, 2, n_problems))
    S[:, 0, 0], S[:, 1, 1] = sd[:, 0] ** 2, sd[:, 1] ** 2
    S[:, 0, 1] = S[:, 1, 0] = corr * sd[:, 0] * sd[:, 1]
    scale = rng.choice([0.0, 0.3, 0.6], n_problems)
    psi = np.array([[1.0, 0.5], [0.5, 1.0]])[..., None] * scale ** 2
    V = np.moveaxis(S + psi[None], 3, 1)
    y = 0.3 + np.einsum("nrab,nrb->nar", np.linalg.cholesky(V),
                        rng.standard_normal((n_studies, n_problems, 2)))
    y[rng.random(y.shape) < 0.1] = np.nan
    return y, S


def bivariate(n_problems, n_studies, sample, repeats):
    """10,000 bivariate problems x 30 studies, REML: ``fit_many`` against
    a loop of single fits on a sample, extrapolated."""
    from statsmodels_mixmeta.many import Status
    y, S = bivariate_problems(n_problems, n_studies)
    wall, cpu, res = timed(lambda: smm.fit_many(y, S), repeats)
    certified = res.status == Status.FITTED
    out = {"problems": n_problems, "studies": n_studies, "k": 2,
           "fit_many": {"wall_s": wall, "cpu_s": cpu,
                        "converged": int(res.converged.sum()),
                        "certified": int(certified.sum()),
                        "uncertified": int(np.sum(
                            res.status == Status.UNCERTIFIED))}}
    columns = np.random.default_rng(3).choice(n_problems, sample,
                                              replace=False)

    def loop():
        fits = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for j in columns:
                keep = ~np.isnan(y[:, :, j]).all(axis=1)
                fits.append(smm.MixMeta(y[keep, :, j], None,
                                        S=S[keep, :, :, j]).fit())
        return fits
    s_wall, s_cpu, fits = timed(loop, 1)
    scale = n_problems / sample
    llf = np.array([f.llf for f in fits])
    params = np.array([np.asarray(f.params) for f in fits])
    psi = np.array([f.psi.values for f in fits])
    ok = certified[columns]
    out["single_loop"] = {
        "sample": sample, "extrapolated": True,
        "wall_s_sample": s_wall, "wall_s_all": s_wall * scale,
        "cpu_s_all": s_cpu * scale, "speedup_wall": s_wall * scale / wall,
        "certified_in_sample": int(ok.sum()),
        # default single fits (tol not tightened); certified problems only
        "max_abs_diff_llf": float(np.max(np.abs(llf - res.llf[columns])[ok])),
        "max_abs_diff_params": float(np.max(np.abs(
            params - res.params[columns])[ok])),
        "max_abs_diff_psi": float(np.max(np.abs(psi - res.psi[columns])[ok])),
        "llf_minus_single_uncertified": [
            float(v) for v in (res.llf[columns] - llf)[~ok]]}
    return out


def memory_child(n_problems, n_studies, engine="numpy"):
    """Run in a child process: fit and report peak memory as JSON."""
    import tracemalloc
    y, v = problems(n_problems, n_studies)
    if engine == "numba":
        smm.fit_many(y[:, :100], v[:, :100], engine=engine)
    tracemalloc.start()
    wall = time.perf_counter()
    res = smm.fit_many(y, v, engine=engine)
    wall = time.perf_counter() - wall
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({
        "problems": n_problems, "studies": n_studies, "wall_s": wall,
        "engine": res.engine,
        "input_bytes": int(y.nbytes + v.nbytes),
        "tracemalloc_peak_bytes_during_fit": int(traced),
        "maxrss_bytes": int(resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss * 1024),
        "converged": int(res.converged.sum())}))


def memory(n_problems, n_studies, engine="numpy"):
    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n_problems),
         str(n_studies), engine], capture_output=True, text=True,
        check=True)
    out = json.loads(child.stdout.strip().splitlines()[-1])
    out["under_2GB"] = out["maxrss_bytes"] < TARGET_MEMORY
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("bivariate", "speed", "memory"),
                        help="run this part only and update its entry in "
                             "benchmarks/results/many.json")
    parser.add_argument("--memory-child", nargs=3,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        n_problems, n_studies, engine = args.memory_child
        return memory_child(int(n_problems), int(n_studies), engine)
    if args.only == "bivariate":
        part = bivariate(1_000 if args.quick else 10_000, 30,
                         50 if args.quick else 200,
                         1 if args.quick else args.repeats)
        print(json.dumps(part, indent=2))
        if not args.quick:
            path = ROOT / "benchmarks" / "results" / "many.json"
            result = json.loads(path.read_text())
            result["bivariate"] = dict(part, load_average=os.getloadavg())
            path.write_text(json.dumps(result, indent=2) + "\n")
        return None
    if args.only == "speed":
        part = speed(10_000 if args.quick else 100_000, 20,
                     200 if args.quick else 1_000,
                     1 if args.quick else args.repeats)
        print(json.dumps(part, indent=2))
        if not args.quick:
            path = ROOT / "benchmarks" / "results" / "many.json"
            result = json.loads(path.read_text())
            result["speed"] = dict(part, load_average=os.getloadavg())
            path.write_text(json.dumps(result, indent=2) + "\n")
        return None
    if args.only == "memory":
        big = 100_000 if args.quick else 1_000_000
        part = {"numpy": memory(big, 50)}
        if _has_numba():
            part["numba"] = memory(big, 50, "numba")
        print(json.dumps(part, indent=2))
        if not args.quick:
            path = ROOT / "benchmarks" / "results" / "many.json"
            result = json.loads(path.read_text())
            result["memory"] = part
            path.write_text(json.dumps(result, indent=2) + "\n")
        return None
    if args.quick:
        n_problems, sample, repeats, big = 10_000, 200, 1, 100_000
    else:
        n_problems, sample, repeats, big = 100_000, 1_000, args.repeats, \
            1_000_000
    result = {"speed": speed(n_problems, 20, sample, repeats),
              "memory": dict({"numpy": memory(big, 50)}, **(
                  {"numba": memory(big, 50, "numba")} if _has_numba()
                  else {})),
              "bivariate": bivariate(n_problems // 10, 30, sample // 5,
                                     repeats),
              "quick": args.quick,
              "repeats": repeats, "numpy": np.__version__,
              "cpus": os.cpu_count(),
              "load_average": os.getloadavg()}
    print(json.dumps(result, indent=2))
    if not args.quick:
        path = ROOT / "benchmarks" / "results" / "many.json"
        path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
