"""
The optimiser stage: starting values, damped Newton steps and boundaries.

The model's own ``fit`` hands the result to statsmodels' optimisers; these
free functions take a model (anything with ``loglike``, ``score``,
``hessian``, ``information``, ``random`` and ``nobs``) and a parameter
vector, and own what the generic optimisers cannot know:

* an IGLS-like start: Fisher scoring on the free entries of each Psi, kept
  positive semi-definite (linear in the entries, so well conditioned even
  where the structure's own parameters are not);
* damped, modified Newton steps (the observed Hessian with eigenvalues made
  negative; step halving), robust next to a singular Psi, and for a single
  variance, Newton's method in the variance itself, kept non-negative;
* first-order optimality that accepts standard deviations resting on their
  kinked boundary at zero (``hcs``, ``har1``, ``cor``), and the step that
  puts them there when an optimiser stalls beside it.
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


#: Smallest eigenvalue of a scoring iterate of Psi, relative to its largest.
START_PSD_FLOOR = 1e-8


def entrywise_scoring(model, psis, max_iter, tol=100.0, slow=0.9):
    """
    Fisher scoring on the free entries of each free Psi, kept PSD.

    Stops once the predicted gain ``g' I^{-1} g`` falls below ``tol``, or
    shrinks by less than the factor ``slow`` in a step (the linear
    convergence of scoring towards a singular Psi, which Newton's method
    finishes faster), or when a step lowers the likelihood (projections
    onto the PSD cone can make scoring oscillate; the better point is
    kept).
    """
    free = [s.n_params > 0 for s in model.random.structures]
    bases = [symmetric_basis(p.shape[0]) if f
             else np.zeros((0,) + p.shape) for p, f in zip(psis, free)]
    sizes = np.cumsum([0] + [b.shape[0] for b in bases])
    lik = model.objective
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
                            START_PSD_FLOOR, relative=True)
                if f else p
                for p, basis, f, a, b in zip(psis, bases, free,
                                             sizes[:-1], sizes[1:])]
        gain = np.dot(grad, step)
        if gain < tol or gain > slow * last_gain:
            break
        last_gain = gain
    return psis


def scalar_start(model, psi, max_iter, tol=1e-3, floor=1e-8):
    """
    ``entrywise_scoring`` for a single variance ``psi = c theta**2``
    (``psi += grad / info``), evaluated at the model's memoised states of
    ``theta``, so that the point returned has already been evaluated for
    the stages after it.
    """
    scale = model.random.structures[0]._square_scale
    lik = model.objective
    theta = np.array([np.sqrt(max(psi, floor) / scale)])
    for _ in range(max_iter):
        state = model.gls_state(theta)
        grad = lik.psi_gradient(state)[0][0, 0]
        info = lik.psi_information(state)
        if not info > 0 or grad * grad / info < tol:
            break
        psi = state.psis[0][0, 0] + grad / info
        theta = np.array([np.sqrt(max(psi, floor * max(1.0, abs(psi)))
                                  / scale)])
    return theta


def variance_newton(model, theta, max_iter, theta_tol=1e-7):
    """
    Newton's method for a single variance ``psi = c theta**2 >= 0``, in
    ``psi``: the observed curvature where the likelihood is concave in
    ``psi`` (Fisher's information elsewhere), steps halved until the
    likelihood does not fall, clipped at ``psi = 0``.

    Stops at ``psi = 0`` when the likelihood falls from there, or before a
    step that would move ``theta`` by less than ``theta_tol``: that last
    step is the finishing optimiser's (Newton's convergence being
    quadratic, one step from there is exact to rounding).  Every point is
    the model's memoised state, its derivatives included, so the stages
    after it reuse the last one.  Returns the last point and the number of
    steps.
    """
    scale = model.random.structures[0]._square_scale
    lik = model.objective
    state = model.gls_state(theta)
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
        # d theta = d psi / (2 c theta) to first order
        if psi > 0 and abs(step) <= theta_tol * 2 * np.sqrt(scale * psi):
            return theta, iteration
        target = max(psi + step, 0.0)
        for _ in range(40):
            trial = np.array([np.sqrt(target / scale)])
            trial_state = model.gls_state(trial)
            if trial_state.llf >= state.llf - 1e-12 * abs(state.llf):
                break
            target = (psi + target) / 2
        else:
            return theta, iteration
        theta, state = trial, trial_state
    return theta, max_iter


def damped_newton(model, theta, max_iter, free=None, handover=0.0):
    """
    Modified Newton steps with step halving until the score is
    stationary, over ``free`` parameters only, if given: the observed
    Hessian with its eigenvalues replaced by minus their absolute values,
    so every step is an ascent direction that is Newton's own where the
    surface is concave.  With ``handover``, stops where the surface is
    concave and the Newton step promises less than that gain in the
    log-likelihood: plain Newton steps (the finishing optimiser's) are safe
    from there.  Returns the last point and the number of steps.
    """
    free = np.ones(theta.size, dtype=bool) if free is None else free
    llf = model.loglike(theta)
    if not np.isfinite(llf):
        raise ValueError(
            "the starting Psi gives a marginal covariance that is not "
            "positive definite; give another init_psi")
    for iteration in range(max_iter):
        if is_stationary(model, theta):
            return theta, iteration
        grad = model.score(theta)[free]
        eigval, eigvec = np.linalg.eigh(model.hessian(theta)[np.ix_(free,
                                                                   free)])
        curvature = np.maximum(np.abs(eigval),
                               1e-8 * max(np.abs(eigval).max(), 1e-12))
        step = eigvec @ ((eigvec.T @ grad) / curvature)
        if eigval.max() < 0 and 0.5 * np.dot(grad, step) < handover:
            return theta, iteration
        length = 1.0
        while length > 1e-4:
            trial = theta.copy()
            trial[free] += length * step
            llf_trial = model.loglike(trial)
            if llf_trial >= llf:
                break
            length /= 2
        else:
            return theta, iteration
        theta, llf = trial, llf_trial
    return theta, max_iter


def is_stationary(model, theta, tol=1e-6):
    """
    First-order optimality: the score is negligible, except that a
    standard deviation resting on its kinked boundary at 0 only needs
    the likelihood not to rise when it moves away from 0.
    """
    grad = model.score(theta)
    tol = tol * max(1.0, model.nobs ** 0.5)
    if not model.random.kinked().any():
        return bool(np.all(np.abs(grad) <= tol))
    at_zero = at_kinked_boundary(model, theta)
    outward = grad[at_zero] * np.where(theta[at_zero] < 0, -1.0, 1.0)
    return bool(np.all(np.abs(grad[~at_zero]) <= tol)
                and np.all(outward <= tol))


def at_kinked_boundary(model, theta, rtol=1e-3):
    scale = max(1.0, np.abs(theta).max()) if theta.size else 1.0
    return model.random.kinked() & (np.abs(theta) <= rtol * scale)


def settle_on_boundary(model, theta, max_iter=50):
    """
    Where an optimiser stalls beside a kinked boundary (a standard
    deviation of hcs, har1 or cor near 0), put those parameters on the
    boundary and finish the others by damped Newton steps.
    """
    if not model.random.kinked().any():
        return theta
    at_zero = at_kinked_boundary(model, theta)
    if not at_zero.any() or is_stationary(model, theta):
        return theta
    trial, _ = damped_newton(model, np.where(at_zero, 0.0, theta),
                                   max_iter, free=~at_zero)
    return trial if model.loglike(trial) >= model.loglike(theta) - 1e-10 \
        else theta
