"""
``fit_many`` on Dask arrays: the problems of each Dask chunk (along the
problem axis) are fitted by the numpy path on whatever scheduler is active,
including a ``dask.distributed`` cluster (``blockwise``: ``S`` and a design
per problem have other numbers of axes than ``endog``).

The arrays must be chunked along the problem axis (the last) only: a chunk
of studies (or outcomes) is not a problem, and merging such chunks behind
the caller's back could need far more memory than the chunks they chose,
so a chunking along another axis is refused with the ``rechunk`` call that
fixes it.  ``S`` (and a design per problem) may have other problem chunks
than ``endog``; they are rechunked to ``endog``'s.

Each block returns its results packed as one ``(n_fields, block)`` array;
the numbers are those of the numpy path on the same problems in the same
chunks (bit-identical when the numpy call uses ``chunk_size`` equal to the
Dask chunks, or the chunks divide into the numpy path's).
"""
import numpy as np

from .results import ManyResults

#: Fields packed per problem, after ``params`` and ``bse``.
_SCALARS = ("tau2", "llf", "q", "gap", "converged", "n_iter", "n_obs",
            "status")
_TYPES = {"converged": bool, "n_iter": np.int32, "n_obs": np.int32,
          "status": np.int8}


def is_dask(array):
    """Whether ``array`` is a Dask array (without importing Dask)."""
    return type(array).__module__.split(".")[0] == "dask"


def _import_dask_array():
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "fit_many on Dask arrays needs dask: install the 'dask' extra, "
            "pip install 'statsmodels-mixmeta[dask]'") from exc
    return da


def _fit_block(endog, S, where, exog, method, chunk_size, max_memory,
               maxiter, problem_offset, engine="numpy"):
    from .fit import fit_many
    offset = problem_offset + (int(where[0]) if where.size else 0)
    res = fit_many(endog, S, exog, method=method, chunk_size=chunk_size,
                   max_memory=max_memory, maxiter=maxiter,
                   problem_offset=offset, engine=engine)
    rows = [res.params.T, res.bse.T] + [
        np.asarray(getattr(res, name), dtype=float)[None]
        for name in _SCALARS]
    return np.concatenate(rows, axis=0)


