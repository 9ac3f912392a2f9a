"""
``fit_many(..., groups=G)``: one two-level multivariate design (the same
``X``, ``S`` and nesting for every data set, only the outcomes differ)
refitted to many data sets, as a simulation study needs.

The inputs are validated once; the data sets go in chunks through the
nested kernel (:mod:`statsmodels_mixmeta.kernels.many_multilevel`) and
its climbs (:mod:`statsmodels_mixmeta.fitting.many_multilevel`).  Each row
is its own inner group (one study), as ``random="~ 1 | outer/inner"``
with one row per inner group; ``Psi`` of each level is ``cs``, ``diag`` or
``id``, fitted by ML or REML.
"""
import numpy as np
import pandas as pd

from ..fitting import many_multilevel as optimiser
from ..kernels import many_multilevel as kernel
from ..progress import chunk_progress
from .results import ManyResults, Status
from .validation import SHOW, checked_chunk_size

METHODS = ("reml", "ml")
#: Work values (of the ``(R, m, n, k, k)`` arrays) per chunk by default.
ELEMENTS = 2 ** 19


def check_bscov(bscov, n_levels=2):
    """``bscov`` as a list of one structure per level."""
    names = [bscov] * n_levels if isinstance(bscov, str) else list(bscov)
    if len(names) != n_levels:
        raise ValueError(f"bscov must name one structure per level of "
                         f"groups ({n_levels}), got {bscov!r}")
    for name in names:
        if name not in optimiser.STRUCTURES:
            raise ValueError(
                f"bscov must be one of {optimiser.STRUCTURES} at each level "
                f"of fit_many with groups (unstr is not supported there), "
                f"got {bscov!r}")
    return names


def check_groups(groups, n_rows):
    """Outer codes ``0..m-1`` from ``groups`` ``(n_rows, 2)`` (labels,
    outermost first, or a DataFrame of two columns), checking that each
    inner group is one row."""
    frame = pd.DataFrame(groups.to_numpy() if isinstance(
        groups, pd.DataFrame) else np.asarray(groups, dtype=object))
    if frame.ndim != 2 or frame.shape[0] != n_rows:
        raise ValueError(f"groups must be (n_rows, n_levels) with n_rows = "
                         f"{n_rows} (axis 0 of endog), got {frame.shape}")
    if frame.shape[1] != 2:
        raise ValueError(f"groups must have 2 columns (outer, inner) for "
                         f"fit_many; got {frame.shape[1]}")
    if frame.isna().to_numpy().any():
        rows = np.flatnonzero(frame.isna().to_numpy().any(axis=1))[:SHOW]
        raise ValueError(f"groups must not be missing; rows {rows.tolist()} "
                         f"are")
    outer, _ = pd.factorize(frame[0])
    pairs = pd.Series(list(zip(outer, frame[1])))
    repeated = np.flatnonzero(pairs.duplicated(keep=False).to_numpy())
    if repeated.size:
        raise ValueError(
            f"groups: each inner group must be one row (one study) within "
            f"its outer group for fit_many; rows {repeated[:SHOW].tolist()} "
            f"share an inner group")
    return outer


