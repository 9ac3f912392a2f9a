"""
Restarts: a fit is never left at a local maximum that a documented second
start beats.

The profiled (restricted) likelihood in Psi can have a maximum on the
boundary of the parameter space (a variance at 0, a singular Psi) and a
higher one inside; climbing from the default small Psi, an optimiser settles
on the first.  After the normal schedule has run:

* **one variance** (``Psi = c theta**2``, one outcome, one value per group):
  the profile is one-dimensional and its global maximum over ``tau2 >= 0``
  is certified to within ``SCAN_TOL`` by the interval bounds of
  :mod:`statsmodels_mixmeta.kernels.variance_scan`, vectorised over a grid
  that includes the fit; if a point beats the fit, the schedule is rerun
  from there (:func:`check_single_variance`);
* **otherwise**, a second start away from the boundary: the
  method-of-moments estimate where it exists (DerSimonian-Laird for one
  outcome, Jackson-White-Riley for several), else a start scaled to the
  spread of the residuals (:func:`residual_spread_psis`).  When a Psi ends
  on or near its boundary (:func:`on_boundary`) the schedule is rerun from
  there and the better optimum kept; when the fit is inside and started
  from the default small Psi, the schedule is rerun only if the second
  start is already higher than the fit (:func:`second_start`), so that a
  fit that a second start beats is never returned, at the cost of one
  evaluation of the likelihood when it does not.

Both take the objective (anything with ``loglike(theta)``, ``score(theta)``
and the packer ``random``) and a callable ``refit(theta_start) -> (theta,
retvals)`` that runs the normal schedule from a start, and return the
chosen ``theta`` with its ``retvals``, which record ``"start"`` (the start
that won) and, when two distinct optima were found, ``"optima"`` (each
start's log-likelihood), which ``summary()`` reports.
"""
import warnings

import numpy as np

from ..kernels import moments, variance_scan
from ..kernels.univariate import UnivariateLikelihood
from . import optimizer, schedule

#: Absolute tolerance, in log-likelihood units, to which the scan of a
#: single variance certifies the global maximum.
SCAN_TOL = 1e-6
#: Points of the scan's logarithmic grid, and relative offsets from the
#: fit added to it (see :func:`check_single_variance`).
SCAN_POINTS = 10
NEAR_FIT = np.array([-0.5, -0.3, -0.1, -0.03, -0.01, -0.003, -0.001,
                     -0.0003, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3,
                     0.6, 1.0])
# multiples of a fitted tau2 > 0 in the grid: the log grid of
# variance_scan.default_grid around 1 (so from 1e-4 to 10 times the fit)
# and the points near the fit, in increasing order
_FIT_GRID = np.unique(np.concatenate([
    np.geomspace(1e-4, 10.0, SCAN_POINTS), [1.0], 1.0 + NEAR_FIT]))
#: The scan runs where the number of values times ``(p + 1)**2`` is at
#: most this; larger problems get a second start (its cost would
#: otherwise exceed the fit's).
SCAN_MAX_WORK = 20000
#: A second optimum counts as distinct when its log-likelihood differs by
#: more than this (relative to ``max(1, |llf|)``) ...
DISTINCT_LLF = 1e-6
#: ... and a second start replaces the first when it is higher by more than
#: this (rounding of the likelihood at its maximum).
BETTER_LLF = 1e-10
#: A Psi whose smallest eigenvalue is below this fraction of its largest
#: (or that is zero) lies on or near the boundary of the PSD matrices.
BOUNDARY_RTOL = 1e-4


def on_boundary(psis, rtol=BOUNDARY_RTOL):
    """
    Whether any Psi is on or near the boundary of its parameter space: a
    variance at 0, a singular Psi, a correlation at +-1 (all make the
    smallest eigenvalue vanish relative to the largest).
    """
    for psi in psis:
        psi = np.atleast_2d(psi)
        if psi.size == 0:
            continue
        eigval = np.linalg.eigvalsh((psi + psi.T) / 2)
        if not eigval[-1] > 0 or eigval[0] <= rtol * eigval[-1]:
            return True
    return False


