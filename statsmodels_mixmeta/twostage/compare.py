"""
Two-stage and one-stage fits side by side: pooled fixed effects, their
standard errors, between-group (co)variances, groups, observations and
covariance type in one table, also through statsmodels' ``summary_col``.

What each kind of fit contributes:

* ``MixMetaResults`` (a two-stage second stage): ``params``/``bse``, the
  entries of ``psi`` (none for ``method="fixed"``, whose Psi is 0 by
  assumption), the groups pooled and, when the model was built by
  :func:`two_stage` and that first stage is given (``first_stage=``), the
  first-stage rows (observations); otherwise the observations are left
  empty.
* ``MixedLMResults``: the fixed effects ``fe_params``/``bse_fe``, the
  entries of ``cov_re`` (and the variance components, if any), the number
  of groups and of rows.  MixedLM names the random intercept after the
  grouping variable; here it is named ``Intercept``, as the fixed effect
  and the first-stage coefficient it corresponds to, so that ``Var(x)`` and
  ``Cov(Intercept, x)`` line up with a MixMeta's Psi.
* GLM, OLS/WLS and discrete (Poisson, Logit, ...) results:
  ``params``/``bse`` and the rows; no
  between-group variance; the number of groups when their covariance is
  cluster-robust.  GEE results likewise, with their number of clusters
  (a working correlation is not a between-group variance).
"""
import numpy as np
import pandas as pd
from statsmodels.discrete.discrete_model import DiscreteResults
from statsmodels.genmod.generalized_estimating_equations import GEEResults
from statsmodels.genmod.generalized_linear_model import GLMResults
from statsmodels.iolib.summary2 import summary_col as _summary_col
from statsmodels.regression.linear_model import RegressionResults
from statsmodels.regression.mixed_linear_model import MixedLMResults

from ..results import MixMetaResults
from .result import TwoStage

INFO_ROWS = ["groups", "observations", "cov_type", "estimator"]


def _unwrap(results):
    return getattr(results, "_results", results)


def _covariance_entries(matrix, level=None):
    """``Var(a)`` and ``Cov(a, b)`` (lower triangle, by column) of a
    labelled covariance matrix, as a Series."""
    names = [str(n) for n in matrix.index]
    values = np.asarray(matrix, dtype=float)
    suffix = "" if level is None else f" | {level}"
    out = {}
    for j, b in enumerate(names):
        for i in range(j, len(names)):
            a = names[i]
            key = f"Var({a}{suffix})" if i == j else f"Cov({b}, {a}{suffix})"
            out[key] = values[i, j]
    return pd.Series(out, dtype=float)


def _first_stage_rows(results, first_stage, position):
    """Rows of the first-stage fits of the groups that ``results`` pooled
    (the ``nobs`` column of the :class:`TwoStage` table), after checking
    that ``results`` is a fit of that first stage's estimates."""
    if not isinstance(first_stage, TwoStage):
        raise ValueError(
            f"side_by_side: first_stage for result {position} is a "
            f"{type(first_stage).__name__}; valid is the TwoStage (the "
            "output of smm.two_stage) whose estimates the result pooled")
    endog = np.asarray(results.model.endog, dtype=float)
    endog = endog.reshape(len(endog), -1)       # one outcome: (n,) -> (n, 1)
    y = first_stage.y.to_numpy(dtype=float)
    if endog.shape != y.shape or not np.array_equal(endog, y,
                                                    equal_nan=True):
        raise ValueError(
            f"side_by_side: result {position} did not pool the estimates "
            f"of the first_stage given for it ({first_stage.n_groups} "
            f"groups, params {first_stage.param_names}); pass the TwoStage "
            "whose .fit() or .mixmeta() made it")
    table = first_stage.table
    return float(table.loc[table["pooled"], "nobs"].sum())


