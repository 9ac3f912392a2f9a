"""
The per-study numbers that the forest and shrinkage plots draw, read from a
fitted results object through its public attributes (``model.design``,
``get_prediction``, ``blup``): observed estimates, their within-study
variances (the diagonal of ``S_i``, or of the ``addS`` matrices), row labels,
outer groups, and the pooled estimate of an intercept-only model.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Studies:
    """
    What is known of the rows used in a fit.

    Attributes
    ----------
    estimates, variances : ndarray, (n, k)
        Observed outcomes and their within-study variances; NaN where an
        outcome is missing.
    labels : list of str, n long
    groups : ndarray, (n,) or None
        Outer-group label of each row for a multilevel model (a model whose
        outer groups hold several rows), else None.
    group_name : str or None
        The outer grouping factor.
    outcomes : list of str
    intercept_only : bool
        Every row has the same fixed part (``~ 1``): there is one pooled
        estimate per outcome.
    """

    estimates: np.ndarray
    variances: np.ndarray
    labels: list
    groups: object
    group_name: object
    outcomes: list
    intercept_only: bool


def within_variances(design):
    """
    ``(n, k)`` within-study variances of the observed values: the diagonal
    of each row's ``S_i``, or, with ``addS``, of its group's matrix (whose
    rows are the group's observed values in row order).
    """
    if design.group_cov is None:
        out = np.diagonal(design.within_cov, axis1=1, axis2=2).copy()
        out[~design.observed] = np.nan
        return out
    long = design.long
    # the values of group g, in long (row) order, are its matrix's rows
    order = np.argsort(long.group, kind="stable")
    flat = np.empty(long.n_values)
    flat[order] = np.concatenate([np.diag(m) for m in design.group_cov])
    out = np.full(design.endog.shape, np.nan)
    out[long.row, long.outcome] = flat
    return out


def row_labels(results, labels):
    """
    The rows' labels as strings: the design's row labels, ``labels`` given
    one per row used, a pandas Series matched by index to the rows used, or
    the name of a column of the formula's data.
    """
    design = results.model.design
    rows = design.row_labels
    n = len(rows)
    if labels is None:
        return [str(r) for r in rows]
    if isinstance(labels, str):
        frame = getattr(getattr(results.model, "data", None), "frame", None)
        if not isinstance(frame, pd.DataFrame) or labels not in frame:
            valid = (sorted(map(str, frame.columns))
                     if isinstance(frame, pd.DataFrame) else
                     "none: the model was not built from a data frame")
            raise ValueError(f"labels={labels!r} is not a column of the "
                             f"model's data; columns: {valid}")
        return [str(v) for v in frame[labels].loc[rows]]
    if isinstance(labels, pd.Series):
        missing = [r for r in rows if r not in labels.index]
        if missing:
            raise ValueError(f"labels (a Series) has no entry for the rows "
                             f"{missing[:10]} used in the fit")
        return [str(v) for v in labels.loc[rows]]
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries; the fit used "
                         f"{n} rows (give one label per row used, a Series "
                         f"indexed like the data, or a column name)")
    return [str(v) for v in labels]


def studies(results, labels=None):
    """The :class:`Studies` of a fit."""
    design = results.model.design
    levels = design.levels
    groups = group_name = None
    if not levels.implicit:
        outer = levels.group_labels[:, 0]
        if len(np.unique(outer)) < len(outer):
            groups, group_name = outer, str(levels.names[0])
    exog = np.asarray(design.exog)
    intercept_only = exog.shape[1] == 1 and bool(np.all(exog == exog[0]))
    return Studies(np.asarray(design.endog, dtype=float),
                   within_variances(design), row_labels(results, labels),
                   groups, group_name, list(design.outcome_names),
                   intercept_only)


def outcome_columns(outcomes, outcome):
    """
    Positions of the outcomes to draw: all, or the ``outcome`` named (one
    name or a list of names).
    """
    if outcome is None:
        return list(range(len(outcomes)))
    wanted = [outcome] if isinstance(outcome, str) else list(outcome)
    unknown = [w for w in wanted if w not in outcomes]
    if unknown or not wanted:
        raise ValueError(f"outcome {unknown or wanted} unknown; the fit's "
                         f"outcomes are {outcomes}")
    return [outcomes.index(w) for w in wanted]


def has_random_effects(results):
    """Whether the fit has a between-study covariance (not ``"fixed"``)."""
    return results.method != "fixed" and results.model.random.n_levels > 0
