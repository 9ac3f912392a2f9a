"""
``escalc``: effect sizes and sampling variances from raw study data, with
metafor's measure and argument names; this module resolves the arguments
(columns of ``data`` or arrays), validates them, applies the zero-cell rules,
dispatches to the measure's formula and returns the ``yi``/``vi`` frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import (binary, checks, continuous, correlation, groups, rates,
               single, zero_cells)


@dataclass(frozen=True)
class Family:
    """Measures that share their inputs: name, formulas, required inputs."""
    name: str
    formulas: dict
    required: tuple  # each entry: the alternative argument names of one input
    zero_cells: bool
    drop00: bool

    @property
    def accepted(self):
        return [name for alternatives in self.required
                for name in alternatives]


FAMILIES = (
    Family("2x2 tables", binary.MEASURES,
           (("ai",), ("bi", "n1i"), ("ci",), ("di", "n2i")), True, True),
    Family("means", continuous.MEASURES,
           (("m1i",), ("sd1i",), ("n1i",), ("m2i",), ("sd2i",), ("n2i",)),
           False, False),
    Family("correlations", correlation.MEASURES, (("ri",), ("ni",)),
           False, False),
    Family("single groups", single.MEASURES, (("xi",), ("ni", "mi")),
           True, False),
    Family("rates", rates.MEASURES,
           (("x1i",), ("t1i",), ("x2i",), ("t2i",)), True, True),
)
MEASURES = {measure: family for family in FAMILIES
            for measure in family.formulas}


def escalc(measure, data=None, *, add=None, to=None, drop00=False,
           vtype="LS", **columns):
    r"""
    Effect sizes ``yi`` and sampling variances ``vi`` from raw study data.

    The measure and argument names are those of metafor's ``escalc``, so
    that ``escalc("OR", ai=..., bi=..., ci=..., di=..., data=...)`` reads as
    in R.

    Parameters
    ----------
    measure : str
        One of ``"OR"``, ``"RR"``, ``"RD"``, ``"PETO"`` (2x2 tables:
        ``ai, bi, ci, di``, or ``ai, n1i, ci, n2i``); ``"MD"``, ``"SMD"``,
        ``"ROM"`` (means: ``m1i, sd1i, n1i, m2i, sd2i, n2i``); ``"COR"``,
        ``"ZCOR"`` (correlations: ``ri, ni``); ``"PR"``, ``"PLO"`` (single
        groups: ``xi`` with ``ni`` or ``mi``, the non-events); ``"IRR"``,
        ``"IRD"`` (rates: ``x1i, t1i, x2i, t2i``).
    data : DataFrame, optional
        Where string arguments are looked up as column names; the result
        has its index.  It is never modified.
    add : float, optional
        Added to zero cells (2x2 tables, event counts of rates, events and
        non-events of single groups); default 1/2, as in metafor.
    to : {"only0", "all", "if0all", "none"}, optional
        Which rows receive ``add``; default ``"only0"`` (the rows with a
        zero cell).  See :mod:`statsmodels_mixmeta.effectsize.zero_cells`.
    drop00 : bool
        Set to NaN the 2x2 tables with no events (or only events) in both
        groups, and the rate comparisons with no events in either group.
    vtype : {"LS"}
        The sampling variance: metafor's default large-sample formulas.
    **columns
        The inputs of the measure, each a column name of ``data``, an array
        (or Series, aligned with ``data``'s index), or a scalar.

    Returns
    -------
    DataFrame
        Columns ``yi`` and ``vi`` on ``data``'s index (a ``RangeIndex`` for
        arrays, or the common index of Series given without ``data``), so
        that ``smf.mixmeta("yi ~ x", data=df.join(es), S="vi")`` fits the
        meta-regression.

    Notes
    -----
    Rows with a missing input give NaN, as in metafor.  Rows whose effect
    size is undefined (for example a zero cell with ``to="none"``) are NaN
    with a warning naming them, as metafor recodes infinite values to NA.
    Invalid inputs raise a ``ValueError`` naming the rows and arguments at
    fault: negative counts, events above the group size, group sizes below
    1, standard deviations or person-times <= 0, non-positive means for
    ROM, ``|r| >= 1`` (metafor accepts ``|r| = 1``), inconsistent
    ``bi``/``n1i`` when both are given.  The formulas and their references
    are in the modules ``binary``, ``continuous``, ``correlation``,
    ``single`` and ``rates`` of :mod:`statsmodels_mixmeta.effectsize`.

    Examples
    --------
    >>> import statsmodels_mixmeta as smm
    >>> bcg = smm.datasets.load_bcg()
    >>> es = smm.escalc("OR", ai="tpos", bi="tneg", ci="cpos", di="cneg",
    ...                 data=bcg)
    """
    family = _family(measure)
    if vtype != "LS":
        raise ValueError(f"escalc({measure!r}): vtype must be 'LS' (the "
                         f"large-sample variances), got {vtype!r}")
    _check_zero_cell_options(measure, family, add, to, drop00)
    inputs = _resolve(measure, family, data, columns)
    arrays = PREPARE[family.name](inputs, family, add, to, drop00)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = family.formulas[measure](*arrays)
    complete = np.all([~np.isnan(np.asarray(a)) for a in arrays], axis=0)
    return _frame(measure, inputs, yi, vi, complete)


def _family(measure):
    if not isinstance(measure, str) or measure not in MEASURES:
        listing = "; ".join(f"{family.name}: " + ", ".join(family.formulas)
                            for family in FAMILIES)
        raise ValueError(f"escalc: unknown measure {measure!r}; valid "
                         f"measures are {listing}")
    return MEASURES[measure]


def _check_zero_cell_options(measure, family, add, to, drop00):
    if not family.zero_cells and (add is not None or to is not None):
        raise ValueError(f"escalc({measure!r}): add and to apply to counts "
                         "(2x2 tables, rates, single groups), not to "
                         f"{family.name}")
    if drop00 not in (True, False):
        raise ValueError(f"escalc({measure!r}): drop00 must be True or "
                         f"False, got {drop00!r}")
    if drop00 and not family.drop00:
        raise ValueError(f"escalc({measure!r}): drop00 applies to 2x2 "
                         "tables and rates (OR, RR, RD, PETO, IRR, IRD), "
                         f"not to {family.name}")


def _resolve(measure, family, data, columns):
    """The inputs as float arrays of one length, and the row labels."""
    accepted = family.accepted
    unknown = [name for name in columns if name not in accepted]
    if unknown:
        raise ValueError(f"escalc({measure!r}) does not take "
                         f"{', '.join(unknown)}; its arguments are "
                         f"{', '.join(accepted)}")
    missing = [" or ".join(alternatives) for alternatives in family.required
               if not any(name in columns for name in alternatives)]
    if missing:
        raise ValueError(f"escalc({measure!r}) is missing "
                         f"{', '.join(missing)}; its arguments are "
                         f"{', '.join(accepted)}")
    if data is not None and not isinstance(data, pd.DataFrame):
        raise ValueError("escalc: data must be a pandas DataFrame or None, "
                         f"got {type(data).__name__}")
    values, sources = {}, {}
    for name, value in columns.items():
        values[name], sources[name] = _column(measure, name, value, data)
    index = _index(measure, data, columns, values)
    values = {name: np.broadcast_to(v, len(index)).astype(float)
              for name, v in values.items()}
    inputs = checks.Inputs(measure, values, sources, index)
    for name in values:
        inputs.fail(np.isinf(values[name]), [name], "infinite values",
                    "inputs must be finite (NaN marks a missing value)")
    return inputs


def _column(measure, name, value, data):
    """One argument as a float array and a description of its source."""
    value, column = checks.lookup(value, data, {
        checks.NO_DATA: f"escalc({measure!r}): {name}={{column!r}} names "
                        "a column, but no data was given",
        checks.NOT_IN_DATA: f"escalc({measure!r}): column {{column!r}} "
                            f"given for {name} is not in data; its columns "
                            "are {joined}",
        checks.MISALIGNED: f"escalc({measure!r}): the Series given for "
                           f"{name} is not indexed like data"})
    source = "array" if column is None else f"column {column!r}"
    try:
        if isinstance(value, pd.Series):
            array = value.to_numpy(dtype=float, na_value=np.nan)
        else:
            array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"escalc({measure!r}): {name} ({source}) must be "
                         "numeric") from None
    if array.ndim > 1:
        raise ValueError(f"escalc({measure!r}): {name} must be "
                         f"one-dimensional, got shape {array.shape}")
    return array, source


def _index(measure, data, columns, values):
    """data's index, the shared index of Series, or a RangeIndex."""
    lengths = {name: len(v) for name, v in values.items() if v.ndim == 1}
    n = len(data) if data is not None else max(lengths.values(), default=1)
    wrong = {name: size for name, size in lengths.items() if size != n}
    if wrong:
        raise ValueError(f"escalc({measure!r}): inputs must have {n} rows"
                         + (" (as data)" if data is not None else "")
                         + "; " + ", ".join(f"{name} has {size}"
                                            for name, size in wrong.items()))
    if data is not None:
        return data.index
    series = [v.index for v in columns.values() if isinstance(v, pd.Series)]
    if series and all(index.equals(series[0]) for index in series):
        return series[0]
    if series:
        raise ValueError(f"escalc({measure!r}): the Series given have "
                         "different indexes; pass data= or arrays")
    return pd.RangeIndex(n)


