r"""
Profile likelihood of one natural-scale Psi parameter: the maximum of the
(restricted) log-likelihood with that parameter (a variance, or a
correlation where the structure has one) held at a value and all other
structure parameters re-optimised, and the values where it falls a given
amount below its maximum.

Method.  The profile is computed in a chart of
:mod:`statsmodels_mixmeta.fitting.psi_charts` in which the held parameter
is itself a coordinate: a held variance ``v`` fixes the standard deviation
``sqrt(v)``, a held correlation fixes the correlation itself (for
``unstr``, the first canonical partial correlation of a chart whose rows
are permuted to put the pair first).  The other coordinates are maximised
over a box (standard deviations ``>= 0``) by :func:`~statsmodels_mixmeta.fitting.box_newton.projected_newton`:
the score is the kernel's ``dl/dPsi`` chained with the chart's
``dPsi/dx``, the Hessian the kernel's observed Hessian in those
directions plus ``<dl/dPsi, d2Psi/dx2>``.  Because the held value is a
coordinate and not a transform of one, the edges of the parameter space
(a variance at 0, a correlation at -1, ``-1/(k-1)`` or 1) are ordinary
points of the chart, where the marginal covariances ``S_i + Z Psi Z'``
stay positive definite; this is why a chart is used rather than an
equality constraint on the Cholesky ``theta`` of ``unstr``, whose
gradient vanishes at a variance of 0.

Several maxima.  At a fixed value the likelihood can have a maximum inside
and another where a variance is 0.  Along a grid, each optimisation is
warm-started from the solution at the neighbouring value (walking outward
from the estimate) and again from the estimate, and the better kept.  A
correlation does not matter when a variance it joins is 0, so its profile
is at least that of the variance at 0 (computed once, the profile's
*floor*, :meth:`PsiProfile._floor`); without it a warm start follows the
inner branch below the true profile.

Bounds.  :meth:`PsiProfile.interval` walks from the estimate toward each
edge (fractions of the way to a finite edge, doubling steps in the
standard deviation toward an infinite one) to the first value where
``2 (l_max - l_p) - c`` changes sign, then solves for it by Brent's
method (in the standard deviation for a variance).  A profile that stays
above the cut-off up to the edge gives the edge.
"""
import math

import numpy as np
from scipy import optimize

from .box_newton import projected_newton
from .psi_charts import chart_curvature, chart_jacobian, level_charts

#: largest |atanh| / |logit| of a free correlation coordinate
_COORD_LIMIT = 18.0


