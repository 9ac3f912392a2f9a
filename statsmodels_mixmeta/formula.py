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
import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager


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


def model_frames(formula, data, missing="drop", eval_env=0):
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

    Returns
    -------
    endog : DataFrame, (n, k)
        Outcomes of the rows whose predictors are all present (NaN kept).
    exog : DataFrame, (n, p)
    model_spec : patsy DesignInfo or formulaic ModelSpec
        To rebuild identical predictor columns from new data.
    positions : ndarray of int
        Positions in ``data`` of the rows returned.
    """
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    lhs, rhs = split_formula(formula)
    frame = data.reset_index(drop=True)
    depth = eval_env + 1
    mgr = FormulaManager()
    action = "raise" if missing in ("raise", "none") else "drop"
    exog = mgr.get_matrices("~ " + rhs, frame, eval_env=depth,
                            na_action=mgr.get_na_action(action))
    model_spec = mgr.spec
    keep_na = (mgr.get_na_action("drop", types=[]) if mgr.engine == "patsy"
               else "ignore")
    endog = mgr.get_matrices("~ 0 + " + lhs, frame, eval_env=depth,
                             na_action=keep_na)
    positions = np.asarray(exog.index, dtype=np.intp)
    endog = endog.iloc[positions]
    labels = data.index[positions]
    endog.index = labels
    exog.index = labels
    return endog, exog, model_spec, positions


def new_exog(model_spec, data):
    """Predictor matrix for new data, with the columns of the fitted model."""
    mgr = FormulaManager()
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    exog = mgr.get_matrices(model_spec, data, prediction=True,
                            na_action=mgr.get_na_action("raise"))
    return np.asarray(exog, dtype=float)


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
