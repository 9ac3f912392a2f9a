"""
The raw data of several outcomes per study for
:func:`~statsmodels_mixmeta.escalc_correlated`: one argument set per
outcome (metafor's names: ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i`` for
2x2 tables, ``m1i, sd1i, n1i, m2i, sd2i, n2i`` for means) read from the data
or from arrays, checked (naming the outcome, argument, column and rows at
fault).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..design.labels import describe_rows
from .checks import (MISALIGNED, NO_DATA, NOT_IN_DATA, above, below,
                     lookup, not_above)
from .groups import non_events

#: The valid argument sets of each kind of measure, for error messages.
TABLE_SETS = ("ai, bi, ci, di", "ai, n1i, ci, n2i")
MEANS_SET = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")


def outcome_specs(outcomes, names):
    """
    ``(names, specs)``: the outcomes' names and argument dictionaries.

    ``outcomes`` is a list of dictionaries (named by ``names``, or
    ``y1, y2, ...``) or a dictionary of them keyed by outcome name.
    """
    if isinstance(outcomes, Mapping) and outcomes and all(
            isinstance(spec, Mapping) for spec in outcomes.values()):
        if names is not None:
            raise ValueError("outcomes is a dict keyed by outcome name; "
                             "names must then be omitted")
        names, specs = list(outcomes), list(outcomes.values())
    elif isinstance(outcomes, (list, tuple)) and all(
            isinstance(spec, Mapping) for spec in outcomes):
        specs = list(outcomes)
        names = ([f"y{j + 1}" for j in range(len(specs))] if names is None
                 else list(names))
    else:
        raise ValueError("outcomes must be a list of dicts, one per outcome "
                         "(say [{'ai': 'a1', 'bi': 'b1', 'ci': 'c1', 'di': "
                         "'d1'}, {...}]), or a dict of them keyed by outcome "
                         "name")
    if len(specs) < 2:
        raise ValueError(f"outcomes must describe at least 2 outcomes, got "
                         f"{len(specs)}; for one outcome use escalc")
    if len(names) != len(specs):
        raise ValueError(f"names must name the {len(specs)} outcomes, got "
                         f"{len(names)}")
    names = [str(name) for name in names]
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {names}")
    keys = [set(spec) for spec in specs]
    for name, key in zip(names[1:], keys[1:]):
        if key != keys[0]:
            raise ValueError(
                f"outcome {name!r} has arguments {sorted(key)} but outcome "
                f"{names[0]!r} has {sorted(keys[0])}: give every outcome the "
                f"same argument set")
    return names, specs


def check_keys(measure, key):
    """Raise unless ``key`` is a valid argument set of ``measure``."""
    if measure == "SMD":
        if key != set(MEANS_SET):
            raise ValueError(f"measure 'SMD' takes {', '.join(MEANS_SET)} "
                             f"for each outcome, got {sorted(key)}")
        return
    if not ({"ai", "ci"} <= key and len(key) == 4
            and len(key & {"bi", "n1i"}) == 1
            and len(key & {"di", "n2i"}) == 1):
        raise ValueError(f"measure {measure!r} takes a 2x2 table for each "
                         f"outcome: {' or '.join(TABLE_SETS)} (bi or n1i for "
                         f"group 1, di or n2i for group 2), got {sorted(key)}")


def read_columns(spec, outcome, data):
    """
    ``(values, index)``: each argument of one outcome as a float array.

    A string names a column of ``data``; anything else is taken as an array
    of one value per study.
    """
    values, index = {}, None if data is None else data.index
    for key, value in spec.items():
        where = f"outcome {outcome!r}, {key}"
        value, column = lookup(value, data, {
            NO_DATA: f"{where}: {{column!r}} names a column but no data "
                     "were given",
            NOT_IN_DATA: f"{where}: column {{column!r}} is not in data; "
                         "data has columns {columns}",
            MISALIGNED: f"{where}: a Series must be indexed like data"})
        if column is not None:
            where = f"{where} (column {column!r})"
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be numeric") from None
        if array.ndim != 1:
            raise ValueError(f"{where} must be one value per study, got "
                             f"shape {array.shape}")
        if index is None:
            index = (value.index if isinstance(value, pd.Series)
                     else pd.RangeIndex(len(array)))
        if len(array) != len(index):
            raise ValueError(f"{where} has {len(array)} values for "
                             f"{len(index)} studies")
        if np.isinf(array).any():
            raise ValueError(f"{where} is infinite in "
                             f"{describe_rows(np.isinf(array), list(index))}")
        values[key] = array
    return values, index


def _refuse(bad, index, what):
    if bad.any():
        raise ValueError(f"{what} in {describe_rows(bad, list(index))}")


def table_cells(values, outcome, index):
    """
    The raw cells ``a, b, c, d`` of one outcome's 2x2 tables, checked.

    Counts must be non-negative and events at most the group size.
    """
    a, c = values["ai"], values["ci"]
    for key in values:
        _refuse(below(values[key], 0), index,
                f"outcome {outcome!r}: {key} is negative")
    if "n1i" in values:
        _refuse(above(a, values["n1i"]), index,
                f"outcome {outcome!r}: ai is larger than n1i")
    if "n2i" in values:
        _refuse(above(c, values["n2i"]), index,
                f"outcome {outcome!r}: ci is larger than n2i")
    b = non_events(values, "ai", "bi", "n1i")
    d = non_events(values, "ci", "di", "n2i")
    for group, size in ((1, a + b), (2, c + d)):
        _refuse(below(size, 1), index,
                f"outcome {outcome!r}: group {group} has no patients")
    return a, b, c, d


def check_means(values, outcome, index):
    """
    Group sizes of at least 1, ``n1i + n2i >= 4`` (Hedges' correction needs
    ``n1i + n2i - 2 > 1``) and positive standard deviations.
    """
    for key in ("n1i", "n2i"):
        _refuse(below(values[key], 1), index,
                f"outcome {outcome!r}: {key} is smaller than 1")
    _refuse(below(values["n1i"] + values["n2i"], 4), index,
            f"outcome {outcome!r}: n1i + n2i is smaller than 4 (Hedges' "
            "correction needs n1i + n2i - 2 > 1)")
    for key in ("sd1i", "sd2i"):
        _refuse(not_above(values[key], 0), index,
                f"outcome {outcome!r}: {key} is not positive")


def differing_sizes(sizes, observed):
    """
    Rows whose group sizes differ across the outcomes they report.

    ``sizes`` is ``(n, k)`` per group; missing outcomes are ignored.
    """
    largest = np.where(observed, sizes, -np.inf).max(axis=1)
    smallest = np.where(observed, sizes, np.inf).min(axis=1)
    return observed.any(axis=1) & (largest > smallest)
