"""
Inference on the fixed effects: the covariance types ``fit`` accepts, and
hypotheses written as strings on the names of ``params``.

``cov_type="nonrobust"`` is ``cov(beta) = (X' Sigma^-1 X)^-1`` at the
estimated Psi, treated as known; the reference distributions are normal and
chi2, or with ``use_t`` t and F on ``df_resid`` degrees of freedom
(statsmodels' machinery does the arithmetic).

Constraints written as strings (``"PD:year = AL:year"``) name coefficients
that hold ``:``, brackets or parentheses, which formulaic's constraint parser
reads as operators; :func:`constraint_arrays` turns them into ``(R, q)`` the
same way under either engine.
"""
import re

import numpy as np
from statsmodels.formula._manager import FormulaManager

#: The covariance types of the fixed effects (the inference issue adds more).
COV_TYPES = ("nonrobust",)
NONROBUST_DESCRIPTION = (
    "Standard errors assume that Psi and the within-study covariances are "
    "known: cov(beta) = (X' Sigma^-1 X)^-1.")


def check_cov_type(cov_type, cov_kwds):
    """``(cov_type, cov_kwds)`` as stored on the results, or a ValueError."""
    if not isinstance(cov_type, str) or cov_type.lower() not in COV_TYPES:
        valid = ", ".join(repr(name) for name in COV_TYPES)
        raise ValueError(f"unknown cov_type={cov_type!r}; valid types are "
                         f"{valid}")
    if cov_kwds:
        raise ValueError(f"cov_type={cov_type.lower()!r} takes no cov_kwds; "
                         f"got {sorted(cov_kwds)}")
    return cov_type.lower(), {"description": NONROBUST_DESCRIPTION}


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
