"""
Validation of raw effect-size inputs: finding an argument's values in the
data, the NaN-safe comparisons that find the rows at fault, and escalc's
checks, each raising a ``ValueError`` that names the measure, the arguments
(and the data columns they came from), the rows at fault by their index
labels, and what would be valid.  ``escalc_correlated`` and
``network_contrasts`` use the same look-up and comparisons with their own
wording.

Missing values (NaN) never fail a check: as in metafor, a row with a missing
input gives a missing effect size.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MAX_LABELS = 10

#: Why an argument's values could not be found (keys of ``messages``).
NO_DATA, NOT_IN_DATA, MISALIGNED = "no data", "not in data", "misaligned"


def lookup(value, data, messages):
    """
    ``(values, column)``: the column of ``data`` that a string names (and
    the name), or any other value as given (and None).

    Raises the ``ValueError`` ``messages[fault]`` when a string is given
    without ``data`` (:data:`NO_DATA`), names no column of it
    (:data:`NOT_IN_DATA`), or a Series is not indexed like ``data``
    (:data:`MISALIGNED`); each message is formatted with ``column`` (the
    name), ``columns`` (data's columns as a list of strings) and
    ``joined`` (the same, joined by commas).
    """
    column, fault = None, None
    if isinstance(value, str):
        column = value
        if data is None:
            fault = NO_DATA
        elif value not in data.columns:
            fault = NOT_IN_DATA
        else:
            value = data[value]
    elif isinstance(value, pd.Series) and data is not None \
            and not value.index.equals(data.index):
        fault = MISALIGNED
    if fault is not None:
        columns = [] if data is None else list(map(str, data.columns))
        raise ValueError(messages[fault].format(
            column=column, columns=columns, joined=", ".join(columns)))
    return value, column


def row_list(index, mask) -> str:
    """The index labels of the rows where ``mask`` holds, for a message."""
    labels = list(np.asarray(index, dtype=object)[np.asarray(mask, bool)])
    shown = ", ".join(repr(label) for label in labels[:MAX_LABELS])
    more = len(labels) - MAX_LABELS
    return f"[{shown}]" + (f" and {more} more" if more > 0 else "")


class Inputs:
    """
    The resolved inputs of one escalc call: float arrays by argument name,
    where each argument came from (``"column 'tpos'"`` or ``"array"``), and
    the row labels used in messages.
    """

    def __init__(self, measure, values, sources, index):
        self.measure = measure
        self.values = values
        self.sources = sources
        self.index = index

    def __getitem__(self, name):
        return self.values[name]

    def __contains__(self, name):
        return name in self.values

    def describe(self, *names) -> str:
        """``ai (column 'tpos')`` for each argument, joined by commas."""
        return ", ".join(f"{name} ({self.sources[name]})" for name in names
                         if name in self.sources)

    def fail(self, mask, names, problem, valid):
        """Raise the ValueError for the rows in ``mask``, if there are any."""
        mask = np.asarray(mask, bool)
        if mask.any():
            raise ValueError(
                f"escalc({self.measure!r}): {problem} in rows "
                f"{row_list(self.index, mask)} of {self.describe(*names)}; "
                f"{valid}")


def _compare(values, op, bound):
    """``values op bound`` elementwise, False where values are NaN."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(op(values, bound), nan=0).astype(bool)


def below(values, bound):
    """Rows where ``values < bound`` (negative counts: ``bound=0``)."""
    return _compare(values, np.less, bound)


def not_above(values, bound):
    """Rows where ``values <= bound`` (non-positive sd: ``bound=0``)."""
    return _compare(values, np.less_equal, bound)


def above(values, bound):
    """Rows where ``values > bound`` (more events than the group size)."""
    return _compare(values, np.greater, bound)


def nonnegative(inputs, *names, what="counts"):
    """Counts (or times) must be zero or more."""
    for name in names:
        inputs.fail(below(inputs[name], 0), [name],
                    f"negative {what}", f"{what} must be >= 0")


def positive(inputs, *names, what):
    """Standard deviations, person-times, means of a ratio: > 0."""
    for name in names:
        inputs.fail(not_above(inputs[name], 0), [name],
                    f"{what} <= 0", f"{what} must be > 0")


def at_least_one(inputs, size, names, what="group size"):
    """A group size (given or implied by counts) must be 1 or more."""
    inputs.fail(below(size, 1), names, f"{what} < 1",
                f"each {what} must be at least 1")


def events_within(inputs, events, total):
    """Events cannot exceed the group size they are counted in."""
    inputs.fail(above(inputs[events], inputs[total]),
                [events, total], f"{events} larger than {total}",
                f"{events} must be between 0 and {total}")


def consistent(inputs, part, total, events):
    """When both ``part`` and ``total`` are given, part = total - events."""
    if part in inputs and total in inputs:
        gap = np.abs(inputs[part] + inputs[events] - inputs[total])
        inputs.fail(above(gap, 1e-8 * (1 + np.abs(
            inputs[total]))), [events, part, total],
            f"{events} + {part} differs from {total}",
            f"give either {part} or {total}, or make {events} + {part} = "
            f"{total}")


def correlations(inputs, name="ri"):
    """|r| < 1: at |r| = 1 the variance is 0 (COR) or z is infinite."""
    inputs.fail(_compare(np.abs(inputs[name]), np.greater_equal, 1), [name],
                "correlation with |r| >= 1",
                "correlations must lie strictly between -1 and 1 (metafor "
                "accepts |r| = 1 and returns a zero variance for COR and a "
                "missing value for ZCOR; here it is an error)")


def warn_missing_results(measure, index, computed, inputs_complete, reason,
                         outcome="their yi/vi are set to NaN"):
    """
    Warn about rows whose inputs are complete but whose effect size could not
    be computed (division by zero, log of zero); metafor recodes these to
    missing with a warning, and so do we.
    """
    lost = inputs_complete & ~computed
    if lost.any():
        warnings.warn(
            f"escalc({measure!r}): rows {row_list(index, lost)} have "
            f"{reason}; {outcome}", UserWarning,
            stacklevel=3)
