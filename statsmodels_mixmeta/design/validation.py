"""
Checks of the caller's inputs before anything is built on them.

Each function takes what the caller gave (arrays or pandas objects) and
either returns it in the form the design needs or raises a ``ValueError``
that names the argument, the column and the row labels at fault, and what
would be valid.  The rules:

* **Types.**  Numbers arrive as float arrays.  pandas' nullable ``Int64``,
  ``Float64`` and ``boolean`` columns are converted (``pd.NA`` becomes NaN,
  i.e. missing), booleans become 0/1, and object columns holding only
  numbers become float.  Text (pandas' ``string`` dtype, or object columns
  holding strings) is refused wherever a number is needed (outcomes, ``S``,
  ``Scor``, random predictors), naming the column.
* **Alignment.**  A pandas ``exog``, ``S``, ``Scor``, ``groups`` or
  ``exog_re`` is matched to the rows of a pandas ``endog`` by index label
  (as pandas aligns), not by position; one that lacks some of ``endog``'s
  labels, or whose labels repeat, is refused.  Without labels on both
  sides, rows are matched by position.
* **Finite values.**  NaN means missing (the missing rule of
  :func:`statsmodels_mixmeta.design.core.rows_to_keep` drops the row);
  ``+inf`` or ``-inf`` in an outcome, a predictor, ``S``, ``Scor``, a
  random predictor or a grouping column is an error naming the rows and
  the column.
* **Shapes.**  ``endog`` is ``(n,)`` or ``(n, k)`` with ``n >= 1``;
  ``exog`` and each ``exog_re`` ``(n,)`` or ``(n, p)``; ``groups`` ``(n,)``
  or ``(n, L)``.
* **Singular within-study covariances.**  See
  :mod:`statsmodels_mixmeta.design.singular`.

Row labels in messages are the caller's: the index of a pandas ``endog``
(or of the formula's data), positions ``0 .. n-1`` otherwise.
"""
import numpy as np
import pandas as pd

from .labels import describe_rows

_NUMERIC_KINDS = {"floating", "integer", "mixed-integer-float", "decimal",
                  "boolean", "empty"}


def checked_inputs(endog, exog, S, Scor, groups, exog_re):
    """
    The row-wise arguments of :class:`~statsmodels_mixmeta.MixMeta`,
    converted to numbers, aligned to ``endog``'s rows by label, and checked
    for shape and infinite values (see the module docstring for the rules).

    Returns
    -------
    endog, exog, S, Scor, groups, exog_re
        As given, or converted copies; the caller's objects are not changed.
    """
    if _plain(endog, exog, S) and Scor is None and groups is None and \
            exog_re is None:
        return endog, exog, S, Scor, groups, exog_re
    check_endog(endog)
    endog = numeric(endog, "endog")
    n_rows = np.shape(endog)[0]
    index = (endog.index if isinstance(endog, (pd.Series, pd.DataFrame))
             else None)
    labels = range(n_rows) if index is None else index   # for messages
    check_finite(endog, "endog", labels)
    if exog is not None:
        if np.ndim(exog) > 0 and np.shape(exog)[0] != n_rows:
            raise ValueError(
                f"endog has {n_rows} rows but exog has {np.shape(exog)[0]}; "
                "exog must be (n,) or (n, p), one row per row of endog")
        exog = _checked_numbers(exog, "exog", index, labels, "(n,) or (n, p)")
    if S is not None:
        S = _checked_per_row(S, "S", index, labels)
    if Scor is not None and np.ndim(Scor) > 0:
        Scor = _checked_per_row(Scor, "Scor", index, labels)
    if groups is not None:
        check_rows(groups, n_rows, "groups", "(n,) or (n, L) labels")
        groups = _missing_as_nan(aligned(groups, index, "groups"))
        check_finite_labels(groups, "groups", labels)
    if exog_re is not None:
        several = isinstance(exog_re, (list, tuple))
        designs = [_checked_random_design(z, index, labels)
                   for z in (exog_re if several else [exog_re])]
        exog_re = designs if several else designs[0]
    return endog, exog, S, Scor, groups, exog_re


