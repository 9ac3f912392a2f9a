"""
Zero cells in counts: metafor's ``add``/``to`` continuity correction and its
``drop00`` rule, applied to the cells of 2x2 tables, to the event counts of
two rates, or to the events and non-events of single proportions.

The rules (metafor's ``escalc``, documented in its Details section):

* ``to="only0"`` (default): ``add`` goes to every cell of the rows that
  have at least one zero cell;
* ``to="all"``: ``add`` goes to every cell of every row;
* ``to="if0all"``: ``add`` goes to every cell of every row, but only when
  some row has a zero cell;
* ``to="none"`` (same as ``add=0``): nothing is added; a zero can then give
  an infinite or undefined effect size, which becomes NaN with a warning.

``drop00=True`` sets to NaN the rows that carry no information about the
contrast: for 2x2 tables those with no events in both groups
(``ai = ci = 0``) or only events in both groups (``bi = di = 0``), for rates
those with ``x1i = x2i = 0``.  Dropped rows do not count as zero rows for
``to="if0all"``.  Rows with a missing cell are left alone (they stay NaN).
"""
from __future__ import annotations

import numpy as np

TO_OPTIONS = ("only0", "all", "if0all", "none")
DEFAULT_ADD = 0.5
DEFAULT_TO = "only0"


def add_value(add):
    """``add`` as a float, NaN unless it is a finite number >= 0."""
    try:
        value = float(add)
    except (TypeError, ValueError):
        return np.nan
    if isinstance(add, bool) or not np.isfinite(value) or value < 0:
        return np.nan
    return value


def check_options(add, to, caller=None):
    """
    Validate ``add`` (a finite number >= 0) and ``to``; fill the defaults.

    ``caller`` (say ``"escalc('OR')"``) starts the error messages.
    """
    add = DEFAULT_ADD if add is None else add
    to = DEFAULT_TO if to is None else to
    prefix = "" if caller is None else f"{caller}: "
    value = add_value(add)
    if np.isnan(value):
        raise ValueError(f"{prefix}add must be a finite number >= 0 "
                         f"(default 1/2), got {add!r}")
    if to not in TO_OPTIONS:
        raise ValueError(f"{prefix}to must be one of "
                         f"{', '.join(repr(t) for t in TO_OPTIONS)}, "
                         f"got {to!r}")
    return value, to


def selected(has_zero, to):
    """
    The units (rows, or studies of several arms) that receive ``add``
    under ``to``, given which of them have a zero cell.
    """
    has_zero = np.asarray(has_zero, dtype=bool)
    if to == "all":
        return np.ones_like(has_zero)
    if to == "only0":
        return has_zero
    if to == "if0all":
        return np.full_like(has_zero, has_zero.any())
    return np.zeros_like(has_zero)


def uninformative(cells, pairs):
    """Rows where both cells of any pair are zero (NaN compares False)."""
    mask = np.zeros(len(cells[0]), dtype=bool)
    for first, second in pairs:
        mask |= (cells[first] == 0) & (cells[second] == 0)
    return mask


def adjust(cells, add, to, drop=None):
    """
    Apply ``drop`` (a row mask set to NaN) then the ``add``/``to`` rule.

    Parameters
    ----------
    cells : list of ndarray
        The cells that receive ``add`` and whose zeros trigger it (for 2x2
        tables ``ai, bi, ci, di``; for rates ``x1i, x2i``; for proportions
        the events and non-events).
    add : float
    to : {"only0", "all", "if0all", "none"}
    drop : ndarray of bool, optional
        Rows to set to NaN first (``drop00``).

    Returns
    -------
    list of ndarray
        New arrays; the inputs are not modified.
    """
    cells = [np.array(cell, dtype=float) for cell in cells]
    if drop is not None and drop.any():
        for cell in cells:
            cell[drop] = np.nan
    has_zero = np.zeros(len(cells[0]), dtype=bool)
    for cell in cells:
        has_zero |= cell == 0
    rows = selected(has_zero, to)
    for cell in cells:
        cell[rows] += add
    return cells


def adjust_tables(cells, add, to, drop00=False):
    """
    :func:`adjust` on the cells ``a, b, c, d`` of 2x2 tables, ``drop00``
    dropping the tables with no events (``a = c = 0``) or only events
    (``b = d = 0``) in both groups.
    """
    drop = uninformative(cells, [(0, 2), (1, 3)]) if drop00 else None
    return adjust(cells, add, to, drop)
