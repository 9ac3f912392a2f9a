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


def check_options(measure, add, to):
    """Validate ``add`` (a finite number >= 0) and ``to``; fill defaults."""
    add = DEFAULT_ADD if add is None else add
    to = DEFAULT_TO if to is None else to
    try:
        add_value = float(add)
    except (TypeError, ValueError):
        add_value = np.nan
    if isinstance(add, bool) or not np.isfinite(add_value) or add_value < 0:
        raise ValueError(f"escalc({measure!r}): add must be a finite number "
                         f">= 0 (default 1/2), got {add!r}")
    if to not in TO_OPTIONS:
        raise ValueError(f"escalc({measure!r}): to must be one of "
                         f"{', '.join(repr(t) for t in TO_OPTIONS)}, "
                         f"got {to!r}")
    return add_value, to


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
    if to == "all":
        rows = np.ones_like(has_zero)
    elif to == "only0":
        rows = has_zero
    elif to == "if0all":
        rows = np.full_like(has_zero, has_zero.any())
    else:
        rows = np.zeros_like(has_zero)
    for cell in cells:
        cell[rows] += add
    return cells
