r"""
The objective the optimiser works on: the profiled (restricted)
log-likelihood as a function of the structure parameters ``theta``.

An :class:`Objective` joins a profiled likelihood kernel (a function of
the Psi's, :mod:`statsmodels_mixmeta.kernels`) and the random part's
packer (:class:`statsmodels_mixmeta.structures.levels.RandomPart`, which maps
``theta`` to the Psi of every level), in the manner of lme4's
``mkLmerDevfun``: ``theta -> llf``, its score, observed Hessian and
expected information by the chain rule

.. math::

    \frac{\partial \ell}{\partial \theta_t} = \sum_{rs}
        \frac{\partial \ell}{\partial \Psi_{rs}}
        \frac{\partial \Psi_{rs}}{\partial \theta_t},

plus what an optimiser needs to know about the parameter space: the
bounds and kinks of the structures, the scalar scale of a single variance
(``Psi = c theta**2``), and the units of the data.  The GLS states of the
last few ``theta`` evaluated are remembered, so that the value, score and
Hessian at one point share one factorisation.

Units.  Multiplying the outcomes by ``a`` and the within-study
covariances by ``a**2`` multiplies every Psi by ``a**2``, the standard
deviation-like parameters by ``|a|`` and shifts the log-likelihood by a
constant.  :func:`psi_units` measures the data's variance unit per level
(the typical within-study variance over the mean squared random
predictor); starting values, step and gradient tolerances and the
boundary test are taken relative to it, so that a fit gives the same
answer and the same verdict at every scale.
"""
import math

import numpy as np

#: A level's Psi is on the boundary when its smallest eigenvalue is at most
#: this fraction of its largest (or of the level's variance unit).
BOUNDARY_RTOL = 1e-6
#: The typical within-study variance is the median of at most about twice
#: this many of them (a regular subsample of larger data sets).
MEDIAN_SAMPLE = 1024


