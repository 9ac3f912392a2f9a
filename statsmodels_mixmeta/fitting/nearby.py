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
from . import schedule


def refit(objective, theta, restart=None, warn=False):
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

    return schedule.fit(
        objective, start_params=theta,
        restart=None if restart is None else restart_as_default, warn=warn)