def _llf(objective, theta):
    llf = objective.loglike(theta)
    return llf if np.isfinite(llf) else -np.inf


def _choose(objective, first, second, first_start, second_start):
    """
    The better of two fits ``(theta, retvals)``, its retvals marked with the
    start that won and, when the optima are distinct, both log-likelihoods.
    """
    llf_a, llf_b = _llf(objective, first[0]), _llf(objective, second[0])
    rounding = BETTER_LLF * max(1.0, abs(llf_a))
    won_second = llf_b > llf_a + rounding
    theta, retvals = second if won_second else first
    retvals = dict(retvals)
    retvals["start"] = second_start if won_second else first_start
    retvals["restart"] = {"start": second_start,
                          "llf": llf_b, "llf_first": llf_a}
    if abs(llf_b - llf_a) > DISTINCT_LLF * max(1.0, abs(llf_a)):
        retvals["optima"] = {first_start: llf_a, second_start: llf_b}
    return theta, retvals


def check_single_variance(objective, problems, scale, theta, retvals,
                          refit, tol=SCAN_TOL):
    """
    Make a fit of one variance ``tau2 = scale * theta**2`` globally optimal.

    Parameters
    ----------
    objective : object
        ``loglike(theta)`` of the fitted model.
    problems : statsmodels_mixmeta.kernels.variance_scan.Problems
        The same likelihood, one problem, for the vectorised scan.
    scale : float
        ``c`` of ``Psi = c theta**2``.
    theta, retvals
        The fit of the normal schedule.
    refit : callable
        ``refit(theta_start) -> (theta, retvals)``.
    tol : float
        Certification tolerance (log-likelihood units).

    Returns
    -------
    theta, retvals
        The fit (rerun from the scan's best point when that beats it) with
        ``retvals["scan"]``: the points evaluated and the certified ``gap``
        (no ``tau2 >= 0`` has a likelihood above the fit's plus ``gap``,
        up to the refit's own convergence).
    """
    tau2_fit = scale * float(theta[0]) ** 2
    # the grid is scaled to the fit (to the data for a fit at 0), with
    # points closing in on the fit, where the bounds need narrow intervals;
    # it only sets the work: the bounds cover [0, inf) whatever its scale
    if tau2_fit > 0:
        grid = np.concatenate([[0.0], tau2_fit * _FIT_GRID])
    else:
        grid = np.concatenate([[0.0], variance_scan.default_grid(
            problems, SCAN_POINTS)[0, 1:], np.abs(NEAR_FIT) * 1e-4
            * float(problems.variance.mean())])
    tau2, best, gap, n_points = variance_scan.global_maximum(
        problems, grid, tol=tol, pieces=8)
    llf_fit = _llf(objective, theta)
    retvals = dict(retvals)
    retvals.setdefault("start", "default")
    if best[0] > llf_fit + max(BETTER_LLF * max(1.0, abs(llf_fit)), 1e-12):
        start = np.array([np.sqrt(tau2[0] / scale)])
        theta, retvals = _choose(objective, (theta, retvals), refit(start),
                                 retvals["start"], "scan")
        llf_fit = _llf(objective, theta)
    retvals["scan"] = {"points": int(n_points),
                       "gap": float(max(best[0] + gap[0] - llf_fit, 0.0))}
    return theta, retvals


