"""
Predictions: the fixed part with standard errors, and best linear unbiased
predictions (BLUPs) of the random effects.

For outcome ``j`` of a row with predictors ``x`` the fixed-part prediction is
``x' beta_j`` with variance ``x' V_jj x`` (``V_jj`` the block of ``cov(beta)``
of outcome ``j``).  The random effects of group ``i`` are predicted by

.. math:: \\hat b_i = \\Psi Z_i' \\Sigma_i^{-1} (y_i - X_i \\hat\\beta)

and the BLUP of a row is ``x' beta + b_i``.

:func:`fixed_prediction` also gives the covariance ``R_u`` of a new study's
random effects at each new row, for prediction intervals
(:mod:`.intervals`), building the row's random predictors from the
``random=`` formulas when they are not the intercept alone; :func:`blup`
gives the BLUPs' prediction error variances for their intervals.
"""
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.formula._manager import FormulaManager

from ..design import formula as _formula
from ..design.core import expand_by_outcome
from ..kernels.likelihood import marginal_cov, whiten
from .intervals import PredictionResults


def new_design_rows(results, exog):
    """Predictor rows for prediction: the fit's, or rebuilt from new data."""
    model = results.model
    if exog is None:
        return model.design.exog, model.design.row_labels
    if model.formula_terms is not None and isinstance(exog, (pd.DataFrame,
                                                             dict)):
        frame = _formula.new_data_frame(exog)
        return model.formula_terms.exog(frame), list(frame.index)
    arr = np.atleast_2d(np.asarray(exog, dtype=float))
    if arr.shape[1] != model.design.n_terms:
        raise ValueError(
            f"exog needs {model.design.n_terms} columns "
            f"({', '.join(model.design.term_names)}), got {arr.shape[1]}")
    index = exog.index if isinstance(exog, pd.DataFrame) else range(len(arr))
    return arr, list(index)


def predict(results, exog=None, transform=True):
    """
    ``x' beta`` of every outcome at the rows of ``exog`` (see
    ``MixMetaResults.predict``): a Series for one outcome, a DataFrame by
    outcome for several, indexed as ``exog``.
    """
    if not transform and isinstance(exog, (pd.DataFrame, dict)):
        frame = _formula.new_data_frame(exog)
        rows = new_design_rows(results, frame.to_numpy(dtype=float))[0]
        labels = list(frame.index)
    else:
        rows, labels = new_design_rows(results, exog)
    values = results.model.predict(results.params, rows)
    names = list(results.model.design.outcome_names)
    if len(names) == 1:
        return pd.Series(values[:, 0], index=labels, name=names[0])
    return pd.DataFrame(values, index=labels, columns=names)


def fixed_prediction(results, exog=None, alpha=0.05, exog_re=None):
    """
    Fixed-part predictions with standard errors, and the covariance of a new
    study's random effects at each row for prediction intervals
    (:class:`~.intervals.PredictionResults`).
    """
    rows, labels = new_design_rows(results, exog)
    k = results.model.n_outcomes
    p = rows.shape[1]
    beta = np.asarray(results.params).reshape(k, p)
    cov_beta = np.asarray(results.cov_params())
    cov = cov_beta.reshape(k, p, k, p)
    cov_blocks = cov[np.arange(k), :, np.arange(k), :]          # (k, p, p)
    mean = rows @ beta.T
    var = np.einsum("np,jpq,nq->nj", rows, cov_blocks, rows)
    names = list(results.model.design.outcome_names)
    frame = lambda values: pd.DataFrame(values, index=labels, columns=names)
    # computed on first use: the means need no random predictors
    random_cov = lambda: new_study_cov(results, exog, len(rows), exog_re)
    return PredictionResults(frame(mean), frame(np.sqrt(var)), alpha,
                             prediction_df(results, rows),
                             exog=rows, cov_beta=cov_beta,
                             random_cov=random_cov)


def prediction_df(results, rows):
    """
    Degrees of freedom of the t quantiles of predictions at ``rows``
    (``(n, p)`` predictor rows): None without ``use_t``; else the fit's df
    rule applied to each prediction's contrast ``kron(e_j, x_n)`` of
    ``beta``, an ``(n, k)`` array, or one number when all agree (the
    ``"residual"`` rule's ``df_resid``).  Prediction intervals of a new
    study and of the BLUPs use the df of their mean's contrast.
    """
    rule = results._df_rule
    if rule is None:
        return None
    rows = np.asarray(rows, dtype=float)
    n, p = rows.shape
    k = results.model.n_outcomes
    contrasts = np.zeros((n, k, k * p))
    for j in range(k):      # a loop over outcomes, not over studies
        contrasts[:, j, j * p:(j + 1) * p] = rows
    df = np.asarray(rule.t_df(contrasts.reshape(n * k, k * p)),
                    dtype=float).reshape(n, k)
    return float(df.flat[0]) if np.all(df == df.flat[0]) else df


