"""
The Knapp-Hartung / Hartung-Knapp-Sidik-Jonkman covariance of univariate
models (``cov_type="hksj"``).

With weights ``w_i = 1 / (v_i + tau^2)`` (the fitted marginal variances),
``M = (X' W X)^{-1}`` and GLS residuals ``e_i = y_i - x_i' beta``,

.. math::

    s^2 = \\frac{1}{n - p} \\sum_i w_i e_i^2, \\qquad
    \\operatorname{cov}(\\hat\\beta) = s^2 M,

and t and F tests use ``n - p`` denominator degrees of freedom (Hartung &
Knapp 2001; Sidik & Jonkman 2002; metafor's ``test="knha"``).  Its
variance can be smaller than the model-based one (``s^2 < 1``), which
happens most with little heterogeneity; ``cov_kwds={"truncate": True}``
uses ``max(1, s^2)`` (Knapp & Hartung 2003's "ad hoc" correction; metafor's
``test="adhoc"``), so that intervals are never narrower than the t
intervals of the model-based variance.

The default is ``truncate=False``: the untruncated method is the one whose
coverage the literature studies and whose test is exact in the
fixed-effects model with known variances up to scale, it is metafor's
``test="knha"`` and statsmodels' ``combine_effects`` "hksj"; the truncated
form is conservative by construction.

``use_t=True`` is required (the method is a t method) and ``df_method``
can only be None or "residual", both ``n - p``.  Models with several
outcomes, several grouping levels or several values per group are refused:
the weighted mean square is that of independent scalar estimates.

References
----------
Hartung, J. & Knapp, G. (2001). A refined method for the meta-analysis of
controlled clinical trials with binary outcome. Statistics in Medicine 20,
3875-3889.

Sidik, K. & Jonkman, J. N. (2002). A simple confidence interval for
meta-analysis. Statistics in Medicine 21, 3153-3159.

Knapp, G. & Hartung, J. (2003). Improved tests for a random effects
meta-regression with a single covariate. Statistics in Medicine 22,
2693-2710.
"""
import numpy as np

from .inference import CovType, DfRule

DESCRIPTION = ("Knapp-Hartung (HKSJ): (X' Sigma^-1 X)^-1 scaled by the "
               "weighted residual mean square s^2, t on n - p df")


def check(model, cov_kwds):
    """Options ``{"truncate": bool}``; univariate models only."""
    unknown = sorted(set(cov_kwds) - {"truncate"})
    if unknown:
        raise ValueError(f"cov_type='hksj' takes cov_kwds ['truncate']; got "
                         f"unknown {unknown}")
    truncate = cov_kwds.get("truncate", False)
    if not isinstance(truncate, (bool, np.bool_)):
        raise ValueError(f"cov_kwds['truncate'] must be True or False, not "
                         f"{truncate!r}")
    design = model.design
    problems = []
    if model.n_outcomes > 1:
        problems.append(f"{model.n_outcomes} outcomes")
    if model.random.n_levels > 1:
        problems.append(f"{model.random.n_levels} grouping levels")
    if not problems and design.long.n_values != design.n_groups:
        problems.append("several values in a group")
    if problems:
        raise ValueError(
            "cov_type='hksj' (Knapp-Hartung) applies to univariate models "
            "with one value per independent study; this model has "
            f"{' and '.join(problems)}: use cov_type='cr2' (cluster-robust, "
            "with Satterthwaite df) instead")
    if model.nobs <= model.k_fe:
        raise ValueError(
            f"cov_type='hksj' needs more studies ({int(model.nobs)}) than "
            f"coefficients ({model.k_fe}): its df are n - p")
    return {"truncate": bool(truncate)}


def check_df(model, use_t, df_method):
    if not use_t:
        raise ValueError("cov_type='hksj' is a t method (t on n - p df): "
                         "pass use_t=True with it")
    if df_method not in (None, "residual"):
        raise ValueError(
            f"cov_type='hksj' has its own degrees of freedom, n - p; "
            f"df_method={df_method!r} does not combine with it (valid: "
            "None or 'residual')")


def scale(results):
    """``s^2 = sum_i w_i e_i^2 / (n - p)``, the weighted residual mean
    square at the fitted ``tau^2``."""
    state = results._batched_state
    quad = sum(float(np.sum(r * r)) for r in state.resid_w)
    return quad / (results.nobs - results.k_fe)


def build(results, cov_kwds):
    s2 = scale(results)
    if cov_kwds.get("truncate", False):
        s2 = max(1.0, s2)
    rule = DfRule(results.nobs - results.k_fe, name="knapp-hartung")
    return s2 * np.asarray(results._state.cov_beta), rule


COV_TYPE = CovType(DESCRIPTION, check, build, check_df)