def _zero_cell_options(inputs, add, to):
    return zero_cells.check_options(add, to, f"escalc({inputs.measure!r})")


def _counts(inputs, events, part, total):
    """The non-events of a group: ``part``, or ``total - events``."""
    checks.nonnegative(inputs, *[name for name in (events, part, total)
                                 if name in inputs])
    if total in inputs:
        checks.events_within(inputs, events, total)
    checks.consistent(inputs, part, total, events)
    return groups.non_events(inputs, events, part, total)


def _prepare_table(inputs, family, add, to, drop00):
    add, to = _zero_cell_options(inputs, add, to)
    a, c = inputs["ai"], inputs["ci"]
    b = _counts(inputs, "ai", "bi", "n1i")
    d = _counts(inputs, "ci", "di", "n2i")
    checks.at_least_one(inputs, a + b, ["ai", "bi", "n1i"], "group 1 size")
    checks.at_least_one(inputs, c + d, ["ci", "di", "n2i"], "group 2 size")
    return zero_cells.adjust_tables([a, b, c, d], add, to, drop00)


def _prepare_means(inputs, family, add, to, drop00):
    checks.positive(inputs, "sd1i", "sd2i", what="standard deviations")
    for name in ("n1i", "n2i"):
        checks.at_least_one(inputs, inputs[name], [name])
    if inputs.measure == "SMD":
        inputs.fail(inputs["n1i"] + inputs["n2i"] < 4, ["n1i", "n2i"],
                    "n1i + n2i < 4", "Hedges' correction needs "
                    "n1i + n2i - 2 > 1")
    if inputs.measure == "ROM":
        checks.positive(inputs, "m1i", "m2i", what="means")
    return [inputs[name] for name in family.accepted]


