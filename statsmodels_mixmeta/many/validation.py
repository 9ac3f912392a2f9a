"""
Validate the arrays of :func:`statsmodels_mixmeta.many.fit.fit_many`: shapes
that must agree, variances that must be positive where a value is observed,
a design that must be finite; errors name the argument, the axis and the
problems and studies at fault.
"""
import numpy as np

#: Problems and studies listed in an error message at most.
SHOW = 10


def _positions(mask, what, offset=0):
    """``(study, problem)`` pairs of ``mask``, the first ``SHOW``."""
    studies, problems = np.nonzero(mask)
    problems = problems + offset
    pairs = ", ".join(f"(study {s}, problem {p})"
                      for s, p in zip(studies[:SHOW], problems[:SHOW]))
    more = f" and {len(studies) - SHOW} more" if len(studies) > SHOW else ""
    return f"{len(studies)} {what}: {pairs}{more}"


def check_inputs(endog, S, exog, offset=0):
    """
    ``endog`` and ``S`` as float ``(n_studies, n_problems)`` and ``exog``
    as ``(n_studies, p)`` or ``(n_studies, p, n_problems)``; the caller's
    arrays are not modified.
    """
    endog = np.asarray(endog, dtype=float)
    S = np.asarray(S, dtype=float)
    if endog.ndim == 1:
        endog = endog[:, None]
    if S.ndim == 1 and endog.shape[1] == 1:
        S = S[:, None]
    if endog.ndim != 2:
        raise ValueError(
            f"endog must be (n_studies, n_problems) for one outcome or "
            f"(n_studies, k, n_problems) for several, got {endog.ndim} "
            f"dimensions {endog.shape}")
    if S.shape != endog.shape:
        axis = 0 if S.ndim < 1 or S.shape[:1] != endog.shape[:1] else 1
        name = ("n_studies", "n_problems")[axis] if S.ndim == 2 else "ndim"
        raise ValueError(
            f"S must have the shape of endog {endog.shape} (variances, one "
            f"per study and problem), got {S.shape}: they differ in "
            f"{name}" + (f" (axis {axis})" if S.ndim == 2 else ""))
    n_studies, n_problems = endog.shape
    observed = ~np.isnan(endog)
    if np.isinf(endog).any():
        raise ValueError("endog must be finite or NaN (unobserved); "
                         + _positions(np.isinf(endog), "infinite values",
                                        offset))
    bad = observed & ~(S > 0)
    if bad.any():
        raise ValueError(
            "S must be a positive, finite variance wherever endog is "
            "observed; " + _positions(bad, "are not", offset)
            + " (set endog to NaN where a study does not inform a problem)")
    if np.isinf(S[observed]).any():
        raise ValueError("S must be finite where endog is observed; "
                         + _positions(observed & np.isinf(S), "are not",
                                    offset))
    if exog is None:
        exog = np.ones((n_studies, 1))
    exog = np.asarray(exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    if exog.ndim not in (2, 3) or exog.shape[0] != n_studies:
        raise ValueError(
            f"exog must be (n_studies, p) or (n_studies, p, n_problems) with "
            f"n_studies = {n_studies} (axis 0 of endog), got {exog.shape}")
    if exog.ndim == 3 and exog.shape[2] != n_problems:
        raise ValueError(
            f"exog per problem must be (n_studies, p, n_problems) with "
            f"n_problems = {n_problems} (axis 1 of endog), got {exog.shape}: "
            "they differ in axis 2")
    if exog.ndim == 2:
        if not np.isfinite(exog).all():
            rows = np.flatnonzero(~np.isfinite(exog).all(axis=1))[:SHOW]
            raise ValueError(f"exog must be finite; studies {list(rows)} "
                             "are not")
    else:
        bad = observed & ~np.isfinite(exog).all(axis=1)
        if bad.any():
            raise ValueError("exog must be finite where endog is observed; "
                             + _positions(bad, "are not", offset))
        # unobserved studies enter with no weight: any finite design
        exog = np.where(observed[:, None, :], exog, 0.0)
    return endog, S, exog


def _pairs(mask, what, offset=0):
    """``(study, problem)`` pairs of a ``(n_problems, n_studies)`` mask."""
    return _positions(mask.T, what, offset)


def check_multivariate(endog, S, exog, offset=0):
    """
    Validate the multivariate form: ``endog`` ``(n_studies, k,
    n_problems)``, ``S`` ``(n_studies, k, k, n_problems)`` or its lower
    triangles by column ``(n_studies, k(k+1)/2, n_problems)``, ``exog``
    ``(n_studies, p)``.  Returns copies laid out problem first:
    ``y (R, N, k)``, ``S (R, N, k, k)`` and ``exog (N, p)``.
    """
    endog = np.asarray(endog, dtype=float)
    S = np.asarray(S, dtype=float)
    n_studies, k, n_problems = endog.shape
    m = k * (k + 1) // 2
    if S.ndim == 3 and S.shape == (n_studies, m, n_problems) and not (
            k == 1):
        cols, rows = np.triu_indices(k)
        full = np.empty((n_studies, k, k, n_problems))
        full[:, rows, cols] = S
        full[:, cols, rows] = S
        S = full
    elif S.shape != (n_studies, k, k, n_problems):
        expected = (n_studies, k, k, n_problems)
        axes = [a for a in range(min(S.ndim, 4))
                if S.shape[a] != expected[a]] if S.ndim == 4 else []
        raise ValueError(
            f"S must be (n_studies, k, k, n_problems) = {expected} or its "
            f"lower triangles (n_studies, k(k+1)/2, n_problems) = "
            f"{(n_studies, m, n_problems)} for endog {endog.shape}, got "
            f"{S.shape}" + (f": they differ in axis {axes}" if axes else ""))
    y = np.moveaxis(endog, 2, 0)                             # (R, N, k)
    S = np.moveaxis(S, 3, 0)                                 # (R, N, k, k)
    if np.isinf(y).any():
        raise ValueError("endog must be finite or NaN (unobserved); "
                         + _pairs(np.isinf(y).any(axis=2), "studies have "
                                  "infinite values", offset))
    observed = ~np.isnan(y)
    pairs = observed[..., :, None] & observed[..., None, :]
    bad = (pairs & ~np.isfinite(S)).any(axis=(2, 3))
    if bad.any():
        raise ValueError("S must be finite for the observed outcomes; "
                         + _pairs(bad, "studies are not", offset))
    block = np.where(pairs, S, np.eye(k))
    bad = (np.abs(block - np.swapaxes(block, 2, 3))
           > 1e-10 * np.abs(block).max(axis=(2, 3), keepdims=True)
           ).any(axis=(2, 3))
    if bad.any():
        raise ValueError("S must be symmetric; " + _pairs(
            bad, "studies are not", offset))
    bad = ~(np.linalg.eigvalsh(block)[..., 0] > 0)
    if bad.any():
        raise ValueError(
            "S must be positive definite on the observed outcomes of each "
            "study; " + _pairs(bad, "studies are not", offset)
            + " (set endog to NaN for outcomes a study does not report)")
    if exog is None:
        exog = np.ones((n_studies, 1))
    exog = np.asarray(exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    if exog.ndim != 2 or exog.shape[0] != n_studies:
        raise ValueError(
            f"exog must be (n_studies, p) with n_studies = {n_studies} "
            f"(axis 0 of endog) for several outcomes (a design per problem "
            f"is univariate only), got {exog.shape}")
    if not np.isfinite(exog).all():
        rows = np.flatnonzero(~np.isfinite(exog).all(axis=1))[:SHOW]
        raise ValueError(f"exog must be finite; studies {list(rows)} are "
                         "not")
    return np.array(y), np.array(S), exog


def checked_chunk_size(chunk_size):
    """``chunk_size`` as a positive int, or a ValueError."""
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got "
                         f"{chunk_size}")
    return chunk_size
