"""
The outcome of a first stage: :class:`TwoStage`, the pooled estimates ``y``
and covariances ``S`` of the groups, their tidy table, the failures, and
the second-stage :class:`~statsmodels_mixmeta.MixMeta` model built on them.
"""
import warnings

import numpy as np
import pandas as pd

from .first_stage import extract
from . import second_stage as _second


class FirstStageWarning(UserWarning):
    """Some groups of a first stage were left out or kept only in part."""


class TwoStage:
    """
    First-stage estimates of many groups, ready to be pooled.

    Built by :func:`~statsmodels_mixmeta.twostage.two_stage` or
    :meth:`TwoStage.from_results`; not meant to be built directly.

    Attributes
    ----------
    param_names : list of str
        The carried first-stage coefficients, ``k`` of them.
    groups : Index
        Labels of the pooled groups (those with at least one estimable
        coefficient), in order.
    y : DataFrame, (n_groups, k)
        Estimates, columns ``param_names``; NaN where a coefficient is not
        estimable in a group (a missing outcome of the second stage).
    S : ndarray, (n_groups, k, k)
        Each group's block of ``cov_params()`` for ``param_names``; the
        rows and columns of a missing coefficient are NaN.
    table : DataFrame
        One row per group, failed groups included: the estimates (columns
        named as the coefficients), ``se_<name>``, ``cov_<a>_<b>`` (each
        pair once, ``a`` before ``b`` in ``param_names``), ``nobs``,
        ``converged``, ``pooled`` (the group is in ``y``), then the
        covariates.
    failures : DataFrame
        One row per problem found: ``group``, ``reason``, ``params`` (the
        coefficients it removed, comma-separated) and ``action``
        (``"dropped"``: the group is left out; ``"kept estimable"``: its
        other coefficients are pooled).  Empty when every group is fine.
    covariates : DataFrame or None
        Group-level covariates of the pooled groups (index ``groups``).
    """

    def __init__(self, outcomes, params, covariates=None, on_failure="drop",
                 group_name=None):
        if on_failure not in ("drop", "raise"):
            raise ValueError(
                f"on_failure must be 'drop' or 'raise', got {on_failure!r}")
        names = _requested_names(outcomes, params)
        _check_names(outcomes, params, names)
        k = len(names)
        for outcome in outcomes:  # a raised fit of a callable `params`
            if outcome.estimates.shape != (k,):
                outcome.estimates = np.full(k, np.nan)
                outcome.cov = np.full((k, k), np.nan)
        self.param_names = names
        self.failures = _failures(outcomes, names)
        if len(self.failures) and on_failure == "raise":
            lines = [f"  {row.group}: {row.reason}"
                     for row in self.failures.itertuples()]
            raise ValueError(
                "the first stage failed in "
                f"{self.failures['group'].nunique()} group(s) "
                "(on_failure='raise'):\n" + "\n".join(lines))
        labels = pd.Index([o.label for o in outcomes], name=group_name)
        pooled = np.array([not o.dropped for o in outcomes], dtype=bool)
        if not pooled.any():
            raise ValueError(
                "no group has an estimable coefficient to pool; see the "
                "reasons:\n" + "\n".join(
                    f"  {row.group}: {row.reason}"
                    for row in self.failures.head(10).itertuples()))
        self.groups = labels[pooled]
        estimates = np.array([o.estimates for o in outcomes]).reshape(-1, k)
        cov = np.array([o.cov for o in outcomes]).reshape(-1, k, k)
        self.y = pd.DataFrame(estimates[pooled], index=self.groups,
                              columns=names)
        self.S = cov[pooled]
        if covariates is not None:
            # a new index: the caller's frame keeps its own name
            covariates = covariates.reindex(labels).rename_axis(group_name)
        self.covariates = None if covariates is None \
            else covariates.loc[self.groups]
        self.table = _table(outcomes, names, estimates, cov, labels, pooled,
                            covariates)
        _warn(self.failures, outcomes)

    @classmethod
    def from_results(cls, results, params, covariates=None,
                     on_failure="drop"):
        """
        Pool first-stage fits that were run elsewhere.

        Parameters
        ----------
        results : dict or list
            ``{group label: fitted statsmodels results}``, or a list (the
            labels are then ``0 .. n-1``).
        params : list of str or callable
            As for :func:`two_stage`.
        covariates : DataFrame, optional
            Group-level covariates indexed by group label; every group in
            ``results`` must have a row.
        on_failure : {"drop", "raise"}
            As for :func:`two_stage`.

        Returns
        -------
        TwoStage
        """
        if isinstance(results, dict):
            items = list(results.items())
        elif isinstance(results, (list, tuple)):
            items = list(enumerate(results))
        else:
            raise ValueError(
                "results must be a dict {group label: fitted results} or a "
                f"list of fitted results, got {type(results).__name__}")
        if not items:
            raise ValueError("results is empty: no group to pool")
        if covariates is not None:
            if not isinstance(covariates, pd.DataFrame):
                raise ValueError(
                    "covariates must be a DataFrame indexed by group label, "
                    f"got {type(covariates).__name__}")
            absent = [label for label, _ in items
                      if label not in covariates.index]
            if absent:
                raise ValueError(
                    f"covariates has no row for the groups {absent[:5]}"
                    + (f" and {len(absent) - 5} more" if len(absent) > 5
                       else "") + "; its index must hold the group labels")
        outcomes = [extract(label, fit, params) for label, fit in items]
        return cls(outcomes, params, covariates, on_failure)

    @property
    def n_groups(self):
        """Number of pooled groups."""
        return len(self.groups)

    def mixmeta(self, formula_rhs="~ 1", **kwargs):
        """
        The second-stage model of the pooled groups (not fitted).

        The outcomes are the first-stage coefficients ``y`` with their
        known covariances ``S``: for group ``i``,
        ``y_i = X_i beta + b_i + e_i``, ``b_i ~ N(0, Psi)``,
        ``e_i ~ N(0, S_i)``.

        Parameters
        ----------
        formula_rhs : str
            Right-hand side over the group-level covariates, ``"~ 1"``
            (pooling) or e.g. ``"~ lat + C(region)"`` (meta-regression).
        **kwargs
            Passed to :meth:`MixMeta.from_formula`: ``method``, ``bscov``,
            ``random=`` over covariates (``"~ 1 | region"``), ...

        Returns
        -------
        MixMeta
            Coefficient names: with ``"~ 1"`` exactly the first-stage names
            ``param_names`` (so that the pooled coefficients line up with
            a one-stage fit's, e.g. in ``summary_col``); otherwise
            ``"<param>:<term>"`` for every coefficient, also when
            ``k = 1``.  The outcome names are ``param_names``.
        """
        return _second.second_stage_model(self, formula_rhs, kwargs)

    def fit(self, formula_rhs="~ 1", fit_kwds=None, **kwargs):
        """``self.mixmeta(formula_rhs, **kwargs).fit(**fit_kwds)``."""
        return self.mixmeta(formula_rhs, **kwargs).fit(**(fit_kwds or {}))

    def __repr__(self):
        return (f"<TwoStage: {self.n_groups} groups pooled, "
                f"{self.failures['group'].nunique()} with failures, "
                f"params {self.param_names}>")


