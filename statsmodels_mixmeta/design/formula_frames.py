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