class PsiProfile:
    """
    Profile (restricted) log-likelihood of the natural Psi parameters.

    Parameters
    ----------
    objective : Objective
        The fitted model's objective (its kernel and random part are used).
    theta : array_like
        The structure parameters of the fit (the start of every profile).

    Attributes
    ----------
    names : list of str
        The natural parameters, all levels, outer first.
    estimates : ndarray
        Their values at ``theta``.
    edges : ndarray, shape (n, 2)
        Their limits: ``[0, inf)`` for variances, ``[-1, 1]`` (``[-1/(k-1),
        1]`` for cs and hcs) for correlations.
    is_variance : ndarray of bool
    """

    def __init__(self, objective, theta):
        self.objective = objective
        self.random = objective.random
        self.theta = np.asarray(theta, dtype=float)
        self.psis = tuple(np.asarray(p, dtype=float)
                          for p in objective.psis(self.theta))
        self.units = objective.units
        charts = level_charts(self.random)
        self._owner = []                 # (level, index within the level)
        for lev, chart in enumerate(charts):
            self._owner += [(lev, i) for i in range(len(chart.names))]
        self.names = [n for c in charts for n in c.names]
        self._thetas = self.random.split(self.theta)
        self.estimates = np.concatenate(
            [c.natural(p, t) for c, p, t in zip(charts, self.psis,
                                                self._thetas)]
            or [np.zeros(0)])
        self.edges = np.concatenate([c.edges() for c in charts]
                                    or [np.zeros((0, 2))])
        self.is_variance = np.concatenate([c.is_variance() for c in charts]
                                          or [np.zeros(0, bool)])

    def natural(self, theta):
        """Natural values of all parameters at structure parameters
        ``theta`` (for the delta method)."""
        charts = level_charts(self.random)
        return np.concatenate([
            c.natural(p, t) for c, p, t in zip(
                charts, self.objective.psis(theta), self.random.split(theta))])

    def joined_variances(self, index):
        """Positions (in :attr:`names`) of the variances a correlation
        joins (empty for a variance): the pair's for ``unstr``, the
        level's for cs, hcs, ar1 and har1."""
        lev, local = self._owner[index]
        chart = level_charts(self.random)[lev]
        first = index - local
        if local < chart.n_sd:
            return []
        if chart.kind == "unstr":
            return [first + v for v in chart._pairs[local - chart.n_sd]]
        return [first + v for v in range(chart.n_sd)]

    def index(self, param):
        """Position of ``param`` (a name or an integer) in :attr:`names`."""
        if isinstance(param, (int, np.integer)) and \
                not isinstance(param, bool):
            if not 0 <= param < len(self.names):
                raise ValueError(f"param={param} is out of range; there are "
                                 f"{len(self.names)} Psi parameters "
                                 f"{self.names}")
            return int(param)
        if param not in self.names:
            raise ValueError(f"param={param!r} is not a Psi parameter of "
                             f"this fit; valid names are {self.names}")
        return self.names.index(param)

    # ---------------------------------------------------------- engine
    def _setup(self, index):
        """Charts for holding parameter ``index``, the free coordinates'
        start at the estimate, and the profile's floor (see
        :meth:`_floor`)."""
        lev, local = self._owner[index]
        pairs = {}
        probe = level_charts(self.random)[lev]
        if probe.kind == "unstr" and local >= probe.n_sd:
            pairs[lev] = probe._pairs[local - probe.n_sd]
        charts = level_charts(self.random, pairs)
        starts = [c.to_free(c.values_from_psi(p, t), u)
                  for c, p, t, u in zip(charts, self.psis, self._thetas,
                                        self.units)]
        return charts, lev, local, starts, self._floor(index)

    def _floor(self, index):
        """
        A correlation does not matter when a variance it joins is 0: the
        profile of ``corr[a,b]`` (unstr) is at least the larger of the
        profiles of ``var[a]`` and ``var[b]`` at 0, and that of the rho of
        cs and ar1 at least the profile of their variance at 0, whatever
        the correlation.  That maximum lies on another branch of the
        likelihood than the one a start inside reaches, so it is
        computed once and taken as the floor of the profile; likewise
        for the rho of hcs and har1 with two variances.  (``-inf`` for
        variances, and for hcs and har1 with more: there rho matters
        unless all but one variance are 0.)
        """
        cache = self.__dict__.setdefault("_floors", {})
        if index not in cache:
            lev, local = self._owner[index]
            chart = level_charts(self.random)[lev]
            variances = []
            if local >= chart.n_sd and chart.kind == "unstr":
                variances = list(chart._pairs[local - chart.n_sd])
            elif local >= chart.n_sd and chart.n_sd <= 2:
                variances = list(range(chart.n_sd))   # cs, ar1; k = 2
            first = index - local
            cache[index] = max(
                (self.loglike(first + v, [0.0])[0] for v in variances),
                default=-np.inf)
        return cache[index]

    def _best(self, setup, value, start):
        """The profile at ``value``: the better of the optimisations from
        ``start`` and from the estimate, not below the floor; returns
        ``(llf, free coordinates)``."""
        llf, flat = self._solve(setup, value, start)
        if start is not setup[3]:
            again, other = self._solve(setup, value, setup[3])
            if again > llf:
                llf, flat = again, other
        return max(llf, setup[4]), flat

    def _evaluate(self, charts, values):
        psis = tuple(c.psi(v) for c, v in zip(charts, values))
        return self.objective.kernel.evaluate(psis)

    def _solve(self, setup, value, start):
        """Maximise over the free coordinates with parameter held at
        ``value``; returns ``(llf, free coordinates)``."""
        charts, lev, local = setup[:3]
        position, held = charts[lev].pinned_coordinate(local, value)
        cuts = np.cumsum([0] + [c.n_coords for c in charts])
        flat = np.concatenate(start) if start else np.zeros(0)
        free = np.ones(flat.size, dtype=bool)
        free[cuts[lev] + position] = False
        lower = np.concatenate([
            np.r_[np.zeros(c.n_sd), np.full(c.n_corr, -_COORD_LIMIT)]
            for c in charts] or [np.zeros(0)])[free]
        upper = np.concatenate([
            np.r_[np.full(c.n_sd, np.inf), np.full(c.n_corr, _COORD_LIMIT)]
            for c in charts] or [np.zeros(0)])[free]
        kernel = self.objective.kernel

        def level_psi(level, coords):
            values = charts[level].from_free(coords, self.units[level])
            if level == lev:
                values[position] = held
            return charts[level].psi(values)

        def level_coords(x):
            full = flat.copy()
            full[free] = x
            return [full[a:b] for a, b in zip(cuts[:-1], cuts[1:])]

        # the free coordinates of each level, as positions in its chart
        moving = [np.flatnonzero(free[a:b]) for a, b in zip(cuts[:-1],
                                                            cuts[1:])]

        memo = {}

        def derivatives(x):
            """State, dl/dPsi and chart Jacobians at ``x`` (the last point
            remembered: the Hessian is asked for where the score was)."""
            key = x.tobytes()
            if key not in memo:
                coords = level_coords(x)
                state = kernel.evaluate(tuple(
                    level_psi(i, c) for i, c in enumerate(coords)))
                grads = kernel.psi_gradient(state)
                jacs = [chart_jacobian(level_psi, i, c, m)
                        for i, (c, m) in enumerate(zip(coords, moving))]
                memo.clear()
                memo[key] = coords, state, grads, jacs
            return memo[key]

        def negative(x):
            try:
                _, state, grads, jacs = derivatives(x)
            except np.linalg.LinAlgError:
                return np.inf, np.zeros_like(x)
            score = np.concatenate(
                [j.reshape(j.shape[0], g.size) @ g.ravel()
                 for j, g in zip(jacs, grads)] or [np.zeros(0)])
            return -state.llf, -score

        def negative_hessian(x):
            coords, state, grads, jacs = derivatives(x)
            hess = kernel.hessian(state, jacs)
            at = 0
            for i, (c, m, g) in enumerate(zip(coords, moving, grads)):
                curv = chart_curvature(level_psi, i, c, m)
                hess[at:at + m.size, at:at + m.size] += np.einsum(
                    "rs,turs->tu", g, curv)
                at += m.size
            return -hess

        x0 = np.clip(flat[free], lower, upper)
        if x0.size == 0:
            return -negative(x0)[0], flat
        saturating = np.concatenate([
            np.r_[np.zeros(c.n_sd, bool), np.ones(c.n_corr, bool)]
            for c in charts] or [np.zeros(0, bool)])[free]
        best, value = projected_newton(negative, x0, lower, upper,
                                       hessian=negative_hessian,
                                       saturating=saturating)
        out = flat.copy()
        out[free] = best
        return -value, out

    def _split(self, setup, flat):
        charts = setup[0]
        cuts = np.cumsum([0] + [c.n_coords for c in charts])
        return [flat[a:b] for a, b in zip(cuts[:-1], cuts[1:])]

    # ---------------------------------------------------------- public
    def loglike(self, param, values):
        """
        Profile log-likelihood at each of ``values`` of ``param``.

        Values are visited outward from the estimate, each optimisation
        starting from the solution at its neighbour.

        Returns
        -------
        ndarray
            The profile log-likelihood, in the order of ``values``.
        """
        index = self.index(param)
        values = np.asarray(values, dtype=float).ravel()
        lo, hi = self.edges[index]
        bad = (values < lo) | (values > hi) | ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"values of {self.names[index]} must lie in [{lo}, {hi}]; "
                f"got {values[bad].tolist()}")
        setup = self._setup(index)
        estimate = self.estimates[index]
        out = np.empty(values.size)
        for side in (values >= estimate, values < estimate):
            order = np.flatnonzero(side)
            order = order[np.argsort(np.abs(values[order] - estimate))]
            start = setup[3]
            for i in order:
                out[i], flat = self._best(setup, values[i], start)
                start = self._split(setup, flat)
        return out

    def interval(self, param, llf_max, critical, max_doublings=60):
        """
        Bounds where ``2 (llf_max - profile) = critical``.

        Returns
        -------
        (lower, upper) : tuple of (float, bool)
            Each bound and whether it is the edge of the parameter space
            (the profile stays above the cut-off up to the edge; the edge
            is returned), or, for an upper variance bound, whether the
            cut-off was not reached (``inf``).
        """
        index = self.index(param)
        setup = self._setup(index)
        estimate = self.estimates[index]
        variance = bool(self.is_variance[index])
        lo, hi = self.edges[index]
        solved = {}

        def to_value(u):            # root-finding runs in sd for variances
            return u * u if variance else u

        def excess(u, restart=True):
            """``2 (llf_max - profile) - critical`` at ``u``, warm-started
            from the nearest value solved; the walk also restarts from the
            estimate (:meth:`_best`), the root-finding between two walked
            values does not."""
            near = min(solved, key=lambda w: abs(w - u)) if solved else None
            start = setup[3] if near is None else solved[near]
            value = min(max(to_value(u), lo), hi)
            if restart:
                llf, flat = self._best(setup, value, start)
            else:
                llf, flat = self._solve(setup, value, start)
                llf = max(llf, setup[4])
            solved[u] = self._split(setup, flat)
            return 2.0 * (llf_max - llf) - critical

        centre = math.sqrt(max(estimate, 0.0)) if variance else estimate
        excess(centre)
        bounds = []
        for direction in (-1.0, 1.0):
            edge = (math.sqrt(lo) if variance else lo) if direction < 0 \
                else (math.inf if variance else hi)
            bounds.append(self._bound(excess, centre, edge, direction,
                                      to_value, max_doublings,
                                      self.units[self._owner[index][0]]))
        return tuple(bounds)

    @staticmethod
    def _bound(excess, centre, edge, direction, to_value, max_doublings,
               unit):
        """Walk from ``centre`` toward ``edge`` to a sign change of
        ``excess``, then solve for it."""
        if centre == edge:
            return to_value(edge), True
        inside = centre
        if math.isfinite(edge):
            fractions = (1 / 8, 1 / 4, 1 / 2, 3 / 4, 1.0)
            trials = [centre + f * (edge - centre) for f in fractions]
        else:
            step = max(0.25 * abs(centre), 0.05 * math.sqrt(unit))
            trials = [centre + direction * step * 2.0 ** m
                      for m in range(max_doublings)]
        scale = max(abs(centre), math.sqrt(unit) if math.isinf(edge)
                    else 1.0)
        for u in trials:
            if excess(u) > 0:
                root = optimize.brentq(
                    lambda w: excess(w, restart=False), inside, u,
                    xtol=1e-11 * scale, rtol=1e-11, maxiter=200)
                return to_value(root), False
            inside = u
        return (to_value(edge) if math.isfinite(edge) else math.inf), True