def check_arrays(endog, S, exog):
    """``y (R, n_rows, k)``, ``S (n_rows, k, k)`` and ``exog (n_rows,
    p)``, copies; the caller's arrays are not modified."""
    endog = np.asarray(endog, dtype=float)
    if endog.ndim == 2:
        endog = endog[:, :, None]
    if endog.ndim != 3:
        raise ValueError(f"endog must be (n_rows, k, n_sets) with groups, "
                         f"got {endog.ndim} dimensions {endog.shape}")
    n_rows, k, _ = endog.shape
    bad = ~np.isfinite(endog).all(axis=1)
    if bad.any():
        rows, sets = np.nonzero(bad)
        raise ValueError(
            f"endog must be finite with groups (missing outcomes are not "
            f"supported by the multilevel fit_many); (row, data set) "
            f"{list(zip(rows[:SHOW].tolist(), sets[:SHOW].tolist()))} "
            f"are not")
    S = np.asarray(S, dtype=float)
    m = k * (k + 1) // 2
    if S.shape == (n_rows, m) and k > 1:
        cols, rows = np.triu_indices(k)
        full = np.empty((n_rows, k, k))
        full[:, rows, cols] = S
        full[:, cols, rows] = S
        S = full
    elif k == 1 and S.shape == (n_rows,):
        S = S[:, None, None]
    if S.shape != (n_rows, k, k):
        raise ValueError(
            f"S must be shared by all data sets with groups: (n_rows, k, "
            f"k) = {(n_rows, k, k)} or its lower triangles (n_rows, "
            f"k(k+1)/2) = {(n_rows, m)}, got {S.shape}")
    bad = ~np.isfinite(S).all(axis=(1, 2))
    bad |= (np.abs(S - np.swapaxes(S, 1, 2))
            > 1e-10 * np.abs(S).max(axis=(1, 2), keepdims=True)).any(
                axis=(1, 2))
    bad[~bad] = ~(np.linalg.eigvalsh(S[~bad])[:, 0] > 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:SHOW].tolist()
        raise ValueError(f"S must be finite, symmetric and positive "
                         f"definite; rows {rows} are not")
    exog = np.ones((n_rows, 1)) if exog is None else np.array(
        exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    if exog.ndim != 2 or exog.shape[0] != n_rows or \
            not np.isfinite(exog).all():
        raise ValueError(f"exog must be finite (n_rows, p) with n_rows = "
                         f"{n_rows} (axis 0 of endog), shared by all data "
                         f"sets; got shape {exog.shape}")
    if np.linalg.matrix_rank(exog) < exog.shape[1]:
        raise ValueError("exog must have full column rank")
    return np.moveaxis(endog, 2, 0).copy(), S, exog


def fit_many_multilevel(endog, S, exog, groups, method="reml",
                        bscov=("cs", "cs"), chunk_size=None, maxiter=100,
                        progress=None):
    """The ``groups=`` branch of :func:`statsmodels_mixmeta.fit_many`."""
    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} for fit_many "
                         f"with groups, got {method!r}")
    y, S_rows, exog = check_arrays(endog, S, exog)
    n_sets, n_rows, k = y.shape
    outer = check_groups(groups, n_rows)
    names = check_bscov(bscov)
    for name in names:
        optimiser.cone_basis(name, k)
    stack = kernel.NestedStack(S_rows, exog, outer, method == "reml")
    q = stack.n_fixed
    if n_rows * k <= q + sum(len(optimiser.cone_basis(b, k)) for b in names):
        raise ValueError(f"endog has {n_rows * k} values per data set, too "
                         f"few for {q} coefficients and the Psi parameters")
    if chunk_size is None:
        step = max(16, ELEMENTS // (stack.mask.size * k * k))
    else:
        step = checked_chunk_size(chunk_size)
    out = {"params": np.full((n_sets, q), np.nan),
           "bse": np.full((n_sets, q), np.nan),
           "psi": np.full((n_sets, 2, k, k), np.nan),
           "llf": np.full(n_sets, np.nan), "q": np.full(n_sets, np.nan),
           "converged": np.zeros(n_sets, bool),
           "n_iter": np.zeros(n_sets, np.int32)}
    bar = chunk_progress(n_sets, step, progress, "fit_many", "data set")
    try:
        for start in range(0, n_sets, step):
            part = slice(start, min(start + step, n_sets))
            _fit_chunk(stack, stack.pad(y[part]), names, maxiter,
                       {key: v[part] for key, v in out.items()})
            bar.update(part.stop - part.start)
    finally:
        bar.close()
    status = np.where(out["converged"], Status.FITTED,
                      Status.UNCERTIFIED).astype(np.int8)
    return ManyResults(
        method=method, endog=np.moveaxis(y, 0, 2), S=S_rows, exog=exog,
        tau2=np.full(n_sets, np.nan), gap=np.full(n_sets, np.nan),
        n_obs=np.full(n_sets, n_rows * k, np.int32), status=status,
        bscov=names, groups=groups, **out)


def _fit_chunk(stack, y, names, maxiter, out):
    """Fit the data sets of one chunk into the views ``out``."""
    R, k = y.shape[0], stack.k
    psi_outer, psi_inner, fit, converged, n_iter = optimiser.maximise(
        stack, y, names, maxiter)
    out["psi"][:, 0], out["psi"][:, 1] = psi_outer, psi_inner
    out["llf"][:] = fit.llf
    out["params"][:] = fit.beta
    out["bse"][:] = np.sqrt(np.einsum("raa->ra", fit.cov_beta))
    out["converged"][:] = converged
    out["n_iter"][:] = n_iter
    zero = np.zeros((R, k, k))
    out["q"][:] = kernel.evaluate(stack, y, zero, zero).quad
