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

from .structures import make_structure


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


def per_level(value, level_names, what):
    """
    Spread a per-level option over the levels.

    A dict is keyed by grouping factor (levels not named get ``None``); a
    list or tuple with one entry per level, when there are several levels,
    gives them in level order; anything else (a scalar, a string, an
    ndarray) applies to every level.
    """
    n = len(level_names)
    if isinstance(value, dict):
        unknown = [key for key in value if key not in level_names]
        if unknown:
            raise ValueError(
                f"{what} is keyed by {unknown}, which are not grouping "
                f"levels; the levels are {list(level_names)}")
        return [value.get(name) for name in level_names]
    if isinstance(value, (list, tuple)) and n > 1:
        if len(value) != n:
            raise ValueError(
                f"{what} has {len(value)} entries for {n} grouping levels "
                f"{list(level_names)}; give one per level, a dict keyed by "
                "level, or an array for all levels")
        return list(value)
    if isinstance(value, (list, tuple)) and n == 1 and len(value) == 1 \
            and isinstance(value[0], str):
        return list(value)
    return [value] * n


class RandomPart:
    """
    The random part: one Psi structure per grouping level.

    The structure parameters of all levels are concatenated, outer level
    first, into the ``theta`` the optimiser sees.

    Parameters
    ----------
    level_names : list of str or None
        Grouping factor of each level (``None`` for the implicit level of a
        model without ``random``, where every row is its own group).
    structures : list of PsiStructure
    effect_names : list of list of str
        Labels of each level's Psi rows/columns.
    """

    def __init__(self, level_names, structures, effect_names):
        self.level_names = list(level_names)
        self.structures = list(structures)
        self.effect_names = list(effect_names)
        sizes = [s.n_params for s in self.structures]
        edges = np.concatenate(([0], np.cumsum(sizes))).astype(int)
        self.slices = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
        self.n_params = int(edges[-1])

    @property
    def n_levels(self):
        return len(self.structures)

    def split(self, theta):
        theta = np.asarray(theta, dtype=float)
        return [theta[sl] for sl in self.slices]

    def psis(self, theta):
        """Psi of every level."""
        return tuple(s.psi(t) for s, t in zip(self.structures,
                                              self.split(theta)))

    def jacobians(self, theta):
        """``dPsi_l / dtheta_l`` of every level, each ``(T_l, r_l, r_l)``."""
        return [s.jacobian(t) for s, t in zip(self.structures,
                                              self.split(theta))]

    def curvature(self, theta, psi_gradients):
        """
        ``sum_l <dl/dPsi_l, d2Psi_l / dtheta_s dtheta_t>``, block diagonal
        over levels.
        """
        out = np.zeros((self.n_params, self.n_params))
        for s, t, sl, grad in zip(self.structures, self.split(theta),
                                  self.slices, psi_gradients):
            if s._square_scale is not None:     # psi = c theta^2
                out[sl, sl] = 2.0 * s._square_scale * grad[0, 0]
            elif s.n_params:
                out[sl, sl] = np.einsum("rs,turs->tu", grad, s.curvature(t))
        return out

    def start(self, psis):
        """Structure parameters approximating the given Psi's."""
        parts = [s.start(p) for s, p in zip(self.structures, psis)]
        return np.concatenate(parts) if parts else np.empty(0)

    def kinked(self):
        """Parameters with a kink at 0 (see ``PsiStructure.kinked``)."""
        if "_kinked" not in self.__dict__:
            parts = [s.kinked() for s in self.structures]
            self.__dict__["_kinked"] = (np.concatenate(parts) if parts
                                        else np.zeros(0, dtype=bool))
        return self.__dict__["_kinked"]

    def initial_psis(self, init_psi, scale):
        """``init_psi`` of every level (default ``scale * I``); fixed
        structures keep their own Psi."""
        out = []
        for name, s, init in zip(self.level_names, self.structures,
                                 init_psi):
            if s.n_params == 0:
                out.append(s.psi(np.empty(0)))
            elif init is None:
                out.append(scale * np.eye(s.dim))
            else:
                init = np.atleast_2d(np.asarray(init, dtype=float))
                if init.shape != (s.dim, s.dim):
                    where = "" if name is None else f" of level {name!r}"
                    raise ValueError(
                        f"init_psi{where} must be {s.dim}x{s.dim}; got "
                        f"shape {init.shape}")
                out.append(init)
        return out

    def param_names(self):
        names = []
        for level, s, labels in zip(self.level_names, self.structures,
                                    self.effect_names):
            prefix = "" if level is None or self.n_levels == 1 \
                else f"{level}:"
            names += [prefix + n for n in s.param_names(labels)]
        return names


def random_part(level_names, bscov, psi_fix, k, effect_names):
    """One Psi structure per grouping level."""
    bscovs = per_level(bscov, level_names, "bscov")
    fixes = per_level(psi_fix, level_names, "psi_fix")
    structures = []
    for name, b, fix, labels in zip(level_names, bscovs, fixes,
                                    effect_names):
        try:
            structures.append(make_structure(b, len(labels), fix))
        except ValueError as err:
            where = "" if name is None else f" (level {name!r})"
            raise ValueError(f"{err}{where}") from None
    return RandomPart(level_names, structures,
                              effect_names[:len(level_names)])
