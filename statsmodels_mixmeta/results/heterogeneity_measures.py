"""
Heterogeneity beyond Cochran's Q: the multivariate H² and R² of Jackson,
White and Riley (2012) and level-specific I² of multilevel models.

:meth:`MixMetaResults.heterogeneity` collects them, with the Q test of
:mod:`statsmodels_mixmeta.results.heterogeneity`, in one long DataFrame
indexed by ``(measure, scope)`` with one column ``value``:

========================  ==================  ==================================
measure                   scope               value
========================  ==================  ==================================
``Q``, ``df``, ``pvalue`` overall, outcomes   Cochran's Q test (``q_test()``)
``H2``                    overall, outcomes   :math:`H^2 = Q / \\mathrm{df}`
``I2_H``                  overall, outcomes   :math:`(H^2 - 1) / H^2`, at least 0
``R2``                    overall, params     generalised variance ratio
``I2_R``                  overall, params     :math:`(R^2 - 1) / R^2`, at least 0
``s2_typical``            outcomes            "typical" within-study variance
``I2[<level>]``           outcomes            share of variance at a level
``I2_total``              outcomes            the sum of the levels' shares
========================  ==================  ==================================

H² and R² (Jackson, White and Riley 2012)
-----------------------------------------
With ``df`` the degrees of freedom of the overall Q (observed values minus
coefficients), :math:`H^2 = Q / \\mathrm{df}` and
:math:`I^2_H = \\max\\{0, (H^2 - 1)/H^2\\}`, which is the Q-based I² of
Higgins and Thompson (``res.i2``) written through H²; it is given for the
per-outcome Q too.  With :math:`V_R` the covariance of :math:`\\hat\\beta`
of the fit (random effects at the estimated Psi) and :math:`V_F` that of the
fixed-effects GLS fit of the same design (Psi = 0 at every level, the fit
behind Q), both :math:`P \\times P` for :math:`P` coefficients,

.. math:: R^2 = \\left(\\frac{|V_R|}{|V_F|}\\right)^{1/P}, \\qquad
          R^2_j = \\frac{(V_R)_{jj}}{(V_F)_{jj}}, \\qquad
          I^2_R = \\max\\left\\{0, \\frac{R^2 - 1}{R^2}\\right\\},

the ratio of generalised variances (the geometric mean of the eigenvalues
of :math:`V_F^{-1} V_R`) and, per coefficient, of variances.  A positive
semi-definite Psi makes :math:`V_R \\succeq V_F`, so :math:`R^2 \\ge 1`;
the truncation at 0, as the paper truncates I², only absorbs rounding.
For a fixed-effects fit :math:`R^2 = 1`.

Level-specific I² (multilevel models)
-------------------------------------
Higgins and Thompson's "typical" within-study variance, generalised to
meta-regression as metafor's FAQ does for ``rma.mv`` (Nakagawa and Santos
2012; Cheung 2014): for outcome :math:`j`, with the :math:`n_j` observed
values :math:`y_{vj}`, their within-study variances :math:`v_v = S_{v,jj}`,
the weights :math:`W = \\mathrm{diag}(1/v_v)` and the :math:`n_j \\times p`
predictors :math:`X` of that outcome,

.. math:: s^2_j = \\frac{n_j - p}{\\mathrm{tr}(P)}, \\qquad
          P = W - W X (X' W X)^{-1} X' W,

and with :math:`\\sigma^2_{l,j}` the variance of outcome :math:`j` at level
:math:`l` (the diagonal of :math:`\\Psi_l`)

.. math:: I^2_{l,j} = \\frac{\\sigma^2_{l,j}}
                           {\\sum_{l'} \\sigma^2_{l',j} + s^2_j}.

For an intercept only, :math:`\\mathrm{tr}(P) = \\sum w - \\sum w^2 / \\sum w`
and :math:`s^2 = (n - 1) \\sum w / ((\\sum w)^2 - \\sum w^2)`, Higgins and
Thompson's typical variance; with one level this I² is
:math:`\\tau^2 / (\\tau^2 + s^2)`, which equals the Q-based I² when
:math:`\\tau^2` is DerSimonian and Laird's (``method="mm"``) and differs
from it for the (RE)ML estimate.  Covariances between outcomes (in S and Psi) play no
part: each outcome is treated on its own.

Level-specific I² needs random intercepts only (``random="~ 1 | g"``) and
within-study covariances per row (``S``).  A level with random slopes has no
single variance per outcome (it varies with the covariate), and ``addS``
gives no variance per row; for such models :func:`level_i2` refuses
(ValueError) and ``heterogeneity()`` leaves those rows out.

References
----------
Jackson D, White IR, Riley RD (2012). Quantifying the impact of between-study
heterogeneity in multivariate meta-analyses. *Statistics in Medicine*
31(29), 3805-3820.

Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine* 21(11), 1539-1558.

Nakagawa S, Santos ESA (2012). Methodological issues and advances in
biological meta-analysis. *Evolutionary Ecology* 26, 1253-1274.

Cheung MW-L (2014). Modeling dependent effect sizes with three-level
meta-analyses: a structural equation modeling approach. *Psychological
Methods* 19(2), 211-229.
"""
import numpy as np
import pandas as pd