def new_study_cov(results, exog, n_new, exog_re=None):
    """
    ``R_u = sum_l kron(I_k, z_ul') Psi_l kron(I_k, z_ul)``, the covariance
    of the random effects of a new study at each new row (a new group at
    every level), ``(n_new, k, k)``.  ``Psi_l`` is ordered outcome-major,
    ``(k q_l, k q_l)``, so ``R_u[j, i] = z_ul' Psi_l[j, :, i, :] z_ul``.
    """
    k = results.model.n_outcomes
    out = np.zeros((n_new, k, k))
    psis = results.psis
    if not psis:
        return out
    for psi, z in zip(psis, new_random_rows(results, exog, n_new, exog_re)):
        q = z.shape[1]
        out += np.einsum("nr,jris,ns->nji", z, psi.reshape(k, q, k, q), z)
    return out


def new_random_rows(results, exog, n_new, exog_re=None):
    """
    The random predictors ``(n_new, q_l)`` of every level at the new rows.

    The fit's rows when ``exog`` is None; ones for a level whose only
    random predictor is the intercept; ``exog_re`` when given (an array
    ``(n_new, q)`` used for every level, or with several levels a list of
    one 2-D array per level); otherwise the level's
    random formula (``design.random_terms``) evaluated on new data given as
    a DataFrame or dict.  The formula is evaluated afresh on the new data:
    a stateful transform in it (centring) would not reproduce the fitted
    columns; pass ``exog_re`` then.
    """
    model = results.model
    design = model.design
    names = _random_names(design, model.random.n_levels)
    if exog_re is not None:
        per_level = (len(names) > 1 and isinstance(exog_re, (list, tuple))
                     and len(exog_re) == len(names)
                     and all(np.ndim(z) == 2 for z in exog_re))
        arrays = list(exog_re) if per_level else [exog_re] * len(names)
        out = []
        for z, level in zip(arrays, names):
            z = np.asarray(z, dtype=float)
            if z.size != n_new * len(level) or not np.isfinite(z).all():
                raise ValueError(
                    f"exog_re for random predictors {list(level)} needs "
                    f"finite values of shape ({n_new}, {len(level)}), got "
                    f"shape {np.shape(z)}")
            out.append(z.reshape(n_new, len(level)))
        return out
    if exog is None:
        return list(design.levels.random_exog)
    out = []
    for lev, level in enumerate(names):
        if _intercept_only(design, lev, level):
            out.append(np.ones((n_new, 1)))
            continue
        terms = getattr(design, "random_terms", None)
        if terms is None or not isinstance(exog, (pd.DataFrame, dict)):
            raise ValueError(
                f"level {lev + 1} of the model has random predictors "
                f"{list(level)}: give exog_re= (their values at the new "
                "rows), or new data as a DataFrame to a model fitted with "
                "random= formulas")
        out.append(_random_design(model, terms[lev], exog, level))
    return out


def _intercept_only(design, lev, names):
    """Whether level ``lev``'s only random predictor is a constant 1."""
    if tuple(names) == ("Intercept",):
        return True
    try:
        z = design.levels.random_exog[lev]
    except AttributeError:      # remove_data(): the names only
        return False
    return z.shape[1] == 1 and bool(np.all(z == 1.0))


def _random_names(design, n_levels):
    try:
        names = design.levels.random_names
    except AttributeError:      # remove_data() keeps the names only
        names = design.random_names
    return [tuple(n) for n in names[:n_levels]]


