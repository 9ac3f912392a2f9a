"""
Likelihood-ratio comparisons of fitted models: two nested fits, each fixed
term dropped in turn, and a table over several fits.

For a full model with log-likelihood :math:`\\ell_1` and :math:`d_1`
parameters (fixed effects plus Psi parameters) and a restricted model nested
in it with :math:`\\ell_0`, :math:`d_0`,

.. math::

    LR = 2 (\\ell_1 - \\ell_0) \\sim \\chi^2_{d_1 - d_0}

asymptotically under the restricted model (Wilks 1938).

Which likelihoods compare:

* ML (and "fixed", whose log-likelihood is the ML one at Psi = 0) fits
  compare whenever one model is nested in the other: the same outcomes of
  the same rows with the same within-study covariances, fewer parameters.
* REML fits compare only when the fixed-effects part is identical (same
  columns of ``exog``, same names): the restricted likelihood is that of
  error contrasts orthogonal to ``X``, so changing ``X`` changes the data
  the likelihood is of (Verbeke & Molenberghs 2000, sec. 6.2).  Comparing
  two fixed parts needs ML fits; :func:`drop1` refits by ML, as lme4 does.
* "mm" and "vc" maximise no likelihood: nothing to compare.

Boundary: when the restricted model sets a variance of Psi to 0 (a
random-effects model against the fixed-effects one, or a diagonal entry
dropped), the null value lies on the boundary of the parameter space and
the :math:`\\chi^2_{d_1 - d_0}` reference is conservative: the exact
limiting law is a mixture of chi-squares with fewer degrees of freedom
(Self & Liang 1987; for one variance :math:`\\tfrac12\\chi^2_0 +
\\tfrac12\\chi^2_1`, i.e. half the p-value).  The p-values here are the
plain chi-square ones, as statsmodels' and R's ``anova``; halve them
yourself for a single variance if that is the test you mean.

References
----------
Wilks, S. S. (1938). Ann. Math. Statist. 9, 60-62.
Self, S. G. and Liang, K.-Y. (1987). JASA 82, 605-610.
Verbeke, G. and Molenberghs, G. (2000). Linear Mixed Models for
Longitudinal Data. Springer.
"""
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.formula._manager import FormulaManager

from .terms import term_columns, coefficients_of

LIKELIHOOD_METHODS = ("ml", "reml", "fixed")


def _kind(results):
    """The likelihood a fit maximised: "ml" (also for "fixed") or
    "reml"."""
    method = results.method
    if method not in LIKELIHOOD_METHODS:
        raise ValueError(
            f"a fit by method={method!r} maximises no likelihood (as R's "
            "mixmeta, its llf is NaN): likelihood-ratio tests need fits by "
            "'ml' (or 'reml' with the same fixed effects)")
    return "reml" if method == "reml" else "ml"


def _same_array(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, tuple) or isinstance(b, tuple):
        # addS: one matrix per group, of different sizes
        return (isinstance(a, tuple) and isinstance(b, tuple)
                and len(a) == len(b)
                and all(_same_array(x, y) for x, y in zip(a, b)))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def comparability(full, restricted):
    """
    Why ``restricted`` cannot be tested against ``full`` by likelihood
    ratio; None when it can.
    """
    kind_full, kind_restricted = _kind(full), _kind(restricted)
    if kind_full != kind_restricted:
        return (f"one fit is by REML and the other by ML "
                f"(methods {full.method!r} and {restricted.method!r}): "
                "their likelihoods are not comparable; fit both by 'ml'")
    d_full, d_restricted = full.model.design, restricted.model.design
    if full.nobs != restricted.nobs or not _same_array(d_full.endog,
                                                       d_restricted.endog):
        return ("the fits are not of the same data (their outcomes or "
                f"numbers of observed values differ: {full.nobs:g} and "
                f"{restricted.nobs:g}): models fitted to different data are "
                "not nested")
    if not (_same_array(d_full.within_cov, d_restricted.within_cov)
            and _same_array(d_full.group_cov, d_restricted.group_cov)):
        return ("the fits have different within-study covariances S: "
                "models of different data are not nested")
    if kind_full == "reml" and not (
            _same_array(d_full.exog, d_restricted.exog)
            and list(d_full.param_names) == list(d_restricted.param_names)):
        return ("REML fits with different fixed-effects parts: the REML "
                "likelihood is that of error contrasts of the fixed-effects "
                "design, so it changes with the design; refit both models "
                "with method='ml' to compare fixed effects")
    df_diff = full.df_loglike - restricted.df_loglike
    if df_diff <= 0:
        return (f"the restricted model has {restricted.df_loglike} "
                f"parameters, not fewer than the full model's "
                f"{full.df_loglike}: it is not nested in it (pass the larger "
                "model as the full one)")
    return None


