"""
The optimiser's steps on an objective: the IGLS-like start, damped Newton
steps and the boundary.

These free functions take an objective
(:class:`statsmodels_mixmeta.fitting.objective.Objective`) and a parameter
vector, and own what generic optimisers cannot know:

* an IGLS-like start: Fisher scoring on the free entries of each Psi, kept
  positive semi-definite (linear in the entries, so well conditioned even
  where the structure's own parameters are not);
* damped, modified Newton steps (the observed Hessian with eigenvalues made
  negative; step halving), robust next to a singular Psi, and for a single
  variance, Newton's method in the variance itself, kept non-negative;
* first-order optimality that accepts standard deviations resting on their
  kinked boundary at zero (``hcs``, ``har1``, ``cor``), and the step that
  puts them there when an optimiser stalls beside it.

Steps, gradients and tolerances are measured in the data's units
(``objective.param_scale``: ``u = theta / param_scale``), so that every
decision is the same when the data are rescaled.  The order in which these
steps run is :mod:`statsmodels_mixmeta.fitting.schedule`'s.
"""
import numpy as np

from ..structures.psd import project_psd


def symmetric_basis(dim):
    """``E_ab + E_ba`` (``E_aa`` on the diagonal) for the free entries."""
    rows, cols = np.tril_indices(dim)
    basis = np.zeros((rows.size, dim, dim))
    basis[np.arange(rows.size), rows, cols] = 1.0
    basis[np.arange(rows.size), cols, rows] = 1.0
    return basis


#: Smallest eigenvalue of a scoring iterate of Psi, relative to the larger
#: of its largest and the level's variance unit.
START_PSD_FLOOR = 1e-6


def entrywise_scoring(objective, psis, max_iter, tol=100.0, slow=0.9):
    """
    Fisher scoring on the free entries of each free Psi, kept PSD.

    Stops once the predicted gain ``g' I^{-1} g`` falls below ``tol``, or
    shrinks by less than the factor ``slow`` in a step (the linear
    convergence of scoring towards a singular Psi, which Newton's method
    finishes faster), or when a step lowers the likelihood (projections
    onto the PSD cone can make scoring oscillate; the better point is
    kept).
    """
    free = [s.n_params > 0 for s in objective.random.structures]
    bases = [symmetric_basis(p.shape[0]) if f
             else np.zeros((0,) + p.shape) for p, f in zip(psis, free)]
    sizes = np.cumsum([0] + [b.shape[0] for b in bases])
    lik = objective.kernel
    last_llf, last_gain, last_psis = -np.inf, np.inf, psis
    for _ in range(max_iter):
        state = lik.evaluate(tuple(psis))
        if state.llf < last_llf:
            return last_psis
        grad = np.concatenate([
            np.einsum("rs,trs->t", g, b)
            for g, b in zip(lik.psi_gradient(state), bases)])
        info = lik.information(state, bases)
        step = np.linalg.lstsq(info, grad, rcond=1e-12)[0]
        last_llf, last_psis = state.llf, psis
        psis = [project_psd(p + np.einsum("t,trs->rs", step[a:b], basis),
                            START_PSD_FLOOR, relative=True, scale=unit)
                if f else p
                for p, basis, f, a, b, unit in zip(psis, bases, free,
                                                   sizes[:-1], sizes[1:],
                                                   objective.units)]
        gain = np.dot(grad, step)
        if gain < tol or gain > slow * last_gain:
            break
        last_gain = gain
    return psis


