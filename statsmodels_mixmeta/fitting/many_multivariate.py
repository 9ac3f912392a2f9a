r"""
Newton climbs of the multivariate (restricted) likelihood of many problems
at once, in the single fit's unstructured parameterisation.

``Psi = L L'`` with ``theta`` the lower triangle of ``L`` by column
(:class:`statsmodels_mixmeta.structures.psi.Unstructured`); the score and
Hessian in ``theta`` follow from those in the entries ``psi_a`` of
``Psi`` (:mod:`statsmodels_mixmeta.kernels.many_multivariate`) by the chain
rule,

.. math::

    g_\theta = J' g_\psi, \qquad
    H_\theta = J' H_\psi J + \sum_a g_{\psi,a}\, C_a,

``J = d psi / d theta`` and ``C_a`` the constant second derivatives of
``L L'``.  A singular ``Psi`` (the boundary) is an ordinary point of
``theta`` (a zero column of ``L``), so the climb needs no bounds there.
Each iteration takes the Newton step where ``-H_theta`` is positive
definite and a Newton step on its absolute eigenvalues elsewhere
(:func:`_directions`), halving it until the likelihood does not fall; a
problem leaves the active set when its step and its change in likelihood
are negligible.

Every problem is climbed from two starts (:func:`starts`: the moment
estimate and a distant one) and the highest maximum kept.  A problem is
*certified* when the climbs converged to the same likelihood at a point
where ``-H_theta`` is positive definite and not nearly singular
(``DEFINITE``); where the best ``Psi`` is singular, with several
outcomes, also the climbs from it with the correlations of
one outcome flipped in sign (``D Psi D``, ``D`` a diagonal of +-1, slightly
ridged) must not find a different maximum.  The others are reported as not
certified.  This is a check, not a proof: a higher maximum that none of
the starts reaches is not excluded.
"""
import numpy as np

from ..kernels import many_multivariate as kernel
from .batched import put, settled, take
from .many_charts import make_chart

#: Convergence: largest step in theta relative to ``1 + |theta|`` and change
#: in log-likelihood.
STEP_TOL = 1e-10
LLF_TOL = 1e-12
#: Two climbs that end within this of each other reached the same maximum.
SAME_LLF = 1e-7
#: A maximum is well determined (certifiable) when the smallest eigenvalue
#: of ``-H_theta`` there exceeds this times its largest: flatter maxima
#: (nearly singular curvature, typically a ``Psi`` at the boundary with a
#: vanishing score across it) are where a single fit's own stopping rule
#: can leave it visibly short of the maximum.
DEFINITE = 1e-5
#: A Psi whose smallest eigenvalue is at most this times its largest is
#: singular (on the boundary) for the sign-flip starts of :func:`maximise`.
BOUNDARY = 1e-8
#: Halvings of a step at most.
HALVINGS = 40


def _directions(stack, chart, theta, ev):
    """
    The step of each problem: Newton's where ``-H_theta`` is positive
    definite; elsewhere its eigenvalues are replaced by their absolute
    values (floored at ``1e-8`` of the largest), so that the step climbs
    along directions of positive curvature too: from near a saddle (a
    column of ``L`` near 0 while ``Psi`` should not be singular there) the
    climb moves away geometrically instead of creeping.  Also returns
    whether ``-H_theta`` was positive definite.
    """
    J = chart.jacobian(theta)
    g = np.einsum("rat,ra->rt", J, ev.grad)
    H = (np.einsum("rat,rab,rbs->rts", J, ev.hess, J)
         + np.einsum("tsa,ra->rts", chart.curvature, ev.grad))
    values, vectors = np.linalg.eigh(-H)
    top = np.maximum(np.abs(values).max(axis=1, keepdims=True), 1e-300)
    definite = values[:, 0] > DEFINITE * top[:, 0]
    scaled = np.maximum(np.abs(values), 1e-8 * top)
    step = np.einsum("rts,rs->rt", vectors,
                     np.einsum("rts,rt->rs", vectors, g) / scaled)
    return step, definite


def climb(stack, chart, psi, rows, maxiter=100):
    """
    Climb every problem of ``rows`` from ``psi`` ``(len(rows), k, k)``.

    Returns
    -------
    psi, fit (:class:`~statsmodels_mixmeta.kernels.many_multivariate.
    MultiEvaluation` at ``psi``, with derivatives), converged, n_iter,
    definite (``-H_theta`` positive definite at the end)
    """
    theta = chart.theta_of(psi)
    n = len(rows)
    fit = kernel.evaluate(stack, chart.psi_of(theta), rows, True)
    converged = np.zeros(n, bool)
    definite = np.zeros(n, bool)
    n_iter = np.zeros(n, np.int32)
    active = np.arange(n)
    for _ in range(maxiter):
        if not active.size:
            break
        sub = take(fit, active)
        step, definite[active] = _directions(stack, chart, theta[active],
                                             sub)
        new_theta, new_fit = _line_search(stack, chart, rows[active],
                                          theta[active], step, sub.llf)
        n_iter[active] += 1
        done = settled(new_theta, theta[active], new_fit.llf, sub.llf,
                       STEP_TOL, LLF_TOL)
        theta[active] = new_theta
        put(fit, active, new_fit)
        converged[active[done]] = True
        active = active[~done]
    if (~converged).any():
        rest = np.flatnonzero(~converged)
        _, definite[rest] = _directions(stack, chart, theta[rest],
                                        take(fit, rest))
    return chart.psi_of(theta), fit, converged, n_iter, definite