def psi_units(variances, designs):
    """
    Variance unit of each level's Psi.

    Parameters
    ----------
    variances : ndarray
        The within-study variances of the observed values (the diagonal of
        the known covariances), in any order.
    designs : sequence of ndarray
        Random-effects design of every level, each ``(N, r_l)``.

    Returns
    -------
    tuple of float
        ``median(v) / mean_i(sum_j z_ij**2)`` per level (the median of
        the positive variances, of every ``n // MEDIAN_SAMPLE``-th one in
        a large data set): the size of a Psi
        whose contribution ``z' Psi z`` to a value's variance is that of a
        typical within-study variance (1 where the data give no scale).
    """
    variances = np.asarray(variances, dtype=float).ravel()
    # a regular subsample of at most about 2 * MEDIAN_SAMPLE values is as
    # typical, and keeps this O(1) for a million studies
    variances = variances[::max(1, variances.size // MEDIAN_SAMPLE)]
    positive = variances[variances > 0]       # NaN compares False
    if positive.size:
        ordered = np.sort(positive)     # np.median's overhead, without it
        middle = ordered.size // 2
        typical = 0.5 * float(ordered[middle] + ordered[(ordered.size - 1)
                                                        // 2])
    else:
        typical = 1.0
    units = []
    for z in designs:
        flat = np.ravel(z)
        weight = float(np.dot(flat, flat)) / z.shape[0] if z.size else 0.0
        units.append(typical / weight if weight > 0 else typical)
    return tuple(units)


def psi_on_boundary(psis, units, structures, rtol=BOUNDARY_RTOL):
    """
    Which levels' Psi lie on the boundary of the positive semi-definite
    matrices: a variance at 0, a singular Psi, a correlation at +-1.

    A level is on the boundary when the smallest eigenvalue of its Psi is
    at most ``rtol`` times the larger of its largest eigenvalue and the
    level's variance unit.  Levels whose Psi is fixed (no parameters) are
    never reported.

    Returns
    -------
    list of bool, one per level
    """
    out = []
    for psi, unit, structure in zip(psis, units, structures):
        if structure.n_params == 0:
            out.append(False)
            continue
        psi = np.asarray(psi, dtype=float)
        eig = psi[0] if psi.shape == (1, 1) else np.linalg.eigvalsh(psi)
        out.append(bool(eig[0] <= rtol * max(eig[-1], unit)))
    return out


class Objective:
    """
    The profiled objective as a function of the structure parameters.

    Parameters
    ----------
    kernel : ProfiledLikelihood or UnivariateLikelihood
        The profiled likelihood of the Psi's (``evaluate(psis)``,
        ``psi_gradient(state)``, ``information(state, jacobians)``,
        ``hessian(state, jacobians)``; for a single variance also
        ``psi_information`` and ``psi_hessian``).
    random : RandomPart
        The structures of the levels and their parameter packer.
    nobs : float
        Number of observed values (the gradient tolerance grows with its
        square root).
    units : sequence of float, optional
        Variance unit of every level (:func:`psi_units`); 1 by default.
    memo_size : int
        Number of recent GLS states remembered.
    explain : callable, optional
        ``explain(error) -> exception``: the error to raise when the kernel
        finds a marginal covariance that is not positive definite (e.g. one
        naming the studies with singular within-study covariances); a
        ``LinAlgError`` either way, which :meth:`loglike` turns into
        ``-inf``.
    """

    def __init__(self, kernel, random, nobs, units=None, memo_size=4,
                 explain=None):
        self.kernel = kernel
        self._explain = explain
        self.random = random
        self.nobs = float(nobs)
        self.units = (tuple(float(u) for u in units) if units is not None
                      else (1.0,) * random.n_levels)
        self.n_params = random.n_params
        self.reml = bool(getattr(kernel, "reml", False))
        structures = random.structures
        #: c of a single variance Psi = c theta**2 (one level, 1 x 1), or None
        self.square_scale = (structures[0].square_scale
                             if len(structures) == 1 else None)
        # the size of each parameter in the data's units: sqrt(unit) for
        # standard deviations and Cholesky entries, 1 for correlations
        scale = []
        for structure, unit in zip(structures, self.units):
            root = math.sqrt(unit)
            scale.extend(root if sd else 1.0
                         for sd in structure.sd_params().tolist())
        self.param_scale = np.array(scale)
        self._memo = {}
        self._memo_size = memo_size

    # ------------------------------------------------------- the space
    @property
    def single_variance(self):
        """Psi is one variance ``c theta**2`` (one level, 1 x 1)."""
        return self.square_scale is not None

    @property
    def bounds(self):
        """``(n_params, 2)`` bounds of the natural parameter space."""
        return self.random.bounds()

    @property
    def kinked(self):
        """Parameters with a kink at 0 (an optimum there may have a
        non-zero score)."""
        return self.random.kinked()

    @property
    def param_names(self):
        return self.random.param_names()

    def psis(self, theta):
        """The Psi of every level at ``theta``."""
        return self.random.psis(theta)

    def start_psis(self, init_psi, fraction):
        """Starting Psi's: ``init_psi`` where given (validated by
        ``RandomPart.check_init_psi``), else ``fraction`` times the level's
        variance unit times the identity."""
        return self.random.initial_psis(
            init_psi, [fraction * u for u in self.units])

    def on_boundary(self, theta):
        """Per level, whether Psi is on its boundary
        (:func:`psi_on_boundary`)."""
        return psi_on_boundary(self.state(theta).psis, self.units,
                               self.random.structures)

    # ------------------------------------------------------ evaluation
    def state(self, theta):
        """
        The GLS fit at ``theta`` (``beta``, ``cov_beta``, ``llf`` and what
        the derivatives need), remembered for the last few ``theta``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If a marginal covariance is not positive definite.
        """
        key = np.asarray(theta, dtype=float).tobytes()
        state = self._memo.get(key)
        if state is None:
            try:
                state = self.kernel.evaluate(self.random.psis(theta))
            except np.linalg.LinAlgError as err:
                if self._explain is None:
                    raise
                raise self._explain(err) from None
            if len(self._memo) >= self._memo_size:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = state
        return state

    def loglike(self, theta):
        """Profiled (restricted) log-likelihood; ``-inf`` where a marginal
        covariance is not positive definite."""
        try:
            return self.state(theta).llf
        except np.linalg.LinAlgError:
            return -np.inf

    def score(self, theta):
        """Analytic gradient of :meth:`loglike`."""
        state = self.state(theta)
        if state.theta_score is None:
            grads = self.kernel.psi_gradient(state)
            jacs = self.random.jacobians(theta)
            # sum_rs dl/dPsi[r, s] dPsi[r, s]/dtheta_t, level by level
            parts = [j.reshape(j.shape[0], g.size) @ g.ravel()
                     for g, j in zip(grads, jacs)]
            # states are remembered per theta, so this is too
            state.theta_score = (np.concatenate(parts) if parts
                                 else np.zeros(0))
        return state.theta_score.copy()

    def information(self, theta):
        """Expected (Fisher) information of the structure parameters
        (symmetric: the kernel's rounding in its two triangles is
        averaged)."""
        info = self.kernel.information(self.state(theta),
                                       self.random.jacobians(theta))
        return (info + info.T) / 2

    def hessian(self, theta):
        """
        Analytic Hessian of :meth:`loglike`.

        The kernel gives the observed second derivatives through Psi; the
        curvature of the structure itself (``d2Psi / dtheta2``, which needs
        no data) is added by the packer.
        """
        theta = np.asarray(theta, dtype=float)
        if theta.size == 0:
            return np.zeros((0, 0))
        state = self.state(theta)
        if state.hessian is None:
            hess = self.kernel.hessian(state, self.random.jacobians(theta))
            grads = self.kernel.psi_gradient(state)
            # states are remembered per theta, so this is too
            state.hessian = hess + self.random.curvature(theta, grads)
        return state.hessian.copy()