def _random_design(model, term, exog, names):
    """
    One level's random predictors at new data: the random formula's spec
    is rebuilt on the fitted data when the model still holds them (so that
    factor levels and stateful transforms are the fit's), otherwise the
    formula is evaluated on the new data alone and must give the fitted
    columns.
    """
    frame = _formula.new_data_frame(exog).reset_index(drop=True)
    terms = getattr(model, "formula_terms", None)
    namespace = 0 if terms is None else terms.namespace
    mgr = FormulaManager(None if terms is None else terms.engine)
    fitted = _fitted_frame(model)
    if fitted is not None:
        try:
            columns = [str(c) for c in mgr.get_matrices(
                term.formula, fitted, eval_env=namespace,
                na_action=mgr.get_na_action("drop")).columns]
            z = _formula.new_exog(mgr.spec, frame, namespace, mgr.engine)
        except Exception:   # noqa: BLE001 -- e.g. columns not kept: below
            fitted = None
    if fitted is None:
        try:
            z = mgr.get_matrices(term.formula, frame, eval_env=namespace,
                                 na_action=mgr.get_na_action("raise"))
        except Exception as err:
            raise ValueError(
                f"cannot evaluate the random formula {term.formula!r} of "
                f"level {term.group!r} on the new data ({err}); give "
                "exog_re=") from err
        columns = [str(c) for c in z.columns]
    if columns != [str(n) for n in names]:
        raise ValueError(
            f"the random formula {term.formula!r} gives columns {columns} "
            f"on the new data, but the fit had {list(names)}; give exog_re=")
    return np.asarray(z, dtype=float)


def _fitted_frame(model):
    """The data frame the model was fitted on, when it still holds it."""
    frame = getattr(getattr(model, "data", None), "frame", None)
    if not isinstance(frame, pd.DataFrame):
        frame = getattr(getattr(model, "formula_terms", None), "_frame",
                        None)
    return frame.reset_index(drop=True) if isinstance(
        frame, pd.DataFrame) else None


def random_effects(results):
    """
    Predicted random effects of every level, ``b = Psi_l sum z (Sigma^-1 r)``
    over the values of each level-``l`` group: a list of ``(groups_l, r_l)``
    arrays, groups in code order.
    """
    model = results.model
    state = results._batched_state
    batches = model._batches
    # Sigma^-1 r of every value, in long order
    weighted = batches.to_long(
        np.einsum("gmn,gm->gn", wb.inv_chol, rw)
        for wb, rw in zip(state.whitened, state.resid_w))
    return [batches.group_sums(z * weighted[:, None], lev,
                               model.design.levels.codes[lev].max() + 1) @ psi
            for lev, (z, psi) in enumerate(zip(batches.long.Z, state.psis))]


