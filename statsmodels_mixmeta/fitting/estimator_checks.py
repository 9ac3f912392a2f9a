"""
Which estimator can be fitted to which design: the checks a model makes
when it is wired, before anything is fitted (the estimator's and
structures' names, residual degrees of freedom, the single grouping level
and the layout of values the moment estimators need), each a ``ValueError``
saying what would be valid.
"""
import numpy as np

from .. import structures as _structures
from ..design import inputs as _inputs
from ..kernels import moments as estimators
from . import schedule as _schedule

METHODS = _schedule.ESTIMATORS


def check_method(method, bscov):
    """The estimator's and structures' names (case-insensitive), and
    whether the estimator takes this Psi structure."""
    method = _inputs.check_option("method", method, METHODS)
    bscov = _structures.canonical_bscov(bscov)
    if method in ("mm", "vc") and bscov != "unstr":
        raise ValueError(
            f"method={method!r} estimates an unstructured Psi; bscov="
            f"{bscov!r} needs method='reml' or 'ml'")
    return method, bscov


def check_estimable(design, method):
    """Whether ``method`` can estimate Psi from ``design``: residual degrees
    of freedom for REML and the moments, one grouping level and enough
    values for the moment estimators."""
    n_values, n_coef = design.n_values, design.n_coef
    if method in ("reml", "mm", "vc") and n_values <= n_coef:
        raise ValueError(
            f"method={method!r} cannot estimate Psi from {n_values} "
            f"observed values and {n_coef} fixed coefficients: no "
            "residual degrees of freedom are left (the REML likelihood "
            "does not depend on Psi); use method='fixed' or more studies")
    levels = design.levels
    if method in ("mm", "vc") and levels.n_levels > 1:
        raise ValueError(
            f"method={method!r} is available only for single-level "
            "models (one grouping level): moment estimators of nested "
            "Psi's are not standard; use 'reml' or 'ml'")
    n_effects = len(levels.effect_names[0]) if levels.n_levels else 0
    n_entries = n_effects * (n_effects + 1) // 2
    if method == "mm" and n_values < n_coef + n_entries:
        # the moment equations are singular: numpy would return noise
        raise ValueError(
            f"method='mm' cannot estimate Psi from {n_values} observed "
            f"values: {n_coef} fixed coefficients and the {n_entries} "
            f"entries of Psi need at least {n_coef + n_entries}; use "
            "method='reml' or 'ml', or more studies")


def check_moment_layout(long, batches, method, vc_adjust, n_outcomes,
                        effect_names):
    """The moment estimators need one random effect per value, and
    every pair of effects observed together in some group.

    ``long`` is the design's long format with the estimated level;
    ``batches`` returns the groups stacked by size (built only once the
    layout is known to be right).
    """
    problem = estimators.layout_problem(long)
    if problem is not None:
        raise ValueError(
            f"method={method!r} needs every value of a group to "
            f"carry its own random effect, but {problem}; use 'reml' or "
            "'ml'")
    Z = long.Z[0]
    if method == "vc" and not vc_adjust and not (
            Z.shape[1] == n_outcomes
            and np.array_equal(Z.argmax(axis=1), long.outcome)):
        # R's unadjusted denominator N - p counts predictors per outcome
        raise ValueError(
            "vc_adjust=False needs one random effect per outcome (its "
            "denominator counts predictors per outcome); use "
            "vc_adjust=True")
    estimators.pair_counts(batches(), effect_names)
