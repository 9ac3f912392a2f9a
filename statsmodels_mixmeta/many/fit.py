"""
``fit_many``: the same univariate meta-analysis fitted to many independent
problems (voxels, genes, simulated data sets), chunk by chunk.

The input is validated once, whole; then the problems are processed in
chunks of at most ``chunk_size`` (or as many as ``max_memory`` bytes of
work arrays allow), each chunk by the vectorised kernel of
:mod:`statsmodels_mixmeta.kernels.many` and the optimiser of
:mod:`statsmodels_mixmeta.fitting.many`.  Problems that cannot be fitted
(too few observed studies, a rank-deficient design on their observed
studies) are reported in ``status``, never fitted.
"""
import numpy as np

from ..fitting import many as optimiser
from ..kernels import many as kernel
from ..progress import chunk_progress
from ..structures.psd import PSD_FLOOR
from .engine import (COMPILED_CHUNK, compiled_applies, fit_chunk_compiled,
                     resolve_engine)
from .distributed import (fit_many_dask, fit_many_dask_multivariate,
                          is_dask)
from .multilevel import fit_many_multilevel
from .multivariate import check_structure, fit_many_multivariate
from .results import ManyResults, Status
from .validation import (check_inputs, check_options,
                         checked_chunk_size)

METHODS = ("fixed", "ml", "reml", "mm")
#: Default budget of work arrays per chunk, in bytes.
DEFAULT_MAX_MEMORY = 256 * 2 ** 20
#: Values per work array of a chunk at most (2 MiB), unless ``chunk_size``
#: says otherwise: measured on 100,000 problems x 20 studies, chunks of
#: 2^16 values spend their time in numpy's per-call overhead (the
#: certificate's late rounds are small), chunks of 2^21 in cache misses.
ELEMENTS = 2 ** 18
#: A design whose ``X'X`` on a problem's observed studies has a smallest to
#: largest eigenvalue ratio below this is rank-deficient for that problem.
RANK_RCOND = 1e-12


