"""
Predictors of new data, with the columns of a fitted formula.

:class:`PredictorFormula` keeps a fitted right-hand side (the engine's model
spec and the names the formula saw) so that new data rebuild the fitted
predictor columns, factor levels and stateful transforms included, also
after the model has been pickled; :func:`new_exog` and
:func:`new_data_frame` do the rebuilding.
"""
import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager

from .formula_frames import FormulaNamespace, _referenced_columns


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
