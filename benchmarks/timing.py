"""Timing, process isolation and machine description for the benchmark runner.

``measure`` times a whole call (construction + fit) with ``time.perf_counter``:
one warm-up call, then repeats until both a minimum count and a time budget are
reached (or a maximum count), and reports the median. A call slower than
``slow_call`` seconds is timed once, with no separate warm-up.

``run_isolated`` runs a child Python process under a wall-clock limit and a
resident-memory limit (it polls ``/proc/<pid>/status`` and kills the child when
either is exceeded), so that a slow or memory-hungry peer cannot hang the runner
or exhaust the machine.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Budget:
    """How long to time one workload: at least ``min_repeats`` calls and ``min_seconds``."""

    min_repeats: int = 5
    max_repeats: int = 500
    min_seconds: float = 1.0
    slow_call: float = 2.0

    @classmethod
    def quick(cls) -> "Budget":
        return cls(min_repeats=3, max_repeats=50, min_seconds=0.2, slow_call=0.5)


@dataclass
class Timing:
    """Median and spread of repeated calls (seconds), and what the last call returned."""

    median: float
    times: list[float] = field(repr=False)
    value: object = field(default=None, repr=False)

    @property
    def repeats(self) -> int:
        return len(self.times)

    def as_dict(self) -> dict:
        return {
            "median_s": self.median,
            "min_s": min(self.times),
            "max_s": max(self.times),
            "repeats": self.repeats,
        }


def measure(call, budget: Budget) -> Timing:
    """Time ``call()`` repeatedly; the first call is the warm-up unless it is slow."""
    start = time.perf_counter()
    value = call()
    first = time.perf_counter() - start
    if first > budget.slow_call:
        return Timing(first, [first], value)
    times: list[float] = []
    spent = 0.0
    while len(times) < budget.max_repeats and (
            len(times) < budget.min_repeats or spent < budget.min_seconds):
        start = time.perf_counter()
        value = call()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if elapsed > budget.slow_call:  # slow: a couple of calls are all we can afford
            if len(times) >= 2:
                break
    return Timing(statistics.median(times), times, value)


@dataclass(frozen=True)
class ChildOutcome:
    """What an isolated child produced: its JSON answer, or why it was stopped."""

    answer: dict | None
    stopped: str | None = None  # "timeout", "memory" or "error"
    detail: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def run_isolated(module: str, args: list[str], timeout: float, memory_mb: float,
                 poll: float = 0.05) -> ChildOutcome:
    """Run ``python -m module *args`` from the repository root, within the limits.

    The child prints one JSON object as its last line of standard output.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    stopped = None
    while child.poll() is None:
        peak = max(peak, _rss_mb(child.pid))
        elapsed = time.perf_counter() - start
        if elapsed > timeout:
            stopped = "timeout"
        elif peak > memory_mb:
            stopped = "memory"
        if stopped:
            child.kill()
            child.wait()
            return ChildOutcome(None, stopped, seconds=elapsed, peak_rss_mb=peak)
        time.sleep(poll)
    out, err = child.communicate()
    elapsed = time.perf_counter() - start
    lines = [line for line in out.splitlines() if line.strip()]
    if child.returncode != 0 or not lines:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return ChildOutcome(None, "error", detail=tail, seconds=elapsed, peak_rss_mb=peak)
    return ChildOutcome(json.loads(lines[-1]), seconds=elapsed, peak_rss_mb=peak)


def _numpy_openblas():
    """numpy's bundled OpenBLAS (scipy-openblas) through ctypes, or None."""
    import ctypes
    import glob

    import numpy as np

    libs_dir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(glob.glob(str(libs_dir / "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # the library numpy already loaded: same handle
        except OSError:
            continue
        for suffix in ("64_", ""):
            get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                return get, put
    return None


def blas_threads(n: int | None = None) -> int | None:
    """The number of BLAS threads numpy uses (set it first when ``n`` is given); None if unknown.

    Children started by :func:`run_isolated` follow ``OPENBLAS_NUM_THREADS`` and
    ``OMP_NUM_THREADS``, which the caller sets in ``os.environ``.
    """
    functions = _numpy_openblas()
    if functions is None:
        return None
    get, put = functions
    if n is not None:
        put(int(n))
    return int(get())


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Where and with what the numbers were measured."""
    import numpy as np

    blas = {}
    try:
        config = np.show_config(mode="dicts")
        blas = {k: v.get("name") for k, v in config.get("Build Dependencies", {}).items()
                if isinstance(v, dict)}
    except TypeError:  # numpy < 1.25 prints instead
        pass
    dists = ["statsmodels-mixmeta", "statsmodels", "numpy", "scipy", "pandas", "formulaic",
             "patsy", "PyMARE", "pimeta", "mixmetapy"]
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "blas": blas,
        "blas_threads": blas_threads(),
        "thread_env": {v: os.environ.get(v) for v in
                       ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "versions": {d: _version(d) for d in dists},
    }
