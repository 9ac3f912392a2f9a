"""
Within-study covariances of log relative risks from aggregated dose-response
data, by the method of Greenland & Longnecker (1992).

A dose-response study reports, for each exposure level j = 0, ..., J (level 0
the reference), an adjusted log relative risk b_j (b_0 = 0) with its variance
v_j, and the crude counts: the cases a_j and either the person-time n_j
(incidence-rate data, ``"ir"``) or the subjects n_j, cases included
(case-control ``"cc"`` or cumulative-incidence ``"ci"`` data).  The b_j share
the reference level, so they are correlated; the study reports no
covariances.  Greenland & Longnecker reconstruct a table of *fitted* counts
A_j (cases) and B_j (non-cases, ``"cc"`` and ``"ci"``) that has the observed
margins and reproduces the adjusted relative risks exactly, and take the
covariances of the log relative risks from that table.

Fitted cells.  The level totals n_j and the total of cases
M_1 = sum_j a_j are kept; the relative risks fix every A_j as a function of
the reference count A_0:

* ``"ir"`` (rate ratios):  A_j / n_j = e^{b_j} A_0 / n_0,
* ``"ci"`` (risk ratios):  A_j / n_j = e^{b_j} A_0 / n_0,  B_j = n_j - A_j,
* ``"cc"`` (odds ratios):  A_j / B_j = e^{b_j} A_0 / B_0,  B_j = n_j - A_j,
  that is A_j = n_j c_j / (1 + c_j) with c_j = e^{b_j} A_0 / (n_0 - A_0),

and A_0 solves sum_j A_j(A_0) = M_1.  The left side increases with A_0 on
(0, min(M_1, n_0)), so the root is unique; it is found by Newton's method on
A_0, safeguarded by bisection, to full double precision (for ``"ir"`` and
``"ci"`` the equation is linear and one step solves it).

Covariances.  On the fitted table the log relative risks are differences of
log cell quantities sharing the reference cell, so for i != j

* ``"ir"``:  c = 1/A_0,               w_j = 1/A_j + 1/A_0,
* ``"ci"``:  c = 1/A_0 - 1/n_0,       w_j = 1/A_j - 1/n_j + 1/A_0 - 1/n_0,
* ``"cc"``:  c = 1/A_0 + 1/B_0,       w_j = 1/A_j + 1/B_j + 1/A_0 + 1/B_0,

(c the covariance, w_j the variance of b_j on the fitted table).  The
returned matrix keeps the reported variances on the diagonal and carries the
fitted table's correlations over to them:

    Cov(b_i, b_j) = c / sqrt(w_i w_j) * sqrt(v_i v_j),   Var(b_j) = v_j,

the matrix that dosresmeta's ``covar.logrr`` returns (its ``grl`` step may
stop its Newton iteration early; this one converges fully).

References
----------
Greenland S, Longnecker MP. Methods for trend estimation from summarized
dose-response data, with applications to meta-analysis. American Journal of
Epidemiology 1992;135:1301-1309.

Orsini N, Bellocco R, Greenland S. Generalized least squares for trend
estimation of summarized dose-response data. Stata Journal 2006;6:40-57.
"""
import numpy as np
import pandas as pd

VALID_TYPES = ("ir", "cc", "ci")
_MAX_NEWTON = 200


def greenland_longnecker(cases, n, log_rr, var_log_rr, type="ir"):
    """
    Covariance of one study's log relative risks (Greenland & Longnecker).

    Parameters
    ----------
    cases : array_like
        Cases per exposure level, in order, the reference level first.
    n : array_like
        Person-time per level (``type="ir"``), or the subjects per level,
        cases included (``"cc"``, ``"ci"``), as dosresmeta's
        ``covar.logrr`` takes them.
    log_rr : array_like
        Adjusted log relative risks; the reference level's is 0.
    var_log_rr : array_like
        Their variances; the reference level's is NaN or 0.
    type : {"ir", "cc", "ci"}
        Incidence-rate, case-control or cumulative-incidence data.

    Returns
    -------
    ndarray
        The ``(J, J)`` covariance matrix of the J non-reference log relative
        risks, the reported variances on its diagonal (see the module
        docstring for the formulas).

    Raises
    ------
    ValueError
        If the arguments differ in length, there are fewer than 2 levels,
        ``type`` is unknown, a count is not positive (or, for ``"cc"`` and
        ``"ci"``, a level has no non-cases), the reference level's log RR is
        not 0 or its variance is not NaN/0, a non-reference log RR is not
        finite or its variance is not positive; the message names the level.

    Examples
    --------
    >>> import statsmodels_mixmeta as smm
    >>> smm.greenland_longnecker([28, 38, 43], [22186., 43031., 53089.],
    ...                          [0, -0.417, -0.396],
    ...                          [float("nan"), 0.0630, 0.0603]).round(4)
    array([[0.063 , 0.0363],
           [0.0363, 0.0603]])
    """
    levels = [f"level {j}" for j in range(len(np.atleast_1d(cases)))]
    return _covariance(*_checked(cases, n, log_rr, var_log_rr, type, levels))


