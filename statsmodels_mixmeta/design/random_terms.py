"""
Grouping levels of the random part: parsing ``random=`` and laying out each
level's random-effects design.

A model has ``L`` nested levels, outer to inner.  The outer level defines the
independent groups; a level-``l`` group is identified by the labels of all
levels up to ``l`` (so the same inner label under two outer groups names two
groups, as in R's mixmeta).  For level ``l`` with random predictors
``z`` (``q_l`` columns) and ``k`` outcomes, the design row of outcome ``j`` of
a row is ``kron(e_j, z)``, so ``Psi_l`` is ``k q_l x k q_l``, ordered
outcome-major.

``random`` is written as in R's mixmeta:

* ``"~ z1 + z2 | g"``: one level;
* ``"~ 1 | g1/g2/g3"``: nested levels with the same predictors;
* ``["~ 1 | district", "~ 1 | study"]``: one formula per level;
* ``{"district": "~ 1", "study": "~ 1"}``: predictors keyed by level.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RandomTerm:
    """One level of ``random``: its grouping variable and its predictors."""

    group: str
    formula: str       # one-sided, e.g. "~ 1" or "~ 0 + C(time)"


def parse_random(random):
    """
    Parse ``random`` into :class:`RandomTerm` objects, outer to inner.

    Raises
    ------
    ValueError
        For a formula without a ``| group`` part, an empty grouping, or a
        level named twice.
    """
    if isinstance(random, str):
        terms = _parse_one(random)
    elif isinstance(random, dict):
        terms = [RandomTerm(str(g), _one_sided(f, g))
                 for g, f in random.items()]
    elif isinstance(random, (list, tuple)):
        terms = [t for item in random for t in _parse_one(item)]
    else:
        raise ValueError(
            "random must be a formula '~ z | g', a list of such formulas or "
            f"a dict {{group: '~ z'}}; got {type(random).__name__}")
    names = [t.group for t in terms]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"random names grouping level(s) more than once: {repeated}")
    return terms


def _parse_one(text):
    if not isinstance(text, str) or "|" not in text:
        raise ValueError(
            f"a random formula needs a grouping part, '~ z | g'; got {text!r}")
    lhs, groups = text.rsplit("|", 1)
    names = [g.strip() for g in groups.split("/")]
    if not all(names):
        raise ValueError(f"empty grouping variable in random formula {text!r}")
    formula = _one_sided(lhs, names[0])
    return [RandomTerm(name, formula) for name in names]


def _one_sided(text, group):
    text = str(text).strip()
    if not text.startswith("~"):
        text = "~ " + text
    if text.strip() == "~":
        raise ValueError(f"random predictors of level {group!r} are empty")
    return text


def level_codes(groups):
    """
    Integer codes of the groups of every level, nested within outer levels.

    Parameters
    ----------
    groups : ndarray, (n, L)
        Labels, outer to inner.

    Returns
    -------
    codes : list of ndarray
        ``codes[l]`` identifies the combination of labels of levels
        ``0 .. l``; ``codes[0]`` is ``0 .. m - 1`` in sorted label order.
    outer_labels : ndarray
        The sorted labels of the outer groups.
    """
    codes = []
    outer_labels, outer = np.unique(groups[:, 0], return_inverse=True)
    codes.append(outer)
    for level in range(1, groups.shape[1]):
        combined = pd.MultiIndex.from_arrays(
            [codes[-1], groups[:, level]]).factorize()[0]
        codes.append(combined.astype(np.intp))
    return codes, outer_labels


def random_effect_names(outcome_names, term_names):
    """Labels of the rows/columns of one level's Psi."""
    if len(outcome_names) == 1:
        return [str(t) for t in term_names]
    if len(term_names) == 1:
        return [str(o) for o in outcome_names]
    return [f"{o}:{t}" for o in outcome_names for t in term_names]
