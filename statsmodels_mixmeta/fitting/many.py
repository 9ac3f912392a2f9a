"""
Maximise many univariate profiled likelihoods in ``tau2`` at once.

Each problem climbs from its DerSimonian-Laird estimate by Newton's method
in ``tau2`` (Fisher scoring where the curvature is not negative), halving a
step that lowers the likelihood and projecting onto ``tau2 >= 0``; a
problem leaves the active set when it has converged, so that it stops
costing.  Converged fits are then certified as the global maximum over
``tau2 >= 0`` to within ``SCAN_TOL`` by the interval bounds of
:mod:`statsmodels_mixmeta.kernels.variance_scan`, on a grid around each fit
(the single fit's :func:`statsmodels_mixmeta.fitting.restarts.check_single_variance`,
for all problems at once); a problem whose scan finds a higher point is
climbed again from there and the better optimum kept.
"""
import numpy as np

from ..kernels import many as kernel
from ..kernels import variance_scan
from .restarts import _FIT_GRID, NEAR_FIT, SCAN_POINTS, SCAN_TOL

#: A problem has converged when Newton's next step would raise its
#: log-likelihood by less than this (absolute) and move ``tau2`` by less
#: than ``STEP_RTOL`` times ``tau2`` plus its mean within-study variance.
LLF_TOL = 1e-12
STEP_RTOL = 1e-9
#: Step halvings before a problem is declared stuck (not converged).
MAX_HALVINGS = 40


def _step(ev, tau2):
    """Newton's step where the curvature is negative, else scoring's."""
    newton = ev.hessian < 0
    curvature = np.where(newton, -ev.hessian, ev.information)
    safe = np.where(curvature > 0, curvature, 1.0)
    step = np.where(curvature > 0, ev.score / safe, 0.0)
    # projected onto tau2 >= 0
    return np.maximum(tau2 + step, 0.0) - tau2


def climb(stack, tau2, rows, maxiter=100):
    """
    Newton ascent of problems ``rows`` from ``tau2``.

    Returns
    -------
    tau2 : ndarray, ``(R,)``
    fit : Evaluation
        The kernel at the final ``tau2``.
    converged : ndarray of bool
    n_iter : ndarray of int
    """
    tau2 = np.array(tau2, dtype=float)
    n = len(rows)
    converged = np.zeros(n, bool)
    n_iter = np.zeros(n, int)
    scale = (stack.variance[rows] * stack.observed[rows]).sum(axis=1) / \
        np.maximum(stack.n_obs[rows], 1)
    fit = kernel.evaluate(stack, tau2, rows)
    active = np.arange(n)
    ev = fit
    for _ in range(maxiter):
        step = _step(ev, tau2[active])
        done = (np.abs(step * ev.score) <= LLF_TOL) & (
            np.abs(step) <= STEP_RTOL * (tau2[active] + scale[active]))
        converged[active[done]] = True
        active, step = active[~done], step[~done]
        if not active.size:
            break
        n_iter[active] += 1
        trial, ev, moved = _line_search(stack, rows[active], tau2[active],
                                        step, fit.llf[active])
        # no step down to 2**-MAX_HALVINGS of Newton's raised the
        # likelihood: the point is the top up to rounding
        converged[active[~moved]] = True
        active, trial, ev = active[moved], trial[moved], _take(ev, moved)
        tau2[active] = trial
        _put(fit, active, ev)
    return tau2, fit, converged, n_iter


_FIELDS = ("llf", "beta", "cov_beta", "score", "hessian", "information",
           "quad")


def _take(ev, index):
    return kernel.Evaluation(*(getattr(ev, f)[index] for f in _FIELDS))


def _put(ev, index, part):
    for f in _FIELDS:
        getattr(ev, f)[index] = getattr(part, f)


def _line_search(stack, rows, tau2, step, base):
    """
    Halve each step until the likelihood does not fall.

    Returns the new points, the kernel there and which problems moved.
    """
    step = step.copy()
    trial = tau2 + step
    moved = np.zeros(len(rows), bool)
    pending = np.arange(len(rows))
    out = None
    for _ in range(MAX_HALVINGS):
        ev = kernel.evaluate(stack, trial[pending], rows[pending])
        if out is None:
            out = ev
        else:
            _put(out, pending, ev)
        rounding = 1e-13 * np.maximum(1.0, np.abs(base[pending]))
        ok = ev.llf >= base[pending] - rounding
        moved[pending[ok]] = True
        pending = pending[~ok]
        if not pending.size:
            break
        step[pending] *= 0.5
        trial[pending] = tau2[pending] + step[pending]
    return trial, out, moved


def scan_problems(stack, rows):
    """The problems ``rows`` as :class:`variance_scan.Problems`, unobserved
    studies entering with no weight (zero value, design and ``z``)."""
    o = stack.observed[rows]
    X = stack.rows(rows)
    X = o[:, :, None] * (X[None] if stack.shared else X)
    problems = variance_scan.Problems(stack.y[rows], stack.variance[rows],
                                      X, z=o, reml=stack.reml)
    problems.constant = stack.constant[rows]
    return problems


def certify(stack, tau2, llf, rows, tol=SCAN_TOL):
    """
    The certified global maximum of each problem (see the module
    docstring).

    Returns
    -------
    best_tau2 : ndarray
        Where the scan beats the fit, its best point (else the fit).
    better : ndarray of bool
        Problems whose scan beat the fit.
    gap : ndarray
        No ``tau2 >= 0`` has a likelihood above the fit's plus ``gap``.
    """
    problems = scan_problems(stack, rows)
    positive = tau2 > 0
    grid = np.empty((len(rows), 1 + len(_FIT_GRID)))
    grid[:, 0] = 0.0
    grid[:, 1:] = tau2[:, None] * _FIT_GRID
    if not positive.all():
        zero = ~positive
        default = variance_scan.default_grid(problems, SCAN_POINTS)[zero, 1:]
        mean_v = stack.variance[rows][zero].mean(axis=1)
        near = np.abs(NEAR_FIT)[None, :] * 1e-4 * mean_v[:, None]
        points = np.sort(np.concatenate([default, near], axis=1), axis=1)
        width = grid.shape[1] - 1
        if points.shape[1] < width:     # repeat the last (an empty piece)
            points = np.concatenate([points, np.repeat(
                points[:, -1:], width - points.shape[1], axis=1)], axis=1)
        grid[zero, 1:] = points[:, :width]
    best_tau2, best, gap, _ = variance_scan.global_maximum(
        problems, grid, tol=tol, pieces=2)
    rounding = np.maximum(1e-10 * np.maximum(1.0, np.abs(llf)), 1e-12)
    better = best > llf + rounding
    gap = np.maximum(best + gap - np.maximum(llf, best), 0.0)
    return np.where(better, best_tau2, tau2), better, gap
