"""
Refits that start next to their optimum: leave-one-out and influence.

Leaving one of ``m`` outer groups out moves the ML/REML estimate of the
structure parameters by ``O(1/m)``, so the full fit's ``theta`` is a start
from which Newton's method needs a step or two.  :func:`refit` runs the
schedule of :func:`statsmodels_mixmeta.fitting.schedule.fit` on the
objective alone (no statsmodels results object per refit) with what a fit
next to its optimum does not need left out, and nothing else:

* no start values (no Fisher-scoring start): the start is the full fit's
  ``theta``, moved by quasi-Newton steps with the refit's score and the
  full fit's Hessian (:func:`one_step`) to a stationary point, each step
  one evaluation of the refit's likelihood and no Hessian (each contracts
  the score about as much as a Newton step with the refit's own Hessian
  would from this close: the steps are limited by the curvature's change
  along the way, not by the Hessian's error);
* the local fit is damped Newton steps polished to a stationary point
  (:func:`~statsmodels_mixmeta.fitting.schedule.climb`, the schedule's own
  stationarity test), none from a stationary start; statsmodels' optimiser
  (then BFGS) only should they stop short, and for a single variance,
  whose Newton steps in ``tau2`` the schedule finishes with statsmodels'
  Newton as a fit from scratch does.

What is kept is the certification.  The restart step runs as for a fit
from the default start: the certified scan of a single variance (for many
refits at once, :func:`beaten_by_scan`, a refit it beats then running the
restart step itself), the screen of a second start inside the parameter
space, the second start itself on its boundary.  A start next to the
optimum does not exempt a refit from the search for a higher one, so that
every refit is the optimum a fit of the same data from scratch reports;
the tests hold every refit against such a fit, and one whose start is a
local maximum of the refit's likelihood.
"""
import numpy as np

from ..kernels import variance_scan
from . import optimizer, restarts, schedule


def refit(objective, theta, restart=None, warn=False, hessian=None,
          score=None):
    """
    Maximise ``objective`` from ``theta``, a point next to its optimum.

    Parameters
    ----------
    objective : Objective
        The refit's objective (e.g. ``MixMeta.from_design(design.subset(
        groups)).objective``).
    theta : array_like
        The start, typically the full fit's estimate.
    restart : callable, optional
        The schedule's restart step (a model's ``_restart``); it is told
        the fit started from the default start (see the module docstring).
    warn : bool
        Emit a ``ConvergenceWarning`` should the refit not converge.
    hessian : ndarray, optional
        The Hessian of the full fit's objective at ``theta``: the refit
        then starts where quasi-Newton steps with it end
        (:func:`one_step`).
    score : ndarray, optional
        The refit's score at ``theta``, or an approximation of it, for
        that step (default: evaluated).

    Returns
    -------
    FitOutcome
        As :func:`statsmodels_mixmeta.fitting.schedule.fit`;
        ``retvals["start"]`` is ``"nearby"`` unless a restart won.
    """
    def restart_as_default(objective_, theta_, retvals, refit_):
        retvals = dict(retvals, start="default")
        theta_, retvals = restart(objective_, theta_, retvals, refit_)
        if retvals.get("start") == "default":
            retvals["start"] = "nearby"
        return theta_, retvals

    finisher = schedule.statsmodels_optimizer(objective)

    def polish(start, method, maxiter, disp, full_output, kwargs):
        # damped Newton steps to a stationary point; statsmodels' optimiser
        # only should they stop short
        if method == "newton" and not objective.single_variance:
            theta_opt, stationary = schedule.climb(objective, start,
                                                   polish=True)
            if stationary:
                return theta_opt, {"converged": True, "polished": True}
        return finisher(start, method, maxiter, disp, full_output, kwargs)

    start = theta if hessian is None else one_step(objective, theta,
                                                    hessian, score)
    return schedule.fit(
        objective, start_params=start, optimizer=polish,
        restart=None if restart is None else restart_as_default, warn=warn)