def greenland_longnecker_addS(data, study, cases, n, log_rr, var_log_rr,
                              type="ir"):
    """
    Greenland-Longnecker ``addS`` for a data set of dose-response studies.

    Each study's rows, in data order, are its exposure levels, the reference
    level first (see :func:`greenland_longnecker`).  The model is then fitted
    on the non-reference rows (the reference row carries no estimate), in the
    same order, with the returned dict as ``addS``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study and exposure level.
    study : str or array_like
        The study label: a column of ``data`` or one value per row.
    cases, n, log_rr, var_log_rr : str or array_like
        Columns of ``data`` (or one value per row): see
        :func:`greenland_longnecker`.
    type : str or array_like
        ``"ir"``, ``"cc"`` or ``"ci"`` for every study, or a column of
        ``data`` (or one value per row) holding the type, constant within a
        study.

    Returns
    -------
    dict
        ``{study label: covariance matrix}`` in order of first appearance.

    Raises
    ------
    ValueError
        As :func:`greenland_longnecker`, naming the study and the row label;
        also for a column that ``data`` lacks or a type that varies within a
        study.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError("data must be a pandas DataFrame, one row per study "
                         f"and exposure level; got {_type_name(data)}")
    columns = {name: _column(data, value, name) for name, value in
               [("study", study), ("cases", cases), ("n", n),
                ("log_rr", log_rr), ("var_log_rr", var_log_rr)]}
    if isinstance(type, str) and type in VALID_TYPES:
        columns["type"] = np.full(len(data), type, dtype=object)
    elif isinstance(type, str) and type not in data.columns:
        raise ValueError(f"type={type!r} is neither one of "
                         f"{list(VALID_TYPES)} nor a column of data; columns "
                         f"are {list(data.columns)}")
    else:
        columns["type"] = _column(data, type, "type")
    labels = np.asarray(data.index)
    groups = pd.Series(columns["study"]).groupby(columns["study"], sort=False)
    out = {}
    for label, rows in groups.indices.items():
        kinds = pd.unique(columns["type"][rows])
        if len(kinds) != 1:
            raise ValueError(f"study {label!r}: type varies within the "
                             f"study ({list(kinds)}); give one of "
                             f"{list(VALID_TYPES)} per study")
        names = [f"row {labels[i]!r} (level {j} of study {label!r})"
                 for j, i in enumerate(rows)]
        arrays = [columns[key][rows] for key in
                  ("cases", "n", "log_rr", "var_log_rr")]
        out[label] = _covariance(*_checked(*arrays, kinds[0], names))
    return out


def _type_name(value):
    return type(value).__name__


def _column(data, value, name):
    """A column of ``data`` named by ``value``, or ``value`` as one per row."""
    if isinstance(value, str):
        if value not in data.columns:
            raise ValueError(f"{name}={value!r} is not a column of data; "
                             f"columns are {list(data.columns)}")
        return data[value].to_numpy()
    array = np.asarray(value)
    if array.ndim != 1 or len(array) != len(data):
        raise ValueError(f"{name} must be a column name or one value per row "
                         f"of data ({len(data)}); got shape {array.shape}")
    return array


def _checked(cases, n, log_rr, var_log_rr, kind, levels):
    """Validate one study's inputs; return float arrays and the type."""
    if not isinstance(kind, str) or kind not in VALID_TYPES:
        raise ValueError(f"type={kind!r} is unknown; valid types are "
                         f"{list(VALID_TYPES)} (incidence-rate, case-control,"
                         " cumulative-incidence)")
    arrays = {}
    for name, value in [("cases", cases), ("n", n), ("log_rr", log_rr),
                        ("var_log_rr", var_log_rr)]:
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numbers, one per exposure "
                             "level") from None
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, one value per "
                             f"exposure level; got shape {array.shape}")
        arrays[name] = array
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"cases, n, log_rr and var_log_rr must have one "
                         f"value per exposure level each; lengths {lengths}")
    if lengths["cases"] < 2:
        raise ValueError("at least 2 exposure levels are needed (the "
                         f"reference and one more); got {lengths['cases']}")
    a, n, b, v = (arrays[k] for k in ("cases", "n", "log_rr", "var_log_rr"))
    _check_counts(a, n, kind, levels)
    if b[0] != 0:
        raise ValueError(f"{levels[0]} is the reference level: its log_rr "
                         f"must be 0, got {b[0]!r}; put the reference level "
                         "first")
    if not (np.isnan(v[0]) or v[0] == 0):
        raise ValueError(f"{levels[0]} is the reference level: its "
                         f"var_log_rr must be NaN or 0, got {v[0]!r}")
    bad = [j for j in range(1, len(b)) if not np.isfinite(b[j])]
    if bad:
        raise ValueError(f"log_rr is not finite at {_names(levels, bad)}; "
                         "every non-reference level needs an estimate")
    bad = [j for j in range(1, len(v)) if not (np.isfinite(v[j]) and v[j] > 0)]
    if bad:
        raise ValueError(f"var_log_rr is not positive and finite at "
                         f"{_names(levels, bad)} ({list(v[bad])}); "
                         "non-reference levels need a positive variance")
    return a, n, b, v, kind, levels


