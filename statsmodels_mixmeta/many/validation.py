"""
Validate the arrays of :func:`statsmodels_mixmeta.many.fit.fit_many`: shapes
that must agree, variances that must be positive where a value is observed,
a design that must be finite; errors name the argument, the axis and the
problems and studies at fault.
"""
import numpy as np

#: Problems and studies listed in an error message at most.
SHOW = 10


def _listed(values):
    """The first ``SHOW`` of ``values``, and how many more."""
    text = ", ".join(str(v) for v in values[:SHOW])
    more = len(values) - SHOW
    return text + (f" and {more} more" if more > 0 else "")


def _positions(mask, what, offset=0):
    """``(study, problem)`` pairs of ``mask``, the first ``SHOW``, and the
    problems they are in (numbered from ``offset``)."""
    studies, problems = np.nonzero(mask)
    problems = problems + offset
    pairs = [f"(study {s}, problem {p})" for s, p in zip(studies[:SHOW],
                                                         problems[:SHOW])]
    pairs = ", ".join(pairs) + (f" and {len(studies) - SHOW} more"
                                if len(studies) > SHOW else "")
    distinct = np.unique(problems)
    where = (f"problem {distinct[0]}" if len(distinct) == 1 else
             f"{len(distinct)} problems: {_listed(distinct)}")
    return f"{len(studies)} {what}: {pairs} (in {where})"


