"""
The arguments of a model from a formula and a data frame.

:func:`formula_inputs` evaluates the fixed and random parts of a formula
(through :mod:`.formula_frames`), applies the missing-data rule with the
unused levels of categorical columns dropped, and takes ``S``, ``Scor``,
``groups`` and ``exog_re`` from columns of the data or values matched to
its rows; :func:`subset_rows` selects the rows a ``subset`` names.  The
names of :mod:`.formula_frames` and :mod:`.new_data` are importable from
here too.
"""
import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager

from . import validation as _validation
from .formula_frames import model_frames, split_formula
from .formula_frames import (  # noqa: F401  (their old home)
    FormulaNamespace, _namespace_from_parts, _referenced_columns,
    formula_namespace)
from .labels import label_list
from .new_data import (  # noqa: F401  (their old home)
    PredictorFormula, new_data_frame, new_exog)
from .random_terms import parse_random


def columns_of(data, names, what):
    """
    Numeric columns of ``data`` named in ``names``, as an ``(n, q)`` array.

    Raises ValueError naming the columns that do not exist, do not hold
    numbers or hold infinite values (NaN stays: missing).
    """
    names = [names] if isinstance(names, str) else list(names)
    absent = [name for name in names if name not in data.columns]
    if absent:
        raise ValueError(
            f"{what} names columns not in data: {', '.join(map(str, absent))}")
    values = np.column_stack([
        _validation.numeric(data[name], what)
        for name in names])
    _validation.check_finite(values, what, np.asarray(data.index), names)
    return values


def random_frames(terms, data, positions, namespace):
    """
    Grouping labels and random-effects designs of the levels of ``random``.

    Parameters
    ----------
    terms : list of RandomTerm
        From :func:`statsmodels_mixmeta.design.random_terms.parse_random`.
    data : pandas.DataFrame
    positions : ndarray of int
        Rows of ``data`` used by the fixed part.
    namespace : dict
        Names the formulas use, visible where they were written.

    Returns
    -------
    groups : DataFrame
        One column of labels per level, outer to inner (missing labels
        kept as missing, for the model's missing-data rule).
    designs : list of DataFrame
        Each level's random predictors (NaN where they cannot be
        evaluated).
    """
    absent = [t.group for t in terms if t.group not in data.columns]
    if absent:
        raise ValueError(
            f"random names grouping variables not in data: {absent}")
    frame = data.reset_index(drop=True)
    mgr = FormulaManager()
    designs = []
    for term in terms:
        z = mgr.get_matrices(term.formula, frame, eval_env=namespace,
                             na_action=mgr.get_na_action("drop"))
        z = z.reindex(pd.RangeIndex(frame.shape[0])).iloc[positions]
        z.index = data.index[positions]
        designs.append(z)
    groups = data[[t.group for t in terms]].iloc[positions]
    return groups.astype(object).where(groups.notna(), np.nan), designs


def formula_inputs(formula, data, S=None, Scor=None, random=None,
                   missing="drop", eval_env=0, groups=None, exog_re=None):
    """
    The arguments of :class:`~statsmodels_mixmeta.MixMeta` for a formula.

    Rows with a missing predictor are left out by the formula engine; with
    ``missing="drop"``, rows whose outcomes are all missing, or whose
    grouping labels or random predictors are missing, are left out too, and
    the formula is then evaluated again on the rows kept, with the levels
    of categorical columns that no longer occur dropped (as R's
    ``model.frame`` does with ``drop.unused.levels = TRUE``): no fixed
    coefficient, and no random effect, belongs to a level without data.

    ``S``, ``Scor``, ``groups`` and ``exog_re`` are column names of
    ``data``, or values with one row per row of ``data`` (a pandas object
    is matched to ``data`` by index label), or, for ``Scor``, values shared
    by all rows.

    Returns
    -------
    arguments : dict
        ``endog``, ``exog``, ``S``, ``Scor``, ``groups``, ``exog_re`` of the
        rows used, labelled by ``data``'s index.
    model_spec, namespace
        As :func:`model_frames`.
    frame : DataFrame
        The data the formula was last evaluated on (``data``, or its rows
        kept with unused levels dropped): what rebuilds ``model_spec``.
    """
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    split_formula(formula)
    if data.shape[0] == 0:
        raise ValueError("data has no rows: there are no studies to fit")
    if random is not None and groups is not None:
        raise ValueError("give random= (a formula of the grouping levels) or "
                         "groups=, not both")
    terms = None if random is None else parse_random(random)
    texts = [formula] + [t.group + " " + t.formula for t in terms or []]
    texts += [v for v in (S, Scor) if isinstance(v, str)]
    texts += [v for value in (S, Scor) if isinstance(value, (list, tuple))
              for v in value if isinstance(v, str)]
    used = [name for name in data.columns
            if any(str(name) in text for text in texts)]
    data = _validation.numeric_frame(data, used)
    per_row = {"S": _rows_of_data(S, data, "S"),
               "Scor": _rows_of_data(Scor, data, "Scor"),
               "groups": _rows_of_data(groups, data, "groups", False),
               "exog_re": _rows_of_data(exog_re, data, "exog_re")}
    rows, frame = np.arange(data.shape[0]), data
    while True:
        endog, exog, spec, positions, namespace = model_frames(
            formula, frame, missing=missing, eval_env=eval_env + 1,
            names_text="" if random is None else str(random))
        levels, designs = (None, None) if terms is None else random_frames(
            terms, frame, positions, namespace)
        if frame is not data or missing != "drop":
            break
        usable = _usable_rows(endog, levels, designs)
        if usable.all() and positions.size == data.shape[0] and \
                not _has_unused_levels(data, used):
            break
        rows = positions[usable]
        if rows.size == 0:
            raise ValueError(
                f"no rows are left: all {data.shape[0]} rows of data have a "
                "missing predictor, grouping label or random predictor, or "
                "no observed outcome")
        frame = _drop_unused_levels(data.iloc[rows], used)
    positions = rows[positions]
    arguments = {name: _take_rows(value, positions, data.index)
                 for name, value in per_row.items()}
    arguments.update(endog=endog, exog=exog)
    if terms is not None:
        arguments.update(groups=levels, exog_re=designs)
    return arguments, spec, namespace, frame