def _tolerance(llf):
    # a maximum is found to about this precision; below it a negative LR
    # is rounding, not a worse fit
    return 1e-6 * max(1.0, abs(llf))


def lr_test(full, restricted):
    """
    Likelihood-ratio test of ``restricted`` nested in ``full``.

    Returns
    -------
    lr_stat : float
        ``2 (llf_full - llf_restricted)``, at least 0.
    p_value : float
        Upper tail of chi-square with ``df_diff`` degrees of freedom (see
        the module docstring on variances tested at 0: conservative).
    df_diff : int
        ``full.df_loglike - restricted.df_loglike``.

    Raises
    ------
    ValueError
        When the fits are not comparable (see :func:`comparability`), or
        when the restricted model's log-likelihood exceeds the full
        model's: the full fit has then not reached its maximum (refit it,
        e.g. from the restricted estimate), and no p-value is meaningful.
    """
    reason = comparability(full, restricted)
    if reason is not None:
        raise ValueError(f"compare_lr_test: {reason}")
    df_diff = int(full.df_loglike - restricted.df_loglike)
    gap = full.llf - restricted.llf
    if gap < -_tolerance(full.llf):
        raise ValueError(
            f"compare_lr_test: the restricted model's log-likelihood "
            f"{restricted.llf:.8g} is above the full model's {full.llf:.8g}; "
            "a model nested in another cannot fit better, so the full fit "
            "has not reached its maximum (an optimisation problem, not a "
            "test result): refit the full model, e.g. from other start "
            "values")
    lr = 2.0 * max(gap, 0.0)
    return lr, float(stats.chi2.sf(lr, df_diff)), df_diff


# ------------------------------------------------------------------ drop1
def droppable_terms(model):
    """
    ``(name, columns)`` of the terms :func:`drop1` drops: every term but the
    intercept that no higher-order term of the model contains (R's
    ``drop.scope``: marginality).  For an array model, every column but
    the constant.
    """
    terms = term_columns(model)
    formula = model.formula_terms
    if formula is None:
        const = model.data.const_idx
        const = set() if const is None else set(np.atleast_1d(const).tolist())
        return [(n, c) for n, c in terms if not set(c.tolist()) & const]
    factors = _term_factors(model, formula)
    out = []
    for name, cols in terms:
        own = factors[name]
        if not own:         # the intercept
            continue
        if any(own < other for other in factors.values()):
            continue        # marginal to a higher-order term in the model
        out.append((name, cols))
    return out


def _term_factors(model, formula):
    """``{name: frozenset of factor names}`` of the terms with columns,
    named as :func:`~.terms.term_columns` names them."""
    mgr = FormulaManager(formula.engine)
    spec = formula.model_spec
    out = {}
    for term in spec.terms:
        if np.arange(model.design.n_terms)[mgr.get_slice(spec, term)].size:
            name = str(mgr.get_term_name(term))
            # formulaic's intercept has the factor "1", patsy's none
            out["Intercept" if name == "1" else name] = frozenset(
                str(f) for f in getattr(term, "factors", ())) - {"1"}
    return out


def _refit(results, design, method):
    model = results.model
    new = type(model).from_design(
        design, method=method, bscov=model.bscov, psi_fix=model.psi_fix,
        init_psi=model.init_psi, vc_adjust=model.vc_adjust)
    return new.fit()


