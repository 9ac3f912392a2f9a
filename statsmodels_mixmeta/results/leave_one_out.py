"""
Leave-one-out refits: the model fitted again without each outer group.

For each outer group ``i`` the design without it comes from
``design.subset(others)`` (:mod:`statsmodels_mixmeta.design.resample`:
nothing is parsed or validated again) and is wired by
``MixMeta.from_design`` with the fit's estimator, Psi structures,
``psi_fix``, ``init_psi`` and ``vc_adjust``; its stacks are the full fit's
less the group's (:meth:`statsmodels_mixmeta.kernels.batches.BatchSet.
without_group`), not stacked anew.  ML and REML refits start from
the full fit's ``theta`` (:func:`statsmodels_mixmeta.fitting.nearby.refit`:
no start values, a step or two of the schedule, and the restart step of a
fit from scratch, so that each refit is the optimum a fit of the same data
from scratch reports); fixed effects, method of moments and variance
components are computed directly.  Each refit gives the fixed effects
``beta_(-i)``, their covariance ``(X' Sigma^-1 X)^-1`` at the refit's Psi
(the model-based one, whatever ``cov_type`` the fit has) and the Psi's.
Cochran's Q test of the groups left, and its I-squared, are the same
statistic as ``q_test()`` of each refit, computed for all groups at once by
downdating the fixed-effects fit
(:func:`statsmodels_mixmeta.kernels.cochran.leave_one_out_q_statistics`).

:func:`refit_groups` does the work once per results (cached by
``MixMetaResults``) for :func:`leave_one_out_frame` and for the influence
diagnostics of :mod:`statsmodels_mixmeta.results.influence`.

References
----------
Viechtbauer W, Cheung MW-L. Outlier and influence diagnostics for
meta-analysis. Research Synthesis Methods 2010; 1: 112-125.
"""
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..fitting import nearby, restarts
from ..kernels import cochran, variance_scan
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
    ``messages``; warnings of the refits are counted there too.  The
    certified scan of a single variance, the restart step of such a fit
    from scratch, runs for many refits at once
    (:func:`statsmodels_mixmeta.fitting.nearby.beaten_by_scan`); a refit
    it beats runs the restart step itself.

    Returns
    -------
    Refits
    """
    model = results.model
    # (after remove_data() this raises an AttributeError saying so)
    labels = model.design.levels.outer_labels
    design = _unlabelled(model.design)
    m, n_coef = labels.size, design.n_coef
    n_q = 1 + (design.n_outcomes if design.n_outcomes > 1 else 0)
    out = Refits(pd.Index(labels, name=_group_name(model)),
                 np.full((m, n_coef), np.nan),
                 np.full((m, n_coef, n_coef), np.nan),
                 [np.full((m,) + np.shape(psi), np.nan)
                  for psi in results.psis],
                 np.full((m, n_q), np.nan), np.full((m, n_q), np.nan),
                 np.full(m, np.nan), np.zeros(m, dtype=bool))
    options = dict(method=model.method, bscov=model.bscov,
                   psi_fix=model.psi_fix, init_psi=model.init_psi,
                   vc_adjust=model.vc_adjust)
    likelihood = model.method in ("ml", "reml") and results.theta.size > 0
    hessian = _full_hessian(model, results.theta) if likelihood else None
    scores = (_scores_without(model, results.theta, m)
              if hessian is not None else None)
    positions = np.arange(m)
    batches = model.__dict__.get("_batch_cache")
    pending = []      # (position, refit) awaiting the scan
    for i in range(m):
        with _Collect(out.messages):
            sub = design.subset(labels[positions != i])
            refit = type(model).from_design(sub, **options)
            if batches is not None:
                # the full fit's stacks less the group's, not stacked anew
                refit.__dict__["_batch_cache"] = batches.without_group(
                    i, refit._kernel_long())
            if not likelihood:
                fit = refit.fit()
                _store(out, i, fit._results._state, fit.psis, fit.converged,
                       model.method)
                continue
            scan_later = restarts.scans(refit.objective)
            outcome = nearby.refit(
                refit.objective, results.theta, hessian=hessian,
                score=None if scores is None else scores[i],
                restart=None if scan_later else refit._restart)
            _store_outcome(out, i, refit, outcome, model.method)
            if scan_later:
                pending.append((i, refit))
        if len(pending) * design.n_values >= variance_scan.CHUNK_ELEMENTS:
            _scan(out, pending, results.theta, model.method)
    if pending:
        _scan(out, pending, results.theta, model.method)
    if _has_q_test(results):
        # all groups at once, by downdating the fixed-effects fit
        out.q_statistic, out.q_df = cochran.leave_one_out_q_statistics(
            model._batches, design.basis, design.n_outcomes,
            design.n_terms, m)
    return out


def _scan(out, pending, theta, method):
    """The batched scan of the refits ``pending``; those it beats are
    refitted with the restart step of their own model."""
    positions = [i for i, _ in pending]
    refits = [refit for _, refit in pending]
    thetas = np.array([[out.psis[0][i, 0, 0]] for i in positions])
    thetas = np.sqrt(thetas / np.array(
        [[r.objective.random.structures[0].square_scale] for r in refits]))
    beaten = nearby.beaten_by_scan([r.objective for r in refits], thetas)
    for i, refit, again in zip(positions, refits, beaten):
        if again:
            with _Collect(out.messages):
                outcome = nearby.refit(refit.objective, theta,
                                       restart=refit._restart)
                _store_outcome(out, i, refit, outcome, method)
    pending.clear()


def _store_outcome(out, i, refit, outcome, method):
    _store(out, i, refit.objective.state(outcome.theta),
           refit.psis(outcome.theta), outcome.converged, method)


def _store(out, i, state, psis, converged, method):
    """Row ``i`` of ``out`` from a refit's GLS state and Psi's."""
    out.beta[i], out.cov_beta[i] = state.beta, state.cov_beta
    for level, psi in enumerate(psis):
        out.psis[level][i] = psi
    out.llf[i] = np.nan if method in ("mm", "vc") else state.llf
    out.converged[i] = bool(converged)


class _Collect:
    """Count the warnings raised in the block, and a ValueError or
    LinAlgError that ends it, in ``messages`` (the refit's row stays
    NaN)."""

    def __init__(self, messages):
        self.messages = messages
        self._catch = warnings.catch_warnings(record=True)

    def __enter__(self):
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, kind, error, traceback):
        self._catch.__exit__(None, None, None)
        keys = [f"{w.category.__name__}: {w.message}" for w in self._caught]
        handled = kind is not None and issubclass(
            kind, (ValueError, np.linalg.LinAlgError))
        if handled:
            keys.append(f"{kind.__name__}: {error}")
        for key in keys:
            self.messages[key] = self.messages.get(key, 0) + 1
        return handled


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


def _full_hessian(model, theta):
    """The full fit's Hessian at its estimate, for the refits' first step
    (None where it cannot be evaluated: the refits then start at
    ``theta`` itself)."""
    try:
        hessian = model.objective.hessian(theta)
    except (ValueError, np.linalg.LinAlgError):
        return None
    return hessian if np.all(np.isfinite(hessian)) else None


def _scores_without(model, theta, n_groups):
    """
    The score at ``theta`` of the fit without each group, approximated by
    the full fit's score less the group's terms (at the full fit's
    ``beta``): ``(n_groups, T)``, or None for a kernel without per-group
    terms (the univariate kernel, whose refits evaluate it cheaply).
    """
    kernel = model.kernel
    if not hasattr(kernel, "group_psi_gradients"):
        return None
    state = model.objective.state(theta)
    grads = kernel.group_psi_gradients(state, n_groups)
    jacobians = model.random.jacobians(theta)
    terms = np.concatenate(
        [g.reshape(n_groups, -1) @ j.reshape(j.shape[0], -1).T
         for g, j in zip(grads, jacobians)], axis=1)
    return model.objective.score(theta) - terms


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