def _rows_of_data(value, data, what, numeric=True):
    """
    Column(s) of ``data`` by name, a pandas object aligned to ``data`` by
    label, an array with one row per row of ``data``, or (marked with a
    False flag) something else, passed on as it is.
    """
    if value is None or (np.ndim(value) == 0 and not isinstance(value, str)):
        return value, False
    names = [value] if isinstance(value, str) else value
    if isinstance(names, (list, tuple)) and names and \
            all(isinstance(v, str) for v in names):
        return columns_of(data, names, what) if numeric else \
            data[list(names)], True
    if isinstance(value, (list, tuple)) and what == "exog_re":
        return [_rows_of_data(v, data, what)[0] for v in value], "list"
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return _validation.aligned(value, data.index, what), True
    if np.shape(value)[0] == data.shape[0]:
        return value, True
    return value, False


def _take_rows(entry, positions, index):
    value, per_row = entry
    if per_row == "list":
        return [_take_rows((v, True), positions, index) for v in value]
    if not per_row or positions.size == len(index):
        return value        # positions are sorted: all rows, in order
    if isinstance(value, (pd.Series, pd.DataFrame)):
        value = value.iloc[positions]
        value.index = index[positions]
        return value
    return np.asarray(value)[positions]


def _usable_rows(endog, levels, designs):
    """Rows with an outcome, grouping labels and random predictors."""
    usable = ~np.isnan(endog.to_numpy(dtype=float)).all(axis=1)
    if levels is not None:
        usable &= levels.notna().to_numpy().all(axis=1)
        for z in designs:
            usable &= z.notna().to_numpy().all(axis=1)
    return usable


def _has_unused_levels(data, columns):
    for name in columns:
        series = data[name]
        if isinstance(series.dtype, pd.CategoricalDtype) and \
                series.cat.remove_unused_categories().cat.categories.size < \
                series.cat.categories.size:
            return True
    return False


def _drop_unused_levels(frame, columns):
    dropped = {str(name): frame[name].cat.remove_unused_categories()
               for name in columns
               if isinstance(frame[name].dtype, pd.CategoricalDtype)}
    return frame.assign(**dropped) if dropped else frame


def subset_rows(data, subset):
    """
    ``data.loc[subset]`` (row labels, or a boolean mask over the rows),
    with a ValueError naming the labels that are not rows of ``data``.
    """
    if subset is None:
        return data
    try:
        return data.loc[subset]
    except KeyError:
        labels = pd.Index(np.atleast_1d(np.asarray(subset, dtype=object)))
        absent = labels.difference(data.index)
        raise ValueError(
            f"subset names rows that are not in data: "
            f"{label_list(np.arange(absent.size), absent)}; give row labels "
            "of data, or a boolean mask with one entry per row") from None
    except IndexError as err:
        raise ValueError(
            f"subset must be row labels of data, or a boolean mask with one "
            f"entry per row of data ({data.shape[0]}): {err}") from None