from ..kernels.likelihood import ProfiledLikelihood

#: Name of the level of a model without ``random=`` (one group per row).
BETWEEN = "between"

__all__ = ["jwr_measures", "fixed_effects_cov", "typical_variance",
           "level_i2", "heterogeneity_frame"]


def _share(ratio_minus_one, ratio):
    """``max(0, (r - 1) / r)``, NaN where ``r`` is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = ratio_minus_one / ratio
    return np.where(np.isnan(share), np.nan, np.maximum(share, 0.0))


def jwr_measures(q_statistic, q_df, cov_random, cov_fixed):
    """
    Jackson, White and Riley's H², R² and their I² (see the module
    docstring for the formulas).

    Parameters
    ----------
    q_statistic, q_df : array_like
        Cochran's Q statistics and degrees of freedom (overall first).
    cov_random, cov_fixed : array_like, (P, P)
        Covariance of the coefficients under the random-effects fit
        (:math:`V_R`) and the fixed-effects fit (:math:`V_F`).

    Returns
    -------
    dict
        ``H2``, ``I2_H`` (one per Q entry), ``R2``, ``I2_R`` (the overall
        value first, then one per coefficient).
    """
    q = np.asarray(q_statistic, dtype=float)
    df = np.asarray(q_df, dtype=float)
    V_R = np.asarray(cov_random, dtype=float)
    V_F = np.asarray(cov_fixed, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h2 = q / df
    # |V_R| / |V_F| = |V_F^-1 V_R|, without forming either determinant
    sign, logdet = np.linalg.slogdet(np.linalg.solve(V_F, V_R))
    overall = np.exp(logdet / V_R.shape[0]) if sign > 0 else np.nan
    r2 = np.concatenate([[overall], np.diag(V_R) / np.diag(V_F)])
    return {"H2": h2, "I2_H": _share(h2 - 1.0, h2),
            "R2": r2, "I2_R": _share(r2 - 1.0, r2)}


def fixed_effects_cov(model):
    """
    :math:`V_F`: the covariance of :math:`\\hat\\beta` of the fixed-effects
    GLS fit (Psi = 0 at every level) of ``model``'s design, the fit behind
    Cochran's Q; known covariances per row (``S``) or per group (``addS``).
    """
    lik = ProfiledLikelihood(model._batches, reml=False,
                             basis=model.design.basis)
    return lik.evaluate(()).cov_beta


def typical_variance(variances, X):
    """
    The "typical" within-study variance :math:`s^2 = (n - p) / \\mathrm{tr}(P)`,
    :math:`P = W - W X (X'WX)^{-1} X'W`, :math:`W = \\mathrm{diag}(1/v)`.

    ``tr(P) = sum_v w_v (1 - h_v)`` with ``h`` the leverages of the
    weighted design :math:`W^{1/2} X` (from its QR factorisation).

    Parameters
    ----------
    variances : array_like, (n,)
        Within-study variances, positive.
    X : array_like, (n, p)
        Predictors, of full column rank.
    """
    v = np.asarray(variances, dtype=float)
    X = np.asarray(X, dtype=float).reshape(v.size, -1)
    w = 1.0 / v
    q = np.linalg.qr(np.sqrt(w)[:, None] * X)[0]
    leverage = np.einsum("np,np->n", q, q)
    return (v.size - X.shape[1]) / np.dot(w, 1.0 - leverage)


def _check_level_i2(model):
    """ValueError when level-specific I² is not defined for ``model``."""
    random = model.random
    if random.n_levels == 0:
        raise ValueError("level-specific I2 needs random effects; this is a "
                         "fixed-effects model (Psi = 0)")
    if model.design.group_cov is not None:
        raise ValueError(
            "level-specific I2 needs within-study variances per row (S=); "
            "with addS= the known covariances are per group")
    k = model.n_outcomes
    long = model.design.long
    for name, Z in zip(random.level_names, long.Z[:random.n_levels]):
        intercept = (Z.shape[1] == k
                     and np.all(Z[np.arange(Z.shape[0]), long.outcome] == 1))
        if not intercept:
            raise ValueError(
                f"level-specific I2 needs random intercepts only; level "
                f"{name!r} has random slopes, whose variance changes with "
                f"the covariate (use random='~ 1 | {name}')")


def level_i2(results):
    """
    Level-specific I² of every outcome (module docstring for the formula).

    Parameters
    ----------
    results : MixMetaResults
        A fit with random intercepts at every level and ``S`` per row.

    Returns
    -------
    DataFrame
        Index the outcomes; columns ``s2_typical``, ``I2[<level>]`` per
        level (outer first; ``I2[between]`` for a model without
        ``random=``), ``I2_total``; shares as fractions.

    Raises
    ------
    ValueError
        For a fixed-effects model, ``addS``, or random slopes.
    """
    model = results.model
    _check_level_i2(model)
    design, random = model.design, model.random
    long = design.long
    p = design.n_terms
    names = [BETWEEN if name is None else str(name)
             for name in random.level_names]
    sigma2 = np.array([np.diag(np.asarray(psi, dtype=float))
                       for psi in results.psis])          # (levels, k)
    columns = {"s2_typical": [], **{f"I2[{n}]": [] for n in names},
               "I2_total": []}
    for j in range(model.n_outcomes):
        values = long.outcome == j
        X = long.X[values][:, j * p:(j + 1) * p]
        variances = design.within_cov[long.row[values], j, j]
        s2 = typical_variance(variances, X)
        total = sigma2[:, j].sum() + s2
        columns["s2_typical"].append(s2)
        for name, var in zip(names, sigma2[:, j]):
            columns[f"I2[{name}]"].append(var / total)
        columns["I2_total"].append(sigma2[:, j].sum() / total)
    return pd.DataFrame(columns, index=pd.Index(design.outcome_names,
                                                name="outcome"))


def heterogeneity_frame(results):
    """
    Every heterogeneity measure of ``results`` in one DataFrame indexed by
    ``(measure, scope)`` with a column ``value`` (the module docstring lists
    the rows); level-specific rows only where :func:`level_i2` applies.
    """
    model = results.model
    q = results.q_test()
    cov_fixed = fixed_effects_cov(model)
    jwr = jwr_measures(q.statistic, q.df, results.normalized_cov_params,
                       cov_fixed)
    names = list(q.names)
    params = ["overall"] + list(model.design.param_names)
    rows = [("Q", names, q.statistic), ("df", names, q.df),
            ("pvalue", names, q.pvalue), ("H2", names, jwr["H2"]),
            ("I2_H", names, jwr["I2_H"]), ("R2", params, jwr["R2"]),
            ("I2_R", params, jwr["I2_R"])]
    try:
        levels = level_i2(results)
    except ValueError:
        levels = None
    if levels is not None:
        rows += [(column, list(levels.index), levels[column].to_numpy())
                 for column in levels.columns]
    index = pd.MultiIndex.from_tuples(
        [(measure, scope) for measure, scopes, _ in rows for scope in scopes],
        names=["measure", "scope"])
    values = np.concatenate([np.asarray(v, dtype=float) for *_, v in rows])
    return pd.DataFrame({"value": values}, index=index)