def _plain(endog, exog, S):
    """
    The common case, checked in a few microseconds: small float ndarrays
    of valid shapes, all values finite (anything else, NaN and inf
    included, takes the general path and its messages).
    """
    arrays = (endog, S) if exog is None else (endog, S, exog)
    if not all(type(a) is np.ndarray and a.dtype == np.float64 and
               0 < a.ndim and 0 < a.size <= 4096 for a in arrays):
        return False
    n_rows = endog.shape[0]
    return (endog.ndim <= 2 and (exog is None or exog.ndim <= 2) and
            all(a.shape[0] == n_rows and np.isfinite(a).all()
                for a in arrays))


def _checked_numbers(value, what, index, labels, valid):
    """A ``(n,)`` or ``(n, q)`` argument: shape, alignment, type, finite."""
    check_rows(value, len(labels), what, valid)
    value = numeric(aligned(value, index, what), what)
    check_finite(value, what, labels)
    return value


def _checked_per_row(value, what, index, labels):
    """
    ``S`` or ``Scor``: aligned and checked when it has one row per data row
    (its other forms, e.g. one correlation per pair of outcomes, are
    checked with the covariance forms).
    """
    per_row = np.ndim(value) > 0 and np.shape(value)[0] == len(labels)
    if per_row:
        value = aligned(value, index, what)
    value = numeric(value, what)
    if per_row:
        check_finite(value, what, labels)
    elif np.isinf(value).any():
        raise ValueError(f"{what} holds infinite values; they must be "
                         "finite numbers (NaN marks a missing value)")
    return value


def _checked_random_design(z, index, labels):
    if np.ndim(z) > 0 and np.shape(z)[0] != len(labels):
        raise ValueError(
            f"exog_re must have one row per outcome row ({len(labels)}); "
            f"got {np.shape(z)[0]}")
    return _checked_numbers(z, "exog_re", index, labels, "(n,) or (n, q)")


# ---------------------------------------------------------------------------
# types
# ---------------------------------------------------------------------------

def numeric(value, what):
    """
    ``value`` as float64 data of the same kind (DataFrame, Series or array).

    Raises ValueError naming the column (or argument) that holds text or
    other values that are not numbers.
    """
    if value is None:
        return None
    if isinstance(value, pd.DataFrame):
        # one float block (the usual case) is one float array: no copy
        if value.shape[1] and value.to_numpy().dtype == np.float64:
            return value
        columns = {name: _numeric_column(value[name],
                                         f"{what} column {name!r}")
                   for name in value.columns}
        return pd.DataFrame(columns, index=value.index)[list(value.columns)]
    if isinstance(value, pd.Series):
        if value.dtype == np.float64:
            return value
        label = (what if value.name is None
                 else f"{what} column {value.name!r}")
        return pd.Series(_numeric_column(value, label), index=value.index,
                         name=value.name)
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value
    arr = np.asarray(value)
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    if arr.dtype.kind == "O":
        return _numeric_objects(arr.ravel(), what).reshape(arr.shape)
    raise ValueError(
        f"{what} must hold numbers; got values of type {arr.dtype} "
        f"(e.g. {arr.ravel()[:1].tolist()})")


