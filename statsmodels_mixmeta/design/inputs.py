"""
The constructor arguments of MixMeta turned into arrays and names.

Outcome and row labels from pandas objects, statsmodels-style predictor
names, per-study arrays restricted to the rows kept, grouping labels and
random-effects designs of the levels, and the per-group ``addS`` matrices,
validated with messages that name the group or argument at fault.  The
statistics never see these helpers.
"""
import numpy as np
import pandas as pd

from . import core as _design


def check_option(name, value, valid):
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(
            f"unknown {name} {value!r}; valid values are {', '.join(valid)}")
    return value.lower()


def outcome_names(endog):
    if isinstance(endog, pd.DataFrame):
        return [str(c) for c in endog.columns]
    if isinstance(endog, pd.Series) and endog.name is not None:
        return [str(endog.name)]
    return None


def default_outcome_names(k):
    return ["y"] if k == 1 else [f"y{j + 1}" for j in range(k)]


def row_labels(endog):
    if isinstance(endog, (pd.Series, pd.DataFrame)):
        return np.asarray(endog.index)
    return np.arange(np.shape(endog)[0])


def term_names(exog, exog_used, intercept_only):
    """Predictor names: the frame's, or statsmodels' const, x1, x2, ..."""
    if intercept_only:
        return ["Intercept"]
    if isinstance(exog, pd.DataFrame):
        return [str(c) for c in exog.columns]
    const_idx = _design.constant_column(exog_used)
    names, j = [], 1
    for i in range(exog_used.shape[1]):
        if i == const_idx:
            names.append("const")
        else:
            names.append(f"x{j}")
            j += 1
    return names


def take(arr, keep):
    if keep.all():
        return arr
    if isinstance(arr, (pd.Series, pd.DataFrame)):
        return arr.iloc[np.flatnonzero(keep)]
    return np.asarray(arr)[keep]


def rows_of(S, n_rows, what):
    if S is None:
        return None
    S = np.asarray(S, dtype=float)
    if S.ndim == 0 or S.shape[0] != n_rows:
        raise ValueError(
            f"{what} must have one row per study: endog has {n_rows} rows, "
            f"{what} has shape {S.shape}")
    return S


def scor_rows(Scor, n_rows, k, keep):
    """Restrict per-study correlations to the kept rows."""
    if Scor is None or np.ndim(Scor) == 0:
        return Scor
    Scor = np.asarray(Scor, dtype=float)
    n_pairs = k * (k - 1) // 2
    per_study = Scor.ndim == 2 or (Scor.shape[0] == n_rows
                                   and Scor.shape[0] != n_pairs)
    if per_study:
        if Scor.shape[0] != n_rows:
            raise ValueError(
                f"Scor has {Scor.shape[0]} rows; per-study correlations need "
                f"one row per study ({n_rows})")
        return Scor.reshape(n_rows, -1)[keep]
    return Scor


def grouping(groups, n_rows):
    """Group labels ``(n, L)``, outer to inner, and the level names."""
    if groups is None:
        return None, [None]
    if isinstance(groups, pd.DataFrame):
        names = [str(c) for c in groups.columns]
        labels = groups.to_numpy(dtype=object)
    elif isinstance(groups, pd.Series):
        names = ["group" if groups.name is None else str(groups.name)]
        labels = groups.to_numpy(dtype=object)[:, None]
    else:
        labels = np.asarray(groups, dtype=object)
        labels = labels[:, None] if labels.ndim == 1 else labels
        names = (["group"] if labels.shape[1] == 1 else
                 [f"group{i + 1}" for i in range(labels.shape[1])])
    if labels.shape[0] != n_rows:
        raise ValueError(
            f"groups must have one row per outcome row: endog has {n_rows} "
            f"rows, groups has {labels.shape[0]}")
    return labels, names


def random_designs(exog_re, n_rows, n_levels):
    """Random-effects design ``(n, q_l)`` and term names of every level."""
    if exog_re is None:
        return [np.ones((n_rows, 1))] * n_levels, [["Intercept"]] * n_levels
    items = (list(exog_re) if isinstance(exog_re, (list, tuple))
             else [exog_re] * n_levels)
    if len(items) != n_levels:
        raise ValueError(
            f"exog_re has {len(items)} designs for {n_levels} grouping "
            "levels")
    arrays, names = [], []
    for z in items:
        if isinstance(z, pd.DataFrame):
            names.append([str(c) for c in z.columns])
        z = np.asarray(z, dtype=float)
        z = z[:, None] if z.ndim == 1 else z
        if len(names) < len(arrays) + 1:
            names.append([f"z{j + 1}" for j in range(z.shape[1])])
        if z.shape[0] != n_rows:
            raise ValueError(
                f"exog_re must have one row per outcome row ({n_rows}); "
                f"got {z.shape[0]}")
        arrays.append(z)
    return arrays, names


def added_within_cov(addS, outer_labels, group_of_value):
    """
    Validate ``addS``: one full within-group covariance per outer group,
    keyed by group label (dict) or in sorted label order (list).
    """
    sizes = np.bincount(group_of_value, minlength=len(outer_labels))
    if isinstance(addS, dict):
        by_text = {str(key): value for key, value in addS.items()}
        missing = [lab for lab in outer_labels
                   if lab not in addS and str(lab) not in by_text]
        if missing:
            raise ValueError(
                f"addS has no matrix for groups {missing[:5]}")
        matrices = [addS[lab] if lab in addS else by_text[str(lab)]
                    for lab in outer_labels]
    else:
        matrices = list(addS)
        if len(matrices) != len(outer_labels):
            raise ValueError(
                f"addS has {len(matrices)} matrices for {len(outer_labels)} "
                "groups (give them in sorted group order, or as a dict)")
    out = []
    for label, size, matrix in zip(outer_labels, sizes, matrices):
        matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
        if matrix.shape != (size, size):
            raise ValueError(
                f"addS for group {label!r} is {matrix.shape[0]}x"
                f"{matrix.shape[1]}; the group has {size} observed values, "
                f"so it must be {size}x{size}")
        if np.isnan(matrix).any():
            raise ValueError(f"addS for group {label!r} has missing values; "
                             "it must cover the group's observed values")
        if np.isinf(matrix).any():
            raise ValueError(f"addS for group {label!r} has infinite values; "
                             "covariances must be finite numbers")
        if not np.allclose(matrix, matrix.T, rtol=1e-10, atol=1e-14):
            raise ValueError(f"addS for group {label!r} is not symmetric")
        smallest = np.linalg.eigvalsh(matrix)[0] if size else 0.0
        scale = max(1.0, np.abs(np.diag(matrix)).max()) if size else 1.0
        if smallest < -1e-10 * scale:
            raise ValueError(
                f"addS for group {label!r} is not positive semi-definite; "
                f"smallest eigenvalue {smallest:.6g}")
        out.append((matrix + matrix.T) / 2)
    return out