def _design(da, exog, n_studies, n_problems, problem_chunks):
    """
    ``exog`` for the blocks: a numpy design ``(n_studies, p)`` shared by
    all problems (None for the intercept), or a Dask design per problem
    ``(n_studies, p, n_problems)`` (from numpy or Dask, chunked along the
    problem axis only) with ``endog``'s problem chunks.
    """
    if np.ndim(exog) == 3:
        if exog.shape[0] != n_studies or exog.shape[2] != n_problems:
            raise ValueError(
                f"exog per problem must be (n_studies, p, n_problems) = "
                f"({n_studies}, p, {n_problems}), got {exog.shape}")
        if is_dask(exog):
            _problem_axis_only(exog, "exog")
        return da.asarray(exog).astype(float).rechunk(
            {0: -1, 1: -1, 2: problem_chunks})
    exog = np.ones((n_studies, 1)) if exog is None else np.asarray(
        exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    if exog.ndim != 2 or exog.shape[0] != n_studies:
        raise ValueError(
            f"with Dask arrays, exog must be a design (n_studies, p) shared "
            f"by all problems or (n_studies, p, n_problems) per problem, "
            f"with n_studies = {n_studies} (axis 0 of endog), got "
            f"{exog.shape}")
    return exog


def _design_args(exog):
    """``blockwise`` arguments: a design per problem is blocked with the
    problems (passed positionally), a shared one passed whole (keyword)."""
    if exog.ndim == 3:
        return [exog, "npr"], {}
    return [], {"exog": exog}


def fit_many_dask(endog, S, exog, method, chunk_size, max_memory, maxiter,
                  compute, problem_offset=0, engine="numpy"):
    """
    :func:`~statsmodels_mixmeta.many.fit.fit_many` over the chunks of Dask
    arrays ``endog`` and ``S`` ``(n_studies, n_problems)``, chunked along
    the problem axis only (``S`` is rechunked to ``endog``'s problem
    chunks), each chunk with ``engine`` (resolved by the caller, so that
    every worker runs the engine numpy input would).  ``exog`` is a design
    ``(n_studies, p)`` shared by all problems (numpy, or small enough to
    compute), None, or a design per problem ``(n_studies, p,
    n_problems)`` (numpy or Dask, chunked along the problem axis only,
    rechunked to ``endog``'s problem chunks).  With
    ``compute=False`` the result's arrays are Dask arrays, computed on
    access.
    """
    da = _import_dask_array()
    endog = da.asarray(endog)
    S = da.asarray(S)
    if endog.ndim != 2 or S.shape != endog.shape:
        raise ValueError(
            f"endog and S must be Dask arrays of one shape (n_studies, "
            f"n_problems), got {endog.shape} and {S.shape}")
    n_studies, n_problems = endog.shape
    _problem_axis_only(endog, "endog")
    _problem_axis_only(S, "S")
    S = S.rechunk({1: endog.chunks[1]})
    exog = _design(da, exog, n_studies, n_problems, endog.chunks[1])
    p = exog.shape[1]
    n_fields = 2 * p + len(_SCALARS)
    where = da.arange(n_problems, chunks=endog.chunks[1])
    arrays, kwargs = _design_args(exog)
    packed = da.blockwise(
        _fit_block, "fr", endog, "nr", S, "nr", where, "r", *arrays,
        new_axes={"f": n_fields}, concatenate=True, dtype=float,
        method=method, chunk_size=chunk_size, max_memory=max_memory,
        maxiter=maxiter, problem_offset=problem_offset, engine=engine,
        **kwargs)
    if compute:
        packed = packed.compute()
    fields = {"params": packed[:p].T, "bse": packed[p:2 * p].T}
    for k, name in enumerate(_SCALARS):
        row = packed[2 * p + k]
        fields[name] = row.astype(_TYPES[name]) if name in _TYPES else row
    res = ManyResults(method=method, endog=endog, S=S, exog=exog, **fields)
    res.engine = engine if exog.ndim == 2 and exog.shape[1] == 1 \
        else "numpy"
    return res


def _fit_block_multivariate(endog, S, where, exog, method, bscov,
                            chunk_size, max_memory, maxiter,
                            problem_offset=0):
    from .fit import fit_many
    offset = problem_offset + (int(where[0]) if where.size else 0)
    res = fit_many(endog, S, exog, method=method, bscov=bscov,
                   chunk_size=chunk_size, max_memory=max_memory,
                   maxiter=maxiter, problem_offset=offset)
    n = res.params.shape[0]
    rows = [res.params.T, res.bse.T, res.psi.reshape(n, -1).T] + [
        np.asarray(getattr(res, name), dtype=float)[None]
        for name in _SCALARS[1:]]
    return np.concatenate(rows, axis=0)


def _problem_axis_only(array, name):
    """Refuse a Dask array chunked along any axis but the last."""
    for axis, chunks in enumerate(array.chunks[:-1]):
        if len(chunks) > 1:
            raise ValueError(
                f"{name} must be chunked along the problem axis (axis "
                f"{array.ndim - 1}) only, got {len(chunks)} chunks along "
                f"axis {axis} {chunks}: rechunk it, e.g. "
                f"{name}.rechunk({{{axis}: -1}})")


def fit_many_dask_multivariate(endog, S, exog, method, bscov, chunk_size,
                               max_memory, maxiter, compute,
                               problem_offset=0):
    """
    The multivariate :func:`~statsmodels_mixmeta.many.fit.fit_many` over
    the chunks of Dask arrays ``endog`` ``(n_studies, k, n_problems)`` and
    ``S`` ``(n_studies, k, k, n_problems)`` or its lower triangles
    ``(n_studies, k(k+1)/2, n_problems)``, chunked along the problem axis
    only (``S`` is rechunked to ``endog``'s problem chunks); ``exog`` as
    in :func:`fit_many_dask`.
    """
    da = _import_dask_array()
    endog, S = da.asarray(endog), da.asarray(S)
    n_studies, k, n_problems = endog.shape
    m = k * (k + 1) // 2
    full = (n_studies, k, k, n_problems)
    vech = (n_studies, m, n_problems)
    if S.shape not in (full, vech):
        raise ValueError(
            f"S must be (n_studies, k, k, n_problems) = {full} or its lower "
            f"triangles (n_studies, k(k+1)/2, n_problems) = {vech} for "
            f"endog {endog.shape}, got {S.shape}")
    _problem_axis_only(endog, "endog")
    _problem_axis_only(S, "S")
    S = S.rechunk({S.ndim - 1: endog.chunks[2]})
    exog = _design(da, exog, n_studies, n_problems, endog.chunks[2])
    kp = k * exog.shape[1]
    n_fields = 2 * kp + k * k + len(_SCALARS) - 1
    where = da.arange(n_problems, chunks=endog.chunks[2])
    arrays, kwargs = _design_args(exog)
    packed = da.blockwise(
        _fit_block_multivariate, "fr", endog, "nkr", S,
        "nabr" if S.ndim == 4 else "nmr", where, "r", *arrays,
        new_axes={"f": n_fields}, concatenate=True, dtype=float,
        method=method, bscov=bscov, chunk_size=chunk_size,
        max_memory=max_memory, maxiter=maxiter,
        problem_offset=problem_offset, **kwargs)
    if compute:
        packed = packed.compute()
    fields = {"params": packed[:kp].T, "bse": packed[kp:2 * kp].T,
              "psi": packed[2 * kp:2 * kp + k * k].T.reshape(
                  n_problems, k, k)}
    for i, name in enumerate(_SCALARS[1:]):
        row = packed[2 * kp + k * k + i]
        fields[name] = row.astype(_TYPES[name]) if name in _TYPES else row
    if S.ndim == 3:                 # the full matrices, for .problem(j)
        cols, rows = np.triu_indices(k)
        position = np.empty((k, k), int)
        position[rows, cols] = position[cols, rows] = np.arange(m)
        S = S[:, position.ravel()].reshape(full)
    return ManyResults(method=method, endog=endog, S=S, exog=exog,
                       tau2=np.full(n_problems, np.nan), bscov=bscov,
                       **fields)
