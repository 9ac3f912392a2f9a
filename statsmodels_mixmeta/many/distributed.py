"""
``fit_many`` on Dask arrays: the problems of each Dask chunk (along the
problem axis) are fitted by the numpy path on whatever scheduler is active,
including a ``dask.distributed`` cluster (``map_blocks``).

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


def _fit_block(endog, S, exog, method, chunk_size, max_memory, maxiter,
               block_info=None):
    from .fit import fit_many
    offset = block_info[0]["array-location"][1][0] if block_info else 0
    res = fit_many(endog, S, exog, method=method, chunk_size=chunk_size,
                   max_memory=max_memory, maxiter=maxiter,
                   problem_offset=offset)
    rows = [res.params.T, res.bse.T] + [
        np.asarray(getattr(res, name), dtype=float)[None]
        for name in _SCALARS]
    return np.concatenate(rows, axis=0)


def fit_many_dask(endog, S, exog, method, chunk_size, max_memory, maxiter,
                  compute):
    """
    :func:`~statsmodels_mixmeta.many.fit.fit_many` over the chunks of Dask
    arrays ``endog`` and ``S`` (``exog`` a numpy design shared by all
    problems, or None).  With ``compute=False`` the result's arrays are
    Dask arrays, computed on access.
    """
    da = _import_dask_array()
    endog = da.asarray(endog)
    S = da.asarray(S)
    if endog.ndim != 2 or S.shape != endog.shape:
        raise ValueError(
            f"endog and S must be Dask arrays of one shape (n_studies, "
            f"n_problems), got {endog.shape} and {S.shape}")
    if exog is None:
        exog = np.ones((endog.shape[0], 1))
    exog = np.asarray(exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    if exog.ndim != 2 or exog.shape[0] != endog.shape[0]:
        raise ValueError(
            "with Dask arrays, exog must be a numpy design (n_studies, p) "
            f"shared by all problems with n_studies = {endog.shape[0]} "
            f"(axis 0 of endog), got {exog.shape}")
    endog = endog.rechunk({0: -1})
    S = S.rechunk(endog.chunks)
    p = exog.shape[1]
    n_fields = 2 * p + len(_SCALARS)
    packed = da.map_blocks(
        _fit_block, endog, S, exog=exog, method=method,
        chunk_size=chunk_size, max_memory=max_memory, maxiter=maxiter,
        dtype=float, chunks=((n_fields,), endog.chunks[1]))
    if compute:
        packed = packed.compute()
    fields = {"params": packed[:p].T, "bse": packed[p:2 * p].T}
    for k, name in enumerate(_SCALARS):
        row = packed[2 * p + k]
        fields[name] = row.astype(_TYPES[name]) if name in _TYPES else row
    return ManyResults(method=method, endog=endog, S=S, exog=exog, **fields)
