r"""
Profile likelihood of one natural-scale Psi parameter: the maximum of the
(restricted) log-likelihood with that parameter held at a value and all
other structure parameters re-optimised.

Natural parameters.  Each level's Psi is described by the variances and
correlations its structure lets vary: ``var[a]`` and ``corr[a,b]`` for
``unstr``; ``var[a]`` for ``diag`` and ``cor`` (whose correlations are
fixed); ``var`` for ``id``; ``var`` and ``rho`` for ``cs`` and ``ar1``;
``var[a]`` and ``rho`` for ``hcs`` and ``har1``; ``var_ratio`` (the
``s**2`` of ``Psi = s**2 F``) for ``prop``; nothing for ``fixed``.  Names
carry the grouping factor (``"study:var"``) when there are several
levels.

Method.  The profile is computed in a chart of coordinates in which the
held parameter is itself a coordinate, so that holding it is fixing one
coordinate and the others are maximised freely (box constraints only,
L-BFGS-B with the analytic gradient ``dl/dPsi`` of the kernel, chained
with ``dPsi/dx`` of the chart by central differences of the data-free
map).  The coordinates of a level are its standard deviations (bounded
below by 0) and its correlation parameters:

* ``cs``/``hcs``: ``rho`` (free coordinate ``logit((rho - lo)/(1 - lo))``,
  ``lo = -1/(k - 1)``); ``ar1``/``har1``: ``rho`` (free coordinate
  ``atanh(rho)``);
* ``unstr``: ``Psi = D R D`` with ``R`` built from canonical partial
  correlations ``z`` (Lewandowski, Kurowicka and Joe 2009; free coordinates
  ``atanh(z)``) after a permutation that puts the held pair ``(a, b)``
  first, where the first partial correlation *is* ``corr[a,b]``; this
  chart covers every positive semi-definite ``R``, the singular ones
  included.

A held variance ``v`` fixes the standard deviation ``sqrt(v)``; a held
correlation fixes its value, not its transform, so the edges of the
parameter space (a variance at 0, a correlation at -1, ``lo`` or 1) are
points of the chart where the marginal covariances ``S_i + Z Psi Z'``
stay positive definite and the likelihood is evaluated as anywhere else.
Along a grid the optimisation is warm-started from the solution at the
neighbouring value, walking outward from the estimate.

References
----------
Lewandowski D, Kurowicka D, Joe H (2009). Generating random correlation
matrices based on vines and extended onion method. Journal of
Multivariate Analysis 100, 1989-2001.
"""
import math

import numpy as np
from scipy import optimize
from scipy.special import expit, logit

#: relative step of the central differences of the (data-free) charts
_DIFF_STEP = 1e-6
#: largest |atanh| / |logit| of a free correlation coordinate
_COORD_LIMIT = 18.0
#: the profile's optimum: largest |gradient| of the free coordinates
_GRADIENT_TOL = 1e-9


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