def scalar_start(objective, psi, max_iter, tol=1e-3, floor=1e-8,
                 slow=0.9):
    """
    ``entrywise_scoring`` for a single variance ``psi = c theta**2``
    (``psi += grad / info``), evaluated at the objective's memoised states
    of ``theta``, so that the point returned has already been evaluated for
    the stages after it.  ``psi`` is kept above ``floor`` times the
    variance unit.  Stops once the predicted gain ``grad**2 / info`` falls
    below ``tol`` or shrinks by less than the factor ``slow`` in a step
    (scoring's linear crawl, which Newton's method finishes faster).
    """
    scale = objective.square_scale
    lik = objective.kernel
    floor = floor * objective.units[0]
    theta = np.array([np.sqrt(max(psi, floor) / scale)])
    last_gain = np.inf
    for _ in range(max_iter):
        state = objective.state(theta)
        grad = lik.psi_gradient(state)[0][0, 0]
        info = lik.psi_information(state)
        if not info > 0:
            break
        gain = grad * grad / info
        if gain < tol or gain > slow * last_gain:
            break
        last_gain = gain
        psi = state.psis[0][0, 0] + grad / info
        theta = np.array([np.sqrt(max(psi, floor) / scale)])
    return theta


def variance_newton(objective, theta, max_iter, theta_tol=1e-7):
    """
    Newton's method for a single variance ``psi = c theta**2 >= 0``, in
    ``psi``: the observed curvature where the likelihood is concave in
    ``psi`` (Fisher's information elsewhere), steps halved until the
    likelihood does not fall, clipped at ``psi = 0``.

    Stops at ``psi = 0`` when the likelihood falls from there, or before an
    interior step that would move ``theta`` by less than ``theta_tol`` (in the
    data's units, ``objective.param_scale``): that last step is the
    finishing optimiser's (Newton's convergence being quadratic, one step
    from there is exact to rounding).  Every point is the objective's
    memoised state, its derivatives included, so the stages after it reuse
    the last one.  Returns the last point and the number of steps.
    """
    scale = objective.square_scale
    lik = objective.kernel
    theta_tol = theta_tol * objective.param_scale[0]
    state = objective.state(theta)
    for iteration in range(max_iter):
        psi = state.psis[0][0, 0]
        grad = lik.psi_gradient(state)[0][0, 0]
        if psi <= 0 and grad <= 0:
            return theta, iteration
        curvature = -lik.psi_hessian(state)
        if not curvature > 0:
            curvature = lik.psi_information(state)
        if not curvature > 0:
            return theta, iteration
        step = grad / curvature
        # d theta = d psi / (2 c theta) to first order; a step onto the
        # boundary at 0 is always taken (it is exact there)
        if 0 < psi + step and abs(step) <= theta_tol * 2 * np.sqrt(
                scale * psi):
            return theta, iteration
        target = max(psi + step, 0.0)
        for _ in range(40):
            trial = np.array([np.sqrt(target / scale)])
            trial_state = objective.state(trial)
            if trial_state.llf >= state.llf - 1e-12 * abs(state.llf):
                break
            target = (psi + target) / 2
        else:
            return theta, iteration
        theta, state = trial, trial_state
    return theta, max_iter


def damped_newton(objective, theta, max_iter, free=None, handover=0.0):
    """
    Modified Newton steps with step halving until the score is
    stationary, over ``free`` parameters only, if given: the observed
    Hessian with its eigenvalues replaced by minus their absolute values,
    so every step is an ascent direction that is Newton's own where the
    surface is concave.  With ``handover``, stops where the surface is
    concave and the Newton step promises less than that gain in the
    log-likelihood: plain Newton steps (the finishing optimiser's) are safe
    from there.  The steps are taken in the data's units
    (``u = theta / param_scale``, where the Hessian is ``D H D``), so that
    they do not depend on the scale of the data.  Returns the last point
    and the number of steps.
    """
    free = np.ones(theta.size, dtype=bool) if free is None else free
    units = objective.param_scale[free]
    llf = objective.loglike(theta)
    if not np.isfinite(llf):
        raise ValueError(
            "the starting Psi gives a marginal covariance that is not "
            "positive definite; give another init_psi")
    for iteration in range(max_iter):
        if is_stationary(objective, theta):
            return theta, iteration
        grad = objective.score(theta)[free] * units
        hess = objective.hessian(theta)[np.ix_(free, free)]
        eigval, eigvec = np.linalg.eigh(hess * np.outer(units, units))
        curvature = np.maximum(np.abs(eigval),
                               1e-8 * max(np.abs(eigval).max(), 1e-12))
        step = eigvec @ ((eigvec.T @ grad) / curvature)
        if eigval.max() < 0 and 0.5 * np.dot(grad, step) < handover:
            return theta, iteration
        length = 1.0
        while length > 1e-4:
            trial = theta.copy()
            trial[free] += length * step * units
            llf_trial = objective.loglike(trial)
            if llf_trial >= llf:
                break
            length /= 2
        else:
            return theta, iteration
        theta, llf = trial, llf_trial
    return theta, max_iter