def second_start(objective, theta, retvals, refit, start_psis, name,
                 first_start="default", screen=False, climb=None):
    """
    Rerun the schedule from ``start_psis`` (one Psi per level) and keep the
    better optimum (see the module docstring).

    With ``screen`` (a fit inside the parameter space, from the default
    start), the schedule is rerun only when the second start is itself
    higher than the fit: the fit is then certainly not the global maximum.
    A fit on the boundary is always refitted: with ``climb`` (``theta_start
    -> (theta, stationary)``, the schedule's first stage, damped Newton
    steps; ``polish=True`` climbs to a stationary point without handing
    over), the finishing stages are skipped only when the climb ends at a
    stationary point no higher than the fit, and a refit that stalls is
    polished by it.
    ``retvals["restart"]`` records the second start and its
    log-likelihood.
    """
    retvals = dict(retvals, start=first_start)
    try:
        start = objective.random.start(start_psis)
    except ValueError:
        return theta, retvals
    llf_start = _llf(objective, start) if start.size else -np.inf
    if not np.isfinite(llf_start):
        return theta, retvals
    if screen and not llf_start > _llf(objective, theta):
        retvals["restart"] = {"start": name, "llf_start": llf_start,
                              "refitted": False}
        return theta, retvals
    if climb is not None:
        top, stationary = climb(start, polish=True)
        llf_top, llf_fit = _llf(objective, top), _llf(objective, theta)
        if stationary and not llf_top > llf_fit + BETTER_LLF * max(
                1.0, abs(llf_fit)):
            retvals["restart"] = {"start": name, "llf_start": llf_start,
                                  "llf": llf_top, "refitted": "climb"}
            return theta, retvals
        start = top
    second = refit(start)
    if climb is not None:
        # the finishing optimisers can stall beside a singular Psi, where
        # damped Newton steps still make progress
        top, stationary = climb(second[0], polish=True)
        if stationary and _llf(objective, top) >= _llf(objective, second[0]):
            second = (top, dict(second[1], polished=True))
    theta, retvals = _choose(objective, (theta, retvals), second,
                             first_start, name)
    retvals["restart"].update(llf_start=llf_start, refitted=True)
    return theta, retvals


def residual_spread_psis(random, y, X, xtx, within_var, Z):
    """
    A start scaled to the spread of the residuals: at each level with free
    parameters, ``Psi_l = diag(s_lj) / L``, where ``s_lj`` is the excess
    spread of the ordinary least-squares residuals ``r`` over the values
    that random effect ``j`` of level ``l`` touches (their mean of
    ``r**2`` less their mean within-study variance, at least a tenth of
    the former, per unit mean ``z**2``) and ``L`` the number of such
    levels, which share it.

    Parameters
    ----------
    random : RandomPart
    y, X, xtx : ndarray
        Observed values ``(N,)``, their design ``(N, p)`` and ``X'X``.
    within_var : ndarray or None
        Within-study variance of each value (None: not subtracted).
    Z : sequence of ndarray
        Random-effect design of each level, ``(N, r_l)``.
    """
    square = (y - X @ np.linalg.solve(xtx, X.T @ y)) ** 2
    within = np.zeros_like(square) if within_var is None else within_var
    free = [s.n_params > 0 for s in random.structures]
    n_free = max(sum(free), 1)
    out = []
    for s, z, is_free in zip(random.structures, Z, free):
        if not is_free:
            out.append(s.psi(np.empty(0)))
            continue
        z2 = z * z
        touched = (z2 > 0).astype(float)
        count = np.maximum(touched.sum(axis=0), 1.0)
        mean_square = (square @ touched) / count
        excess = np.maximum(mean_square - (within @ touched) / count,
                            0.1 * mean_square)
        spread = excess / np.maximum(z2.sum(axis=0) / count, 1e-300)
        out.append(np.diag(np.where(spread > 0, spread, 1.0) / n_free))
    return out


