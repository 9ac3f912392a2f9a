"""Our package's benchmark workloads: what is timed, through which interface, against what target.

A workload is one whole fit (model construction + ``fit()``) of one problem from
:mod:`benchmarks.designs`, through the formula interface (``smf.mixmeta``) or
the array interface (``smm.MixMeta(endog, exog, S=...)``). The workloads of the
``derived`` section time model construction only: from the data (interfaces
"build_formula", "build_arrays") or from the design of a model built beforehand
through the same interface, untimed (``MixMeta.from_design`` of
``design.subset(all groups but one)``: "subset_formula", ...; of
``design.with_endog(y)``: "with_endog_formula", ...). Workloads marked
``isolated`` are timed in a fresh child process
(``python -m benchmarks.workloads NAME``), which also reports the peak resident
memory of the whole process (``resource.getrusage(...).ru_maxrss``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import sys
from dataclasses import dataclass

import numpy as np

from benchmarks import designs
from benchmarks.peers import Estimate
from benchmarks.timing import Budget, measure

CORE, MULTILEVEL, DERIVED = "core", "multilevel", "derived"


@dataclass(frozen=True)
class Workload:
    name: str
    problem: str
    interface: str  # "formula" or "arrays"; derived: "build_formula", "build_arrays", "subset", ...
    description: str
    target_s: float | None
    section: str = CORE
    isolated: bool = False
    memory_target_mb: float | None = None


WORKLOADS = [
    Workload("bcg_formula", "bcg", "formula", "bcg REML, logor ~ 1 (13 studies)", 0.005),
    Workload("bcg_arrays", "bcg", "arrays", "bcg REML, intercept only (13 studies)", 0.001),
    Workload("fibrinogen_formula", "fibrinogen", "formula",
             "fibrinogen REML, b2 + b3 + b4 + b5 ~ 1 (31 cohorts, k = 4)", 0.015),
    Workload("fibrinogen_arrays", "fibrinogen", "arrays",
             "fibrinogen REML, intercept only (31 cohorts, k = 4)", None),
    Workload("metareg_20000_arrays", "metareg_20000", "arrays",
             "meta-regression REML, 3 predictors, 20,000 studies", 0.008),
    Workload("metareg_20000_formula", "metareg_20000", "formula",
             "meta-regression REML, y ~ x1 + x2 + x3, 20,000 studies", 0.015),
    Workload("metareg_1000000_arrays", "metareg_1000000", "arrays",
             "meta-regression REML, 3 predictors, 1,000,000 studies (fresh process)", 0.5,
             isolated=True, memory_target_mb=1024.0),
    Workload("four_level_formula", "four_level", "formula",
             "REML, ~ 1 | article/experiment/sample/effect (1,653 effects)", 0.2, MULTILEVEL),
    Workload("nmmaps_formula", "nmmaps_tmeanagepar", "formula",
             "nmmaps ML, coef1..coef4 ~ agecat, ~ 1 | city (324 rows, k = 4)", 0.1, MULTILEVEL),
    Workload("nested_cs_50_formula", "nested_cs_50", "formula",
             "REML, k = 3, ~ 1 | outer/inner, cs/cs, m = 50 (500 rows)", 0.05, MULTILEVEL),
    Workload("nested_cs_500_formula", "nested_cs_500", "formula",
             "REML, k = 3, ~ 1 | outer/inner, cs/cs, m = 500 (5,000 rows)", 0.3, MULTILEVEL),
]


def _derived(problem: str, label: str, arrays: bool = True) -> list[Workload]:
    """Model construction only: from the data, and from a design derived from the design of a
    model built (untimed) through the same interface."""
    text = {"build": "model from the data, no fit",
            "subset": "design.subset(all groups but one) + MixMeta.from_design",
            "with_endog": "design.with_endog(y) + MixMeta.from_design"}
    return [Workload(f"{problem}_{kind}_{interface}", problem, f"{kind}_{interface}",
                     f"{label}, {interface}: {text[kind]}", None, DERIVED)
            for interface in (["formula", "arrays"] if arrays else ["formula"])
            for kind in ("build", "subset", "with_endog")]


WORKLOADS += (_derived("fibrinogen", "fibrinogen (31 cohorts, k = 4)")
              + _derived("nmmaps_tmeanagepar", "nmmaps (~ 1 | city, k = 4)", arrays=False)
              + _derived("metareg_20000", "meta-regression, 20,000 studies"))
BY_NAME = {w.name: w for w in WORKLOADS}


def random_supported() -> bool:
    """Whether the package takes ``random=`` as a parameter (not just a stray keyword)."""
    import statsmodels_mixmeta as smm

    signatures = [inspect.signature(smm.MixMeta.__init__), inspect.signature(smm.MixMeta.from_formula)]
    return any("random" in s.parameters for s in signatures)


def fit_call(workload: Workload, problem: designs.Problem, method: str | None = None):
    """The timed call: construct the model from the problem's data and fit it."""
    import statsmodels.formula.api as smf

    import statsmodels_mixmeta as smm

    options = {"method": method or problem.method}
    if problem.bscov != "unstr":
        options["bscov"] = problem.bscov
    if problem.random:
        options["random"] = problem.random
    if workload.interface == "formula":
        frame, formula, S = problem.frame, problem.formula, problem.S
        return lambda: smf.mixmeta(formula, data=frame, S=S, **options).fit()
    endog, exog, within_cov = problem.endog, problem.exog, problem.within_cov
    return lambda: smm.MixMeta(endog, exog, S=within_cov, **options).fit()


