"""
From the model's arguments to one validated :class:`~.frozen.Design`.

:func:`design_from_arrays` does everything that happens to data before a
model exists: the checks of :mod:`.validation` (numbers, alignment of pandas
inputs, infinite values); names of rows, outcomes and terms; the missing-data
rule over
outcomes, predictors, grouping labels and random predictors; the known
covariances in ``(n, k, k)`` form (or per group, ``addS``) and their checks;
the grouping levels and their random predictors; the long format, ``X'X``
and the check that the fixed effects are estimable.  The formula interface
evaluates its formulas first (:mod:`.formula`) and comes here with the
resulting frames and the term specifications.
"""
import numpy as np
import pandas as pd

from . import core as _core
from . import inputs as _inputs
from . import validation as _validation
from .grouping import grouped_levels, implicit_levels


def design_from_arrays(endog, exog=None, S=None, Scor=None, missing="drop",
                       groups=None, exog_re=None, addS=None,
                       fixed_spec=None, random_terms=None, formula=None):
    """
    Validate the model's data and build its design.

    Parameters are those of :class:`statsmodels_mixmeta.MixMeta`;
    ``fixed_spec`` (the formula's fitted right-hand side,
    :class:`~.new_data.PredictorFormula`, or a bare model spec),
    ``random_terms`` (the parsed
    ``random=``) and ``formula`` come from the formula interface.

    Returns
    -------
    design : Design
    endog, exog
        The caller's outcomes and predictors restricted to the rows used
        (pandas objects stay pandas objects; ``exog`` is an intercept
        column when it was None), for statsmodels' data handling.

    Raises
    ------
    ValueError
        Naming the rows, columns or argument at fault.
    """
    endog, exog, S, Scor, groups, exog_re = _validation.checked_inputs(
        endog, exog, S, Scor, groups, exog_re)
    outcome_names = _inputs.outcome_names(endog)
    row_labels = _inputs.row_labels(endog)
    endog_arr = np.asarray(endog, dtype=float)
    n_rows = endog_arr.shape[0]
    k = 1 if endog_arr.ndim == 1 else endog_arr.shape[1]
    if outcome_names is None:
        outcome_names = (_formula_outcomes(formula, k)
                         or _inputs.default_outcome_names(k))
    intercept_only = exog is None
    if intercept_only:
        exog = (pd.DataFrame({"Intercept": np.ones(n_rows)},
                             index=getattr(endog, "index", None))
                if isinstance(endog, (pd.Series, pd.DataFrame))
                else np.ones((n_rows, 1)))
    exog_arr = np.asarray(exog, dtype=float)
    if exog_arr.ndim == 1:
        exog_arr = exog_arr[:, None]
    if exog_arr.shape[0] != n_rows:
        raise ValueError(
            f"endog has {n_rows} rows but exog has {exog_arr.shape[0]}")
    if groups is None and exog_re is not None:
        raise ValueError("exog_re needs groups: the grouping levels of "
                         "its random effects")
    group_arr, level_names = _inputs.grouping(groups, n_rows)
    re_arrays, re_names = _inputs.random_designs(exog_re, n_rows,
                                                 len(level_names))
    if addS is not None and S is not None:
        raise ValueError("give either S or addS, not both")
    S = _inputs.rows_of(S, n_rows, "S")
    keep = _core.rows_to_keep(
        endog_arr.reshape(n_rows, -1), exog_arr, missing, row_labels,
        extra=([] if group_arr is None else [group_arr]) + re_arrays)
    subset = (lambda a: a) if keep.all() else (lambda a: a[keep])
    exog_used = subset(exog_arr)
    term_names = (_spec_columns(fixed_spec, exog, exog_used.shape[1])
                  or _inputs.term_names(exog, exog_used, intercept_only))
    endog_used = subset(endog_arr.reshape(n_rows, -1))
    if group_arr is None:
        levels = implicit_levels(subset(row_labels), outcome_names)
    else:
        levels = grouped_levels(subset(group_arr), level_names,
                                [subset(z) for z in re_arrays], re_names,
                                outcome_names)
    group_cov = None
    if addS is not None:
        observed_rows = np.nonzero(~np.isnan(endog_used))[0]
        group_cov = tuple(_inputs.added_within_cov(
            addS, levels.outer_labels, levels.codes[0][observed_rows]))
    design = _core.build_design(
        endog_used, exog_used,
        None if S is None else subset(S),
        _inputs.scor_rows(Scor, n_rows, k, keep), outcome_names, term_names,
        subset(row_labels), known_cov_given=addS is not None,
        levels=levels, group_cov=group_cov, fixed_spec=fixed_spec,
        random_terms=None if random_terms is None else tuple(random_terms),
        labelled=isinstance(endog, (pd.Series, pd.DataFrame)))
    # X'X of the observed values: the rank check's, REML's constant and
    # the conditioning basis' (kept on the design)
    _core.check_estimable(design.long.X, design.param_names, design.xtx)
    return design, _inputs.take(endog, keep), _inputs.take(exog, keep)


def _formula_outcomes(formula, k):
    """Outcome names from a formula's left-hand side (``"y1 + y2 ~ x"``),
    when it names ``k`` outcomes."""
    if not isinstance(formula, str) or "~" not in formula:
        return None
    names = [name.strip() for name in formula.split("~")[0].split("+")]
    return names if len(names) == k and all(names) else None


def _spec_columns(spec, exog, n_columns):
    """Column names of a formula's model spec for an unlabelled ``exog``."""
    if spec is None or isinstance(exog, pd.DataFrame):
        return None
    spec = getattr(spec, "model_spec", spec)    # a PredictorFormula's
    names = getattr(spec, "column_names", None)
    return ([str(name) for name in names]
            if names is not None and len(names) == n_columns else None)
