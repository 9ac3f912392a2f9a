r"""
``fit_many`` for several outcomes per study: chunks of problems through the
multivariate kernel (:mod:`statsmodels_mixmeta.kernels.many_multivariate`)
and its Newton climbs (:mod:`statsmodels_mixmeta.fitting.many_multivariate`).

Missing outcomes are exact: a study informs a problem through its observed
outcomes only (the observed block of its marginal covariance, inverted and
embedded with zero rows and columns for the rest), as the single fit drops
them.  ``bscov`` "unstr", "diag" or "id" (ML/REML; "mm" is unstructured).
The design is shared by all problems or one per problem (each problem's
``X_i = I_k \otimes x_ij'`` is built in the kernel's stack either way).
"""
import numpy as np

from ..fitting import many_multivariate as optimiser
from ..fitting.many_charts import make_chart
from ..kernels import many_multivariate as kernel
from ..progress import chunk_progress
from ..structures.psd import PSD_FLOOR
from .results import ManyResults, Status
from .validation import check_multivariate, checked_chunk_size

#: Work values per chunk when ``chunk_size`` is not given.
ELEMENTS = 2 ** 18
RANK_RCOND = 1e-12


def chunk_problems(n_studies, k, p, chunk_size=None, max_memory=None):
    """Problems per chunk: ``chunk_size``, or as many as keep the largest
    work arrays (about ``k^2 m`` values a study, ``m = k(k+1)/2``, times
    twenty of them) within ``max_memory`` (default 256 MiB) and near the
    cache."""
    if chunk_size is not None:
        return checked_chunk_size(chunk_size)
    m = k * (k + 1) // 2
    per_study = k * k * m + (k * p) ** 2
    budget = 256 * 2 ** 20 if max_memory is None else float(max_memory)
    if not budget > 0:
        raise ValueError(f"max_memory must be a positive number of bytes, "
                         f"got {max_memory!r}")
    by_budget = int(budget // (8 * 20 * per_study * max(n_studies, 1)))
    by_cache = max(64, ELEMENTS // (per_study * max(n_studies, 1)))
    return max(1, min(by_cache, by_budget))


def check_structure(bscov, method):
    """A valid ``bscov``, and one that ``method`` can estimate."""
    make_chart(bscov, 2)
    if bscov != "unstr" and method in ("fixed", "mm"):
        raise ValueError(f"bscov={bscov!r} needs method 'ml' or 'reml' "
                         f"('mm' estimates an unstructured Psi), got "
                         f"{method!r}")


def fit_many_multivariate(endog, S, exog, method, bscov="unstr",
                          chunk_size=None, max_memory=None, maxiter=100,
                          problem_offset=0, progress=None):
    """The multivariate branch of :func:`statsmodels_mixmeta.fit_many`."""
    check_structure(bscov, method)
    y, S, exog = check_multivariate(endog, S, exog, problem_offset)
    n_problems, n_studies, k = y.shape
    p = exog.shape[1]
    step = chunk_problems(n_studies, k, p, chunk_size, max_memory)
    out = _allocate(n_problems, k, p)
    bar = chunk_progress(n_problems, step, progress, "fit_many", "problem")
    try:
        for start in range(0, n_problems, step):
            part = slice(start, min(start + step, n_problems))
            _fit_chunk(y[part], S[part],
                       exog if exog.ndim == 2 else np.moveaxis(
                           exog[:, :, part], 2, 0),
                       method, bscov, maxiter,
                       {name: v[part] for name, v in out.items()})
            bar.update(part.stop - part.start)
    finally:
        bar.close()
    psi = out.pop("psi")
    return ManyResults(method=method, endog=np.moveaxis(y, 0, 2),
                       S=np.moveaxis(S, 0, 3), exog=exog,
                       tau2=np.full(n_problems, np.nan), psi=psi,
                       bscov=bscov, **out)


def _allocate(n_problems, k, p):
    nan = np.full
    return {"params": nan((n_problems, k * p), np.nan),
            "bse": nan((n_problems, k * p), np.nan),
            "psi": nan((n_problems, k, k), np.nan),
            "llf": nan(n_problems, np.nan), "q": nan(n_problems, np.nan),
            "gap": nan(n_problems, np.nan),
            "converged": np.zeros(n_problems, bool),
            "n_iter": np.zeros(n_problems, np.int32),
            "n_obs": np.zeros(n_problems, np.int32),
            "status": np.zeros(n_problems, np.int8)}


def _fit_chunk(y, S, exog, method, bscov, maxiter, out):
    """Fit the problems of one chunk into the views ``out``."""
    stack = kernel.MultiStack(y, S, exog, reml=method in ("reml", "mm"))
    k = stack.k
    out["n_obs"][:] = stack.n_obs
    need = stack.n_fixed + (0 if method == "fixed"
                            else make_chart(bscov, k).n_params)
    status = np.full(stack.n_problems, Status.FITTED, np.int8)
    status[stack.n_obs < need] = Status.TOO_FEW
    status[stack.n_obs == 0] = Status.EMPTY
    status[(status == Status.FITTED) & ~(stack.xtx_rcond > RANK_RCOND)] = \
        Status.RANK_DEFICIENT
    rows = np.flatnonzero(status == Status.FITTED)
    if rows.size:
        moments, q, together, solvable = kernel.moment_psi(stack, rows,
                                                           PSD_FLOOR)
        out["q"][rows] = q
        if method == "mm" and not solvable.all():
            # as the single fit: the covariance of outcomes never observed
            # together cannot be estimated by moments, nor Psi from
            # singular moment equations
            status[rows[~together]] = Status.UNPAIRED
            status[rows[together & ~solvable]] = Status.SINGULAR_MOMENTS
            rows, moments = rows[solvable], moments[solvable]
    if rows.size:
        certified = np.ones(len(rows), bool)
        if method in ("fixed", "mm"):
            psi = np.zeros_like(moments) if method == "fixed" else moments
            fit = kernel.evaluate(stack, psi, rows)
            if method == "mm":
                fit.llf = np.full(len(rows), np.nan)
            converged, n_iter = np.ones(len(rows), bool), 0
        else:
            psi, fit, converged, n_iter, certified = optimiser.maximise(
                stack, moments, rows, maxiter, bscov)
        status[rows[~certified]] = Status.UNCERTIFIED
        out["psi"][rows] = psi
        out["llf"][rows] = fit.llf
        out["params"][rows] = fit.beta
        out["bse"][rows] = np.sqrt(np.einsum("raa->ra", fit.cov_beta))
        out["converged"][rows] = converged
        out["n_iter"][rows] = n_iter
    out["status"][:] = status