def restart(objective, theta, retvals, refit, climb, default_start,
            scan=None, second_psis=None, screen_interior=True):
    """
    The restart policy of the module docstring, after the normal schedule.

    Parameters
    ----------
    objective : object
        ``loglike``, ``score``, ``nobs`` and ``random`` (the packer).
    theta, retvals
        The schedule's fit.
    refit : callable
        ``refit(theta_start) -> (theta, retvals)``: the whole schedule.
    climb : callable
        ``climb(theta_start, polish=False) -> (theta, stationary)``: its
        first stage.
    default_start : bool
        The fit started from the default small Psi (not the caller's).
    scan : tuple, optional
        ``(problems, scale)`` for :func:`check_single_variance`.
    second_psis : callable, optional
        ``() -> (psis, name)``: the second start.
    screen_interior : bool
        Screen a fit inside the parameter space (else leave it as fitted).

    Returns
    -------
    theta, retvals
    """
    first = "default" if default_start else "user"
    retvals = dict(retvals, start=first)
    if not optimizer.is_stationary(objective, theta):
        # stopped early (a budget of the caller's): flagged as not
        # converged, and not a local maximum to escape from
        return theta, retvals
    if scan is not None:
        return check_single_variance(objective, scan[0], scan[1], theta,
                                     retvals, refit)
    boundary = on_boundary(objective.random.psis(theta))
    if second_psis is None or not (boundary or (
            default_start and screen_interior)):
        return theta, retvals
    psis, name = second_psis()
    return second_start(objective, theta, retvals, refit, psis, name, first,
                        screen=not boundary, climb=climb)


def model_restart(objective, theta, retvals, refit, design, batches,
                  cache):
    """
    The restart step of a model's fit (``restart`` of
    :func:`statsmodels_mixmeta.fitting.schedule.fit`): :func:`restart` with
    the certified scan for a single variance on the univariate kernel (up
    to ``SCAN_MAX_WORK`` values times ``(p + 1)**2``), otherwise a second
    start (:func:`model_second_start`).

    Parameters
    ----------
    objective : Objective
        The model's objective (its ``kernel`` and ``random``).
    theta, retvals, refit
        As :func:`restart`.
    design : Design
        The model's design.
    batches : callable
        ``() -> BatchSet``, the model's batches (built on first use).
    cache : dict
        Where the scan's problem is kept between fits of the same model.
    """
    lik = objective.kernel
    univariate = isinstance(lik, UnivariateLikelihood) and \
        lik.z2 is not None
    scan = None
    if scans(objective):
        if "problem" not in cache:
            cache["problem"] = variance_scan.Problems(
                lik.y, lik.variance, lik.X,
                z=None if lik._unit_z else np.sqrt(lik.z2), reml=lik.reml)
        scan = (cache["problem"], objective.random.structures[0].square_scale)
    return restart(
        objective, theta, retvals, refit,
        lambda t, polish=False: schedule.climb(objective, t, polish=polish),
        retvals.get("start") == "default", scan=scan,
        second_psis=lambda: model_second_start(objective, design, batches),
        # too large for the scan: an interior single variance is left as
        # fitted (a screen would cost two evaluations, ~20 %)
        screen_interior=not univariate)


def scans(objective):
    """
    Whether :func:`model_restart` certifies a fit of ``objective`` by the
    scan of a single variance: the univariate kernel, one variance, every
    total variance positive at ``tau2 = 0`` (where the scan's bounds
    start) and at most ``SCAN_MAX_WORK`` values times ``(p + 1)**2``.
    """
    lik = objective.kernel
    return (isinstance(lik, UnivariateLikelihood) and lik.z2 is not None
            and objective.single_variance and lik._variance_positive
            and lik.n_values * (lik.n_fixed + 1) ** 2 <= SCAN_MAX_WORK)


def model_second_start(objective, design, batches):
    """
    The second start of a model: the method-of-moments Psi where it exists
    (DerSimonian-Laird from the univariate kernel; Jackson-White-Riley for
    one level), else a start scaled to the residuals' spread
    (:func:`residual_spread_psis`).  Returns the Psi's and the start's name.
    """
    lik, random = objective.kernel, objective.random
    if isinstance(lik, UnivariateLikelihood) and lik.z2 is not None:
        return [np.array([[lik.moment_variance()]])], "moments"
    if random.n_levels == 1:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                psi = moments.method_of_moments_psi(
                    batches(), design.basis, random.effect_names[0])
            return [psi], "moments"
        except (ValueError, np.linalg.LinAlgError):
            pass
    long = design.long
    within = (None if design.group_cov is not None else
              design.within_cov[long.row, long.outcome, long.outcome])
    return residual_spread_psis(
        random, long.y, long.X, design.xtx, within,
        long.Z[:random.n_levels]), "residual spread"
