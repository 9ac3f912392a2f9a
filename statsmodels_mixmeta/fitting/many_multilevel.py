r"""
Climbs of the two-level likelihood of many data sets at once
(:mod:`statsmodels_mixmeta.kernels.many_multilevel`), for the linear
structures of the single fit.

Each level's ``Psi`` is a non-negative combination ``sum_t lambda_t E_t``
of fixed, mutually orthogonal symmetric matrices (:func:`cone_basis`):

* ``cs``: ``E_1 = 1 1'/k``, ``E_2 = I - 1 1'/k`` (its eigenvalues
  ``lambda_1 = s^2 (1 + (k-1) rho)`` and ``lambda_2 = s^2 (1 - rho)``);
* ``diag``: ``E_a = e_a e_a'``; ``id``: ``E = I``.

``lambda >= 0`` is exactly the set of positive semi-definite matrices of
the structure, the closure of the single fit's parameter space
(:mod:`statsmodels_mixmeta.structures.psi`: ``s >= 0`` and
``rho`` in ``(-1/(k-1), 1)`` for ``cs``), so the maximum is the same
``Psi``; :func:`theta_of` gives the single fit's ``theta`` of it (infinite
``logit_rho`` at a boundary correlation).  The likelihood is smooth in
``lambda`` and the constraints are a box, so the climb is a projected
Newton method with the average information (Gilmour et al. 1995) as its
metric: coordinates at 0 whose score points outward are held there, the
others take the step ``AI^{-1} g``, projected onto the box and halved until
the likelihood does not fall.  A data set leaves the active set when its
Newton decrement ``g' AI^{-1} g`` on the free coordinates is below
``DECREMENT`` (or its step and change in likelihood are negligible).
"""
import numpy as np

from ..kernels import many_multilevel as kernel
from .batched import put, settled, take

STRUCTURES = ("cs", "diag", "id")
#: A data set has converged when ``g' AI^{-1} g`` (twice the predicted
#: rise of the likelihood) on its free coordinates is below this.
DECREMENT = 1e-16
STEP_TOL = 1e-12
LLF_TOL = 1e-13
HALVINGS = 40


def cone_basis(bscov, k):
    """``(T, k, k)``: the matrices ``E_t`` of :mod:`this module
    <statsmodels_mixmeta.fitting.many_multilevel>`."""
    if bscov == "cs":
        if k < 2:
            raise ValueError("bscov='cs' needs at least 2 outcomes")
        J = np.ones((k, k)) / k
        return np.stack([J, np.eye(k) - J])
    if bscov == "diag":
        return np.einsum("ta,ab->tab", np.eye(k), np.eye(k))
    if bscov == "id":
        return np.eye(k)[None]
    raise ValueError(f"bscov must be one of {STRUCTURES} at each level of "
                     f"a multilevel fit_many, got {bscov!r}")


def psi_of(basis, lam):
    """``(R, k, k)`` from coefficients ``(R, T)``."""
    return np.einsum("rt,tab->rab", lam, basis)


def project(basis, psi):
    """Coefficients ``(R, T)`` of the orthogonal projection of ``psi`` on
    the span of ``basis``, floored at 0."""
    norms = np.einsum("tab,tab->t", basis, basis)
    return np.maximum(np.einsum("tab,rab->rt", basis, psi) / norms, 0.0)


