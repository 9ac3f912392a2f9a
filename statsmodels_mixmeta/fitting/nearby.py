"""
Refits that start next to their optimum: leave-one-out and influence.

Leaving one of ``m`` outer groups out moves the ML/REML estimate of the
structure parameters by ``O(1/m)``, so the full fit's ``theta`` is a start
from which the schedule of :func:`statsmodels_mixmeta.fitting.schedule.fit`
needs a step or two (no start values, no Fisher-scoring start).
:func:`refit` runs that schedule on the objective alone (statsmodels'
``Optimizer`` on the objective, without building a statsmodels results
object per refit) and certifies it as a fit from scratch is certified:
the restart step runs as for a fit from the default start (the certified
scan of a single variance; the screen of a second start inside the
parameter space, the second start itself on its boundary, otherwise).  A
start next to the optimum does not exempt a refit from the search for a
higher one, so that every refit is the optimum a fit of the same data from
scratch reports; the tests hold every refit against such a fit.
"""
import numpy as np

from . import schedule


def refit(objective, theta, restart=None, warn=False, hessian=None):
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
        then starts one quasi-Newton step further (:func:`one_step`).

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
                                                    hessian)
    return schedule.fit(
        objective, start_params=start, optimizer=polish,
        restart=None if restart is None else restart_as_default, warn=warn)


def one_step(objective, theta, hessian):
    """
    ``theta - H^-1 g``: a Newton step with the refit's score ``g`` at
    ``theta`` and the full fit's Hessian ``H`` there (which differs from the
    refit's by ``O(1/m)``, so the step leaves an error of the order of the
    square of the first), taken only where ``H`` is negative definite and
    the step raises the refit's likelihood; else ``theta``.
    """
    theta = np.asarray(theta, dtype=float)
    try:
        np.linalg.cholesky(-hessian)
        step = np.linalg.solve(hessian, objective.score(theta))
    except np.linalg.LinAlgError:
        return theta
    trial = theta - step
    if not (objective.loglike(trial) > objective.loglike(theta)):
        return theta
    return trial
