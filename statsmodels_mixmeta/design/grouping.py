"""
The grouping levels of a design, as data: which rows share a group at every
level, and each level's random-effects predictors.

A model has ``L`` nested levels, outer to inner (one implicit level, every
row its own group, when there is no ``random=``).  For every level the
design keeps an integer code per row (:func:`~.random_terms.level_codes`:
outer groups ``0 .. m - 1`` in sorted label order, inner groups numbered in
order of appearance within their outer groups), the labels that produced
the codes, and the level's random predictors ``z`` ``(n, q_l)``, from which
the rows of ``Z`` are ``kron(e_outcome, z)``.  :func:`subset_levels` keeps
the rows of some outer groups and renumbers the codes exactly as building
the levels from those rows would.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .random_terms import level_codes, random_effect_names


@dataclass(frozen=True, eq=False)
class Levels:
    """
    Grouping codes, labels and random predictors of every level.

    Attributes
    ----------
    codes : tuple of ndarray
        Per level, the integer code ``(n,)`` of each row's group; level
        ``l`` codes identify the labels of levels ``0 .. l`` together.
    group_labels : ndarray, (n, L)
        The labels of each row, outer level first.
    outer_labels : ndarray, (m,)
        Labels of the outer groups, in code order (sorted).
    names : tuple
        Grouping factor of each level; ``(None,)`` for the implicit level
        of a model without ``random=``.
    random_exog : tuple of ndarray
        Per level, the random predictors ``(n, q_l)`` of each row.
    random_names : tuple of tuple
        Per level, the names of those predictors.
    effect_names : tuple of tuple
        Per level, the labels of the rows and columns of ``Psi_l``.
    """

    codes: tuple
    group_labels: np.ndarray
    outer_labels: np.ndarray
    names: tuple
    random_exog: tuple
    random_names: tuple
    effect_names: tuple

    @property
    def n_levels(self):
        return len(self.names)

    @property
    def n_groups(self):
        """Number of outer (independent) groups."""
        return len(self.outer_labels)

    @property
    def implicit(self):
        """Every row is its own group (no ``random=``, ``groups``)."""
        return self.names == (None,)


def implicit_levels(row_labels, outcome_names):
    """One level with every row its own group and one effect per outcome."""
    row_labels = np.asarray(row_labels)
    n = row_labels.shape[0]
    return Levels(
        codes=(np.arange(n),), group_labels=row_labels[:, None],
        outer_labels=row_labels, names=(None,),
        random_exog=(np.ones((n, 1)),), random_names=(("Intercept",),),
        effect_names=(tuple(outcome_names),))


def grouped_levels(group_labels, level_names, random_exog, random_names,
                   outcome_names):
    """
    Levels from grouping labels ``(n, L)`` (outer first) and each level's
    random predictors ``(n, q_l)`` with their names.
    """
    codes, outer_labels = level_codes(group_labels)
    return Levels(
        codes=tuple(codes), group_labels=group_labels,
        outer_labels=outer_labels, names=tuple(level_names),
        random_exog=tuple(random_exog),
        random_names=tuple(tuple(names) for names in random_names),
        effect_names=tuple(
            tuple(random_effect_names(outcome_names, names))
            for names in random_names))


def subset_levels(levels, keep_groups, rows):
    """
    The levels of the rows ``rows`` (positions, in order) of the outer
    groups ``keep_groups`` (a boolean mask), coded as
    :func:`grouped_levels` would code those rows: outer codes stay in
    sorted label order, inner codes are renumbered in order of appearance.
    """
    if levels.implicit:     # every row its own group: nothing to renumber
        return implicit_levels(levels.outer_labels[rows],
                               levels.effect_names[0])
    outer = np.cumsum(keep_groups) - 1
    codes = [outer[levels.codes[0][rows]]]
    for inner in levels.codes[1:]:
        codes.append(pd.factorize(inner[rows])[0].astype(np.intp))
    return Levels(
        codes=tuple(codes), group_labels=take_rows(levels.group_labels, rows),
        outer_labels=levels.outer_labels[keep_groups], names=levels.names,
        random_exog=tuple(take_rows(z, rows) for z in levels.random_exog),
        random_names=levels.random_names, effect_names=levels.effect_names)


def take_rows(arr, rows):
    """``arr[rows]`` for positions ``rows``, in the memory order of ``arr``
    (row-wise copies of a column-major matrix are slow)."""
    if arr.ndim == 2 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
        return arr.T.take(rows, axis=1).T
    return arr.take(rows, axis=0)


def outer_group_mask(levels, groups):
    """
    Boolean mask over the outer groups of the labels ``groups``.

    Raises
    ------
    ValueError
        Naming labels that are not outer groups of the design, or when no
        group is given.
    """
    if np.ndim(groups) == 0:
        groups = [groups]
    # a list keeps its items' types (numpy would make [0, "x"] all text)
    wanted = (pd.Index(groups) if isinstance(groups, (list, tuple))
              else np.ravel(np.asarray(groups)))
    if not len(wanted):
        raise ValueError("subset needs at least one outer group label")
    outer = levels.outer_labels
    numeric = (wanted.dtype.kind in "iuf" and outer.dtype.kind in "iuf")
    if numeric and wanted.dtype.kind in "iu" and _are_positions(outer):
        # labels 0 .. m - 1 (positions, a default index): direct indexing
        wanted = np.asarray(wanted)
        found = (wanted >= 0) & (wanted < outer.size)
        mask = np.zeros(outer.size, dtype=bool)
        mask[wanted[found]] = True
    elif numeric:   # without pandas' overhead on small designs
        mask = np.isin(outer, wanted)
        # all found unless fewer groups than labels (or labels repeated)
        found = (np.ones(1, dtype=bool) if mask.sum() == len(wanted)
                 else np.isin(wanted, outer))
    else:
        wanted = pd.Index(wanted)
        found = wanted.isin(outer)
        mask = np.asarray(pd.Index(outer).isin(wanted))
    if not found.all():
        known = ", ".join(repr(v) for v in outer[:5].tolist())
        more = "" if levels.n_groups <= 5 else \
            f" ... ({levels.n_groups} in all)"
        what = ("row labels" if levels.implicit
                else f"labels of {levels.names[0]!r}")
        raise ValueError(
            f"subset: {np.asarray(wanted)[~found][:5].tolist()} are not "
            f"outer groups of the design; the groups are the {what}: "
            f"{known}{more}")
    return mask


def _are_positions(labels):
    """The labels are ``0, 1, ..., m - 1`` in order."""
    return (labels.dtype.kind in "iu" and labels.size > 0
            and labels[0] == 0 and labels[-1] == labels.size - 1
            and bool(np.all(np.diff(labels) == 1)))
