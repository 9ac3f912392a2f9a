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
    return lhs, rhs or "1"


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
    The outcomes when the left-hand side only names numeric columns (the
    usual case), read directly; None when it needs the formula engine
    (transformations such as ``np.log(y)``).
    """
    names = [term.strip() for term in lhs.split("+")]
    if not all(name in frame.columns for name in names):
        return None
    columns = frame[names]
    if not all(np.issubdtype(dtype, np.number) for dtype in columns.dtypes):
        return None
    return columns.astype(float)


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


def columns_of(data, names, positions, what):
    """
    Numeric columns of ``data`` named in ``names``, at ``positions``.

    Raises ValueError naming the columns that do not exist.
    """
    names = [names] if isinstance(names, str) else list(names)
    absent = [name for name in names if name not in data.columns]
    if absent:
        raise ValueError(
            f"{what} names columns not in data: {', '.join(map(str, absent))}")
    values = data[names].iloc[positions]
    return values.to_numpy(dtype=float)


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