def blup(results, level=None, pev=False):
    """
    BLUPs ``x' beta + sum_{l <= level} z_l' b_l`` of every row and outcome,
    and their standard errors, ``(n, k)`` each.

    With ``C`` the covariance between the random part at every (row,
    outcome) of a group and the group's observed values, the random part is
    predicted by ``C Sigma^-1 r`` with conditional variance
    ``Var(random part) - C Sigma^-1 C'``.  The standard errors are R
    mixmeta's: that variance plus the variance ``x' V(beta) x`` of the fixed
    part (leaving out their covariance, as R does).

    With ``pev=True`` a third ``(n, k)`` array is returned: the prediction
    error variance ``Var(theta_hat - theta)`` of the BLUP ``theta_hat`` of
    the true effect ``theta = X beta + Z b`` of each (row, outcome), with
    ``beta`` estimated:

    .. math:: A V A' + \\operatorname{Var}(Zb) - C \\Sigma^{-1} C',
       \\qquad A = X - C \\Sigma^{-1} X_i,

    ``X`` the fixed design at the cell, ``X_i`` the group's observed design
    and ``V = cov(beta_hat)``.  The cross term vanishes because
    ``beta_hat - beta = V X' Sigma^-1 (y - X beta)`` is uncorrelated with
    ``C Sigma^-1 (y - X beta) - Z b`` (Henderson, Biometrics 1975;31:423-447).
    For a univariate model with one level, ``A = (1 - lambda_i) x`` with
    ``lambda_i = tau^2 / (tau^2 + v_i)`` and this is ``lambda_i v_i +
    (1 - lambda_i)^2 x' V x``, the variance behind metafor's
    ``blup.rma.uni`` intervals.

    An outer-level BLUP (``level`` below the number of levels) is R
    mixmeta's: the prediction is recomputed with the marginal covariance of
    the levels up to ``level`` only, ``S + sum_{l <= level} Z Psi_l Z'``,
    as if the inner levels were absent (this is not the conditional mean of
    the outer effects under the full model).

    Parameters
    ----------
    level : int, optional
        Levels included, counted from the outermost (1); the default is all.
    pev : bool
        Also return the prediction error variances.
    """
    model = results.model
    n_levels = model.random.n_levels
    level = n_levels if level is None else int(level)
    if not 0 <= level <= n_levels or (level == 0 and n_levels):
        raise ValueError(
            f"level must be between 1 (outermost) and {n_levels}; got "
            f"{level}")
    k = model.n_outcomes
    n_rows = model.design.endog.shape[0]
    fixed = model.predict(results.params)
    fixed_se = fixed_prediction(results).se.to_numpy()
    random_part = np.zeros((n_rows, k))
    random_var = np.zeros((n_rows, k))
    fixed_pev = np.zeros((n_rows, k))
    cov_beta = np.asarray(results.cov_params())
    state = results._batched_state
    whitened, residuals = state.whitened, state.resid_w
    if level < n_levels:
        psis = state.psis[:level] + tuple(np.zeros_like(p)
                                          for p in state.psis[level:])
        beta = np.asarray(results.params)
        whitened = [whiten(b, marginal_cov(b, psis)) for b in model._batches]
        residuals = [wb.resid(beta) for wb in whitened]
    batches = model._batches
    for batch, wb, rw, (rows, outcomes, valid), value_rows in zip(
            batches, whitened, residuals, batches.cells(k), batches.rows()):
        cross = np.zeros(rows.shape + (batch.size,))
        total = np.zeros(rows.shape)
        for lev in range(level):
            psi = state.psis[lev]
            Zf = _full_random_design(model, lev, rows, outcomes, k)
            part = (Zf @ psi) @ np.swapaxes(batch.Z[lev], 1, 2)
            if lev > 0:
                codes = model.design.levels.codes[lev]
                part = part * (codes[rows][:, :, None]
                               == codes[value_rows][:, None, :])
            cross += part
            total += np.einsum("gpr,rs,gps->gp", Zf, psi, Zf)
        W = wb.inv_chol @ np.swapaxes(cross, 1, 2)             # (g, n, P)
        predicted = np.einsum("gnp,gn->gp", W, rw)
        variance = total - (W ** 2).sum(axis=1)
        random_part[rows[valid], outcomes[valid]] = predicted[valid]
        random_var[rows[valid], outcomes[valid]] = variance[valid]
        if pev:
            A = _cell_fixed_design(model, rows, outcomes, k) - np.swapaxes(
                W, 1, 2) @ (wb.inv_chol @ batch.X)
            fixed_var = np.einsum("gpa,ab,gpb->gp", A, cov_beta, A)
            fixed_pev[rows[valid], outcomes[valid]] = fixed_var[valid]
    random_var = np.maximum(random_var, 0.0)
    out = (fixed + random_part, np.sqrt(fixed_se ** 2 + random_var))
    return out + (fixed_pev + random_var,) if pev else out


def blup_frame(results, level=None, alpha=0.05):
    """
    BLUPs with R mixmeta's standard errors and prediction intervals from
    the prediction error variance (see :func:`blup`), one row per (row,
    outcome).
    """
    values, errors, pev = blup(results, level, pev=True)
    pi_se = np.sqrt(pev)
    df = prediction_df(results, results.model.design.exog)
    q = (stats.norm.isf(alpha / 2) if df is None
         else stats.t.isf(alpha / 2, df))
    columns = {"blup": values, "se": errors, "pi_se": pi_se,
               "pi_lower": values - q * pi_se, "pi_upper": values + q * pi_se}
    frames = {name: results._frame(v) for name, v in columns.items()}
    if values.shape[1] == 1:
        return pd.DataFrame({name: f.iloc[:, 0] for name, f in frames.items()})
    return pd.DataFrame({name: f.stack(future_stack=True)
                         for name, f in frames.items()})


def _cell_fixed_design(model, rows, outcomes, k):
    """``kron(e_outcome, x_row)`` of the fixed design at every position."""
    x = model.design.exog[rows.ravel()]
    full = expand_by_outcome(x, outcomes.ravel(), k)
    return full.reshape(rows.shape + (full.shape[1],))


def _full_random_design(model, lev, rows, outcomes, k):
    """``kron(e_outcome, z_row)`` of level ``lev`` at every position."""
    z = model.design.levels.random_exog[lev][rows.ravel()]
    full = expand_by_outcome(z, outcomes.ravel(), k)
    return full.reshape(rows.shape + (full.shape[1],))
