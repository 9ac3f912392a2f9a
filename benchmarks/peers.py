"""Other Python implementations that the runner times against ours.

Each peer is used only through its public API (found from its docstrings) and is
run, never copied: pimeta and mixmetapy are GPL. A peer has three steps:

``prepare(problem)``
    turn the workload's data into the peer's inputs (not timed: e.g. the
    block-diagonal V of ``rma_mv`` or the long format it needs);
``call(inputs)``
    the fit that is timed;
``extract(result)``
    the estimates as an :class:`Estimate`, to compare with ours.

``supports(problem)`` returns None when the peer can fit the workload's model,
otherwise the reason it cannot. Peers run in a child process
(``python -m benchmarks.peers PEER PROBLEM``), which prints its timing and
estimates as JSON; the runner applies the time and memory limits.

What the docstrings do not make obvious (PyMARE 0.0.13, pimeta 1.1.0, mixmetapy 0.1.1):

- PyMARE's ``VarianceBasedLikelihoodEstimator`` defaults to ML, not REML, and
  (since 0.0.11) to Knapp-Hartung standard errors; ``y`` and ``v`` are (n, d)
  and ``X`` carries the intercept.
- pimeta's ``rma_mv`` documents ``struct`` "CS" or "GEN" but accepts "UN" (and
  HCS, ID, DIAG, AR, ...); with several ``~ inner | outer`` terms ``struct``
  must be one string (a list, as documented, raises). Its "UN" does not keep
  Psi positive semi-definite.
- pimeta's ``rma`` works with dense n x n matrices: 20,000 studies need > 4 GB.
- mixmetapy fits one random level only (no ``random=``).
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from benchmarks import designs
from benchmarks.timing import Budget, measure


@dataclass
class Estimate:
    """Fixed effects as a (p, k) matrix (predictors x outcomes) and Psi per level.

    ``psi`` lists the (k, k) between-study covariance of each random level,
    outermost first. ``method`` is the estimator (``"reml"``, ``"ml"``,
    ``"dl"``, ``"pm"``), so that a comparison with a different estimator
    is not reported as a disagreement.
    """

    coef: np.ndarray
    psi: list[np.ndarray]
    method: str
    loglik: float | None = None

    def as_dict(self) -> dict:
        return {"coef": np.asarray(self.coef).tolist(),
                "psi": [np.asarray(p).tolist() for p in self.psi],
                "method": self.method, "loglik": self.loglik}

    @classmethod
    def from_dict(cls, d: dict) -> "Estimate":
        return cls(np.array(d["coef"], float), [np.array(p, float) for p in d["psi"]],
                   d["method"], d.get("loglik"))


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    supports: Callable[[designs.Problem], str | None]
    prepare: Callable[[designs.Problem], tuple]
    call: Callable[..., object]
    extract: Callable[[object, designs.Problem], Estimate]


# --------------------------------------------------------------------------- support rules

def _univariate_single_level(p: designs.Problem) -> str | None:
    if p.n_outcomes > 1:
        return "univariate only"
    if p.groups:
        return "no nested random levels"
    return None


def _univariate_intercept_only(p: designs.Problem) -> str | None:
    reason = _univariate_single_level(p)
    if reason is None and p.exog.shape[1] > 1:
        return "intercept-only (no meta-regression)"
    return reason


def _single_level(p: designs.Problem) -> str | None:
    return "no nested random levels" if p.groups else None


def _rma_mv_models(p: designs.Problem) -> str | None:
    if p.groups or p.n_outcomes > 1:
        return None
    return "multilevel/multivariate models only (rma covers the rest)"


# --------------------------------------------------------------------------- statsmodels

def _combine_effects(method_re: str):
    def call(y, v):
        from statsmodels.stats.meta_analysis import combine_effects
        return combine_effects(y, v, method_re=method_re)

    def extract(res, p):
        return Estimate(np.array([[res.mean_effect_re]]), [np.array([[res.tau2]])], method_re)

    return call, extract


_dl_call, _dl_extract = _combine_effects("dl")
_pm_call, _pm_extract = _combine_effects("pm")


# --------------------------------------------------------------------------- PyMARE

def _pymare_call(y, v, x, method):
    from pymare.estimators import VarianceBasedLikelihoodEstimator
    # "wald": the plain model-based standard errors, as mixmeta reports them
    return VarianceBasedLikelihoodEstimator(
        method=method, small_sample_correction="wald").fit(y, v, x)


def _pymare_extract(est, p):
    params = est.params_
    return Estimate(np.asarray(params["fe_params"], float).reshape(-1, 1),
                    [np.asarray(params["tau2"], float).reshape(1, 1)], p.method)


# --------------------------------------------------------------------------- pimeta

def _pimeta_rma_call(y, v, mods, method):
    import pimeta
    return pimeta.rma(y, v, mods=mods, method=method, warn_missing=False)


def _pimeta_rma_extract(res, p):
    return Estimate(np.asarray(res.b, float).reshape(-1, 1), [np.array([[res.tau2]])],
                    p.method, loglik=None)


def _rma_mv_random(p: designs.Problem) -> tuple[str | list[str], str]:
    """The ``random=``/``struct=`` of rma_mv that is mixmeta's model for k > 1 outcomes."""
    if not p.groups:  # single level: one unstructured Psi over the rows
        return "~ outcome | row", "UN"
    if p.bscov == "unstr":  # one unstructured Psi per group, as mixmeta's random= ~ 1 | g
        if len(p.groups) > 1:
            raise NotImplementedError("nested unstructured levels")
        return "~ outcome | " + p.groups[0], "UN"
    if p.bscov != ["cs"] * len(p.groups):
        raise NotImplementedError(f"bscov={p.bscov!r}")
    # nested compound symmetry: one ~ outcome | g term per level (pimeta takes one struct)
    return [f"~ outcome | {g}" for g in p.groups], "CS"