def _numeric_column(series, label):
    """One pandas column as float64, NA as NaN."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if pd.api.types.is_numeric_dtype(dtype.categories.dtype):
            return series.astype(float).to_numpy()
        raise ValueError(
            f"{label} is categorical (levels {list(dtype.categories[:3])}"
            "...); it must hold numbers")
    if pd.api.types.is_bool_dtype(dtype) or \
            pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    if dtype == object:
        return _numeric_objects(series.to_numpy(), label)
    raise ValueError(_text_message(label, series.dropna().head(1).tolist(),
                                   dtype))


def _numeric_objects(values, label):
    """An object array of numbers (and missing values) as float."""
    missing = pd.isna(values)
    present = values[~missing]
    kind = pd.api.types.infer_dtype(present, skipna=False)
    if kind not in _NUMERIC_KINDS:
        bad = [v for v in present[:50] if not isinstance(v, (int, float))]
        raise ValueError(_text_message(label, bad[:1] or present[:1].tolist(),
                                       "object"))
    out = np.full(values.shape, np.nan)
    out[~missing] = present.astype(float)
    return out


def _text_message(label, examples, dtype):
    example = f" (e.g. {examples[0]!r})" if examples else ""
    return (f"{label} holds non-numeric ({dtype}) values{example}; convert "
            "it with pandas.to_numeric, or use a numeric column")


def numeric_frame(data, columns):
    """
    ``data`` with the named columns made usable by the formula engines.

    Nullable numeric columns become float64 (``pd.NA`` as NaN), nullable
    booleans and pandas' ``string`` columns become object columns with NaN
    for missing, and object columns holding only numbers become float64.
    Text and categorical columns stay factors.  The caller's frame is not
    changed: a new frame is returned when something is converted.
    """
    converted = {}
    for name in columns:
        series = data[name]
        dtype = series.dtype
        if isinstance(series, pd.DataFrame):
            continue            # a repeated column name: left to the engine
        if dtype == np.float64 or isinstance(dtype, pd.CategoricalDtype):
            continue
        if isinstance(dtype, pd.BooleanDtype):
            converted[name] = series.astype(object).where(series.notna(),
                                                          np.nan)
        elif isinstance(dtype, pd.StringDtype):
            converted[name] = series.astype(object).where(series.notna(),
                                                          np.nan)
        elif pd.api.types.is_extension_array_dtype(dtype) and \
                pd.api.types.is_numeric_dtype(dtype):
            converted[name] = pd.Series(
                series.to_numpy(dtype=float, na_value=np.nan),
                index=series.index)
        elif dtype == object:
            values = series.to_numpy()
            present = values[~pd.isna(values)]
            kind = pd.api.types.infer_dtype(present, skipna=False)
            if present.size and kind in _NUMERIC_KINDS - {"boolean"}:
                converted[name] = pd.Series(
                    _numeric_objects(values, name), index=series.index)
    return data.assign(**{str(k): v for k, v in converted.items()}) \
        if converted else data


# ---------------------------------------------------------------------------
# alignment
# ---------------------------------------------------------------------------

def aligned(value, index, what):
    """
    A pandas ``value`` reordered to ``index`` by label (or unchanged).

    Raises ValueError when ``value`` lacks some labels of ``index`` or its
    labels repeat: its rows cannot be matched to the data's.
    """
    if index is None or not isinstance(value, (pd.Series, pd.DataFrame)):
        return value
    if value.index.equals(index):
        return value
    absent = index.difference(value.index) if index.is_unique else index
    if value.index.is_unique and index.is_unique and absent.size == 0:
        return value.reindex(index)
    if not value.index.is_unique:
        detail = "its index labels repeat"
    elif not index.is_unique:
        detail = "the data's index labels repeat"
    else:
        shown = ", ".join(str(v) for v in absent[:5])
        more = f" and {absent.size - 5} more" if absent.size > 5 else ""
        detail = f"it has no rows labelled {shown}{more}"
    raise ValueError(
        f"{what} is a pandas object whose index does not match the data's "
        f"rows ({detail}); rows are matched by index label, so give {what} "
        "the data's index, or pass .to_numpy() to match rows by position")


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------

def check_endog(endog):
    """``endog`` must be ``(n,)`` or ``(n, k)`` with ``n, k >= 1``."""
    if isinstance(endog, (dict, set, str)):
        raise ValueError(
            f"endog must be an array, Series or DataFrame of outcomes, shape "
            f"(n,) or (n, k); got a {type(endog).__name__}")
    shape = np.shape(endog)
    if len(shape) == 0:
        raise ValueError(
            "endog is a scalar; it must hold one outcome per study, shape "
            "(n,), or k outcomes per study, shape (n, k)")
    if len(shape) > 2:
        raise ValueError(
            f"endog has shape {shape}; it must be (n,) or (n, k): one row "
            "per study, one column per outcome")
    if shape[0] == 0:
        raise ValueError("endog has no rows: there are no studies to fit")
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError("endog has no columns: there are no outcomes")


def check_rows(value, n_rows, what, valid):
    """``value`` is ``(n,)`` or ``(n, q)`` with ``n_rows`` rows."""
    shape = np.shape(value)
    if len(shape) == 0 or len(shape) > 2:
        raise ValueError(
            f"{what} has shape {shape}; it must be {valid}, one row per row "
            f"of endog ({n_rows})")
    if shape[0] != n_rows:
        raise ValueError(
            f"{what} must have one row per outcome row: endog has {n_rows} "
            f"rows, {what} has {shape[0]}; it must be {valid}")
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError(f"{what} has no columns; it must be {valid}")


# ---------------------------------------------------------------------------
# finite values
# ---------------------------------------------------------------------------

def check_finite(value, what, row_labels, names=None):
    """
    Raise if ``value`` (numbers, one row per data row) holds +inf or -inf,
    naming the rows and the columns (``names``, or a DataFrame's).
    """
    if value is None:
        return
    arr = value.to_numpy() if isinstance(value, (pd.Series, pd.DataFrame)) \
        else np.asarray(value)
    if arr.dtype.kind != "f" or arr.ndim == 0:
        return
    flat = arr.reshape(-1)
    if flat.size <= 4096:
        if np.isfinite(flat).all():
            return
    else:
        # one pass on clean data: the sum of squares is finite unless an
        # entry is NaN or infinite (or it overflows: the exact check below)
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(flat @ flat):
                return
    infinite = np.isinf(arr.reshape(arr.shape[0], -1))
    if infinite.any():
        names = _columns(value) if names is None else list(names)
        if names is None and arr.ndim == 2 and arr.shape[1] > 1:
            names = [str(j) for j in range(arr.shape[1])]
        _raise_infinite(infinite, what, row_labels, names)


def check_finite_labels(groups, what, row_labels):
    """Raise if grouping labels ``(n, L)`` (object) hold +inf or -inf."""
    if groups is None:
        return
    names = _columns(groups)
    labels = np.asarray(groups, dtype=object).reshape(np.shape(groups)[0], -1)
    infinite = np.zeros(labels.shape, dtype=bool)
    for j in range(labels.shape[1]):
        infinite[:, j] = pd.Series(labels[:, j]).isin([np.inf, -np.inf])
    if infinite.any():
        _raise_infinite(infinite, what, row_labels, names)


def _missing_as_nan(labels):
    """pandas labels with ``pd.NA`` (nullable dtypes) as object with NaN."""
    if not isinstance(labels, (pd.Series, pd.DataFrame)):
        return labels
    dtypes = [labels.dtype] if isinstance(labels, pd.Series) else \
        list(labels.dtypes)
    if not any(pd.api.types.is_extension_array_dtype(d) and
               not isinstance(d, pd.CategoricalDtype) for d in dtypes):
        return labels
    return labels.astype(object).where(labels.notna(), np.nan)


def _columns(value):
    if isinstance(value, pd.DataFrame):
        return [str(c) for c in value.columns]
    if isinstance(value, pd.Series) and value.name is not None:
        return [str(value.name)]
    return None


def _raise_infinite(infinite, what, row_labels, names):
    rows = np.flatnonzero(infinite.any(axis=1))
    cols = np.flatnonzero(infinite.any(axis=0))
    where = ""
    if names is not None and len(names) == infinite.shape[1]:
        where = f" in column{'s' if cols.size > 1 else ''} " + ", ".join(
            repr(names[j]) for j in cols)
    raise ValueError(
        f"{what} is infinite{where} at {describe_rows(rows, row_labels)}; "
        "values must be finite numbers (NaN marks a missing value)")