def as_float(array, name):
    """``array`` as a float ndarray, or a ValueError naming it (complex
    values are refused: their imaginary parts would be dropped)."""
    if np.iscomplexobj(array):
        raise ValueError(f"{name} must be real numbers, got complex values")
    try:
        return np.asarray(array, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (an array of floats, NaN "
                         f"for unobserved), could not convert it: "
                         f"{exc}") from None


def _shape_fault(name, shape, expected, axis_names, reference="endog"):
    """Which axes of ``shape`` differ from ``expected``, with both sizes."""
    faults = [f"{axis_names[a]} (axis {a}): {expected[a]} in {reference}, "
              f"{shape[a]} in {name}" for a in range(len(expected))
              if shape[a] != expected[a]]
    return "; ".join(faults)


def _finite_design(exog):
    """A shared design must be finite: name the studies and columns."""
    bad = ~np.isfinite(exog)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = np.flatnonzero(bad.any(axis=0))
        raise ValueError(
            f"exog must be finite (NaN or inf in a design shared by all "
            f"problems); {len(rows)} studies are not: studies "
            f"[{_listed(rows)}], columns [{_listed(cols)}]")


def check_inputs(endog, S, exog, offset=0):
    """
    ``endog`` and ``S`` as float ``(n_studies, n_problems)`` and ``exog``
    as ``(n_studies, p)`` or ``(n_studies, p, n_problems)``; the caller's
    arrays are not modified.
    """
    endog = as_float(endog, "endog")
    S = as_float(S, "S")
    if endog.ndim == 1:
        endog = endog[:, None]
    if S.ndim == 1 and endog.shape[1] == 1:
        S = S[:, None]
    if endog.ndim != 2:
        raise ValueError(
            f"endog must be (n_studies, n_problems) for one outcome or "
            f"(n_studies, k, n_problems) for several, got {endog.ndim} "
            f"dimensions {endog.shape}")
    if S.ndim != 2:
        raise ValueError(
            f"S must have the shape of endog {endog.shape} (variances, one "
            f"per study and problem), got {S.ndim} dimensions {S.shape}"
            + (" (several outcomes need endog (n_studies, k, n_problems))"
               if S.ndim in (3, 4) else ""))
    if S.shape != endog.shape:
        raise ValueError(
            f"S must have the shape of endog {endog.shape} (variances, one "
            f"per study and problem), got {S.shape}: they differ in "
            + _shape_fault("S", S.shape, endog.shape,
                           ("n_studies", "n_problems")))
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
    exog = check_exog(exog, n_studies, n_problems, 1, observed, offset)
    return endog, S, exog


def _pairs(mask, what, offset=0):
    """``(study, problem)`` pairs of a ``(n_problems, n_studies)`` mask."""
    return _positions(mask.T, what, offset)


def check_multivariate(endog, S, exog, offset=0):
    """
    Validate the multivariate form: ``endog`` ``(n_studies, k,
    n_problems)``, ``S`` ``(n_studies, k, k, n_problems)`` or its lower
    triangles by column ``(n_studies, k(k+1)/2, n_problems)``, ``exog``
    ``(n_studies, p)`` or ``(n_studies, p, n_problems)``.  Returns copies
    of ``y`` and ``S`` laid out problem first, ``y (R, N, k)`` and
    ``S (R, N, k, k)``, and ``exog`` (per problem: zero where a problem
    observes no outcome of a study).
    """
    endog = as_float(endog, "endog")
    S = as_float(S, "S")
    S = full_S(S, endog.shape)
    n_studies, k, n_problems = endog.shape
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
    exog = check_exog(exog, n_studies, n_problems, 2,
                      observed.any(axis=2).T, offset)
    return np.array(y), np.array(S), exog


def full_S(S, endog_shape):
    """
    ``S`` ``(n_studies, k, k, n_problems)`` for ``endog`` of shape
    ``(n_studies, k, n_problems)``, from itself or from its lower triangles
    by column ``(n_studies, k(k+1)/2, n_problems)`` (a new array); a
    ValueError naming the axes and sizes that do not fit.
    """
    n_studies, k, n_problems = endog_shape
    m = k * (k + 1) // 2
    full, vech = (n_studies, k, k, n_problems), (n_studies, m, n_problems)
    forms = (f"S must be (n_studies, k, k, n_problems) = {full} or its "
             f"lower triangles by column (n_studies, k(k+1)/2, n_problems) "
             f"= {vech} for endog {tuple(endog_shape)}, got {S.shape}")
    if S.ndim == 3 and S.shape == vech:
        cols, rows = np.triu_indices(k)
        out = np.empty(full)
        out[:, rows, cols] = S
        out[:, cols, rows] = S
        return out
    if S.ndim == 3:
        if S.shape[1] != m:
            forms += (f": lower triangles of k = {k} outcomes (axis 1 of "
                      f"endog) have k(k+1)/2 = {m} values on axis 1, not "
                      f"{S.shape[1]}")
        faults = [f"{name} (axis {a}): {vech[a]} in endog, {S.shape[a]} "
                  f"in S" for a, name in ((0, "n_studies"),
                                          (2, "n_problems"))
                  if S.shape[a] != vech[a]]
        raise ValueError(forms + ("; they differ in " + "; ".join(faults)
                                  if faults else ""))
    if S.ndim == 4 and S.shape != full:
        axes = [a for a in range(4) if S.shape[a] != full[a]]
        names = ("n_studies", "k", "k", "n_problems")
        raise ValueError(forms + f": they differ in axis {axes} (" + ", ".join(
            f"{names[a]}: {full[a]} from endog, {S.shape[a]} in S"
            for a in axes) + ")")
    if S.ndim != 4:
        raise ValueError(forms)
    return S


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def checked_chunk_size(chunk_size):
    """``chunk_size`` as a positive int, or a ValueError."""
    if not _is_integer(chunk_size) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (problems "
                         f"per chunk), got {chunk_size!r}")
    return int(chunk_size)


def check_options(method, methods, bscov, chunk_size, max_memory, maxiter,
                  problem_offset):
    """
    The options of ``fit_many``, each a ValueError naming it and what
    would be valid; returns ``method`` in lower case.
    """
    method = str(method).lower()
    if method not in methods:
        raise ValueError(f"method must be one of {methods} for fit_many, "
                         f"got {method!r}")
    if bscov not in ("unstr", "diag", "id"):
        raise ValueError(f"bscov must be one of ('unstr', 'diag', 'id'), "
                         f"got {bscov!r}")
    if chunk_size is not None:
        checked_chunk_size(chunk_size)
    if max_memory is not None:
        try:
            budget = float(max_memory)
        except (TypeError, ValueError):
            budget = np.nan
        if isinstance(max_memory, bool) or not 0 < budget < np.inf:
            raise ValueError(f"max_memory must be a positive, finite number "
                             f"of bytes, got {max_memory!r}")
    if not _is_integer(maxiter) or maxiter < 1:
        raise ValueError(f"maxiter must be a positive integer (Newton "
                         f"iterations per problem), got {maxiter!r}")
    if not _is_integer(problem_offset) or problem_offset < 0:
        raise ValueError(f"problem_offset must be a non-negative integer "
                         f"(the number of the first problem), got "
                         f"{problem_offset!r}")
    return method


def check_exog(exog, n_studies, n_problems, problem_axis, studies, offset):
    """
    The design shared by all problems ``(n_studies, p)`` (an intercept when
    None), or one per problem ``(n_studies, p, n_problems)``, finite where
    ``studies`` ``(n_studies, n_problems)`` marks a study observed in a
    problem; a per-problem design is set to 0 elsewhere (those studies
    enter with no weight).  ``problem_axis`` is the axis of ``endog`` that
    counts the problems, named in the errors.
    """
    if exog is None:
        return np.ones((n_studies, 1))
    exog = as_float(exog, "exog")
    if exog.ndim == 1:
        exog = exog[:, None]
    if exog.ndim not in (2, 3) or exog.shape[0] != n_studies:
        raise ValueError(
            f"exog must be (n_studies, p) or (n_studies, p, n_problems) with "
            f"n_studies = {n_studies} (axis 0 of endog), got {exog.shape}")
    if exog.ndim == 3 and exog.shape[2] != n_problems:
        raise ValueError(
            f"exog per problem must be (n_studies, p, n_problems) with "
            f"n_problems = {n_problems} (axis {problem_axis} of endog), got "
            f"{exog.shape}: they differ in axis 2")
    if exog.shape[1] == 0:
        raise ValueError("exog must have at least one column (the "
                         "intercept), got none")
    if exog.ndim == 2:
        _finite_design(exog)
        return exog
    bad = studies & ~np.isfinite(exog).all(axis=1)
    if bad.any():
        raise ValueError("exog must be finite where endog is observed; "
                         + _positions(bad, "are not", offset))
    return np.where(studies[:, None, :], exog, 0.0)
