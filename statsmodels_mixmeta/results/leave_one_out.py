"""
Leave-one-out refits: the model fitted again without each outer group.

For each outer group ``i`` the design without it comes from
``design.subset(others)`` (:mod:`statsmodels_mixmeta.design.resample`:
nothing is parsed or validated again) and is wired by
``MixMeta.from_design`` with the fit's estimator, Psi structures,
``psi_fix``, ``init_psi`` and ``vc_adjust``.  ML and REML refits start from
the full fit's ``theta`` (:func:`statsmodels_mixmeta.fitting.nearby.refit`:
no start values, a step or two of the schedule, and the restart step of a
fit from scratch, so that each refit is the optimum a fit of the same data
from scratch reports); fixed effects, method of moments and variance
components are computed directly.  Each refit gives the fixed effects
``beta_(-i)``, their covariance ``(X' Sigma^-1 X)^-1`` at the refit's Psi
(the model-based one, whatever ``cov_type`` the fit has), the Psi's,
Cochran's Q test of the groups left and its I-squared.

:func:`refit_groups` does the work once per results (cached by
``MixMetaResults``) for :func:`leave_one_out_frame` and for the influence
diagnostics of :mod:`statsmodels_mixmeta.results.influence`.

References
----------
Viechtbauer W, Cheung MW-L. Outlier and influence diagnostics for
meta-analysis. Research Synthesis Methods 2010; 1: 112-125.
"""
import warnings
from types import SimpleNamespace
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..fitting import nearby
from ..kernels import cochran
from . import heterogeneity
from .simulation import _psi_names, _unlabelled


@dataclass
class Refits:
    """The leave-one-out refits of a fit, one entry per outer group (in
    the order of ``labels``)."""

    labels: pd.Index          # the outer group left out
    beta: np.ndarray          # (m, P)
    cov_beta: np.ndarray      # (m, P, P)
    psis: list                # per level, (m, r_l, r_l)
    q_statistic: np.ndarray   # (m, 1 [+ k]): overall [, per outcome]
    q_df: np.ndarray          # (m, 1 [+ k])
    llf: np.ndarray           # (m,)
    converged: np.ndarray     # (m,) bool
    messages: dict = field(default_factory=dict)  # warnings and errors


def refit_groups(results):
    """
    Refit ``results.model`` without each of its outer groups.

    A group whose removal leaves a model that cannot be fitted (a
    coefficient no other group estimates, too few values for the
    estimator) gets NaN, ``converged=False``, and the reason in
    ``messages``; warnings of the refits are counted there too.

    Returns
    -------
    Refits
    """
    model = results.model
    design = _unlabelled(model.design)
    labels = design.levels.outer_labels
    m, n_coef = labels.size, design.n_coef
    options = dict(method=model.method, bscov=model.bscov,
                   psi_fix=model.psi_fix, init_psi=model.init_psi,
                   vc_adjust=model.vc_adjust)
    likelihood = model.method in ("ml", "reml") and results.theta.size > 0
    n_q = 1 + (design.n_outcomes if design.n_outcomes > 1 else 0)
    beta = np.full((m, n_coef), np.nan)
    cov_beta = np.full((m, n_coef, n_coef), np.nan)
    psis = [np.full((m,) + np.shape(psi), np.nan) for psi in results.psis]
    q_statistic = np.full((m, n_q), np.nan)
    q_df = np.full((m, n_q), np.nan)
    llf = np.full(m, np.nan)
    converged = np.zeros(m, dtype=bool)
    messages = {}
    positions = np.arange(m)
    hessian = model.objective.hessian(results.theta) if likelihood else None
    for i in range(m):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sub = design.subset(labels[positions != i])
                refit = type(model).from_design(sub, **options)
                if likelihood:
                    outcome = nearby.refit(refit.objective, results.theta,
                                           restart=refit._restart,
                                           hessian=hessian)
                    state = refit.objective.state(outcome.theta)
                    fit_psis, ok = refit.psis(outcome.theta), \
                        outcome.converged
                else:
                    fit = refit.fit()
                    state, fit_psis, ok = fit._results._state, fit.psis, \
                        fit.converged
            except (ValueError, np.linalg.LinAlgError) as err:
                key = f"{type(err).__name__}: {err}"
                messages[key] = messages.get(key, 0) + 1
                continue
            beta[i], cov_beta[i] = state.beta, state.cov_beta
            for level, psi in enumerate(fit_psis):
                psis[level][i] = psi
            llf[i] = np.nan if model.method in ("mm", "vc") else state.llf
            converged[i] = bool(ok)
        for w in caught:
            key = f"{w.category.__name__}: {w.message}"
            messages[key] = messages.get(key, 0) + 1
    if _has_q_test(results):
        # all groups at once, by downdating the fixed-effects fit
        q_statistic, q_df = cochran.leave_one_out_q_statistics(
            model._batches, design.basis, design.n_outcomes,
            design.n_terms, m)
    index = pd.Index(labels, name=_group_name(model))
    return Refits(index, beta, cov_beta, psis, q_statistic, q_df, llf,
                  converged, messages)


def leave_one_out_frame(results, refits):
    """
    The refits as a DataFrame, one row per outer group left out (see
    ``MixMetaResults.leave_one_out``).
    """
    model = results.model
    names = list(model.data.param_names)
    se = np.sqrt(np.einsum("gjj->gj", refits.cov_beta))
    columns = {name: refits.beta[:, j] for j, name in enumerate(names)}
    columns.update({f"se:{name}": se[:, j] for j, name in enumerate(names)})
    psi_names = iter(_psi_names(model.random)) if results.psis else iter(())
    for stack in refits.psis:
        rows, cols = np.tril_indices(stack.shape[-1])
        for a, b in zip(rows, cols):
            columns[next(psi_names)] = stack[:, a, b]
    outcomes = list(model.design.outcome_names)
    suffixes = [""] + ([f":{name}" for name in outcomes]
                       if len(outcomes) > 1 else [])
    i2 = heterogeneity.i_squared(SimpleNamespace(
        statistic=refits.q_statistic, df=refits.q_df))
    for j, suffix in enumerate(suffixes):
        columns[f"q{suffix}"] = refits.q_statistic[:, j]
        columns[f"q_df{suffix}"] = refits.q_df[:, j]
        columns[f"i2{suffix}"] = i2[:, j]
    columns["llf"] = refits.llf
    columns["converged"] = refits.converged
    frame = pd.DataFrame(columns, index=refits.labels.copy())
    frame.attrs["messages"] = dict(refits.messages)
    return frame


def _has_q_test(results):
    """Whether the fit has a Q test (not with a singular within-study
    covariance)."""
    try:
        results.q_test()
    except ValueError:
        return False
    return True


def _group_name(model):
    """The index name of the frames: the outer grouping factor, else
    ``"group"`` (each row its own group)."""
    name = model.design.levels.names[0]
    return "group" if name is None else name
