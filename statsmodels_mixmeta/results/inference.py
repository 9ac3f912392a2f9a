"""
Inference on the fixed effects: the covariance types and the degrees-of-
freedom rules ``fit`` accepts, and hypotheses written as strings on the
names of ``params``.

Two registries make the seam every small-sample method plugs into:

* :data:`COV_TYPES` maps ``cov_type`` to a :class:`CovType`: the covariance
  of ``beta`` (``"nonrobust"`` is ``(X' Sigma^-1 X)^-1`` at the estimated
  Psi, treated as known) and the df rule it implies when ``use_t`` is asked
  for without a ``df_method``.
* :data:`DF_METHODS` maps ``df_method`` to a :class:`DfMethod`: a
  :class:`DfRule` giving the degrees of freedom of each t contrast and the
  F statistic and its degrees of freedom of each joint test (and, for a
  method that adjusts it, the covariance of ``beta``).

Without ``use_t`` the reference distributions are normal and chi2.  With it
they are t and F on the rule's degrees of freedom; the default rule,
``"residual"``, is statsmodels' ``df_resid`` (observed values minus
coefficients).  Both are checked before anything is fitted
(:func:`check_inference`) and built once the fit is known
(:func:`build_inference`).

Constraints written as strings (``"PD:year = AL:year"``) name coefficients
that hold ``:``, brackets or parentheses, which formulaic's constraint parser
reads as operators; :func:`constraint_arrays` turns them into ``(R, q)`` the
same way under either engine.
"""
import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from statsmodels.formula._manager import FormulaManager

NONROBUST_DESCRIPTION = (
    "Standard errors assume that Psi and the within-study covariances are "
    "known: cov(beta) = (X' Sigma^-1 X)^-1.")


class DfRule:
    """
    Degrees of freedom of tests on ``beta``: ``t_df(L)`` for each row of a
    contrast matrix ``L``, and ``f_test(L, q, beta, cov)`` for a joint test.

    The base rule has one number of degrees of freedom for every contrast
    (statsmodels' ``df_resid``) and the Wald F statistic
    ``F = (L b - q)' (L V L')^-1 (L b - q) / J`` on ``(J, df)``.  A rule
    that also adjusts the covariance of ``beta`` (Kenward-Roger) sets
    ``cov``; otherwise it is None.
    """

    #: name shown by ``summary()``
    name = "residual"
    #: covariance of beta that replaces the cov type's, or None
    cov = None

    def __init__(self, df, name=None):
        self.df = float(df)
        if name is not None:
            self.name = name

    def t_df(self, L):
        """Degrees of freedom of ``L @ beta``, one per row of ``L``."""
        return np.full(np.atleast_2d(L).shape[0], self.df)

    def f_test(self, L, q, beta, cov):
        """``(F, df_num, df_denom)`` of ``H0: L beta = q``."""
        L = np.atleast_2d(L)
        diff = L @ beta - q
        j = L.shape[0]
        stat = float(diff @ np.linalg.solve(L @ cov @ L.T, diff)) / j
        return stat, j, self.df


@dataclass(frozen=True)
class CovType:
    """
    A ``cov_type``: ``check(model, cov_kwds)`` validates the options before
    fitting and returns them normalised (a dict); ``build(results,
    cov_kwds)`` returns ``(cov, rule)``: the covariance of ``beta`` and the
    :class:`DfRule` of ``use_t`` without a ``df_method`` (None: the
    ``"residual"`` rule).  ``check_df(model, use_t, df_method)``, if given,
    refuses (ValueError, before fitting) the ``use_t``/``df_method`` that
    do not combine with the cov type.
    """
    description: str
    check: Callable
    build: Callable
    check_df: Optional[Callable] = None


@dataclass(frozen=True)
class DfMethod:
    """
    A ``df_method``: ``check(model, cov_type)`` refuses a model or cov type
    it does not apply to (ValueError, before fitting); ``build(results,
    cov)`` returns its :class:`DfRule` given the cov type's covariance.
    """
    check: Callable
    build: Callable


def _no_kwds(name):
    def check(model, cov_kwds):
        if cov_kwds:
            raise ValueError(f"cov_type={name!r} takes no cov_kwds; got "
                             f"{sorted(cov_kwds)}")
        return {}
    return check


def _model_based(results, cov_kwds):
    return results._state.cov_beta, None


def _residual_check(model, cov_type):
    return None


def _residual_rule(results, cov):
    return DfRule(results.df_resid)


