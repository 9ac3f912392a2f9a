r"""
Charts of the natural Psi parameters for the profile likelihood
(:mod:`statsmodels_mixmeta.fitting.profile`): per level, the variances and
correlations a structure lets vary, and coordinates (standard deviations,
correlation parameters) in which any one of them is a coordinate, with
Psi and its derivatives in those coordinates.

Natural parameters: ``var[a]`` and ``corr[a,b]`` for ``unstr``;
``var[a]`` for ``diag`` and ``cor`` (whose correlations are fixed);
``var`` for ``id``; ``var`` and ``rho`` for ``cs`` and ``ar1``; ``var[a]``
and ``rho`` for ``hcs`` and ``har1``; ``var_ratio`` (the ``s**2`` of ``Psi
= s**2 F``) for ``prop``; nothing for ``fixed``.

Coordinates: the standard deviations (bounded below by 0, in the level's
units) and the correlation parameters, free ones on the scale
``logit((rho - lo)/(1 - lo))`` (cs, hcs; ``lo = -1/(k - 1)``) or
``atanh`` (ar1, har1, and the canonical partial correlations of
``unstr``).  ``unstr`` is ``Psi = D R D`` with ``R`` built from canonical
partial correlations (Lewandowski, Kurowicka and Joe 2009) after a
permutation that puts a chosen pair ``(a, b)`` first, where the first
partial correlation *is* ``corr[a,b]``; the chart covers every positive
semi-definite ``R``, the singular ones included.  Derivatives of Psi in
the coordinates are central differences of this data-free map
(polynomial in the standard deviations, smooth in the correlation
coordinates).

References
----------
Lewandowski D, Kurowicka D, Joe H (2009). Generating random correlation
matrices based on vines and extended onion method. Journal of
Multivariate Analysis 100, 1989-2001.
"""
import math

import numpy as np
from scipy.special import expit, logit

#: relative step of the central differences of the (data-free) charts
DIFF_STEP = 1e-6


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
    def natural(self, psi, theta=None):
        """Natural values (variances, correlations) of ``psi``; the
        correlation of cs, hcs, ar1 and har1 from the structure's
        parameters ``theta`` when given (it is defined there even where a
        variance is 0)."""
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
        rho = [self._rho(corr, theta)] if self.n_corr else []
        return np.array(var + rho)

    def _rho(self, corr, theta):
        """The common correlation: from ``theta`` when given, else from
        the first adjacent pair of positive variances (0 if none)."""
        if theta is not None:
            a = float(np.asarray(theta)[-1])
            if self.kind in ("cs", "hcs"):
                return self.lower_rho + (1 - self.lower_rho) * float(expit(a))
            return math.tanh(a)
        pairs = np.flatnonzero((np.diag(corr, 1) != 0))
        return float(np.diag(corr, 1)[pairs[0]]) if pairs.size else 0.0

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
    def values_from_psi(self, psi, theta=None):
        """Chart values (sds, correlation parameters) of ``psi`` (and
        ``theta``, see :meth:`natural`)."""
        psi = np.asarray(psi, dtype=float)
        sd, corr = _corr_of(psi)
        if self.kind == "unstr":
            p = self.perm
            return np.concatenate([sd, _corr_to_cpc(corr[np.ix_(p, p)])])
        if self.kind == "prop":
            return np.sqrt(self.natural(psi))
        if self.n_sd == 1:
            sd = sd[:1] if self.kind != "fixed" else sd[:0]
        rho = [self._rho(corr, theta)] if self.n_corr else []
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


def chart_jacobian(level_psi, level, coords, moving):
    """``dPsi / dx_m`` for the moving coordinates ``m`` of one level, by
    central differences of the (data-free) chart: ``(len(m), r, r)``."""
    out = []
    for m in moving:
        step = DIFF_STEP * max(abs(coords[m]), 1.0)
        up, down = coords.copy(), coords.copy()
        up[m] += step
        down[m] -= step
        out.append((level_psi(level, up) - level_psi(level, down))
                   / (2 * step))
    dim = level_psi(level, coords).shape[0]
    return np.array(out).reshape(len(moving), dim, dim)


def chart_curvature(level_psi, level, coords, moving):
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
