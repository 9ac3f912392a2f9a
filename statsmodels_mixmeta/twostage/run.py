"""
:func:`two_stage`: check the inputs, cut the data into groups, run the first
stage where asked (:mod:`.executors`) and collect it into a
:class:`~.result.TwoStage`.
"""
import numpy as np
import pandas as pd

from .executors import Groups, run_groups
from .result import TwoStage


def two_stage(data, groups, fit_group, params, covariates=None,
              executor=None, on_failure="drop", progress=None):
    """
    Fit the same regression in every group and collect what the second
    stage pools.

    For each group ``i`` the first stage fits ``fit_group`` to the group's
    rows and keeps the estimates ``y_i`` of the coefficients ``params`` and
    the matching block ``S_i`` of ``cov_params()``.  The second stage
    (:meth:`TwoStage.mixmeta`) pools them with the model

    .. math::

        y_i = X_i \\beta + b_i + \\epsilon_i, \\quad
        b_i \\sim N(0, \\Psi), \\quad \\epsilon_i \\sim N(0, S_i),

    ``X_i`` built from group-level covariates (an intercept for plain
    pooling; Gasparrini, Armstrong & Kenward 2012).

    Parameters
    ----------
    data : DataFrame
        Individual-level data, one row per observation.  Never modified.
    groups : str or array_like
        Column of ``data`` holding the group labels, or one label per row.
    fit_group : callable
        ``fit_group(frame)`` fits a statsmodels model to one group's rows
        (a DataFrame with ``data``'s columns) and returns the fitted
        results: OLS, WLS, GLM, Logit, Poisson, MixedLM, GEE, ... With a
        process pool or a Dask cluster it must be picklable (a module-level
        function, not a lambda or a local function).
    params : list of str, str, list of int or callable
        Names of the coefficients to carry (as in the results' ``params``),
        or ``params(results)`` returning them.  For MixedLM, name fixed
        effects; the variance parameters of its ``cov_params()`` are left
        out by name.  Positions in ``params`` (integers) also work, and
        cost less with array-input fits, whose names (``x1``, ``const``)
        statsmodels makes on demand: a group of each task names them.
    covariates : list of str, optional
        Columns of ``data`` constant within each group, kept as group-level
        covariates for the second stage.
    executor : None, concurrent.futures.Executor, dask.distributed.Client or "dask"
        ``None`` fits serially; an Executor (thread or process pool) maps
        the groups over it; a Dask client, or ``"dask"`` for the current
        one (``distributed.get_client()``), over a Dask cluster (the
        optional ``dask`` extra).  Workers send back only the estimates,
        covariance blocks, ``nobs`` and flags.  The numbers do not depend
        on the executor.
    on_failure : {"drop", "raise"}
        What to do with groups whose first stage raised, did not converge,
        or does not identify some requested coefficients (a
        rank-deficient design, e.g. a site that observed one condition
        only; a non-finite or non-positive variance; a singular covariance
        block): ``"drop"`` leaves them out, or keeps their estimable
        coefficients (the others missing), records them in
        ``failures`` and warns once (:class:`~.result.FirstStageWarning`);
        ``"raise"`` raises a ValueError listing every failing group and
        its reason.
    progress : bool, optional
        Show progress on stderr (tqdm when installed).  The default shows
        it only when stderr is a terminal and there are at least 100
        groups.

    Returns
    -------
    TwoStage
        ``y``, ``S``, ``table``, ``failures``, ``covariates`` and the
        second-stage model ``mixmeta(formula_rhs="~ 1", **kw)``.

    Raises
    ------
    ValueError
        For a missing ``groups`` column or labels of the wrong length or
        with missing values, a covariate that is not a column or varies
        within a group, names in ``params`` that no fit has, and with
        ``on_failure="raise"`` for any failing group.

    See Also
    --------
    TwoStage.from_results : the same from fits run elsewhere.

    References
    ----------
    Gasparrini A, Armstrong B, Kenward MG. Multivariate meta-analysis for
    non-linear and other multi-parameter associations. Statistics in
    Medicine 2012; 31: 3821-3839.

    Examples
    --------
    >>> fit = lambda frame: smf.glm("deaths ~ treat", frame,
    ...                             family=sm.families.Poisson()).fit()
    >>> res2 = smm.two_stage(df, "site", fit, ["treat"])  # doctest: +SKIP
    >>> res2.fit(method="reml").params                     # doctest: +SKIP
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(
            f"data must be a pandas DataFrame, got {type(data).__name__}")
    if on_failure not in ("drop", "raise"):
        raise ValueError(
            f"on_failure must be 'drop' or 'raise', got {on_failure!r}")
    if not callable(fit_group):
        raise ValueError("fit_group must be a callable frame -> results")
    if not callable(params):
        params = [params] if isinstance(params, str) else list(params)
        names = all(isinstance(p, str) for p in params)
        positions = all(isinstance(p, (int, np.integer))
                        and not isinstance(p, bool) and p >= 0
                        for p in params)
        if not params or not (names or positions):
            raise ValueError(
                "params must be coefficient names (strings), positions in "
                "the fits' params (non-negative integers), or a callable "
                f"results -> names; got {params!r}")
    keys, group_name = _group_keys(data, groups)
    groups = Groups(data, keys)
    table = _covariates(data, keys, groups.labels, covariates, group_name)
    outcomes = run_groups(fit_group, params, groups, executor, progress)
    return TwoStage(outcomes, params, table, on_failure, group_name)


def _group_keys(data, groups):
    if isinstance(groups, str):
        if groups not in data.columns:
            raise ValueError(
                f"groups={groups!r} is not a column of data; the columns "
                f"are {list(data.columns)}")
        keys, name = data[groups], groups
    else:
        keys = np.asarray(groups)
        name = getattr(groups, "name", None)
        if keys.ndim != 1 or keys.shape[0] != data.shape[0]:
            raise ValueError(
                f"groups must be a column name of data or one label per row "
                f"({data.shape[0]} rows), got shape {keys.shape}")
    absent = np.asarray(pd.isna(keys))
    if absent.any():
        rows = list(data.index[absent][:5])
        raise ValueError(
            f"groups has missing labels in {int(absent.sum())} row(s) of "
            f"data, e.g. {rows}; give every row a group")
    return keys, name


def _covariates(data, keys, labels, covariates, group_name):
    """One row per group of the group-level covariates (label order)."""
    if covariates is None:
        return None
    covariates = [covariates] if isinstance(covariates, str) \
        else list(covariates)
    absent = [c for c in covariates if c not in data.columns]
    if absent:
        raise ValueError(
            f"covariates {absent} are not columns of data; the columns are "
            f"{list(data.columns)}")
    frame = data[covariates].copy()
    frame.index = pd.Index(np.asarray(keys), name="__group__")
    grouped = frame.groupby(level=0, sort=False, dropna=False)
    varying = grouped.nunique(dropna=False)
    for column in covariates:
        where = varying.index[varying[column] > 1]
        if len(where):
            raise ValueError(
                f"covariate {column!r} varies within groups "
                f"{list(where[:5])}"
                + (f" and {len(where) - 5} more" if len(where) > 5 else "")
                + "; covariates must be constant within each group")
    table = grouped.first().reindex(labels).rename_axis(group_name)
    return table