def _requested_names(outcomes, params):
    """The carried coefficients' names: as requested, or, for positions,
    statsmodels' names of a group that named them."""
    requested = [o.requested for o in outcomes if o.requested is not None]
    if not requested:
        if callable(params):
            raise ValueError(
                "every group's first stage raised, so the callable params "
                "could not name the coefficients; reasons:\n" + "\n".join(
                    f"  {o.label}: {o.problems[0][0]}" for o in outcomes[:10]))
        requested = [list([params] if isinstance(params, str) else params)]
    chosen = list(requested[0])
    other = [o.label for o in outcomes
             if o.requested is not None and list(o.requested) != chosen]
    if other:
        raise ValueError(
            f"params named {chosen} in the first group but other "
            f"coefficients in the groups {other[:5]}; params must name "
            "the same coefficients in every group")
    if not chosen:
        raise ValueError("params names no coefficient")
    if len(set(chosen)) < len(chosen):
        raise ValueError(f"params names a coefficient twice: {chosen}")
    if not isinstance(chosen[0], (int, np.integer)):
        return [str(name) for name in chosen]
    named = [o.names for o in outcomes if o.names is not None
             and o.converged and max(chosen) < len(o.names)]
    if named:
        return [named[0][p] for p in chosen]
    return [f"params[{p}]" for p in chosen]


def _check_names(outcomes, params, names):
    """A requested coefficient that no fitted group has is the caller's
    error."""
    fitted = [o for o in outcomes if o.requested is not None and o.converged]
    if not fitted:
        return
    chosen = fitted[0].requested
    unknown = [chosen[i] for i in range(len(chosen))
               if all(chosen[i] in o.missing for o in fitted)]
    if unknown:
        valid = next((o.names for o in fitted if o.names is not None), None)
        raise ValueError(
            f"params {unknown} are not coefficients of the first-stage fits; "
            f"the fitted coefficients are {valid}")


def _failures(outcomes, names):
    rows = []
    for o in outcomes:
        action = "dropped" if o.dropped else "kept estimable"
        for reason, removed in o.problems:
            removed = range(len(names)) if removed is None else removed
            removed = ", ".join(names[i] for i in removed)
            rows.append((o.label, reason.replace("{names}", removed),
                         removed, action))
    return pd.DataFrame(rows, columns=["group", "reason", "params", "action"])


def _table(outcomes, names, estimates, cov, labels, pooled, covariates):
    k = len(names)
    columns = {name: estimates[:, j] for j, name in enumerate(names)}
    variances = np.diagonal(cov, axis1=1, axis2=2)
    with np.errstate(invalid="ignore"):
        for j, name in enumerate(names):
            columns[f"se_{name}"] = np.sqrt(variances[:, j])
    for a in range(k):
        for b in range(a + 1, k):
            columns[f"cov_{names[a]}_{names[b]}"] = cov[:, a, b]
    columns["nobs"] = np.array([o.nobs for o in outcomes], dtype=float)
    columns["converged"] = np.array([o.converged for o in outcomes],
                                    dtype=bool)
    columns["pooled"] = pooled
    table = pd.DataFrame(columns, index=labels)
    if covariates is not None:
        clash = {c: f"{c}_covariate" for c in covariates.columns
                 if c in table.columns}
        table = table.join(covariates.rename(columns=clash))
    return table


def _warn(failures, outcomes):
    if not len(failures):
        return
    dropped = sum(o.dropped for o in outcomes)
    partial = sum((not o.dropped) and bool(o.problems) for o in outcomes)
    warnings.warn(
        f"two_stage: {dropped} of {len(outcomes)} groups left out and "
        f"{partial} kept with only their estimable coefficients; the "
        "reasons are in .failures", FirstStageWarning, stacklevel=4)