def derived_call(workload: Workload, problem: designs.Problem):
    """The timed call of a ``derived`` workload: a model, not fitted."""
    import statsmodels.formula.api as smf

    import statsmodels_mixmeta as smm

    kind, interface = workload.interface.split("_", 1)  # e.g. "with_endog_arrays"
    if interface.startswith("endog_"):
        kind, interface = "with_endog", interface[len("endog_"):]
    options = {"method": problem.method}
    if problem.bscov != "unstr":
        options["bscov"] = problem.bscov
    if interface == "arrays":
        endog, exog, within_cov = problem.endog, problem.exog, problem.within_cov
        build = lambda: smm.MixMeta(endog, exog, S=within_cov, **options)  # noqa: E731
    else:
        frame, formula, S = problem.frame, problem.formula, problem.S
        random = {"random": problem.random} if problem.random else {}
        build = lambda: smf.mixmeta(formula, data=frame, S=S, **options, **random)  # noqa: E731
    if kind == "build":
        return build
    design = build().design
    if kind == "subset":
        keep = design.levels.outer_labels[1:]
        return lambda: smm.MixMeta.from_design(design.subset(keep), **options)
    noise = np.random.default_rng(0).normal(scale=0.01, size=design.endog.shape)
    y = design.endog + noise  # NaN stays NaN: the same missing pattern
    return lambda: smm.MixMeta.from_design(design.with_endog(y), **options)


def _psi_blocks(psi) -> list[np.ndarray]:
    if isinstance(psi, dict):
        return [np.asarray(v, float) for v in psi.values()]
    if isinstance(psi, (list, tuple)):
        return [np.asarray(v, float) for v in psi]
    return [np.asarray(psi, float)]


def _coef_matrix(params, k: int) -> np.ndarray:
    """Our params as (p, k): names are ``outcome:term`` for k > 1, outcome-major."""
    names = getattr(params, "index", None)
    values = np.asarray(params, float)
    if k == 1:
        return values.reshape(-1, 1)
    if names is not None and all(":" in str(n) for n in names):
        outcomes = list(dict.fromkeys(str(n).split(":", 1)[0] for n in names))
        terms = list(dict.fromkeys(str(n).split(":", 1)[1] for n in names))
        out = np.full((len(terms), len(outcomes)), np.nan)
        for n, v in zip(names, values):
            outcome, term = str(n).split(":", 1)
            out[terms.index(term), outcomes.index(outcome)] = v
        return out
    return values.reshape(k, -1).T


def our_estimate(result, problem: designs.Problem, method: str | None = None) -> Estimate:
    llf = getattr(result, "llf", None)
    return Estimate(_coef_matrix(result.params, problem.n_outcomes), _psi_blocks(result.psi),
                    method or problem.method, None if llf is None else float(llf))


def time_workload(name: str, budget: Budget) -> dict:
    """Time one of our workloads in this process."""
    workload = BY_NAME[name]
    problem = designs.problem(workload.problem)
    if workload.section == DERIVED:
        timing = measure(derived_call(workload, problem), budget)
        return {"timing": timing.as_dict(), "converged": True, "estimate": None}
    timing = measure(fit_call(workload, problem), budget)
    result = timing.value
    return {"timing": timing.as_dict(),
            "converged": bool(getattr(result, "converged", True)),
            "estimate": our_estimate(result, problem).as_dict()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time one workload in a fresh process (child).")
    parser.add_argument("workload", choices=sorted(BY_NAME))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    answer = time_workload(args.workload, Budget.quick() if args.quick else Budget())
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    answer["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