def drop1(results):
    """
    Drop each fixed term in turn and compare by likelihood ratio, as R's
    ``drop1(fit, test="Chisq")``.

    See :meth:`MixMetaResults.drop1 <.core.MixMetaResults.drop1>`.
    """
    kind = _kind(results)
    model = results.model
    terms = droppable_terms(model)
    if not terms:
        raise ValueError("drop1: the model has no fixed term to drop (only "
                         "an intercept, or terms marginal to others)")
    full = results
    if kind == "reml":
        full = _refit(results, model.design, "ml")
    method = "ml" if kind == "reml" else model.method
    k, p = model.n_outcomes, model.design.n_terms
    rows = [[np.nan, full.aic, np.nan, np.nan]]
    for name, cols in terms:
        if cols.size == p:
            raise ValueError(
                f"drop1: dropping {name!r} leaves no fixed effects, and a "
                "model without fixed effects is not fitted here; compare "
                "this model with others by smm.compare instead")
    for name, cols in terms:
        smaller = _refit(results, model.design.drop_columns(cols), method)
        try:
            lr, pvalue, df = lr_test(full, smaller)
        except ValueError as err:
            warnings.warn(f"drop1, term {name!r}: {err}", RuntimeWarning,
                          stacklevel=3)
            lr, pvalue = np.nan, np.nan
            df = coefficients_of(cols, k, p).size
        rows.append([df, smaller.aic, lr, pvalue])
    table = pd.DataFrame(rows, index=["<none>"] + [n for n, _ in terms],
                         columns=["df", "aic", "lr", "pvalue"])
    table.attrs["method"] = method
    return table


# ---------------------------------------------------------------- compare
def compare(results_list, names=None):
    """
    A table of several fits: log-likelihood, parameters, AIC, BIC, and the
    likelihood-ratio test of each model against the one before it.

    Parameters
    ----------
    results_list : sequence of MixMetaResults
        Fits of the same data, usually from the smallest to the largest
        model (as R's ``anova(m1, m2, ...)``).  Each consecutive pair is
        tested with the model with more parameters as the full one.
    names : sequence of str, optional
        Row labels; default ``"model 1"``, ``"model 2"``, ...

    Returns
    -------
    DataFrame
        Columns ``method``, ``llf``, ``df`` (parameters, ``df_loglike``),
        ``aic``, ``bic``, then for rows after the first ``lr``,
        ``df_diff``, ``pvalue`` of the test against the row before, and
        ``note``: why the test is NaN (fits not nested or not comparable,
        see :func:`comparability`; a restricted model that fits better), or
        that the restricted model has a grouping level fewer (a variance
        tested at 0, where the chi-square p-value is conservative).
        The chi-square p-value is conservative for a variance tested at 0
        (see the module docstring).
    """
    results_list = [getattr(r, "_results", r) for r in results_list]
    if not results_list:
        raise ValueError("compare needs at least one fitted model")
    if names is None:
        names = [f"model {i + 1}" for i in range(len(results_list))]
    names = [str(n) for n in names]
    if len(names) != len(results_list):
        raise ValueError(f"compare: {len(names)} names for "
                         f"{len(results_list)} models")
    rows = []
    for i, res in enumerate(results_list):
        row = {"method": res.method, "llf": res.llf,
               "df": int(res.df_loglike), "aic": res.aic, "bic": res.bic,
               "lr": np.nan, "df_diff": np.nan, "pvalue": np.nan,
               "note": ""}
        if i > 0:
            row.update(_pair(results_list[i - 1], res))
        rows.append(row)
    return pd.DataFrame(rows, index=names)


def _pair(before, this):
    """The LR columns of ``this`` against ``before``."""
    full, restricted = ((this, before)
                        if this.df_loglike >= before.df_loglike
                        else (before, this))
    try:
        lr, pvalue, df = lr_test(full, restricted)
    except (ValueError, AttributeError) as err:
        # AttributeError: a fit whose data remove_data() removed, so that
        # the nesting cannot be checked
        return {"note": str(err).removeprefix("compare_lr_test: ")}
    note = ""
    if (restricted.model.random.n_levels
            < full.model.random.n_levels):
        note = ("a variance tested at 0 (a grouping level fewer): the "
                "chi2 p-value is conservative")
    return {"lr": lr, "df_diff": df, "pvalue": pvalue, "note": note}