#: cov_type name -> CovType (modules of small-sample methods add theirs)
COV_TYPES = {
    "nonrobust": CovType(NONROBUST_DESCRIPTION, _no_kwds("nonrobust"),
                         _model_based),
}
#: df_method name -> DfMethod
DF_METHODS = {
    "residual": DfMethod(_residual_check, _residual_rule),
}


# the small-sample rules, in modules that build on DfRule above
from . import df_methods as _dfm, kenward_roger as _kr  # noqa: E402

DF_METHODS.update({
    "containment": DfMethod(_dfm._containment_check, _dfm._containment_build),
    "satterthwaite": DfMethod(_dfm._satterthwaite_check,
                              _dfm._satterthwaite_build),
    "kenward-roger": DfMethod(_kr.check, _kr.build),
})


def _valid(names):
    return ", ".join(repr(name) for name in names)


def check_inference(model, cov_type="nonrobust", cov_kwds=None, use_t=False,
                    df_method=None):
    """
    The inference options of ``fit``, checked before anything is fitted:
    a dict ``cov_type``, ``cov_kwds``, ``use_t``, ``df_method`` (names in
    lower case, options normalised), or a ValueError naming the argument
    and what would be valid.
    """
    if not isinstance(cov_type, str) or cov_type.lower() not in COV_TYPES:
        raise ValueError(f"unknown cov_type={cov_type!r}; valid types are "
                         f"{_valid(COV_TYPES)}")
    cov_type = cov_type.lower()
    if cov_kwds is not None and not isinstance(cov_kwds, dict):
        raise ValueError(f"cov_kwds must be a dict or None, not "
                         f"{type(cov_kwds).__name__}")
    cov_kwds = COV_TYPES[cov_type].check(model, dict(cov_kwds or {}))
    if df_method is not None:
        if (not isinstance(df_method, str)
                or df_method.lower() not in DF_METHODS):
            raise ValueError(f"unknown df_method={df_method!r}; valid "
                             f"methods are {_valid(DF_METHODS)}")
        if not use_t:
            raise ValueError(
                f"df_method={df_method!r} sets the degrees of freedom of t "
                "and F reference distributions; pass use_t=True with it")
        df_method = df_method.lower()
    if COV_TYPES[cov_type].check_df is not None:
        COV_TYPES[cov_type].check_df(model, bool(use_t), df_method)
    if df_method is not None:
        DF_METHODS[df_method].check(model, cov_type)
    return dict(cov_type=cov_type, cov_kwds=cov_kwds, use_t=bool(use_t),
                df_method=df_method)


def build_inference(results, cov_type, cov_kwds, use_t, df_method):
    """
    ``(cov, rule)`` of a fit: the covariance of ``beta`` and the
    :class:`DfRule` of its t and F tests (None without ``use_t``).
    """
    cov, default_rule = COV_TYPES[cov_type].build(results, cov_kwds)
    if not use_t:
        return cov, None
    if df_method is None:
        rule = default_rule or DF_METHODS["residual"].build(results, cov)
    else:
        rule = DF_METHODS[df_method].build(results, cov)
    if rule.cov is not None:
        cov = rule.cov
    return cov, rule


def constraint_arrays(results, constraints):
    """
    ``(R, q)`` of constraints given as a string (or list of strings) on the
    names of ``params``; anything else is returned unchanged.

    Each coefficient name (also written in backticks) is replaced by a
    plain identifier before the formula engine parses the constraints, so
    that names such as ``"PD:C(g)[T.b]"`` work with patsy and formulaic.
    """
    if isinstance(constraints, str):
        constraints = [constraints]
    elif not (isinstance(constraints, (list, tuple)) and constraints
              and all(isinstance(c, str) for c in constraints)):
        return constraints
    names = [str(n) for n in results.model.data.cov_names]
    plain = {name: f"coef_{i}_" for i, name in enumerate(names)}
    alternatives = "|".join(re.escape(n)
                            for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"`({alternatives})`|(?<![\w.`])({alternatives})"
                         rf"(?![\w.`])")
    text = ", ".join(pattern.sub(
        lambda m: plain[m.group(1) or m.group(2)], c) for c in constraints)
    parsed = FormulaManager().get_linear_constraints(text,
                                                     list(plain.values()))
    return (np.asarray(parsed.constraint_matrix, dtype=float),
            np.asarray(parsed.constraint_values, dtype=float).ravel())


def _register_small_sample_cov_types():
    """The Knapp-Hartung and cluster-robust cov types (their modules
    import this one, so they register after it is defined)."""
    from . import hksj, robust
    COV_TYPES["hksj"] = hksj.COV_TYPE
    COV_TYPES.update(robust.cov_types())


_register_small_sample_cov_types()