def chunk_problems(n_studies, n_fixed, per_problem_design, chunk_size=None,
                   max_memory=None):
    """
    Problems per chunk: ``chunk_size``, else ``ELEMENTS / N`` (at least
    256) or fewer, as many as fit in ``max_memory`` bytes (default
    ``DEFAULT_MAX_MEMORY``) at about
    ``8 (40 + 3 p(p+1)/2) N`` bytes a problem (``(N,)`` work arrays of the
    kernel and the certificate, the design's column products when per problem).
    """
    # work arrays of about ELEMENTS values stay in cache and are reused by
    # the allocator: larger chunks are slower, smaller ones pay numpy's
    # overhead per call more often
    cache_size = max(256, ELEMENTS // max(n_studies, 1))
    if chunk_size is not None:
        return checked_chunk_size(chunk_size)
    budget = DEFAULT_MAX_MEMORY if max_memory is None else float(max_memory)
    if not budget > 0:
        raise ValueError(f"max_memory must be a positive number of bytes, "
                         f"got {max_memory!r}")
    n_pairs = n_fixed * (n_fixed + 1) // 2
    per = 8 * n_studies * (40 + (3 * n_pairs + n_fixed
                                 if per_problem_design else 0))
    return max(1, min(cache_size, int(budget // max(per, 1))))


def fit_many(endog, S, exog=None, method="reml", chunk_size=None,
             max_memory=None, maxiter=100, compute=True, problem_offset=0,
             bscov="unstr", progress=None, groups=None, engine="auto"):
    r"""
    Fit one univariate meta-analysis (or meta-regression) to each of many
    independent problems.

    Problem ``j`` is the model ``y_ij = x_i' beta_j + b_ij + e_ij`` with
    ``b_ij ~ N(0, tau2_j)`` and ``e_ij ~ N(0, S_ij)`` known, over its
    observed studies ``i``, fitted as ``MixMeta(y_j, X, S=S_j,
    method=method).fit()`` would fit it, but vectorised over problems: the
    likelihood, score and information of all problems of a chunk are
    evaluated at once, a problem that has converged leaves the active set,
    and every ML/REML fit is certified as the global maximum over
    ``tau2 >= 0`` (:mod:`statsmodels_mixmeta.fitting.many`).

    Parameters
    ----------
    endog : array_like, ``(n_studies, n_problems)``
        Estimates; NaN marks a study that does not inform a problem.  A 1-D
        array is one problem.
    S : array_like, ``(n_studies, n_problems)``
        Their within-study variances, positive wherever ``endog`` is
        observed (ignored where it is NaN).
    exog : array_like, optional
        The design including the intercept, ``(n_studies, p)`` shared by
        all problems or ``(n_studies, p, n_problems)`` per problem; None
        for an intercept only.
    method : {"reml", "ml", "fixed", "mm"}
        As in :class:`~statsmodels_mixmeta.MixMeta`; ``"mm"`` is
        DerSimonian-Laird (``tau2`` at least ``sqrt(eps)``, R mixmeta's
        projection of a moment estimate, as the single fit).
    chunk_size : int, optional
        Problems per chunk (default: as ``max_memory`` allows, with the
        compiled engine at least 65,536).
    max_memory : float, optional
        Bytes of work arrays per chunk (default 256 MiB) when
        ``chunk_size`` is not given; the input and the results come on top.
    maxiter : int
        Newton iterations per problem at most.
    compute : bool
        With Dask arrays ``endog`` and ``S`` (chunked along the problem
        axis only: a chunking along studies is refused with the
        ``rechunk`` call that fixes it; the fit maps over the chunks with
        ``blockwise`` on the active scheduler), whether to compute the
        results (numpy arrays) or leave them as Dask arrays.  ``exog`` per
        problem may be a Dask array too.  Bad input is reported when a
        chunk is fitted (at ``compute``), with the problem numbers of the
        whole array.  Ignored for numpy input.
    problem_offset : int
        Added to the problem numbers in error messages (the position of a
        block of problems in a larger array).
    bscov : {"unstr", "diag", "id"}
        Structure of ``Psi`` with several outcomes (as the single fit;
        "diag" and "id" with ML/REML only).
    progress : bool, optional
        Show the problems done on stderr, chunk by chunk (tqdm's bar when
        tqdm is installed, else a line of text).  The default shows it
        only when stderr is a terminal and there are several chunks; True
        or False force it.  With Dask input use Dask's own diagnostics
        (``dask.diagnostics.ProgressBar``, ``distributed.progress``).
    groups : array_like or DataFrame, optional
        ``(n_rows, 2)`` labels of two nested levels, outermost first (a
        DataFrame's two columns): one multilevel design refitted to many
        data sets (see Notes).
    engine : {"auto", "numpy", "numba"}
        Univariate fits of one coefficient (an intercept only or one shared
        column; numpy input): ``"numba"`` climbs and certifies each problem
        in a compiled loop (the ``fast`` extra; the same estimates as
        ``"numpy"`` to rounding, several times faster), ``"numpy"`` runs
        the vectorised numpy engine, ``"auto"`` numba when it can be
        imported.  Other fits use numpy; ``ManyResults.engine`` says which
        ran.

    Returns
    -------
    ManyResults
        One row per problem; problems not fitted have NaN estimates and
        their reason in ``status`` (``messages`` and ``to_frame()`` say it
        in words): ``Status.EMPTY`` for a problem with no observed study
        (all NaN: reported, not an error), ``Status.TOO_FEW``,
        ``Status.RANK_DEFICIENT`` and, for ``"mm"`` with several outcomes,
        ``Status.UNPAIRED`` and ``Status.SINGULAR_MOMENTS``; a fitted
        problem whose maximum is not certified is ``Status.UNCERTIFIED``.
        Bad input (shapes that do not match, a variance not positive or a
        ``S`` block not positive definite where a value is observed, a
        design not finite) is a ValueError naming the problems and studies
        at fault, and nothing is fitted.


    Notes
    -----
    Several outcomes (:mod:`statsmodels_mixmeta.many.multivariate`):
    ``endog`` ``(n_studies, k, n_problems)`` with NaN for an outcome a
    study does not report, ``S`` ``(n_studies, k, k, n_problems)`` or its
    lower triangles by column ``(n_studies, k(k+1)/2, n_problems)`` and
    ``exog`` ``(n_studies, p)`` shared or ``(n_studies, p, n_problems)``
    per problem (the same ``p`` columns for every outcome, as the single
    fit's array input); ``params`` and ``bse`` are
    ``(n_problems, k p)`` (outcome by outcome, as the single fit orders
    them) and ``psi`` ``(n_problems, k, k)``.  ML/REML climbs start from
    the method-of-moments estimate and from a distant start; a problem
    whose maximum cannot be certified (the climbs disagree or did not
    converge, or the Hessian is singular there) has status
    ``Status.UNCERTIFIED`` (its estimates are reported).  Dask arrays
    ``endog`` and ``S`` (full or lower triangles) must be chunked along the
    problem axis (the last) only; each chunk is fitted as numpy input
    would be (``blockwise``), the results bit-identical to numpy input
    with the same chunks.

    One multilevel design, many data sets
    (:mod:`statsmodels_mixmeta.many.multilevel`): with ``groups``, the
    model of ``MixMeta(y_j, exog, S=S, groups=groups, bscov=bscov,
    method=method)`` (``random="~ 1 | outer/inner"``) is fitted to every
    data set ``y_j = endog[:, :, j]``: ``endog`` ``(n_rows, k, n_sets)``
    without NaN, ``S`` ``(n_rows, k, k)`` or ``(n_rows, k(k+1)/2)`` and
    ``exog`` ``(n_rows, p)`` shared, each row its own inner group.
    ``bscov`` is one of "cs", "diag", "id" or one per level (say
    ``["cs", "cs"]``; "unstr" is not supported there); ``method`` "reml"
    or "ml".  ``psi`` is
    ``(n_sets, 2, k, k)``, outer level first.  The fit works in each
    level's eigen-cone (``Psi >= 0``, its closure), so where the single
    fit's correlation runs to its limit (a singular ``Psi``) this fit
    reaches it.
    """
    engine = resolve_engine(engine)
    if groups is not None:
        if is_dask(endog) or is_dask(S):
            raise ValueError("fit_many with groups takes numpy endog and S "
                             "(not Dask arrays)")
        return fit_many_multilevel(endog, S, exog, groups, method, bscov,
                                   chunk_size, maxiter, progress)
    method = check_options(method, METHODS, bscov, chunk_size, max_memory,
                           maxiter, problem_offset)
    if np.ndim(endog) == 3:
        if is_dask(endog) or is_dask(S):
            check_structure(bscov, method)
            return fit_many_dask_multivariate(
                endog, S, exog, method, bscov, chunk_size, max_memory,
                maxiter, compute, problem_offset)
        return fit_many_multivariate(endog, S, exog, method, bscov,
                                     chunk_size, max_memory, maxiter,
                                     problem_offset, progress)
    if is_dask(endog) or is_dask(S):
        return fit_many_dask(endog, S, exog, method, chunk_size, max_memory,
                             maxiter, compute, problem_offset, engine)
    endog, S, exog = check_inputs(endog, S, exog, problem_offset)
    if not compiled_applies(exog):
        engine = "numpy"
    n_studies, n_problems = endog.shape
    p = exog.shape[1]
    step = chunk_problems(n_studies, p, exog.ndim == 3, chunk_size,
                          max_memory)
    if engine == "numba" and chunk_size is None and max_memory is None:
        # no work arrays of the chunk's size: fewer, larger chunks
        step = max(step, COMPILED_CHUNK)
    out = _allocate(n_problems, p)
    bar = chunk_progress(n_problems, step, progress, "fit_many", "problem")
    try:
        for start in range(0, n_problems, step):
            part = slice(start, min(start + step, n_problems))
            args = (endog[:, part], S[:, part],
                    exog if exog.ndim == 2 else exog[:, :, part], method,
                    maxiter)
            views = {k: v[part] for k, v in out.items()}
            if engine == "numba":
                _hand_back(args, views, fit_chunk_compiled(
                    *args, views, RANK_RCOND))
            else:
                _fit_chunk(*args, views)
            bar.update(part.stop - part.start)
    finally:
        bar.close()
    res = ManyResults(method=method, endog=endog, S=S, exog=exog, **out)
    res.engine = engine
    return res


def _hand_back(args, out, rows):
    """Fit the problems ``rows`` of a chunk that the compiled engine
    handed back with the numpy engine, into ``out``."""
    if not rows.size:
        return
    endog, S, exog, method, maxiter = args
    part = _allocate(len(rows), exog.shape[1])
    _fit_chunk(endog[:, rows], S[:, rows], exog, method, maxiter, part)
    for k, v in part.items():
        out[k][rows] = v


def _allocate(n_problems, p):
    nan = np.full
    return {"params": nan((n_problems, p), np.nan),
            "bse": nan((n_problems, p), np.nan),
            "tau2": nan(n_problems, np.nan), "llf": nan(n_problems, np.nan),
            "q": nan(n_problems, np.nan),
            "gap": nan(n_problems, np.nan),
            "converged": np.zeros(n_problems, bool),
            "n_iter": np.zeros(n_problems, np.int32),
            "n_obs": np.zeros(n_problems, np.int32),
            "status": np.zeros(n_problems, np.int8)}


def _fit_chunk(endog, S, exog, method, maxiter, out):
    """Fit the problems of one chunk into the views ``out``."""
    stack = kernel.Stack(endog, S, exog, reml=method in ("reml", "mm"))
    p = stack.n_fixed
    out["n_obs"][:] = stack.n_obs
    need = p + (method != "fixed")
    status = np.full(stack.n_problems, Status.FITTED, np.int8)
    status[stack.n_obs < need] = Status.TOO_FEW
    status[stack.n_obs == 0] = Status.EMPTY
    status[(status == Status.FITTED) & ~(stack.xtx_rcond > RANK_RCOND)] = \
        Status.RANK_DEFICIENT
    out["status"][:] = status
    rows = np.flatnonzero(status == Status.FITTED)
    if not rows.size:
        return
    at_zero = None
    if method in ("ml", "reml"):
        # the kernel at 0 gives the moments, and starts or certifies
        at_zero = kernel.evaluate(stack, np.zeros(len(rows)), rows)
    moments, q = kernel.moment_variance(stack, rows, at_zero)
    out["q"][rows] = q
    if method == "fixed":
        tau2 = np.zeros(len(rows))
        fit = kernel.evaluate(stack, tau2, rows, derivatives=False)
        converged, n_iter = np.ones(len(rows), bool), 0
        gap = 0.0
    elif method == "mm":
        # R mixmeta's projection of a moment estimate (set.negeigen)
        tau2 = np.maximum(moments, PSD_FLOOR)
        fit = kernel.evaluate(stack, tau2, rows, derivatives=False)
        fit.llf = np.full(len(rows), np.nan)
        converged, n_iter, gap = np.ones(len(rows), bool), 0, 0.0
    else:
        tau2, fit, converged, n_iter, gap = _maximise(
            stack, moments, rows, maxiter, at_zero)
    out["tau2"][rows] = tau2
    out["llf"][rows] = fit.llf
    out["params"][rows] = fit.beta
    out["bse"][rows] = np.sqrt(np.einsum("Raa->Ra", fit.cov_beta))
    out["converged"][rows] = converged
    out["n_iter"][rows] = n_iter
    out["gap"][rows] = gap


def _maximise(stack, start, rows, maxiter, at_zero):
    """Climb, certify, and climb again from a better point of the
    certificate (``at_zero``: the kernel at 0)."""
    # a start at 0 has its kernel already
    fit = optimiser.take(at_zero, np.arange(len(rows)))
    away = np.flatnonzero(start > 0)
    if away.size:
        optimiser.put(fit, away, kernel.evaluate(stack, start[away],
                                                 rows[away]))
    tau2, fit, converged, n_iter = optimiser.climb(stack, start, rows,
                                                   maxiter, fit)
    gap = np.full(len(rows), np.nan)
    done = np.flatnonzero(converged)
    if not done.size:
        return tau2, fit, converged, n_iter, gap
    best, better, gap_done = optimiser.certify(
        stack, tau2[done], optimiser.take(fit, done), rows[done],
        at_zero=optimiser.take(at_zero, done))
    gap[done] = gap_done
    again = done[better]
    if again.size:
        tau2_b, fit_b, conv_b, iter_b = optimiser.climb(
            stack, best[better], rows[again], maxiter)
        win = fit_b.llf > fit.llf[again]
        idx = again[win]
        tau2[idx] = tau2_b[win]
        optimiser.put(fit, idx, optimiser.take(fit_b, win))
        converged[idx] = conv_b[win]
        n_iter[idx] += iter_b[win]
    return tau2, fit, converged, n_iter, gap