def _check_counts(a, n, kind, levels):
    for name, counts in (("cases", a), ("n", n)):
        bad = [j for j in range(len(counts))
               if not (np.isfinite(counts[j]) and counts[j] > 0)]
        if bad:
            raise ValueError(f"{name} must be positive and finite; not at "
                             f"{_names(levels, bad)} ({list(counts[bad])})")
    if kind != "ir":
        bad = [j for j in range(len(a)) if not n[j] > a[j]]
        if bad:
            raise ValueError(
                f"n must exceed cases for type {kind!r} (n counts the "
                f"subjects, cases included, so the non-cases n - cases must "
                f"be positive); not at {_names(levels, bad)}")


def _names(levels, indices):
    return ", ".join(levels[j] for j in indices)


def _fitted_cases(a0, rr, n, kind):
    """Fitted cases A_j given A_0, and dA_j/dA_0 (module docstring)."""
    if kind == "cc":
        odds = rr * a0 / (n[0] - a0)
        d_odds = rr * n[0] / (n[0] - a0) ** 2
        return n * odds / (1 + odds), n * d_odds / (1 + odds) ** 2
    slope = rr * n / n[0]
    return a0 * slope, slope


def _reference_count(a, n, b, kind):
    """Solve sum_j A_j(A_0) = sum_j a_j for A_0 (safeguarded Newton)."""
    rr, total = np.exp(b), a.sum()
    low, high = 0.0, total if kind == "ir" else min(total, n[0])
    a0 = a[0] if low < a[0] < high else (low + high) / 2
    for _ in range(_MAX_NEWTON):
        fitted, slope = _fitted_cases(a0, rr, n, kind)
        excess = fitted.sum() - total
        if excess > 0:
            high = a0
        else:
            low = a0
        step = excess / slope.sum()
        proposal = a0 - step
        if not low < proposal < high:
            proposal = (low + high) / 2
        if abs(proposal - a0) <= 4 * np.finfo(float).eps * a0:
            return proposal
        a0 = proposal
    return a0


def _covariance(a, n, b, v, kind, levels):
    a0 = _reference_count(a, n, b, kind)
    fitted = _fitted_cases(a0, np.exp(b), n, kind)[0]
    fitted[0] = a0
    if kind == "ir":
        shared, fitted_var = 1 / a0, 1 / fitted + 1 / a0
    elif kind == "ci":
        over = [j for j in range(len(a)) if not fitted[j] < n[j]]
        if over:
            raise ValueError(
                f"the risk ratios imply a risk of 1 or more at "
                f"{_names(levels, over)}: fitted cases {list(fitted[over])} "
                f"against n {list(n[over])}; check the data or use "
                "type='cc' or 'ir'")
        shared = 1 / a0 - 1 / n[0]
        fitted_var = 1 / fitted - 1 / n + shared
    else:
        non_cases = n - fitted
        shared = 1 / a0 + 1 / non_cases[0]
        fitted_var = 1 / fitted + 1 / non_cases + shared
    scale = np.sqrt(v[1:] / fitted_var[1:])
    cov = shared * np.outer(scale, scale)
    np.fill_diagonal(cov, v[1:])
    return cov