def one_step(objective, theta, hessian, score=None, max_steps=4):
    """
    ``theta - H^-1 g``: a Newton step with the refit's score ``g`` at
    ``theta`` and the full fit's Hessian ``H`` there (which differs from the
    refit's by ``O(1/m)``, so the step leaves an error of the order of the
    square of the first), taken only where ``H`` is negative definite and
    the refit's likelihood is defined at the step's end; else ``theta``.

    ``score`` may be an approximation of ``g`` (the full fit's score less
    the group's terms, :meth:`~statsmodels_mixmeta.kernels.likelihood.
    ProfiledLikelihood.group_psi_gradients`), which saves evaluating the
    refit at ``theta``: the step only sets where the Newton steps that
    follow start.

    Further steps with the same ``H`` and the refit's own score follow,
    up to ``max_steps`` in all, while each raises the likelihood and until
    the point is stationary
    (:func:`~statsmodels_mixmeta.fitting.optimizer.is_stationary`, the
    schedule's own test): each contracts the error by the factor
    ``||I - H^-1 H_(-i)|| = O(1/m)`` and costs one evaluation, where a
    Newton step also evaluates the refit's Hessian.  The schedule then
    starts at a stationary point (its Newton steps, and the restart step,
    run as from any start), or where these steps stopped.
    """
    theta = np.asarray(theta, dtype=float)
    try:
        np.linalg.cholesky(-hessian)
        if score is None:
            score = objective.score(theta)
        step = np.linalg.solve(hessian, score)
    except np.linalg.LinAlgError:
        return theta
    trial = theta - step
    llf = objective.loglike(trial)
    if not np.isfinite(llf):
        return theta
    theta = trial
    for _ in range(max_steps - 1):
        if optimizer.is_stationary(objective, theta):
            break
        trial = theta - np.linalg.solve(hessian, objective.score(theta))
        llf_trial = objective.loglike(trial)
        if not llf_trial > llf:
            break
        theta, llf = trial, llf_trial
    return theta


def beaten_by_scan(objectives, thetas, tol=restarts.SCAN_TOL):
    """
    The certified scan of a single variance
    (:func:`~statsmodels_mixmeta.fitting.restarts.check_single_variance`,
    the restart step of a fit from scratch) for many refits at once: one
    vectorised :func:`~statsmodels_mixmeta.kernels.variance_scan.
    global_maximum` over all of them, on the grid a fit from scratch scans
    (the fit's ``tau2`` times ``restarts._FIT_GRID``; the data's grid for a
    fit at 0).

    Parameters
    ----------
    objectives : sequence of Objective
        Refits for which :func:`~statsmodels_mixmeta.fitting.restarts.scans`
        holds, all of the same number of values and coefficients.
    thetas : ndarray, ``(P, 1)``
        Their fits.

    Returns
    -------
    ndarray of bool, ``(P,)``
        Where some ``tau2 >= 0`` beats the fit: that refit must run the
        restart step itself (a fit from the scan's best point).
    """
    kernels = [objective.kernel for objective in objectives]
    unit_z = all(lik._unit_z for lik in kernels)
    problems = variance_scan.Problems(
        np.stack([lik.y for lik in kernels]),
        np.stack([lik.variance for lik in kernels]),
        np.stack([lik.X for lik in kernels]),
        z=None if unit_z else np.sqrt(np.stack([lik.z2 for lik in kernels])),
        reml=kernels[0].reml)
    scale = np.array([o.random.structures[0].square_scale
                      for o in objectives])
    tau2 = scale * np.asarray(thetas, dtype=float)[:, 0] ** 2
    at_zero = np.concatenate([
        variance_scan.default_grid(problems, restarts.SCAN_POINTS)[:, 1:],
        np.abs(restarts.NEAR_FIT) * 1e-4
        * problems.variance.mean(axis=1)[:, None]], axis=1)
    inside = tau2[:, None] * restarts._FIT_GRID
    width = max(at_zero.shape[1], inside.shape[1])
    grid = np.where((tau2 > 0)[:, None], _padded(inside, width),
                    _padded(np.sort(at_zero, axis=1), width))
    grid = np.concatenate([np.zeros((len(tau2), 1)), grid], axis=1)
    _, best, _, _ = variance_scan.global_maximum(problems, grid, tol=tol)
    llf = np.array([o.loglike(t) for o, t in zip(objectives, thetas)])
    margin = np.maximum(restarts.BETTER_LLF * np.maximum(1.0, np.abs(llf)),
                        1e-12)
    return best > llf + margin


def _padded(grid, width):
    """Rows of ``grid`` (increasing) repeated at their last point up to
    ``width`` columns (zero-width intervals, which the scan skips)."""
    extra = width - grid.shape[1]
    if extra <= 0:
        return grid
    return np.concatenate([grid, np.repeat(grid[:, -1:], extra, axis=1)],
                          axis=1)