def _rma_mv_prepare(p: designs.Problem):
    """Long format (one row per observed outcome), block-diagonal V, x_i (x) I_k design."""
    from scipy.linalg import block_diag

    n, k = len(p.endog), p.n_outcomes
    method = p.method.upper()
    if k == 1:
        random = "~ 1 | " + "/".join(p.groups)
        return (p.endog, p.within_cov, None, None, p.frame[p.groups], random, "CS", True, method)
    observed = ~np.isnan(p.endog)
    outcome = np.tile([f"y{j + 1}" for j in range(k)], n)
    long = pd.DataFrame({"row": np.repeat(np.arange(n), k), "outcome": outcome})
    for g in p.groups:
        long[g] = np.repeat(p.frame[g].to_numpy(), k)
    keep = observed.ravel()
    blocks = [s[np.ix_(o, o)] for s, o in zip(p.within_cov, observed)]
    mods = np.kron(p.exog, np.eye(k))[keep]
    random, struct = _rma_mv_random(p)
    return (p.endog.ravel()[keep], None, block_diag(*blocks), mods, long[keep].reset_index(drop=True),
            random, struct, False, method)


def _rma_mv_call(y, v, V, mods, data, random, struct, intercept, method):
    import pimeta
    return pimeta.rma_mv(y, vi=v, V=V, mods=mods, data=data, random=random, struct=struct,
                         intercept=intercept, method=method, warn_missing=False)


def _cs(k, variance, rho):
    return variance * ((1 - rho) * np.eye(k) + rho * np.ones((k, k)))


def _rma_mv_extract(res, p):
    k = p.n_outcomes
    coef = np.asarray(res.beta, float).reshape(-1, k)
    if k == 1:
        psi = [np.array([[s]]) for s in res.sigma2]
    elif _rma_mv_random(p)[1] == "UN":
        sd = np.sqrt(np.asarray(res.tau2, float))
        corr = np.eye(k)
        rows, cols = np.tril_indices(k, -1)
        order = np.lexsort((rows, cols))  # metafor's rho: lower triangle, column-major
        corr[rows[order], cols[order]] = res.rho
        corr[cols[order], rows[order]] = res.rho
        psi = [sd[:, None] * corr * sd[None, :]]
    else:
        psi = [_cs(k, t, r) for t, r in zip(res.tau2, res.rho)]
    return Estimate(coef, psi, p.method, loglik=float(res.ll))


# --------------------------------------------------------------------------- mixmetapy

def _mixmetapy_call(y, S, X, method):
    from mixmetapy import mixmeta
    return mixmeta(y, S, X=X, method=method)


def _mixmetapy_extract(res, p):
    return Estimate(np.asarray(res.coef, float), [np.asarray(res.Psi, float)], p.method,
                    loglik=float(res.loglik))


PEERS = {
    "sm_dl": Peer(
        "sm_dl", "statsmodels combine_effects (DL)", _univariate_intercept_only,
        lambda p: (p.endog, p.within_cov), _dl_call, _dl_extract),
    "sm_pm": Peer(
        "sm_pm", "statsmodels combine_effects (PM)", _univariate_intercept_only,
        lambda p: (p.endog, p.within_cov), _pm_call, _pm_extract),
    "pymare": Peer(
        "pymare", "PyMARE VarianceBasedLikelihoodEstimator", _univariate_single_level,
        lambda p: (p.endog[:, None], p.within_cov[:, None], p.exog, p.method.upper()),
        _pymare_call, _pymare_extract),
    "pimeta_rma": Peer(
        "pimeta_rma", "pimeta rma", _univariate_single_level,
        lambda p: (p.endog, p.within_cov, p.exog[:, 1:] if p.exog.shape[1] > 1 else None,
                   p.method.upper()),
        _pimeta_rma_call, _pimeta_rma_extract),
    "pimeta_rma_mv": Peer(
        "pimeta_rma_mv", "pimeta rma_mv", _rma_mv_models,
        _rma_mv_prepare, _rma_mv_call, _rma_mv_extract),
    "mixmetapy": Peer(
        "mixmetapy", "mixmetapy mixmeta", _single_level,
        lambda p: (p.endog, p.within_cov, p.exog, p.method), _mixmetapy_call, _mixmetapy_extract),
}


def time_peer(peer_name: str, problem_name: str, budget: Budget) -> dict:
    """Prepare, time and extract one peer on one workload (run in the child)."""
    peer = PEERS[peer_name]
    problem = designs.problem(problem_name)
    inputs = peer.prepare(problem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        timing = measure(lambda: peer.call(*inputs), budget)
    return {"timing": timing.as_dict(), "estimate": peer.extract(timing.value, problem).as_dict()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time one peer on one workload (child process).")
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("problem", choices=sorted(designs.PROBLEMS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    budget = Budget.quick() if args.quick else Budget()
    print(json.dumps(time_peer(args.peer, args.problem, budget)))


if __name__ == "__main__":
    main()