def is_stationary(objective, theta, tol=1e-6, second_order=False):
    """
    First-order optimality: the score is negligible (in the data's units,
    ``|dl/du| <= tol * sqrt(nobs)`` with ``u = theta / param_scale``),
    except that a standard deviation resting on its kinked boundary at 0
    only needs the likelihood not to rise when it moves away from 0.

    With ``second_order``, a point that fails that test is still accepted
    when :func:`negligible_gain` shows the surface is concave there and no
    step can raise the log-likelihood by more than its rounding: the score
    can then be larger than the test allows only through rounding (a
    variance unit far from the size of Psi, say when a few huge
    within-study variances set the unit).
    """
    grad = objective.score(theta) * objective.param_scale
    tol = tol * max(1.0, objective.nobs ** 0.5)
    kinked = objective.kinked
    if not kinked.any():
        first = bool(np.all(np.abs(grad) <= tol))
        free = np.ones(theta.size, dtype=bool)
    else:
        at_zero = at_kinked_boundary(objective, theta)
        outward = grad[at_zero] * np.where(theta[at_zero] < 0, -1.0, 1.0)
        first = bool(np.all(np.abs(grad[~at_zero]) <= tol)
                     and np.all(outward <= tol))
        if not np.all(outward <= tol):
            return first
        free = ~at_zero
    if first or not second_order:
        return first
    return negligible_gain(objective, theta, free)


#: The most that the quadratic model may promise at an accepted maximum:
#: this, or the log-likelihood's rounding if larger.
GAIN_TOL = 1e-10


def negligible_gain(objective, theta, free):
    """
    Second-order optimality over the ``free`` parameters: the Hessian is
    negative definite and the Newton step's predicted gain
    ``g' (-H)^{-1} g / 2`` is at most :data:`GAIN_TOL` (or ``1e-12
    |llf|``), so that no point near ``theta`` is measurably better.
    """
    if not free.any():
        return True
    llf = objective.loglike(theta)
    if not np.isfinite(llf):
        return False
    units = objective.param_scale[free]
    grad = objective.score(theta)[free] * units
    hess = objective.hessian(theta)[np.ix_(free, free)] * np.outer(units,
                                                                  units)
    try:
        root = np.linalg.cholesky(-hess)
    except np.linalg.LinAlgError:
        return False
    half = np.linalg.solve(root, grad)
    return bool(0.5 * half @ half <= max(GAIN_TOL, 1e-12 * abs(llf)))


def at_kinked_boundary(objective, theta, rtol=1e-3):
    """Kinked parameters within ``rtol`` (relative, in the data's units)
    of 0."""
    units = np.abs(theta) / objective.param_scale
    scale = max(1.0, units.max()) if theta.size else 1.0
    return objective.kinked & (units <= rtol * scale)


def settle_on_boundary(objective, theta, max_iter=50):
    """
    Where an optimiser stalls beside a kinked boundary (a standard
    deviation of hcs, har1 or cor near 0), put those parameters on the
    boundary and finish the others by damped Newton steps.
    """
    if not objective.kinked.any():
        return theta
    at_zero = at_kinked_boundary(objective, theta)
    if not at_zero.any() or is_stationary(objective, theta):
        return theta
    trial, _ = damped_newton(objective, np.where(at_zero, 0.0, theta),
                             max_iter, free=~at_zero)
    return (trial if objective.loglike(trial)
            >= objective.loglike(theta) - 1e-10 else theta)