def projected_newton(fun, x0, lower, upper, hessian=None, gtol=_GRADIENT_TOL,
                     maxiter=200):
    """
    Minimise ``fun`` (returning value and gradient) over a box by Newton
    steps on the coordinates not held at a bound.

    The Hessian is ``hessian(x)`` or, without it, differenced from the
    gradient (central differences; the problems are small), its
    eigenvalues made positive
    (absolute value, floored); steps are projected onto the box and
    halved until the value decreases (Armijo).  A coordinate is held at a
    bound while the gradient pushes it outward.  Chosen over scipy's
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
        done = value - new_value <= 1e-15 * max(1.0, abs(value))
        x, value, grad = trial, new_value, new_grad
        if done and np.max(np.abs(step)) * t < 1e-12:
            break
    return x, value


# --------------------------------------------------------------- charts
def _cpc_to_corr(z, k):
    """Correlation matrix from canonical partial correlations ``z`` (row by
    row, ``z[i, j]`` for ``j < i`` in the order of ``np.tril_indices(k,
    -1)``)."""
    lower = np.zeros((k, k))
    lower[0, 0] = 1.0
    position = 0
    for i in range(1, k):
        remaining = 1.0
        for j in range(i):
            entry = float(z[position]) * math.sqrt(max(remaining, 0.0))
            lower[i, j] = entry
            remaining -= entry * entry
            position += 1
        lower[i, i] = math.sqrt(max(remaining, 0.0))
    corr = lower @ lower.T
    np.fill_diagonal(corr, 1.0)
    return corr


def _corr_to_cpc(corr):
    """Canonical partial correlations of a positive semi-definite
    correlation matrix (a Cholesky factor that tolerates zero pivots)."""
    k = corr.shape[0]
    lower = np.zeros((k, k))
    for j in range(k):
        pivot = corr[j, j] - np.dot(lower[j, :j], lower[j, :j])
        lower[j, j] = math.sqrt(max(pivot, 0.0))
        for i in range(j + 1, k):
            off = corr[i, j] - np.dot(lower[i, :j], lower[j, :j])
            lower[i, j] = off / lower[j, j] if lower[j, j] > 1e-12 else 0.0
    z = np.zeros((k, k))
    for i in range(1, k):
        remaining = 1.0
        for j in range(i):
            root = math.sqrt(max(remaining, 0.0))
            z[i, j] = np.clip(lower[i, j] / root, -1, 1) if root > 1e-12 \
                else 0.0
            remaining -= lower[i, j] ** 2
    return z[np.tril_indices(k, -1)]


def _corr_of(psi):
    """Standard deviations and correlation matrix of ``psi`` (identity rows
    where a variance is 0)."""
    sd = np.sqrt(np.clip(np.diag(psi), 0.0, None))
    corr = np.eye(psi.shape[0])
    ok = sd > 0
    corr[np.ix_(ok, ok)] = psi[np.ix_(ok, ok)] / np.outer(sd[ok], sd[ok])
    np.fill_diagonal(corr, 1.0)
    return sd, np.clip(corr, -1.0, 1.0)


class LevelChart:
    """
    The natural parameters of one level's Psi and a chart of coordinates
    ``(standard deviations, correlation parameters)`` in which a chosen
    natural parameter is a coordinate.

    Parameters
    ----------
    structure : PsiStructure
    labels : list of str
        Row labels of Psi.
    prefix : str
        Prepended to the names (``"level:"`` or ``""``).
    pair : tuple of int, optional
        For ``unstr``, the correlation that the chart makes its first
        partial correlation (rows and columns permuted to put it first).
    """

    def __init__(self, structure, labels, prefix="", pair=None):
        self.structure = structure
        self.kind = structure.name
        self.dim = k = structure.dim
        labels = [str(label) for label in labels]
        if self.kind == "fixed":
            n_sd, n_corr, names = 0, 0, []
        elif self.kind in ("id", "cs", "ar1", "prop"):
            n_sd = 1
            n_corr = int(self.kind in ("cs", "ar1"))
            names = ["var_ratio" if self.kind == "prop" else "var"]
            names += ["rho"] * n_corr
        elif self.kind == "unstr":
            n_sd, n_corr = k, k * (k - 1) // 2
            rows, cols = np.tril_indices(k, -1)
            order = np.lexsort((rows, cols))       # column by column
            self._pairs = [(int(cols[i]), int(rows[i])) for i in order]
            names = [f"var[{a}]" for a in labels] + [
                f"corr[{labels[a]},{labels[b]}]" for a, b in self._pairs]
        else:                           # diag, cor, hcs, har1
            n_sd = k
            n_corr = int(self.kind in ("hcs", "har1"))
            names = [f"var[{a}]" for a in labels] + ["rho"] * n_corr
        self.n_sd, self.n_corr = n_sd, n_corr
        self.n_coords = n_sd + n_corr
        self.names = [prefix + name for name in names]
        self.lower_rho = -1.0 / (k - 1) if self.kind in ("cs", "hcs") \
            else -1.0
        perm = np.arange(k)
        if pair is not None and self.kind == "unstr":
            a, b = pair
            perm = np.array([a, b] + [i for i in range(k) if i not in pair])
        self.perm = perm
        self._inverse = np.argsort(perm)

    # the natural parameters -----------------------------------------
    def natural(self, psi):
        """Natural values (variances, correlations) of ``psi``."""
        psi = np.asarray(psi, dtype=float)
        if self.kind == "fixed":
            return np.zeros(0)
        sd, corr = _corr_of(psi)
        if self.kind == "unstr":
            return np.concatenate([sd ** 2,
                                   [corr[b, a] for a, b in self._pairs]])
        if self.kind == "prop":
            return np.array([np.mean(np.diag(psi)
                                     / np.diag(self.structure.psi_fix))])
        var = [np.mean(sd ** 2)] if self.n_sd == 1 else list(sd ** 2)
        rho = []
        if self.n_corr:
            rho = [corr[1, 0]]
        return np.array(var + rho)

    def edges(self):
        """``(n, 2)`` limits of the natural parameters."""
        out = np.tile([0.0, np.inf], (len(self.names), 1))
        out[self.n_sd:] = [self.lower_rho, 1.0]
        return out

    def is_variance(self):
        return np.arange(len(self.names)) < self.n_sd

    def pinned_coordinate(self, index, value):
        """The coordinate and its value that hold natural parameter
        ``index`` at ``value`` (the chart must have been built with its
        pair for an ``unstr`` correlation)."""
        if index < self.n_sd:
            return index, math.sqrt(max(value, 0.0))
        if self.kind == "unstr":
            assert tuple(self.perm[:2]) == self._pairs[index - self.n_sd]
        return self.n_sd, float(value)

    # the chart ------------------------------------------------------
    def values_from_psi(self, psi):
        """Chart values (sds, correlation parameters) of ``psi``."""
        psi = np.asarray(psi, dtype=float)
        sd, corr = _corr_of(psi)
        if self.kind == "unstr":
            p = self.perm
            return np.concatenate([sd, _corr_to_cpc(corr[np.ix_(p, p)])])
        if self.kind == "prop":
            return np.sqrt(self.natural(psi))
        if self.n_sd == 1:
            sd = sd[:1] if self.kind != "fixed" else sd[:0]
        rho = [corr[1, 0]] if self.n_corr else []
        return np.concatenate([sd, rho])

    def psi(self, values):
        """Psi at chart values (sds, correlation parameters)."""
        k = self.dim
        sd, corr_par = values[:self.n_sd], values[self.n_sd:]
        if self.kind == "fixed":
            return self.structure.psi_fix.copy()
        if self.kind == "prop":
            return sd[0] ** 2 * self.structure.psi_fix
        if self.kind == "unstr":
            inverse = self._inverse
            corr = _cpc_to_corr(corr_par, k)[inverse][:, inverse]
        elif self.kind in ("diag", "id"):
            corr = np.eye(k)
        elif self.kind == "cor":
            corr = self.structure.psi_fix
        elif self.kind in ("cs", "hcs"):
            corr = (1 - corr_par[0]) * np.eye(k) + corr_par[0]
        else:                                            # ar1, har1
            lag = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
            corr = np.where(lag == 0, 1.0, corr_par[0] ** lag)
        sd = np.full(k, sd[0]) if self.n_sd == 1 else sd
        return np.outer(sd, sd) * corr

    def to_free(self, values, unit):
        """Optimisation coordinates: sds in the level's units, correlation
        parameters on the logit (cs, hcs) or atanh scale."""
        out = np.array(values, dtype=float)
        out[:self.n_sd] /= math.sqrt(unit)
        rho = out[self.n_sd:]
        if self.kind in ("cs", "hcs"):
            share = (rho - self.lower_rho) / (1 - self.lower_rho)
            rho[:] = logit(np.clip(share, 1e-8, 1 - 1e-8))
        else:
            rho[:] = np.arctanh(np.clip(rho, -1 + 1e-8, 1 - 1e-8))
        return out

    def from_free(self, coords, unit):
        """Inverse of :meth:`to_free`."""
        out = np.array(coords, dtype=float)
        out[:self.n_sd] *= math.sqrt(unit)
        rho = out[self.n_sd:]
        if self.kind in ("cs", "hcs"):
            rho[:] = self.lower_rho + (1 - self.lower_rho) * expit(rho)
        else:
            rho[:] = np.tanh(rho)
        return out


def _chart_jacobian(level_psi, level, coords, moving):
    """``dPsi / dx_m`` for the moving coordinates ``m`` of one level, by
    central differences of the (data-free) chart: ``(len(m), r, r)``."""
    out = []
    for m in moving:
        step = _DIFF_STEP * max(abs(coords[m]), 1.0)
        up, down = coords.copy(), coords.copy()
        up[m] += step
        down[m] -= step
        out.append((level_psi(level, up) - level_psi(level, down))
                   / (2 * step))
    dim = level_psi(level, coords).shape[0]
    return np.array(out).reshape(len(moving), dim, dim)


def _chart_curvature(level_psi, level, coords, moving):
    """``d2Psi / dx_s dx_t`` of one level's moving coordinates, by central
    differences: ``(len(m), len(m), r, r)``."""
    n = len(moving)
    dim = level_psi(level, coords).shape[0]
    out = np.zeros((n, n, dim, dim))
    steps = [1e-4 * max(abs(coords[m]), 1.0) for m in moving]
    for a in range(n):
        for b in range(a, n):
            total = 0.0
            for sign_a, sign_b in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                shifted = coords.copy()
                shifted[moving[a]] += sign_a * steps[a]
                shifted[moving[b]] += sign_b * steps[b]
                total = total + sign_a * sign_b * level_psi(level, shifted)
            out[a, b] = out[b, a] = total / (4 * steps[a] * steps[b])
    return out


def level_charts(random, pairs=None):
    """One :class:`LevelChart` per level of a ``RandomPart``; ``pairs``
    maps a level to the unstr correlation its chart puts first."""
    pairs = pairs or {}
    charts = []
    for lev, (structure, labels) in enumerate(zip(random.structures,
                                                  random.effect_names)):
        name = random.level_names[lev]
        prefix = "" if name is None or random.n_levels == 1 else f"{name}:"
        charts.append(LevelChart(structure, labels, prefix, pairs.get(lev)))
    return charts


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
        self.estimates = np.concatenate(
            [c.natural(p) for c, p in zip(charts, self.psis)]
            or [np.zeros(0)])
        self.edges = np.concatenate([c.edges() for c in charts]
                                    or [np.zeros((0, 2))])
        self.is_variance = np.concatenate([c.is_variance() for c in charts]
                                          or [np.zeros(0, bool)])

    def natural(self, theta):
        """Natural values of all parameters at structure parameters
        ``theta`` (for the delta method)."""
        charts = level_charts(self.random)
        return np.concatenate([c.natural(p) for c, p in
                               zip(charts, self.objective.psis(theta))])

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
        starts = [c.to_free(c.values_from_psi(p), u)
                  for c, p, u in zip(charts, self.psis, self.units)]
        return charts, lev, local, starts, self._floor(index)

    def _floor(self, index):
        """
        A correlation does not matter when a variance it joins is 0: the
        profile of ``corr[a,b]`` (unstr) is at least the larger of the
        profiles of ``var[a]`` and ``var[b]`` at 0, and that of the rho of
        cs and ar1 at least the profile of their variance at 0, whatever
        the correlation.  That maximum lies on another branch of the
        likelihood than the one a start inside reaches, so it is
        computed once and taken as the floor of the profile (``-inf``
        for variances and the rho of hcs and har1).
        """
        cache = self.__dict__.setdefault("_floors", {})
        if index not in cache:
            lev, local = self._owner[index]
            chart = level_charts(self.random)[lev]
            variances = []
            if local >= chart.n_sd and chart.kind == "unstr":
                variances = list(chart._pairs[local - chart.n_sd])
            elif local >= chart.n_sd and chart.n_sd == 1:
                variances = [0]
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
                jacs = [_chart_jacobian(level_psi, i, c, m)
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
                curv = _chart_curvature(level_psi, i, c, m)
                hess[at:at + m.size, at:at + m.size] += np.einsum(
                    "rs,turs->tu", g, curv)
                at += m.size
            return -hess

        x0 = np.clip(flat[free], lower, upper)
        if x0.size == 0:
            return -negative(x0)[0], flat
        best, value = projected_newton(negative, x0, lower, upper,
                                       hessian=negative_hessian)
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