def _from_mixmeta(results, first_stage=None, position=0):
    if results.method == "fixed":
        between = pd.Series(dtype=float)
    elif isinstance(results.psi, dict):
        between = pd.concat([_covariance_entries(psi, level)
                             for level, psi in results.psi.items()])
    else:
        between = _covariance_entries(results.psi)
    return dict(params=pd.Series(np.asarray(results.params, dtype=float),
                                 index=results.model.data.param_names),
                bse=pd.Series(np.asarray(results.bse, dtype=float),
                              index=results.model.data.param_names),
                between=between, groups=float(results.n_groups),
                observations=(np.nan if first_stage is None else
                              _first_stage_rows(results, first_stage,
                                                position)),
                cov_type=results.cov_type,
                estimator=f"MixMeta ({results.method})")


def _from_mixedlm(results):
    model = results.model
    k_re = model.k_re
    names = [str(n) for n in model.data.exog_re_names][:k_re]
    # MixedLM calls the random intercept after the grouping variable
    constant = (np.all(np.asarray(model.exog_re) == 1, axis=0) if k_re
                else np.zeros(0, dtype=bool))
    names = ["Intercept" if const else name
             for name, const in zip(names, constant)]
    cov_re = pd.DataFrame(np.asarray(results.cov_re)[:k_re, :k_re],
                          index=names, columns=names)
    between = _covariance_entries(cov_re) if len(names) else pd.Series(
        dtype=float)
    if model.k_vc:
        between = pd.concat([between, pd.Series(
            np.asarray(results.vcomp, dtype=float),
            index=[f"Var({name})" for name in model.exog_vc.names])])
    fe = results.fe_params
    return dict(params=pd.Series(np.asarray(fe, dtype=float),
                                 index=model.exog_names),
                bse=pd.Series(np.asarray(results.bse_fe, dtype=float),
                              index=model.exog_names),
                between=between, groups=float(model.n_groups),
                observations=float(results.nobs),
                cov_type=getattr(results, "cov_type", None) or "nonrobust",
                estimator=f"MixedLM ({results.method})")


def _from_regression(results):
    model = results.model
    groups = np.nan
    if isinstance(results, GEEResults):
        estimator = (f"GEE ({model.family.__class__.__name__}, "
                     f"{model.cov_struct.__class__.__name__})")
        groups = float(model.num_group)
    elif isinstance(results, GLMResults):
        estimator = f"GLM ({model.family.__class__.__name__})"
    else:
        estimator = model.__class__.__name__
    if results.cov_type.startswith("cluster"):
        groups = float(getattr(results, "n_groups", np.nan))
    return dict(params=pd.Series(np.asarray(results.params, dtype=float),
                                 index=model.exog_names),
                bse=pd.Series(np.asarray(results.bse, dtype=float),
                              index=model.exog_names),
                between=pd.Series(dtype=float), groups=groups,
                observations=float(results.nobs), cov_type=results.cov_type,
                estimator=estimator)


def _describe(results, position, first_stage=None):
    inner = _unwrap(results)
    if isinstance(inner, MixMetaResults):
        return _from_mixmeta(inner, first_stage, position)
    if first_stage is not None:
        raise ValueError(
            f"side_by_side: first_stage given for result {position}, a "
            f"{type(results).__name__}; only a MixMeta fit of two_stage "
            "estimates has a first stage")
    if isinstance(inner, MixedLMResults):
        return _from_mixedlm(inner)
    if isinstance(inner, (GLMResults, RegressionResults)) or (
            isinstance(inner, DiscreteResults)
            and np.ndim(inner.params) == 1):
        return _from_regression(inner)
    raise ValueError(
        f"side_by_side: result {position} is a {type(results).__name__}; "
        "valid are fitted MixMetaResults, MixedLMResults, GLMResults, "
        "GEEResults, OLS/WLS/GLS RegressionResults and single-equation "
        "discrete results (Poisson, Logit, ...)")


