"""
Formula evaluation through statsmodels' own formula machinery.

Both engines statsmodels supports (patsy and formulaic) are reached through
``statsmodels.formula._manager.FormulaManager``, so the global
``statsmodels.formula.options.formula_engine`` choice is honoured.

A multivariate model writes its outcomes on the left as a sum,
``"y1 + y2 ~ x"`` (as statsmodels' MANOVA).  Predictors are evaluated with
missing values dropped; outcomes are evaluated with missing values kept,
because a study with some outcomes missing still contributes the others.
"""
import importlib
import re
import sys
import types

import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager

from . import validation as _validation
from .random_terms import parse_random
from .labels import label_list


def split_formula(formula):
    """Split ``"lhs ~ rhs"`` into its two sides; both must be present."""
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(
            f"formula must be a string 'outcomes ~ predictors', got {formula!r}")
    lhs, rhs = (side.strip() for side in formula.split("~"))
    if not lhs:
        raise ValueError(
            f"formula {formula!r} has no outcome: write e.g. 'y ~ x' or "
            "'y1 + y2 ~ x'")
    terms = [term.strip() for term in lhs.split("+")]
    constants = [term for term in terms if _is_number(term)]
    if constants:
        raise ValueError(
            f"the outcome side of formula {formula!r} holds the constant "
            f"{constants[0]}; outcomes are columns of the data, e.g. 'y ~ x'")
    repeated = sorted({term for term in terms if terms.count(term) > 1})
    if repeated:
        raise ValueError(
            f"the outcome side of formula {formula!r} names {repeated} more "
            "than once; each outcome is one column")
    return lhs, rhs or "1"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def model_frames(formula, data, missing="drop", eval_env=0, names_text=""):
    """
    Evaluate a model formula on ``data``.

    Parameters
    ----------
    formula : str
        ``"y ~ x"``, or ``"y1 + y2 ~ x"`` for several outcomes.
    data : pandas.DataFrame
    missing : {"drop", "raise", "none"}
        What to do with rows whose predictors are missing.
    eval_env : int
        Frames above the caller of this function in which to look up names
        that are not columns of ``data``.
    names_text : str
        More formula text (the random part) whose names are looked up
        there too.

    Returns
    -------
    endog : DataFrame, (n, k)
        Outcomes of the rows whose predictors are all present (NaN kept).
    exog : DataFrame, (n, p)
    model_spec : patsy DesignInfo or formulaic ModelSpec
        To rebuild identical predictor columns from new data.
    positions : ndarray of int
        Positions in ``data`` of the rows returned.
    namespace : FormulaNamespace
        The names the formulas use that are visible where they were written
        and are not columns of ``data``, to evaluate them on new data later.
    """
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    lhs, rhs = split_formula(formula)
    frame = _referenced_columns(data, formula).reset_index(drop=True)
    namespace = formula_namespace(sys._getframe(eval_env + 1),
                                  [formula, names_text], data.columns)
    mgr = FormulaManager()
    exog = mgr.get_matrices("~ " + rhs, frame, eval_env=namespace,
                            na_action=mgr.get_na_action("drop"))
    model_spec = mgr.spec
    if missing in ("raise", "none") and exog.shape[0] < frame.shape[0]:
        dropped = np.setdiff1d(np.arange(frame.shape[0]), exog.index)
        raise ValueError(
            "missing values in predictors at rows "
            f"{label_list(dropped, data.index)}; use "
            "missing='drop' to drop them")
    positions = np.asarray(exog.index, dtype=np.intp)
    endog = _outcome_columns(lhs, frame)
    if endog is None:
        keep_na = (mgr.get_na_action("drop", types=[])
                   if mgr.engine == "patsy" else "ignore")
        endog = mgr.get_matrices("~ 0 + " + lhs, frame, eval_env=namespace,
                                 na_action=keep_na)
        _check_outcome_terms(endog, lhs, mgr)
    endog = endog.iloc[positions]
    labels = data.index[positions]
    endog.index = labels
    exog.index = labels
    return endog, exog, model_spec, positions, namespace


def formula_namespace(frame, texts, columns):
    """
    The names the formula ``texts`` use that are visible in the stack
    ``frame`` (its locals, then its globals) and are not ``columns`` of the
    data: what a formula engine needs to evaluate them again, and no more
    (the caller's whole namespace holds modules and data that cannot, or
    should not, be pickled with a model).
    """
    used = set(_NAME.findall(" ".join(texts)))
    used.difference_update(str(c) for c in columns)
    namespace = FormulaNamespace()
    local, global_ = frame.f_locals, frame.f_globals
    for name in sorted(used):
        if name in local:
            namespace[name] = local[name]
        elif name in global_:
            namespace[name] = global_[name]
    return namespace


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FormulaNamespace(dict):
    """
    Names a formula uses, by name; pickled with its modules by import name
    (modules themselves cannot be pickled), everything else as it is.
    """

    def __reduce__(self):
        modules = {name: value.__name__ for name, value in self.items()
                   if isinstance(value, types.ModuleType)}
        others = {name: value for name, value in self.items()
                  if name not in modules}
        return _namespace_from_parts, (modules, others)


