"""
The fitting schedule: how an ML/REML fit goes from a start to a certified
optimum, on an :class:`~statsmodels_mixmeta.fitting.objective.Objective`
alone (a model, a profile likelihood, a leave-one-out refit or one of many
data sets).

1. Start (:func:`start_values`): ``init_psi``, by default ``0.001`` times
   the data's variance unit times ``I`` (R's ``0.001 I``, made relative to
   the scale of the data), then up to ``igls_iter`` Fisher-scoring steps on
   the free entries of the Psi's, kept positive semi-definite (the analogue
   of R's IGLS start), mapped into the structures.
2. Refine: damped, modified Newton steps on the structure parameters until
   a plain Newton step is safe and promises less than ``HANDOVER_GAIN``; a
   single variance is refined by Newton's method in the variance itself.
3. Hand over to statsmodels' optimiser (a callable, by default statsmodels'
   ``Optimizer`` on ``-llf / n``; a model passes its own
   ``LikelihoodModel.fit``) to finish and certify the optimum; should it
   end anywhere but at a stationary point at least as high as its start,
   BFGS takes over from there.
4. Settle standard deviations stalled beside their kinked boundary at 0.
5. Restart: the one place where a search for a better optimum away from
   the boundary plugs in (``restart``, see :func:`fit`).
6. Certify: first-order optimality in the data's units; report Psi's on
   the boundary of their space; warn when the fit stopped early or never
   left its start.

Tolerances of the statsmodels stage are scaled to the data's units
(``objective.param_scale``) unless given, so that rescaling the data gives
the same estimates (rescaled) and the same verdict.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from . import optimizer as _steps

#: R's default starting Psi, 0.001 I, in units of the data's variance unit.
START_PSI_SCALE = 0.001
#: Newton in a single variance stops before a step smaller than this (in
#: the data's units, ``theta / param_scale``), which is then the statsmodels
#: Newton finisher's: its tolerance on the change in theta is the same, so
#: that one step (exact to about FINISH_TOL**2, Newton's convergence being
#: quadratic) ends it; the optimum is then certified by the score.
FINISH_TOL = 1e-4
#: The damped Newton stage hands over to statsmodels' Newton once the
#: surface is concave and a Newton step promises less than this gain.
HANDOVER_GAIN = 1e-4
#: statsmodels Newton's ridge on the Hessian of ``-llf / n``, in the
#: data's units (its default, 1e-10, is absolute).
NEWTON_RIDGE = 1e-10
#: Gradient tolerance of BFGS-type finishers, in the data's units, on the
#: gradient of ``-llf / n``.
GRADIENT_TOL = 1e-10
#: Names of the estimators, which ``fit(method=...)`` is not about.
ESTIMATORS = ("reml", "ml", "fixed", "mm", "vc")


@dataclass
class FitOutcome:
    """What the schedule found: the parameters, the verdict and the
    optimisers' report (``retvals``, the results' ``mle_retvals``)."""

    theta: np.ndarray
    converged: bool
    retvals: dict = field(default_factory=dict)


def check_optimizer_name(method):
    """
    The optimiser's name, lower case; an estimator's name is refused.

    Raises
    ------
    ValueError
        For ``"reml"``, ``"ml"``, ... (chosen on the model, not on ``fit``).
    """
    if not isinstance(method, str):
        raise ValueError(f"fit(method=...) names an optimiser such as "
                         f"'newton', 'bfgs', 'lbfgs' or 'nm'; got {method!r}")
    name = method.lower()
    if name in ESTIMATORS:
        raise ValueError(
            f"fit(method={method!r}) chooses the optimiser ('newton', "
            "'bfgs', 'lbfgs', 'nm', ...), not the estimator: choose "
            f"{name!r} on the model, MixMeta(..., method={name!r}) or "
            f"MixMeta.from_formula(..., method={name!r})")
    return name


def check_start_params(objective, start_params):
    """
    ``start_params`` as a float vector of the objective's length.

    Raises
    ------
    ValueError
        Naming the expected length and the parameter names, or the
        non-finite entries.
    """
    names = objective.param_names
    try:
        theta = np.asarray(start_params, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"start_params must be {len(names)} numbers, the structure "
            f"parameters {names}; got {start_params!r}") from None
    if theta.ndim > 1 and theta.size == len(names):
        theta = theta.ravel()
    if theta.shape != (len(names),):
        raise ValueError(
            f"start_params must have length {len(names)}, the structure "
            f"parameters {names} (not the fixed effects, which are profiled "
            f"out); got shape {theta.shape}")
    bad = [n for n, t in zip(names, theta) if not np.isfinite(t)]
    if bad:
        raise ValueError(f"start_params must be finite; {bad} are not")
    return theta.copy()


def start_values(objective, init_psi=None, igls_iter=10):
    """
    Starting structure parameters.

    From ``init_psi`` (per level; default ``START_PSI_SCALE`` times the
    level's variance unit times ``I``), ``igls_iter`` Fisher-scoring steps
    on the free entries of the Psi's, then the structures' parameters of
    the result.
    """
    if init_psi is None:
        init_psi = [None] * objective.random.n_levels
    psis = objective.start_psis(init_psi, START_PSI_SCALE)
    if objective.n_params == 0:
        return np.array([])
    if igls_iter > 0 and objective.single_variance:
        return _steps.scalar_start(objective, psis[0][0, 0], igls_iter)
    if igls_iter > 0:
        psis = _steps.entrywise_scoring(objective, psis, igls_iter)
    return objective.random.start(psis)


def statsmodels_optimizer(objective, n_rows=None):
    """
    statsmodels' optimiser on the objective alone: ``Optimizer`` on
    ``-llf / n_rows`` with the analytic score and Hessian, as
    ``LikelihoodModel.fit`` runs it.

    Returns
    -------
    callable ``(theta, method, maxiter, disp, full_output, kwargs) ->
    (theta, retvals)``
    """
    from statsmodels.base.optimizer import Optimizer
    n = float(n_rows or objective.nobs)

    def run(theta, method, maxiter, disp, full_output, kwargs):
        xopt, retvals, _ = Optimizer()._fit(
            lambda t: -objective.loglike(t) / n,
            lambda t: -objective.score(t) / n, theta, (), dict(kwargs),
            hessian=lambda t: -objective.hessian(t) / n, method=method,
            disp=disp, maxiter=maxiter, full_output=full_output)
        return np.asarray(xopt, dtype=float), dict(retvals or {})
    return run


def fit(objective, start_params=None, init_psi=None, optimizer=None,
        method="newton", maxiter=100, scoring_iter=50, igls_iter=10,
        disp=False, full_output=True, optimizer_kwargs=None, restart=None,
        warn=True, stacklevel=1):
    """
    Maximise the objective: the whole schedule of the module docstring.

    Parameters
    ----------
    objective : Objective
    start_params : array_like, optional
        Starting structure parameters (then ``init_psi`` and ``igls_iter``
        are not used).
    init_psi : list, optional
        Validated starting Psi per level (``None`` for the default).
    optimizer : callable, optional
        ``(theta, method, maxiter, disp, full_output, kwargs) -> (theta,
        retvals)``, statsmodels' optimiser (default
        :func:`statsmodels_optimizer`).
    method, maxiter, disp, full_output, optimizer_kwargs
        The optimiser's name and options (``tol`` for Newton, ``gtol`` for
        BFGS, ...; defaults scaled to the data's units).
    scoring_iter, igls_iter : int
        Maximum damped Newton steps, and start iterations.
    restart : callable, optional
        ``restart(objective, theta, retvals, refit) -> (theta, retvals)``,
        called once the optimum is found and settled, before it is
        certified: it may try other starts (``refit(start) -> (theta,
        retvals)`` runs steps 2-4 from ``start``) and returns the better
        optimum and its ``retvals``, recording what it did in them (e.g.
        ``retvals["restart"]``).  ``retvals["start"]`` says whether the
        first start was the default ("default") or the caller's ("user").
    warn : bool
        Emit a ``ConvergenceWarning`` when the fit did not converge.
    stacklevel : int
        Of that warning, counted from the caller of this function (1).

    Returns
    -------
    FitOutcome
    """
    method = check_optimizer_name(method)
    user_start = start_params is not None
    if user_start:
        theta0 = check_start_params(objective, start_params)
    else:
        theta0 = start_values(objective, init_psi, igls_iter)
    if theta0.size == 0:
        return FitOutcome(theta0, True, {
            "converged": True, "on_boundary": objective.on_boundary(theta0)})
    if optimizer is None:
        optimizer = statsmodels_optimizer(objective)
    options = (method, maxiter, disp, full_output,
               dict(optimizer_kwargs or {}))

    def refit(start):
        return _local_fit(objective, start, optimizer, options, scoring_iter)

    theta, retvals = refit(theta0)
    default_start = not user_start and all(
        p is None for p in (init_psi or [None]))
    retvals["start"] = "default" if default_start else "user"
    if restart is not None:
        # step 5: the one place where a search for a better optimum plugs in
        theta, retvals = restart(objective, theta, retvals, refit)
    converged = certify(objective, theta, theta0, retvals)
    if warn and not converged:
        warnings.warn(_warning(objective, method, retvals),
                      ConvergenceWarning, stacklevel=stacklevel + 1)
    return FitOutcome(theta, converged, retvals)


def certify(objective, theta, theta0, retvals):
    """
    Step 6: the verdict on ``theta``, recorded in ``retvals``.

    Converged means first-order optimality in the data's units
    (:func:`statsmodels_mixmeta.fitting.optimizer.is_stationary`); a fit
    that ends exactly at the default start (``retvals["start"]``) has not
    converged (the steps could not tell where to go).  Also records
    ``"moved"`` and the per-level ``"on_boundary"`` flags.
    """
    converged = _steps.is_stationary(objective, theta, second_order=True)
    retvals["moved"] = theta.tobytes() != theta0.tobytes()
    if not retvals["moved"] and retvals.get("start") == "default":
        converged = False
    retvals["converged"] = converged
    retvals["on_boundary"] = objective.on_boundary(theta)
    return converged


def _warning(objective, method, retvals):
    what = "REML" if objective.reml else "ML"
    if not retvals["moved"]:
        return (f"the {what} fit did not move from its start values and "
                "stopped before convergence; give start_params or init_psi, "
                "or check the scale of the data")
    return (f"the {what} optimiser ({method}) stopped before convergence; "
            "increase maxiter or try another method")


def _refine(objective, theta, scoring_iter, polish=False):
    """Step 2 from ``theta``: damped Newton steps (Newton's method in the
    variance for a single variance) up to the hand-over, or with
    ``polish`` on to a stationary point.  Returns the point and the number
    of steps."""
    if objective.single_variance:
        return _steps.variance_newton(
            objective, theta, scoring_iter,
            theta_tol=0.0 if polish else FINISH_TOL)
    return _steps.damped_newton(objective, theta, scoring_iter,
                                handover=0.0 if polish else HANDOVER_GAIN)


def climb(objective, theta, scoring_iter=50, polish=False):
    """
    Step 2 of the schedule alone (see :func:`_refine`), for restarts that
    first look where a start leads: the point reached and whether it is
    stationary (:func:`statsmodels_mixmeta.fitting.optimizer.is_stationary`).
    """
    theta = _refine(objective, theta, scoring_iter, polish)[0]
    return theta, _steps.is_stationary(objective, theta)


def _local_fit(objective, theta, optimizer, options, scoring_iter):
    """Steps 2-4 from ``theta``: refine, hand over (BFGS should the
    optimiser fail), settle on a kinked boundary."""
    method, maxiter, disp, full_output, kwargs = options
    start, n_scoring = _refine(objective, theta, scoring_iter)
    theta_opt, retvals = hand_over(objective, start, optimizer, method,
                                   maxiter, disp, full_output, kwargs)
    if method != "bfgs" and not improves(objective, theta_opt, start,
                                         retvals):
        theta_opt, retvals = hand_over(objective, start, optimizer, "bfgs",
                                       maxiter, disp, full_output, {})
        retvals["fallback"] = "bfgs"
    retvals["scoring_iterations"] = n_scoring
    return _steps.settle_on_boundary(objective, theta_opt), retvals


def hand_over(objective, theta, optimizer, method, maxiter, disp,
              full_output, kwargs):
    """
    Run statsmodels' optimiser from ``theta``, its tolerances scaled to the
    data's units unless given: Newton's ``tol`` on the change of each
    parameter and its ``ridge_factor`` (added to the Hessian's diagonal,
    1e-10 by default whatever the scale), BFGS's ``gtol`` (L-BFGS's
    ``pgtol``) on the gradient.
    """
    kwargs = dict(kwargs)
    scale = objective.param_scale
    if method == "newton":
        kwargs.setdefault("tol", FINISH_TOL * scale)
        kwargs.setdefault("ridge_factor", NEWTON_RIDGE / scale ** 2)
    elif method in ("bfgs", "cg"):
        kwargs.setdefault("gtol", GRADIENT_TOL / scale.max())
    elif method == "lbfgs":
        kwargs.setdefault("pgtol", GRADIENT_TOL / scale.max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            return optimizer(theta, method, maxiter, disp, full_output,
                             kwargs)
        except np.linalg.LinAlgError as err:
            # statsmodels' Newton inverts its last Hessian, singular
            # when Psi is on a boundary: leave it to the fallback
            return theta, {"converged": False, "error": str(err)}


def improves(objective, theta_opt, theta_start, retvals):
    """The optimiser converged to a stationary point no worse than its
    start."""
    llf_opt = objective.loglike(theta_opt)
    llf_start = objective.loglike(theta_start)
    rounding = 1e-12 * max(1.0, abs(llf_start))
    return (bool(retvals.get("converged", False))
            and np.isfinite(llf_opt)
            and llf_opt >= llf_start - 1e-10 - rounding
            and _steps.is_stationary(objective, theta_opt,
                                     second_order=True))