def _column_names(described, names):
    if names is None:
        base = [d["estimator"].split(" ")[0] for d in described]
        counts = pd.Series(base).value_counts()
        seen = {}
        out = []
        for name in base:
            seen[name] = seen.get(name, 0) + 1
            out.append(f"{name} {seen[name]}" if counts[name] > 1 else name)
        return out
    names = list(names)
    if len(names) != len(described):
        raise ValueError(
            f"side_by_side: names has {len(names)} entries for "
            f"{len(described)} results; give one name per result")
    if any(not isinstance(n, str) or not n for n in names):
        raise ValueError("side_by_side: names must be non-empty strings, "
                         f"got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(
            f"side_by_side: names must be distinct, got {names!r}")
    return names


def _union(indexes):
    out = []
    for index in indexes:
        out.extend(name for name in index if name not in out)
    return out


class SideBySide:
    """
    Fits set side by side (see :func:`side_by_side`).

    Attributes
    ----------
    params, bse : DataFrame
        Fixed effects and their standard errors, one column per fit, rows
        the union of the fits' coefficient names (NaN where a fit has none).
    between : DataFrame
        Between-group variances and covariances, ``Var(a)`` and
        ``Cov(a, b)`` (``Var(a | level)`` for a multilevel MixMeta); NaN
        where a fit has none.
    info : DataFrame
        Rows ``groups``, ``observations``, ``cov_type`` and ``estimator``.
    frame : DataFrame
        All of the above in one table indexed by ``(section, name)``, the
        sections being ``"coef"``, ``"se"``, ``"between"`` and ``"info"``.
    results : list
        The fits, in column order.
    """

    def __init__(self, results, names, described):
        self.results = list(results)
        self.names = list(names)
        self.params = self._table(described, "params")
        self.bse = self._table(described, "bse")
        self.between = self._table(described, "between")
        self.info = pd.DataFrame(
            {name: [d[row] for row in INFO_ROWS]
             for name, d in zip(self.names, described)}, index=INFO_ROWS)

    def _table(self, described, key):
        rows = _union([d[key].index for d in described])
        return pd.DataFrame({name: d[key].reindex(rows)
                             for name, d in zip(self.names, described)},
                            index=pd.Index(rows, dtype=object), dtype=float)

    @property
    def frame(self):
        parts = {"coef": self.params, "se": self.bse,
                 "between": self.between, "info": self.info}
        return pd.concat({section: table.astype(object)
                          for section, table in parts.items()},
                         names=["section", "name"])

    def __repr__(self):
        return self.frame.to_string()

    def summary_col(self, float_format="%.4f", stars=False):
        """
        The fits through statsmodels' ``summary_col``: each fixed effect
        with its standard error in parentheses, then rows for the groups,
        the observations, each between-group (co)variance and the
        covariance type.  The variance parameters that a MixedLM lists
        among its ``params`` appear only in the between-group rows.

        Returns
        -------
        statsmodels.iolib.summary2.Summary
        """
        by_id = {id(r): name for r, name in zip(self.results, self.names)}

        def cell(table, row, fmt=None):
            def get(result):
                value = table.loc[row, by_id[id(result)]]
                if fmt is None:
                    return str(value)
                if pd.isna(value):
                    return ""
                return fmt % value
            return get

        info = {"Groups": cell(self.info, "groups", "%d"),
                "Observations": cell(self.info, "observations", "%d")}
        for row in self.between.index:
            info[row] = cell(self.between, row, float_format)
        info["Covariance type"] = cell(self.info, "cov_type")
        summary = _summary_col(self.results, float_format=float_format,
                               model_names=self.names, stars=stars,
                               info_dict=info,
                               regressor_order=list(self.params.index),
                               drop_omitted=True, include_r2=False)
        # summary_col sorts the info rows; put them back in this order
        table = summary.tables[0]
        head = table.iloc[:len(table) - len(info)]
        summary.tables[0] = pd.concat([head, table.loc[list(info)]])
        return summary