def _prepare_correlations(inputs, family, add, to, drop00):
    checks.correlations(inputs)
    checks.at_least_one(inputs, inputs["ni"], ["ni"], "sample size")
    return [inputs["ri"], inputs["ni"]]


def _prepare_single(inputs, family, add, to, drop00):
    add, to = _zero_cell_options(inputs, add, to)
    non_events = _counts(inputs, "xi", "mi", "ni")
    checks.at_least_one(inputs, inputs["xi"] + non_events, ["xi", "ni", "mi"],
                        "sample size")
    return zero_cells.adjust([inputs["xi"], non_events], add, to)


def _prepare_rates(inputs, family, add, to, drop00):
    add, to = _zero_cell_options(inputs, add, to)
    checks.nonnegative(inputs, "x1i", "x2i")
    checks.positive(inputs, "t1i", "t2i", what="person-times")
    x1, x2 = inputs["x1i"], inputs["x2i"]
    drop = zero_cells.uninformative([x1, x2], [(0, 1)]) if drop00 else None
    x1, x2 = zero_cells.adjust([x1, x2], add, to, drop)
    return [x1, inputs["t1i"], x2, inputs["t2i"]]


PREPARE = {"2x2 tables": _prepare_table, "means": _prepare_means,
           "correlations": _prepare_correlations,
           "single groups": _prepare_single, "rates": _prepare_rates}


def _frame(measure, inputs, yi, vi, complete):
    """
    The result frame.  ``complete`` marks the rows whose (adjusted) inputs
    are all present; those among them whose result is undefined become NaN
    with a warning.  Correlations keep ``yi`` but lose ``vi`` when
    ``ni < 5``, as in metafor.
    """
    yi = np.array(np.broadcast_to(yi, len(inputs.index)), dtype=float)
    vi = np.array(np.broadcast_to(vi, len(inputs.index)), dtype=float)
    computed = np.isfinite(yi) & np.isfinite(vi) & (vi >= 0)
    if measure in correlation.MEASURES:
        small = complete & (inputs["ni"] < correlation.MIN_N_FOR_VARIANCE)
        vi[small] = np.nan
        checks.warn_missing_results(
            measure, inputs.index, ~small, complete,
            f"ni < {correlation.MIN_N_FOR_VARIANCE}",
            "their vi is set to NaN (as in metafor)")
        complete &= ~small
        computed |= small
    checks.warn_missing_results(
        measure, inputs.index, computed, complete,
        "an undefined or infinite effect size or variance (a zero cell or "
        "count without a continuity correction, or a dropped study)")
    yi[~computed] = np.nan
    vi[~computed] = np.nan
    frame = pd.DataFrame({"yi": yi, "vi": vi}, index=inputs.index)
    frame.attrs["measure"] = measure
    return frame
