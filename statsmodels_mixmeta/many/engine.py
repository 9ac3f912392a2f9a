"""
The engines of univariate ``fit_many``: which one runs, and the compiled
one's chunk (numba, the ``fast`` extra; imported only when used).

The compiled engine (:mod:`statsmodels_mixmeta.fitting.many_compiled`)
fits one coefficient (an intercept only, or one shared column) with ML,
REML, the method of moments or the fixed-effects model; it computes what
the numpy engine computes, problem by problem in a compiled loop.  Other
designs, and problems whose certificate it hands back, are fitted by the
numpy engine.
"""
import numpy as np

ENGINES = ("auto", "numpy", "numba")
#: Problems per chunk of the compiled engine at least (its work space is a
#: few kB per thread, its chunk's results about 100 bytes a problem).
COMPILED_CHUNK = 2 ** 16
_METHOD_CODES = {"fixed": 0, "ml": 1, "reml": 2, "mm": 3}


def _numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine):
    """``"numpy"`` or ``"numba"`` for ``engine`` ("auto": numba if it can
    be imported, else numpy)."""
    if not isinstance(engine, str) or engine.lower() not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    engine = engine.lower()
    if engine == "auto":
        return "numba" if _numba_available() else "numpy"
    if engine == "numba" and not _numba_available():
        raise ImportError(
            "fit_many(engine='numba') needs numba: install the 'fast' extra "
            "(pip install statsmodels-mixmeta[fast])")
    return engine


def compiled_applies(exog):
    """Whether the compiled engine fits this design: shared, one column."""
    return exog.ndim == 2 and exog.shape[1] == 1


def fit_chunk_compiled(endog, S, exog, method, maxiter, out, rank_rcond,
                       max_points=None):
    """
    Fit one chunk with the compiled engine into the views ``out`` (the
    dictionary of :func:`statsmodels_mixmeta.many.fit._allocate`), each
    certificate with at most ``max_points`` points (default
    :data:`statsmodels_mixmeta.fitting.many_compiled.MAX_POINTS`).

    Returns the positions of the problems handed back to the numpy engine
    (not written).
    """
    from ..fitting import many_compiled

    x = np.ascontiguousarray(exog[:, 0], dtype=float)
    unit = bool(np.all(x == 1.0))
    n = endog.shape[1]
    params = np.full(n, np.nan)
    bse = np.full(n, np.nan)
    handback = np.zeros(n, bool)
    arrays = (params, bse, np.full(n, np.nan), np.full(n, np.nan),
              np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int8),
              np.zeros(n, bool), np.zeros(n, np.int32), handback)
    n_obs = np.zeros(n, np.int32)
    many_compiled.fit_problems(endog, S, x, unit, _METHOD_CODES[method],
                               int(maxiter), float(rank_rcond), arrays,
                               n_obs, int(many_compiled.MAX_POINTS
                                          if max_points is None
                                          else max_points))
    out["params"][:, 0] = params
    out["bse"][:, 0] = bse
    for name, value in zip(("tau2", "llf", "q", "gap", "status",
                            "converged", "n_iter"), arrays[2:9]):
        out[name][:] = value
    out["n_obs"][:] = n_obs
    return np.flatnonzero(handback)
