"""
Designs derived from a design without re-parsing or re-validating it.

:func:`subset` keeps some outer groups (leave-one-out, influence,
cross-validation); :func:`with_endog` replaces the outcomes, keeping their
missing pattern (simulation, parametric bootstrap, refits of many data sets);
:func:`drop_columns` removes fixed-effects columns (``drop1``, nested
models without a new formula parse).
Both restrict or share the validated arrays of the parent design; a model
built from the result fits exactly as one built from scratch on the same
rows (the codes of the levels are renumbered as building them would, and the
long format is taken in the same row order).  The methods
:meth:`Design.subset <.frozen.Design.subset>` and
:meth:`Design.with_endog <.frozen.Design.with_endog>` call these.
"""
from dataclasses import replace

import numpy as np

from .core import check_estimable
from .labels import label_list
from .frozen import LongFormat
from .grouping import outer_group_mask, subset_levels, take_rows


def subset(design, groups):
    """The design restricted to the outer groups labelled ``groups``."""
    levels = design.levels
    keep_groups = outer_group_mask(levels, groups)
    rows = np.flatnonzero(keep_groups[levels.codes[0]])
    group_cov = design.group_cov
    if group_cov is not None:
        group_cov = tuple(group_cov[i] for i in np.flatnonzero(keep_groups))
    new = replace(
        design, endog=take_rows(design.endog, rows),
        exog=take_rows(design.exog, rows),
        within_cov=(None if design.within_cov is None
                    else take_rows(design.within_cov, rows)),
        row_labels=take_rows(design.row_labels, rows),
        levels=subset_levels(levels, keep_groups, rows),
        group_cov=group_cov)
    check_estimable(new.long.X, new.param_names, new.xtx)
    return new


def with_endog(design, endog):
    """The design with outcomes ``endog`` in place of its own."""
    y = _checked_endog(design, endog)
    new = replace(design, endog=y)
    long = design.long
    # as Design.long takes them: the column itself when nothing is missing
    all_observed = y.shape[1] == 1 and long.n_values == y.shape[0]
    y_long = y[:, 0] if all_observed else y[long.row, long.outcome]
    cache = new.__dict__
    cache["long"] = LongFormat(y_long, long.X, long.row, long.outcome,
                               long.group, long.Z, long.level_codes)
    for name in ("xtx", "basis"):
        if name in design.__dict__:
            cache[name] = design.__dict__[name]
    return new


def drop_columns(design, columns):
    """The design without the columns ``columns`` (positions) of ``exog``."""
    drop = np.unique(np.asarray(columns, dtype=int).ravel())
    p = design.n_terms
    if drop.size and (drop.min() < 0 or drop.max() >= p):
        raise ValueError(
            f"drop_columns: column positions must be in 0..{p - 1} (the "
            f"columns {list(design.term_names)}); got {drop.tolist()}")
    keep = np.setdiff1d(np.arange(p), drop)
    if keep.size == 0:
        raise ValueError(
            "drop_columns: dropping every column leaves no fixed effects")
    coef_names = design.coef_names
    if coef_names is not None:  # outcome-major: keep each outcome's columns
        coef_names = tuple(coef_names[o * p + i]
                           for o in range(design.n_outcomes) for i in keep)
    # the formula's spec builds the full columns: it no longer applies
    return replace(design, exog=design.exog[:, keep],
                   term_names=tuple(design.term_names[i] for i in keep),
                   fixed_spec=None, coef_names=coef_names)


def _checked_endog(design, endog):
    """``endog`` as a float copy ``(n, k)`` with the design's rows and
    missing pattern."""
    index = getattr(endog, "index", None)
    y = np.array(endog, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.shape != design.endog.shape:
        raise ValueError(
            f"with_endog needs outcomes of shape {design.endog.shape} (rows "
            f"by outcomes {list(design.outcome_names)}); got "
            f"{np.shape(endog)}")
    labels = design.row_labels
    if index is not None and not np.array_equal(np.asarray(index), labels):
        raise ValueError(
            "with_endog: the index of the new outcomes is not the design's "
            "row labels (in order); pass values in the design's row order")
    missing = np.isnan(y)
    differs = (missing != np.isnan(design.endog)).any(axis=1)
    if differs.any():
        raise ValueError(
            "with_endog: the new outcomes must be missing exactly where the "
            "design's are; the pattern differs at rows "
            f"{label_list(differs, labels)}")
    infinite = np.isinf(y).any(axis=1)
    if infinite.any():
        raise ValueError(
            "with_endog: infinite outcomes at rows "
            f"{label_list(infinite, labels)}")
    return y