def theta_of(bscov, psi):
    """
    The single fit's ``theta`` of each ``psi`` ``(R, k, k)``
    (:mod:`statsmodels_mixmeta.structures.psi`): ``(s, logit_rho)`` for
    ``cs``, the standard deviations for ``diag``, ``(sd,)`` for ``id``.
    """
    k = psi.shape[-1]
    var = np.einsum("raa->ra", psi)
    if bscov == "diag":
        return np.sqrt(var)
    s2 = var.mean(axis=1)
    if bscov == "id":
        return np.sqrt(s2)[:, None]
    lower = -1.0 / (k - 1)
    off = (psi.sum(axis=(1, 2)) - var.sum(axis=1)) / (k * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = off / s2
        w = (rho - lower) / (1 - lower)
        a = np.log(w) - np.log1p(-w)
    return np.column_stack([np.sqrt(s2), a])


def starts(stack, y, bases):
    """
    A start inside the cone for every data set, by analysis of variance
    of the least-squares residuals ``r``: within outer groups
    ``C_w = sum (r_i - rbar_g)(r_i - rbar_g)' / (n - m)`` estimates
    ``Psi_w + mean S``, between them
    ``C_b = sum_g n_g rbar_g rbar_g' / (m - p)`` estimates
    ``nbar Psi_o + C_w``; each projected on its level's structure and
    raised to at least a tenth of the mean within-study variance.
    """
    mask = stack.mask
    x = stack.x
    xtx = np.einsum("gnc,gnd->cd", x, x)
    coef = np.linalg.solve(xtx, np.einsum("gnc,rgna->rca", x, y))
    resid = (y - np.einsum("gnc,rca->rgna", x, coef)) * mask[..., None]
    sizes = mask.sum(axis=1)
    n, m = sizes.sum(), len(sizes)
    means = resid.sum(axis=2) / sizes[:, None]
    centred = (resid - means[:, :, None]) * mask[..., None]
    within = np.einsum("rgna,rgnb->rab", centred, centred) / max(n - m, 1)
    between = np.einsum("g,rga,rgb->rab", sizes, means, means) / max(
        m - stack.p, 1)
    mean_s = stack.S[mask].mean(axis=0)
    floor = 0.1 * np.trace(mean_s) / stack.k
    psi_outer = (between - within) / sizes.mean()
    psi_inner = within - mean_s
    return [np.maximum(project(basis, psi), floor)
            for basis, psi in zip(bases, (psi_outer, psi_inner))]


def _score(ev, bases):
    grads = (ev.grad_outer, ev.grad_inner)
    return np.concatenate([np.einsum("rab,tab->rt", g, basis)
                           for g, basis in zip(grads, bases)], axis=1)


def _split(lam, bases):
    n_outer = len(bases[0])
    return (psi_of(bases[0], lam[:, :n_outer]),
            psi_of(bases[1], lam[:, n_outer:]))


def _directions(lam, g, info):
    """Projected Newton step on the free coordinates, and its decrement."""
    held = (lam <= 0) & (g <= 0)
    T = lam.shape[1]
    eye = np.eye(T)
    metric = np.where(held[:, :, None] | held[:, None, :], 0.0, info)
    metric = metric + eye * held[:, :, None]
    gf = np.where(held, 0.0, g)
    # a singular metric (a direction the data do not inform): ridge it
    values, vectors = np.linalg.eigh(metric)
    top = np.maximum(values[:, -1:], 1e-300)
    values = np.maximum(values, 1e-10 * top)
    step = np.einsum("rts,rs->rt", vectors,
                     np.einsum("rts,rt->rs", vectors, gf) / values)
    return step, np.einsum("rt,rt->r", gf, step)


def climb(stack, y, lam, bases, maxiter=100):
    """
    Climb every data set of ``y`` (padded, ``(R, m, n_max, k)``) from
    coefficients ``lam`` ``(R, T)``.

    Returns
    -------
    lam, fit (:class:`~statsmodels_mixmeta.kernels.many_multilevel.
    NestedEvaluation` at ``lam``), converged, n_iter
    """
    R = y.shape[0]
    lam = lam.copy()
    fit = kernel.evaluate(stack, y, *_split(lam, bases), bases)
    converged = np.zeros(R, bool)
    n_iter = np.zeros(R, np.int32)
    active = np.arange(R)
    for _ in range(maxiter):
        if not active.size:
            break
        sub = take(fit, active)
        step, decrement = _directions(lam[active], _score(sub, bases),
                                      sub.info)
        done = decrement <= DECREMENT * (1 + np.abs(sub.llf))
        converged[active[done]] = True
        active, step, sub = active[~done], step[~done], take(sub, ~done)
        if not active.size:
            break
        new_lam, new_fit = _line_search(stack, y[active], lam[active], step,
                                        sub.llf, bases)
        n_iter[active] += 1
        stop = settled(new_lam, lam[active], new_fit.llf, sub.llf,
                       STEP_TOL, LLF_TOL)
        lam[active] = new_lam
        put(fit, active, new_fit)
        converged[active[stop]] = True
        active = active[~stop]
    return lam, fit, converged, n_iter


def _line_search(stack, y, lam, step, base, bases):
    """Halve each data set's projected step until its likelihood does not
    fall; the evaluation at the accepted point carries derivatives (the
    full step, usually accepted, is evaluated with them at once)."""
    out_lam = np.maximum(lam + step, 0.0)
    out = kernel.evaluate(stack, y, *_split(out_lam, bases), bases)
    pending = np.flatnonzero(
        ~(out.llf >= base - 1e-13 * (1 + np.abs(base))))
    if not pending.size:
        return out_lam, out
    rest = pending
    out_lam[rest] = lam[rest]
    scale = np.full(len(lam), 0.5)
    for _ in range(HALVINGS):
        trial = np.maximum(lam[pending] + scale[pending, None]
                           * step[pending], 0.0)
        ev = kernel.evaluate(stack, y[pending], *_split(trial, bases))
        ok = ev.llf >= base[pending] - 1e-13 * (1 + np.abs(base[pending]))
        out_lam[pending[ok]] = trial[ok]
        pending = pending[~ok]
        if not pending.size:
            break
        scale[pending] /= 2
    # (no ascent along the step: those stay where they are)
    put(out, rest, kernel.evaluate(stack, y[rest], *_split(out_lam[rest],
                                                            bases), bases))
    return out_lam, out


def maximise(stack, y, bscov, maxiter=100):
    """
    The ML/REML fit of every data set of ``y`` (padded): ``(psi_outer,
    psi_inner, fit, converged, n_iter)``.
    """
    bases = tuple(cone_basis(b, stack.k) for b in bscov)
    lam = np.concatenate(starts(stack, y, bases), axis=1)
    lam, fit, converged, n_iter = climb(stack, y, lam, bases, maxiter)
    psi_outer, psi_inner = _split(lam, bases)
    return psi_outer, psi_inner, fit, converged, n_iter