def _line_search(stack, chart, rows, theta, step, base):
    """Halve each problem's step until its likelihood does not fall."""
    out_theta = theta.copy()
    out = None
    pending = np.arange(len(rows))
    scale = np.ones(len(rows))
    for _ in range(HALVINGS):
        trial = theta[pending] + scale[pending, None] * step[pending]
        ev = kernel.evaluate(stack, chart.psi_of(trial), rows[pending],
                             True)
        if out is None:
            out = ev
        ok = ev.llf >= base[pending] - 1e-12 * (1 + np.abs(base[pending]))
        put(out, pending[ok], take(ev, np.flatnonzero(ok)))
        out_theta[pending[ok]] = trial[ok]
        pending = pending[~ok]
        if not pending.size:
            return out_theta, out
        scale[pending] /= 2
    # no ascent: stay where they are
    ev = kernel.evaluate(stack, chart.psi_of(theta[pending]), rows[pending],
                         True)
    put(out, pending, ev)
    return out_theta, out


def starts(stack, moments, rows):
    """
    The starts of every climb: the moment estimate and a distant start
    (the moment estimate plus the mean within-study variances on the
    diagonal).  (A third from the single fit's small default start cost
    80 % more time and changed no result on 2,000 random problems.)
    """
    mask = stack.mask[rows]
    variances = np.where(mask, np.einsum("rnaa->rna", stack.S[rows]),
                         np.nan)
    mean_s = np.nanmean(variances, axis=1)
    eye = np.eye(stack.k)
    return [moments, moments + eye * mean_s[:, None, :]]


def maximise(stack, start, rows, maxiter=100, bscov="unstr"):
    """
    Climb from each of :func:`starts` (``start`` the moment estimate) and
    keep the highest maximum; certified where every climb converged to the
    same likelihood and the maximum is well determined (``DEFINITE``).

    Returns
    -------
    psi, fit, converged, n_iter, certified
    """
    chart = make_chart(bscov, stack.k)
    first, *others = starts(stack, start, rows)
    psi, fit, converged, n_iter, definite = climb(stack, chart, first, rows,
                                                  maxiter)
    lowest, all_converged = fit.llf.copy(), converged.copy()
    for other in others:
        psi_b, fit_b, conv_b, iter_b, def_b = climb(stack, chart, other,
                                                    rows, maxiter)
        n_iter = n_iter + iter_b
        all_converged &= conv_b
        lowest = np.minimum(lowest, fit_b.llf)
        win = np.flatnonzero(fit_b.llf > fit.llf)
        psi[win] = psi_b[win]
        put(fit, win, take(fit_b, win))
        converged[win], definite[win] = conv_b[win], def_b[win]
    # a singular Psi: the maxima with the sign of an outcome's correlations
    # flipped are the usual rivals there; climb from each flip too
    values = np.linalg.eigvalsh(psi)
    edge = np.flatnonzero(values[:, 0] <= BOUNDARY * np.maximum(
        values[:, -1], 1e-300))
    if stack.k > 1 and edge.size and bscov == "unstr":
        eye = np.eye(stack.k)
        ridge = 0.01 * np.einsum("raa->r", psi[edge])[:, None, None] * eye
        for a in range(1 if stack.k == 2 else stack.k):
            flip = eye.copy()
            flip[a, a] = -1.0
            psi_b, fit_b, conv_b, iter_b, def_b = climb(
                stack, chart, flip @ psi[edge] @ flip + ridge, rows[edge],
                maxiter)
            n_iter[edge] += iter_b
            all_converged[edge] &= conv_b
            lowest[edge] = np.minimum(lowest[edge], fit_b.llf)
            better = fit_b.llf > fit.llf[edge]
            win = edge[better]
            psi[win] = psi_b[better]
            put(fit, win, take(fit_b, np.flatnonzero(better)))
            converged[win], definite[win] = conv_b[better], def_b[better]
    same = fit.llf - lowest <= SAME_LLF * (1 + np.abs(fit.llf))
    certified = all_converged & same & definite
    return psi, fit, converged, n_iter, certified
