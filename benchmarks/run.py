"""Benchmark runner: ``python benchmarks/run.py [--quick] [--only NAME ...]``.

Times whole fits (construction + fit) of statsmodels-mixmeta on the workloads of
:mod:`benchmarks.workloads`, compares each median with its target, times the
peers of :mod:`benchmarks.peers` on the same data in child processes (with a
time and memory limit), checks that their estimates agree with ours, prints a
table and writes the medians, machine and versions to
``benchmarks/results/latest.json``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # benchmark the checkout this file belongs to
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from benchmarks import designs  # noqa: E402
from benchmarks.peers import PEERS, Estimate  # noqa: E402
from benchmarks.timing import Budget, blas_threads, machine_info, run_isolated  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    CORE, DERIVED, MULTILEVEL, WORKLOADS, Workload, fit_call, our_estimate, random_supported,
    time_workload)

TOLERANCE = 1e-4  # relative, on the coefficients and on Psi (max-norm over entries)
PEER_MEMORY_MB = 4096.0
STARTUP_ALLOWANCE_S = 15.0  # child start: imports, data, the peer's input preparation
LOGLIK_AS_MIXMETA = {"mixmetapy"}  # peers whose log-likelihood uses R mixmeta's constants
SECTION_TITLES = {CORE: "Core workloads (issue 3)", MULTILEVEL: "Multilevel workloads (issue 4)",
                  DERIVED: "Models from derived designs, no fit (issue 8): subset, with_endog"}
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "latest.json"


# --------------------------------------------------------------------------- formatting

def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float) -> str:
    return f"{r:.3g}"


# --------------------------------------------------------------------------- agreement

def relative_difference(peer: np.ndarray, ours: np.ndarray) -> float:
    """max |peer - ours| / max |ours| (infinity norms; inf when the shapes differ)."""
    peer, ours = np.asarray(peer, float), np.asarray(ours, float)
    if peer.shape != ours.shape:
        return float("inf")
    scale = max(np.max(np.abs(ours)), 1e-12)
    return float(np.max(np.abs(peer - ours)) / scale)


def compare(peer_name: str, peer: Estimate, ours: Estimate, ours_mm: Estimate | None) -> dict:
    """How a peer's estimates relate to ours: a short text and the numbers behind it."""
    if peer.method == "pm":  # no Paule-Mandel estimator in mixmeta
        return {"text": f"PM estimator: τ² {peer.psi[0].item():.4g} (ours {ours.method.upper()} "
                        f"{ours.psi[0].item():.4g}); not compared", "agrees": None}
    reference, against = ours, ""
    if peer.method == "dl":  # DerSimonian-Laird is mixmeta's method="mm" for one outcome
        if ours_mm is None:
            return {"text": "DL estimator; our method='mm' unavailable; not compared", "agrees": None}
        reference, against = ours_mm, "vs our MM: "
    coef_rel = relative_difference(peer.coef, reference.coef)
    psi_rel = max((relative_difference(a, b) for a, b in zip(peer.psi, reference.psi)),
                  default=float("inf"))
    if len(peer.psi) != len(reference.psi):
        psi_rel = float("inf")
    agrees = coef_rel <= TOLERANCE and psi_rel <= TOLERANCE
    notes = []
    min_eig = min(float(np.linalg.eigvalsh(p).min()) for p in peer.psi)
    if min_eig < -1e-10:
        notes.append(f"peer's Ψ not PSD (min eigenvalue {min_eig:.2g})")
    loglik_diff = None
    if peer_name in LOGLIK_AS_MIXMETA and peer.loglik is not None and reference.loglik is not None:
        loglik_diff = peer.loglik - reference.loglik
        notes.append(f"llf peer − ours {loglik_diff:+.2g}")
    verdict = "agrees" if agrees else "DIFFERS"
    text = f"{against}{verdict} (coef {coef_rel:.1g}, Ψ {psi_rel:.1g})"
    if notes:
        text += "; " + "; ".join(notes)
    return {"text": text, "agrees": agrees, "coef_rel": coef_rel, "psi_rel": psi_rel,
            "psi_min_eigenvalue": min_eig, "loglik_diff": loglik_diff,
            "against": "mm" if against else ours.method}


# --------------------------------------------------------------------------- our workloads

def run_ours(workload: Workload, budget: Budget, quick: bool) -> dict:
    """Time one workload (in a fresh process when it is isolated); never raises."""
    record = {"description": workload.description, "problem": workload.problem,
              "interface": workload.interface, "target_s": workload.target_s}
    if workload.isolated:
        outcome = run_isolated("benchmarks.workloads", [workload.name] + (["--quick"] if quick else []),
                               timeout=300.0, memory_mb=PEER_MEMORY_MB)
        if outcome.answer is None:
            record["error"] = f"{outcome.stopped}: {outcome.detail}".strip(": ")
            return record
        answer = outcome.answer
        record["peak_rss_mb"] = answer["peak_rss_mb"]
        record["memory_target_mb"] = workload.memory_target_mb
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                answer = time_workload(workload.name, budget)
        except (NotImplementedError, TypeError) as exc:
            record["error"] = f"not supported yet ({type(exc).__name__}: {exc})"
            return record
        except Exception as exc:  # report and go on: one broken workload must not stop the rest
            record["error"] = f"{type(exc).__name__}: {exc}"
            return record
    record.update(answer["timing"])
    record["converged"] = answer["converged"]
    record["estimate"] = answer["estimate"]
    passed = workload.target_s is None or record["median_s"] <= workload.target_s
    if workload.memory_target_mb is not None:
        passed = passed and record["peak_rss_mb"] <= workload.memory_target_mb
    record["status"] = None if workload.target_s is None else ("PASS" if passed else "MISS")
    return record


