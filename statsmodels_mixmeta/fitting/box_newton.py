"""
Newton's method over a box for the small, smooth problems of the profile
likelihood (:mod:`statsmodels_mixmeta.fitting.profile`): the nuisance
Psi parameters with one held fixed, a handful of coordinates bounded
below by 0 (standard deviations) or saturating at +-infinity (correlation
coordinates on the atanh/logit scale).
"""
import numpy as np

#: the profile's optimum: largest |gradient| of the free coordinates, or
#: a Newton step that gains less than this much log-likelihood
_GRADIENT_TOL = 1e-9
_VALUE_TOL = 1e-9
#: a correlation coordinate beyond this (|rho| > 0.99998 on the atanh
#: scale) is tried at its limit
_KNEE = 6.0


def _differenced_hessian(fun, x, idx):
    """Central differences of the gradient of ``fun`` over ``idx``."""
    hess = np.empty((idx.size, idx.size))
    for col, m in enumerate(idx):
        h = 1e-5 * max(abs(x[m]), 1.0)
        up, down = x.copy(), x.copy()
        up[m] += h
        down[m] -= h
        hess[:, col] = (fun(up)[1][idx] - fun(down)[1][idx]) / (2 * h)
    return hess


def projected_newton(fun, x0, lower, upper, hessian=None, saturating=None,
                     gtol=_GRADIENT_TOL, ftol=_VALUE_TOL, maxiter=200):
    """
    Minimise ``fun`` (returning value and gradient) over a box by Newton
    steps on the coordinates not held at a bound.

    The Hessian is ``hessian(x)`` or, without it, differenced from the
    gradient (central differences; the problems are small), its
    eigenvalues made positive
    (absolute value, floored); steps are projected onto the box and
    halved until the value decreases (Armijo).  A coordinate is held at a
    bound while the gradient pushes it outward.  It stops when the free
    gradient is below ``gtol`` or a step gains less than ``ftol`` (in the
    log-likelihood's absolute units: a correlation coordinate running to
    +-infinity, where the likelihood is flat, would otherwise crawl).
    Coordinates flagged ``saturating`` (the tanh/expit correlation
    coordinates) that step outward past ``_KNEE`` are also tried at their
    bound, the correlation's limit, and kept there if that is better.  Chosen over scipy's
    L-BFGS-B for its quadratic convergence (the profile must be exact to
    far below the 1e-4 the intervals need) and because it makes no
    threaded BLAS calls on tiny matrices.

    Returns
    -------
    x : ndarray
        The minimiser (the start when no step decreases the value).
    value : float
        ``fun`` there.
    """
    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    value, grad = fun(x)
    if not np.isfinite(value):
        return x, value
    for _ in range(maxiter):
        active = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        free = ~active
        if not free.any() or np.max(np.abs(grad[free])) < gtol:
            break
        idx = np.flatnonzero(free)
        if hessian is not None:
            hess = hessian(x)[np.ix_(idx, idx)]
        else:
            hess = _differenced_hessian(fun, x, idx)
        eig, vec = np.linalg.eigh((hess + hess.T) / 2)
        eig = np.maximum(np.abs(eig), 1e-8 * max(np.max(np.abs(eig)), 1e-8))
        step = np.zeros_like(x)
        step[idx] = -vec @ ((vec.T @ grad[idx]) / eig)
        t = 1.0
        while t > 1e-12:
            trial = np.clip(x + t * step, lower, upper)
            new_value, new_grad = fun(trial)
            if new_value <= value + 1e-4 * np.dot(grad, trial - x):
                break
            t /= 2
        else:
            break
        if saturating is not None:
            # a coordinate past the knee of its tanh/expit, still moving
            # out: the likelihood approaches its limit geometrically, where
            # Newton crawls; try the limit itself
            out = saturating & (np.abs(trial) > _KNEE) & (step * trial > 0)
            if out.any():
                jump = trial.copy()
                jump[out] = np.where(trial[out] > 0, upper[out], lower[out])
                jump_value, jump_grad = fun(jump)
                if jump_value < new_value:
                    trial, new_value, new_grad = jump, jump_value, jump_grad
        done = value - new_value <= ftol
        x, value, grad = trial, new_value, new_grad
        if done:           # a flat direction (a correlation near +-1)
            break
    return x, value