def _first_stages(first_stage, results):
    """One TwoStage (or None) per result."""
    if first_stage is None:
        return [None] * len(results)
    if isinstance(first_stage, TwoStage):
        mixmeta = [i for i, r in enumerate(results)
                   if isinstance(_unwrap(r), MixMetaResults)]
        if len(mixmeta) != 1:
            raise ValueError(
                f"side_by_side: a single first_stage needs exactly one "
                f"MixMeta result, got {len(mixmeta)}; pass a list with one "
                "entry (TwoStage or None) per result")
        return [first_stage if i == mixmeta[0] else None
                for i in range(len(results))]
    if isinstance(first_stage, (list, tuple)):
        if len(first_stage) != len(results):
            raise ValueError(
                f"side_by_side: first_stage has {len(first_stage)} entries "
                f"for {len(results)} results; give one (TwoStage or None) "
                "per result")
        return list(first_stage)
    raise ValueError(
        "side_by_side: first_stage must be a TwoStage, or a list with one "
        f"TwoStage or None per result, got {type(first_stage).__name__}")


def _keep(described, params):
    """Restrict every fit's coefficients to ``params`` (names)."""
    if params is None:
        return described
    params = [params] if isinstance(params, str) else list(params)
    known = _union([d["params"].index for d in described])
    unknown = [name for name in params if name not in known]
    if unknown or not params:
        raise ValueError(
            f"side_by_side: params {unknown or params} are not coefficients "
            f"of any of the fits; their coefficients are {known}")
    for d in described:
        kept = [name for name in params if name in d["params"].index]
        d["params"] = d["params"].loc[kept]
        d["bse"] = d["bse"].loc[kept]
    return described


def side_by_side(*results, names=None, first_stage=None, params=None):
    """
    Set fitted models side by side: a two-stage pooling next to a one-stage
    model of the same data.

    Parameters
    ----------
    *results : fitted results
        ``MixMetaResults`` (from ``MixMeta.fit()`` or
        ``two_stage(...).fit()``), statsmodels ``MixedLMResults``,
        ``GLMResults``, ``GEEResults``, OLS/WLS/GLS results or
        single-equation discrete results (``Poisson``, ``Logit``, ...;
        not ``MNLogit``), with any ``cov_type``, including ``"cluster"``.
    names : sequence of str, optional
        Column names, one per result (distinct).  By default the kind of
        fit (``"MixMeta"``, ``"MixedLM"``, ``"GLM"``, ``"OLS"``), numbered
        when repeated.
    first_stage : TwoStage or list, optional
        The first stage (:func:`two_stage`'s output) behind a MixMeta
        result, so that its observations are the first-stage rows of the
        groups pooled (the ``nobs`` column of ``first_stage.table``).  One
        TwoStage when exactly one result is a MixMeta, otherwise a list
        with one TwoStage or None per result.  Without it a MixMeta's
        observations are left empty.
    params : list of str, optional
        The coefficients to show, in this order (default: all of them), to
        leave out nuisance coefficients such as a one-stage GLM's site
        fixed effects.

    Returns
    -------
    SideBySide
        With ``.frame`` (one DataFrame), ``.params``, ``.bse``,
        ``.between``, ``.info`` and ``.summary_col()``.

    Notes
    -----
    Coefficients are matched by name.  A two-stage MixMeta of ``"~ 1"``
    names its pooled coefficients after the first-stage parameters, so that
    they line up with the one-stage model's fixed effects.  The
    between-group entries are matched by the names of the random effects:
    MixMeta's Psi is labelled by the first-stage coefficients, MixedLM's
    ``cov_re`` by the columns of ``exog_re`` (its intercept renamed
    ``Intercept``).

    Examples
    --------
    >>> two = smm.two_stage(data, "site", fit_site, ["Intercept", "x"])
    >>> table = smm.side_by_side(two.fit(), mixed, first_stage=two,
    ...                          names=["two-stage", "MixedLM"])
    >>> print(table.summary_col())
    """
    if not results:
        raise ValueError("side_by_side needs at least one fitted result")
    if len(results) == 1 and isinstance(results[0], (list, tuple)):
        results = tuple(results[0])
    stages = _first_stages(first_stage, results)
    described = [_describe(r, i, stage)
                 for i, (r, stage) in enumerate(zip(results, stages))]
    described = _keep(described, params)
    names = _column_names(described, names)
    return SideBySide(results, names, described)