def our_mm_estimate(problem: designs.Problem) -> Estimate | None:
    """Our method='mm' fit (untimed): mixmeta's moment estimator is DL for one outcome."""
    arrays = Workload("mm", problem.name, "arrays", "", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit_call(arrays, problem, method="mm")()
        return our_estimate(result, problem, method="mm")
    except Exception:
        return None


# --------------------------------------------------------------------------- peers

def run_peer(name: str, problem_name: str, quick: bool, timeout: float) -> dict:
    peer = PEERS[name]
    outcome = run_isolated("benchmarks.peers", [name, problem_name] + (["--quick"] if quick else []),
                           timeout=timeout + STARTUP_ALLOWANCE_S, memory_mb=PEER_MEMORY_MB)
    record = {"label": peer.label, "child_seconds": round(outcome.seconds, 2),
              "child_peak_rss_mb": round(outcome.peak_rss_mb, 1)}
    if outcome.stopped == "timeout":
        record.update(status="timeout", text=f"did not finish within {timeout:.0f} s")
    elif outcome.stopped == "memory":
        record.update(status="memory", text=f"stopped: needed > {PEER_MEMORY_MB / 1024:.0f} GB "
                                            f"(after {outcome.seconds:.0f} s)")
    elif outcome.stopped == "error":
        record.update(status="error", text=f"failed: {outcome.detail}")
    else:
        record.update(status="ok", **outcome.answer["timing"])
        record["estimate"] = outcome.answer["estimate"]
        record["over_limit"] = record["median_s"] > timeout
    return record


def sibling_failure(peer: str, problem_name: str, peers_done: dict) -> str | None:
    """A peer that did not finish on 20,000 studies is not tried on 1,000,000."""
    if problem_name == "metareg_1000000":
        smaller = peers_done.get("metareg_20000", {}).get(peer)
        if smaller and smaller["status"] in ("timeout", "memory"):
            return f"not attempted: {smaller['text']} on 20,000 studies"
    return None


# --------------------------------------------------------------------------- report

def print_problem(problem_name: str, ours: dict[str, dict], peers: dict[str, dict]) -> None:
    print(f"\n  {'workload':<24} {'ours (median)':>14} {'target':>10}  status  {'repeats':>7}  notes")
    for name, rec in ours.items():
        if "error" in rec:
            print(f"  {name:<24} {'error':>14} {fmt_seconds(rec['target_s']):>10}  {'-':<6}  "
                  f"{'':>7}  {rec['error']}")
            continue
        notes = []
        if "peak_rss_mb" in rec:
            notes.append(f"peak RSS {rec['peak_rss_mb']:.0f} MB (target < {rec['memory_target_mb']:.0f})")
        if not rec.get("converged", True):
            notes.append("NOT CONVERGED")
        if "ratio_to_build" in rec:
            notes.append(f"{rec['ratio_to_build']:.3f} x building from the data")
        print(f"  {name:<24} {fmt_seconds(rec['median_s']):>14} {fmt_seconds(rec['target_s']):>10}  "
              f"{rec['status'] or '-':<6}  {rec['repeats']:>7}  {', '.join(notes)}")
    if not peers:
        return
    print(f"  {'peer':<40} {'median':>10}  {'ours/peer':<30} agreement (tolerance {TOLERANCE:g})")
    for rec in peers.values():
        if rec["status"] != "ok":
            print(f"  {rec['label']:<40} {'-':>10}  {'-':<30} {rec['text']}")
            continue
        ratios = ", ".join(f"{w.rsplit('_', 1)[-1]} {fmt_ratio(r)}" for w, r in rec["ratio"].items())
        over = "; took longer than the time limit" if rec.get("over_limit") else ""
        print(f"  {rec['label']:<40} {fmt_seconds(rec['median_s']):>10}  {ratios:<30} "
              f"{rec['agreement']['text']}{over}")


def add_build_ratios(ours: dict[str, dict]) -> None:
    """Each derived workload's median over that of building the model from the data through
    the same interface (the workload named ``*_build_<interface>``)."""
    for name, rec in ours.items():
        interface = name.rsplit("_", 1)[-1]
        build = next((r for n, r in ours.items() if n.endswith(f"_build_{interface}")), None)
        if build and "median_s" in build and "median_s" in rec:
            rec["ratio_to_build"] = rec["median_s"] / build["median_s"]


def git_state() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--", "statsmodels_mixmeta"))}


def selected(workload: Workload, only: list[str]) -> bool:
    return not only or any(
        key in (workload.name, workload.problem, workload.section) or workload.name.startswith(key)
        for key in only)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time statsmodels-mixmeta against its targets and against other packages; "
                    "see benchmarks/README.md.")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, and a 15 s peer time limit unless --peer-timeout")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="a workload, problem or section name, or a workload-name prefix "
                             "(repeatable)")
    parser.add_argument("--no-peers", action="store_true", help="time our package only")
    parser.add_argument("--peer-timeout", type=float, default=None,
                        help="seconds a peer may take on one workload (default 60; 15 with --quick)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="BLAS threads, here and in the child processes (default 1: on a "
                             "busy 2-core machine more threads make timings erratic; 0 leaves "
                             "the environment's setting)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.threads > 0:
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.threads)
        blas_threads(args.threads)
    budget = Budget.quick() if args.quick else Budget()
    peer_timeout = args.peer_timeout or (15.0 if args.quick else 60.0)

    import statsmodels_mixmeta as smm

    workloads = [w for w in WORKLOADS if selected(w, args.only)]
    if not workloads:
        parser.error(f"--only {args.only} matches no workload; names: "
                     + ", ".join(w.name for w in WORKLOADS))
    multilevel_ok = random_supported()
    started = dt.datetime.now(dt.timezone.utc)
    machine = machine_info()
    print(f"statsmodels-mixmeta {getattr(smm, '__version__', '?')} from {Path(smm.__file__).parent}")
    load, cpus, threads = os.getloadavg()[0], os.cpu_count() or 1, blas_threads()
    print(f"BLAS threads: {threads or '?'}; load average {load:.2f} on {cpus} CPUs")
    if load > 0.5 * cpus and threads != 1:
        print("warning: the machine is busy; with several BLAS threads, timings can be many times "
              "slower than on an idle machine (the default --threads 1 avoids that)")
    print(f"budget: {'quick' if args.quick else 'full'}; peers limited to {peer_timeout:.0f} s and "
          f"{PEER_MEMORY_MB / 1024:.0f} GB each; agreement tolerance {TOLERANCE:g} relative")

    ours_all: dict[str, dict] = {}
    peers_all: dict[str, dict[str, dict]] = {}
    skipped: dict[str, str] = {}
    for section in (CORE, MULTILEVEL, DERIVED):
        in_section = [w for w in workloads if w.section == section]
        if not in_section:
            continue
        print(f"\n=== {SECTION_TITLES[section]} ===")
        if section == MULTILEVEL and not multilevel_ok:
            print("  random= is not supported yet by MixMeta: multilevel workloads skipped "
                  f"({', '.join(w.name for w in in_section)})")
            skipped.update({w.name: "random= not supported yet" for w in in_section})
            continue
        for problem_name in dict.fromkeys(w.problem for w in in_section):
            problem = designs.problem(problem_name)
            print(f"\n-- {problem_name} --")
            ours = {w.name: run_ours(w, budget, args.quick) for w in in_section
                    if w.problem == problem_name}
            ours_all.update(ours)
            peers = {}
            timed = {n: r for n, r in ours.items() if "median_s" in r}
            if section == DERIVED:
                add_build_ratios(ours)
                print_problem(problem_name, ours, {})
                continue
            if timed and not args.no_peers:
                reference = Estimate.from_dict(next(iter(timed.values()))["estimate"])
                ours_mm = None
                for name, peer in PEERS.items():
                    if peer.supports(problem) is not None:
                        continue
                    reason = sibling_failure(name, problem_name, peers_all)
                    if reason:
                        peers[name] = {"label": peer.label, "status": "skipped", "text": reason}
                        continue
                    rec = run_peer(name, problem_name, args.quick, peer_timeout)
                    if rec["status"] == "ok":
                        rec["ratio"] = {w: r["median_s"] / rec["median_s"] for w, r in timed.items()}
                        if PEERS[name].name == "sm_dl" and ours_mm is None:
                            ours_mm = our_mm_estimate(problem)
                        rec["agreement"] = compare(name, Estimate.from_dict(rec["estimate"]),
                                                   reference, ours_mm)
                    peers[name] = rec
                peers_all[problem_name] = peers
            print_problem(problem_name, ours, peers)

    payload = {
        "created": started.isoformat(timespec="seconds"),
        "seconds": round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1),
        "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
        "quick": args.quick,
        "only": args.only,
        "units": "seconds (median of repeated whole fits: construction + fit)",
        "tolerance_relative": TOLERANCE,
        "peer_limits": {"timeout_s": peer_timeout, "memory_mb": PEER_MEMORY_MB},
        "package": {"version": getattr(smm, "__version__", None), **git_state()},
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "workloads": ours_all,
        "skipped": skipped,
        "peers": peers_all,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    print(f"\nwrote {args.output} ({payload['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