def _namespace_from_parts(modules, others):
    namespace = {name: importlib.import_module(module)
                 for name, module in modules.items()}
    return FormulaNamespace({**namespace, **others})


class PredictorFormula:
    """
    The fitted right-hand side of a formula: rebuilds the fitted predictor
    columns from new data (factor levels, stateful transforms), and can be
    pickled.

    formulaic's model spec is pickled as it is.  patsy's design info
    cannot be pickled (patsy refuses), so the columns of the fitted data
    that the right-hand side names are pickled instead and the design info
    is rebuilt from them, identically, after unpickling.  Until then a
    shallow copy of the data is held (as statsmodels holds ``data.frame``;
    with pandas' copy-on-write, later changes to the caller's frame do not
    reach it), and :meth:`compact` keeps only those columns.

    Parameters
    ----------
    rhs : str
        The right-hand side of the model formula.
    model_spec : patsy DesignInfo or formulaic ModelSpec
    namespace : FormulaNamespace
    data : DataFrame
        The data the formula was evaluated on (before the missing rule).
    engine : {"patsy", "formulaic"}
    """

    def __init__(self, rhs, model_spec, namespace, data, engine):
        self.rhs = rhs
        self.namespace = FormulaNamespace(namespace)
        self.engine = engine
        self._spec = model_spec
        # a shallow copy costs microseconds; the columns are taken on
        # pickling
        self._frame = data.copy(deep=False) if engine == "patsy" else None

    @property
    def model_spec(self):
        """The engine's model spec (rebuilt once after unpickling)."""
        if self._spec is None:
            mgr = FormulaManager(self.engine)
            mgr.get_matrices("~ " + self.rhs, self._frame,
                             eval_env=self.namespace,
                             na_action=mgr.get_na_action("drop"))
            self._spec = mgr.spec
        return self._spec

    def exog(self, data):
        """Predictor matrix ``(n, p)`` of the new ``data``."""
        return new_exog(self.model_spec, data, self.namespace, self.engine)

    def compact(self):
        """Keep only the columns the right-hand side names (patsy)."""
        if self._frame is not None:
            self._frame = _referenced_columns(self._frame, self.rhs)

    def __getstate__(self):
        state = dict(self.__dict__)
        if self._frame is not None:
            state["_spec"] = None
            state["_frame"] = _referenced_columns(self._frame, self.rhs)
        return state


def _referenced_columns(data, formula):
    """
    The columns of ``data`` whose names occur in ``formula``: a superset of
    those it uses, so that the formula engine does not convert the others
    (statsmodels copies a frame with text columns on every call).  A
    formula with a ``.`` term (all columns, in formulaic) keeps them all.
    """
    if re.search(r"(?<![\w.])\.(?![\w.])", formula):
        return data
    keep = [name for name in data.columns if str(name) in formula]
    return data if len(keep) == data.shape[1] else data[keep]


def _outcome_columns(lhs, frame):
    """
    The outcomes when the left-hand side only names columns (the usual
    case), read directly as numbers (nullable and boolean columns
    converted, text refused naming the column); None when it needs the
    formula engine (transformations such as ``np.log(y)``).
    """
    names = [term.strip() for term in lhs.split("+")]
    if not all(name in frame.columns for name in names):
        return None
    return _validation.numeric(frame[names], "outcome")


def _check_outcome_terms(endog, lhs, mgr):
    """
    Refuse an outcome side that the formula engine turned into dummy
    columns (text, categories or booleans inside a transformation): each
    outcome term must give one numeric column.
    """
    spec = mgr.spec
    terms = getattr(spec, "terms", None)
    n_terms = len(terms) if terms is not None else endog.shape[1]
    if endog.shape[1] != n_terms:
        raise ValueError(
            f"the outcome side {lhs!r} of the formula is not numeric: the "
            f"formula engine made it into the columns "
            f"{[str(c) for c in endog.columns]}; each outcome must be one "
            "numeric column (convert text with pandas.to_numeric)")


def new_exog(model_spec, data, namespace=None, engine=None):
    """
    Predictor matrix for new data, with the columns of the fitted model.

    ``namespace`` holds the names the formula could see when it was fitted
    (formulaic's model spec does not keep them; patsy's does); ``engine``
    is the formula engine that built ``model_spec`` (default: the current
    one).
    """
    mgr = FormulaManager(engine)
    data = new_data_frame(data)
    context = namespace if (namespace and mgr.engine == "formulaic") else 0
    exog = mgr.get_matrices(model_spec, data, prediction=True,
                            eval_env=context,
                            na_action=mgr.get_na_action("raise"))
    return np.asarray(exog, dtype=float)


def new_data_frame(data):
    """New data as a DataFrame; a dict of scalars is one row."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict) and all(np.ndim(v) == 0
                                      for v in data.values()):
        return pd.DataFrame({key: [value] for key, value in data.items()})
    return pd.DataFrame(data)


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
