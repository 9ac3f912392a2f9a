r"""
Confidence intervals for the between-study covariance Psi on its natural
scale (variances and correlations), and its profile log-likelihood.

The parameters are those of
:mod:`statsmodels_mixmeta.fitting.profile`: per level, the variances and
correlations the structure lets vary (``var[a]``, ``corr[a,b]`` for
``unstr``; ``var``/``var[a]`` and ``rho`` for cs, hcs, ar1, har1;
``var_ratio`` for prop), prefixed by the grouping factor when there are
several levels.

Three intervals (:func:`conf_int_psi`):

``"wald"``
    From the observed information of the structure parameters ``theta``,
    ``-H(theta_hat)`` (the objective's analytic Hessian), by the delta
    method: with ``nu = g(theta)`` the natural parameters and ``J =
    dnu/dtheta``, ``Var(nu_hat) = J (-H)^{-1} J'``.  The interval is
    symmetric on a scale that keeps it inside the parameter space:
    ``log v`` for a variance (``v exp(-+ z se(v)/v)``), ``atanh r`` for a
    correlation in ``(-1, 1)`` and ``logit((r - lo)/(1 - lo))`` for the
    cs/hcs correlation in ``(lo, 1)``, ``lo = -1/(k-1)``.  An estimate at
    the edge (a variance at 0, a correlation at a limit) has none (NaN,
    with a note).
``"profile"``
    The set ``{v : 2 (l_max - l_p(v)) <= chi2_1(1 - alpha)}`` with
    ``l_p(v)`` the (restricted) log-likelihood maximised over the other
    Psi parameters with the parameter held at ``v`` (Hardy and Thompson
    1996); its bounds are the roots of ``2 (l_max - l_p(v)) =
    chi2_1(1 - alpha)`` either side of the estimate (Brent's method on the
    profile, computed by :class:`~statsmodels_mixmeta.fitting.profile.
    PsiProfile`).  ``l_max`` is the fit's ``llf`` (or the profile at the
    estimate, if higher).  Where the profile stays above the cut-off up to
    the edge of the parameter space, the bound is that edge, with a note.
    For ML and REML fits.
``"qprofile"``
    The Q-profile interval for the between-study variance ``tau^2`` of a
    univariate model (Viechtbauer 2007): with ``w_i(tau^2) = 1/(v_i +
    z_i^2 tau^2)`` and ``beta(tau^2)`` the weighted least-squares fit, the
    generalised Q statistic

    .. math::

        Q(\tau^2) = \sum_i w_i(\tau^2) (y_i - x_i'\beta(\tau^2))^2

    decreases in ``tau^2`` and has a ``chi2_{n-p}`` distribution at the
    true ``tau^2``; the bounds solve ``Q(tau2_lo) = chi2_{n-p}(1 -
    alpha/2)`` and ``Q(tau2_hi) = chi2_{n-p}(alpha/2)``, each truncated at
    0 (with a note) when ``Q(0)`` is below its quantile.  It needs no
    likelihood, so it also serves the method-of-moments estimates.

``"wald"`` and ``"profile"`` need a maximised likelihood: they refuse
``method="mm"`` and ``"vc"`` (moment estimates, where the likelihood is
not at its maximum, so neither its curvature nor the cut-off is centred
on the estimate; refit with "reml" or "ml").  ``method="fixed"`` has no
Psi.

References
----------
Hardy RJ, Thompson SG (1996). A likelihood approach to meta-analysis with
random effects. Statistics in Medicine 15, 619-629.

Viechtbauer W (2007). Confidence intervals for the amount of
heterogeneity in meta-analysis. Statistics in Medicine 26, 37-52.
"""
import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..fitting.profile import PsiProfile, level_charts

METHODS = ("wald", "profile", "qprofile")
#: A variance estimate at most this fraction of its level's variance unit,
#: or a correlation this close to its limit, is at the edge.
EDGE_RTOL = 1e-8


def _check_alpha(alpha):
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
    return alpha


def _check_fit(res, method):
    """Refuse fits without Psi parameters, and likelihood intervals of
    moment estimates."""
    if res.method == "fixed":
        raise ValueError("method='fixed' fits no Psi: there are no Psi "
                         "parameters to give intervals or profiles for")
    if res.model.random.n_params == 0:
        raise ValueError("Psi is fixed at every level (bscov='fixed'): "
                         "there are no Psi parameters to give intervals or "
                         "profiles for")
    if res.method in ("mm", "vc") and method != "qprofile":
        raise ValueError(
            f"method={method!r} needs a maximised likelihood; this fit "
            f"estimates Psi by method={res.method!r} (moments), where the "
            "likelihood is not at its maximum: refit with method='reml' or "
            "'ml', or use method='qprofile' for one variance")


def profiler(res):
    """The fit's :class:`PsiProfile` (built once per results)."""
    cached = res.__dict__.get("_psi_profile")
    if cached is None:
        _check_fit(res, "profile")
        cached = res.__dict__["_psi_profile"] = PsiProfile(
            res.model.objective, res.theta)
    return cached


def conf_int_psi(res, alpha=0.05, method="wald"):
    """
    Intervals for the natural Psi parameters (see the module docstring).

    Returns
    -------
    DataFrame
        Indexed by parameter, columns ``estimate``, ``lower``, ``upper``
        and ``note`` (empty, or why a bound is an edge or missing).
    """
    alpha = _check_alpha(alpha)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not an interval of Psi; "
                         f"valid methods are {list(METHODS)}")
    _check_fit(res, method)
    if method == "qprofile":
        names, rows = _qprofile(res, alpha)
    elif method == "wald":
        names, rows = _wald(res, alpha)
    else:
        names, rows = _profile(res, alpha)
    frame = pd.DataFrame(rows, index=pd.Index(names, name="parameter"),
                         columns=["estimate", "lower", "upper", "note"])
    frame.attrs.update(method=method, alpha=alpha)
    return frame


# ---------------------------------------------------------------- wald
def _at_edge(value, edges, unit, variance):
    if variance:
        return value <= EDGE_RTOL * unit
    return min(value - edges[0], edges[1] - value) <= EDGE_RTOL


def _link(value, lower_edge, variance):
    """The scale of the Wald interval and its derivative."""
    if variance:
        return math.log(value), 1.0 / value
    if lower_edge == -1.0:
        return math.atanh(value), 1.0 / (1.0 - value * value)
    share = (value - lower_edge) / (1.0 - lower_edge)
    return (math.log(share / (1 - share)),
            (1.0 - lower_edge) / ((value - lower_edge) * (1.0 - value)))


def _unlink(u, lower_edge, variance):
    if variance:
        return math.exp(u)
    if lower_edge == -1.0:
        return math.tanh(u)
    return lower_edge + (1.0 - lower_edge) / (1.0 + math.exp(-u))


def _wald(res, alpha):
    prof = profiler(res)
    objective = res.model.objective
    theta = res.theta
    z = stats.norm.ppf(1 - alpha / 2)
    info = -objective.hessian(theta)
    try:
        np.linalg.cholesky(info)
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = None
    # J = dnu/dtheta by central differences of the (data-free) map
    jac = np.empty((len(prof.names), theta.size))
    for t in range(theta.size):
        h = 1e-6 * max(abs(theta[t]), objective.param_scale[t])
        up, down = theta.copy(), theta.copy()
        up[t] += h
        down[t] -= h
        jac[:, t] = (prof.natural(up) - prof.natural(down)) / (2 * h)
    rows = []
    for i, (value, edges, variance) in enumerate(
            zip(prof.estimates, prof.edges, prof.is_variance)):
        unit = prof.units[prof._owner[i][0]]
        if _at_edge(value, edges, unit, variance):
            rows.append([value, np.nan, np.nan,
                         "estimate at the edge of the parameter space: "
                         "no Wald interval (use method='profile')"])
            continue
        joined = prof.joined_variances(i)
        positive = [j for j in joined if not _at_edge(
            prof.estimates[j], prof.edges[j], unit, True)]
        if joined and len(positive) < min(2, len(joined)):
            rows.append([value, np.nan, np.nan,
                         "a variance it joins is 0: the correlation is "
                         "not identified there; no Wald interval"])
            continue
        if cov is None:
            rows.append([value, np.nan, np.nan,
                         "observed information not positive definite"])
            continue
        var_nu = float(jac[i] @ cov @ jac[i])
        centre, slope = _link(value, edges[0], variance)
        half = z * slope * math.sqrt(max(var_nu, 0.0))
        boundary = res.boundary_levels[prof._owner[i][0]]
        rows.append([value, _unlink(centre - half, edges[0], variance),
                     _unlink(centre + half, edges[0], variance),
                     "Psi of this level is on the boundary (singular): the "
                     "Wald interval assumes an interior estimate"
                     if boundary else ""])
    return prof.names, rows


# ------------------------------------------------------------- profile
def _profile_max(res, prof):
    """``l_max``: the fit's llf, or the profile at the estimate if
    higher (computed once)."""
    cached = res.__dict__.get("_psi_profile_max")
    if cached is None:
        at_estimate = max(float(prof.loglike(i, [v])[0])
                          for i, v in enumerate(prof.estimates))
        cached = res.__dict__["_psi_profile_max"] = max(float(res.llf),
                                                        at_estimate)
    return cached


def profile_interval(res, param, alpha):
    """``(lower, upper, note)`` of the profile interval of one parameter."""
    prof = profiler(res)
    index = prof.index(param)
    cache = res.__dict__.setdefault("_psi_profile_intervals", {})
    if (index, alpha) not in cache:
        cache[index, alpha] = _profile_bounds(res, prof, index, alpha)
    return cache[index, alpha]


def _profile_bounds(res, prof, index, alpha):
    critical = stats.chi2.ppf(1 - alpha, 1)
    (lower, low_edge), (upper, up_edge) = prof.interval(
        index, _profile_max(res, prof), critical)
    notes = []
    if low_edge:
        notes.append(f"lower bound at the edge ({lower:g})")
    if up_edge:
        notes.append("upper bound not reached (inf)" if math.isinf(upper)
                     else f"upper bound at the edge ({upper:g})")
    return lower, upper, "; ".join(notes)


def _profile(res, alpha):
    prof = profiler(res)
    rows = [[prof.estimates[i], *profile_interval(res, i, alpha)]
            for i in range(len(prof.names))]
    return prof.names, rows


def profile_loglike(res, param, grid=None, alpha=0.05, n_points=21):
    """
    The profile log-likelihood of one natural Psi parameter along a grid.

    Parameters
    ----------
    param : str or int
        A name of ``conf_int_psi``'s index, or its position.
    grid : array_like, optional
        Values of the parameter (inside its space).  By default
        ``n_points`` values spanning the ``1 - alpha`` profile interval
        widened by a quarter of its width on each side (clipped to the
        parameter space), and the estimate.

    Returns
    -------
    DataFrame
        Columns ``value`` and ``llf``; ``attrs`` holds ``param``,
        ``estimate``, ``llf_max``.
    """
    prof = profiler(res)
    index = prof.index(param)
    estimate = prof.estimates[index]
    if grid is None:
        lower, upper, _ = profile_interval(res, index, alpha)
        lo_edge, hi_edge = prof.edges[index]
        if math.isinf(upper):
            upper = estimate + 4 * max(estimate - lower, abs(estimate), 1e-8)
        if prof.is_variance[index]:     # evenly spaced standard deviations
            lower, upper = math.sqrt(lower), math.sqrt(upper)
            lo_edge, hi_edge = 0.0, math.inf
        pad = 0.25 * (upper - lower)
        grid = np.linspace(max(lower - pad, lo_edge),
                           min(upper + pad, hi_edge), n_points)
        if prof.is_variance[index]:
            grid = grid ** 2
        grid = np.unique(np.append(grid, estimate))
        cache = res.__dict__.setdefault("_psi_profile_grids", {})
        key = (index, alpha, n_points)
        if key not in cache:
            cache[key] = (grid, prof.loglike(index, grid))
        grid, llf = cache[key]
    else:
        grid = np.asarray(grid, dtype=float).ravel()
        llf = prof.loglike(index, grid)
    frame = pd.DataFrame({"value": grid.copy(), "llf": llf.copy()})
    frame.attrs.update(param=prof.names[index], estimate=estimate,
                       llf_max=_profile_max(res, prof))
    return frame


# ------------------------------------------------------------ qprofile
def _qprofile_data(res):
    """``(y, X, v, z)`` of a univariate model with one value per group,
    or a ValueError saying why the model is not one."""
    model = res.model
    design = model.design
    long = design.long
    random = model.random
    univariate = (model.n_outcomes == 1 and random.n_levels == 1
                  and random.structures[0].dim == 1
                  and long.n_values == design.n_groups
                  and design.group_cov is None)
    if not univariate:
        raise ValueError(
            "method='qprofile' is the Q-profile interval of tau^2 in a "
            "univariate model (one outcome, one grouping level with one "
            f"random effect, one value per group); this model has "
            f"{model.n_outcomes} outcome(s) and {random.n_levels} level(s) "
            f"with Psi of order {[s.dim for s in random.structures]}: use "
            "method='profile' or 'wald'")
    variances = design.within_cov[long.row, 0, 0]
    return long.y, long.X, variances, long.Z[0][:, 0]


def generalised_q(tau2, y, X, variances, z):
    """``Q(tau2) = sum_i w_i (y_i - x_i' beta(tau2))^2`` with ``w_i =
    1/(v_i + z_i^2 tau2)`` and ``beta(tau2)`` the weighted least-squares
    fit."""
    root = np.sqrt(1.0 / (variances + z * z * tau2))
    beta = np.linalg.lstsq(X * root[:, None], y * root, rcond=None)[0]
    resid = (y - X @ beta) * root
    return float(resid @ resid)


def _qprofile(res, alpha):
    y, X, variances, z = _qprofile_data(res)
    structure = res.model.random.structures[0]
    chart = level_charts(res.model.random)[0]
    scale = structure.square_scale or 1.0     # Psi = scale * natural
    df = y.size - np.linalg.matrix_rank(X)
    if df < 1:
        raise ValueError(f"method='qprofile' needs more values than "
                         f"coefficients; got {y.size} values and "
                         f"{y.size - df} coefficients")
    estimate = float(np.asarray(res.psis[0])[0, 0]) / scale

    def solve(target):
        excess = lambda t: generalised_q(t, y, X, variances, z) - target
        if excess(0.0) <= 0:
            return 0.0, True
        upper = max(float(np.median(variances)), 1e-12)
        while excess(upper) > 0:
            upper *= 2
            if upper > 1e300:                 # pragma: no cover
                return math.inf, False
        return optimize.brentq(excess, 0.0, upper, xtol=1e-14,
                               rtol=4 * np.finfo(float).eps), False

    lower, low_cut = solve(stats.chi2.ppf(1 - alpha / 2, df))
    upper, up_cut = solve(stats.chi2.ppf(alpha / 2, df))
    notes = []
    if low_cut:
        notes.append("lower bound truncated at 0")
    if up_cut:
        notes.append("upper bound truncated at 0")
    return chart.names, [[estimate, lower / scale, upper / scale,
                          "; ".join(notes)]]


def profile_panels(res, params=None, alpha=0.05, grid=None):
    """
    What :func:`statsmodels_mixmeta.plots.profile.plot_profile` draws, one
    dict per parameter (the variances by default): ``name``, ``value``
    and ``llf`` (the profile along the grid), ``estimate``, ``llf_max``,
    ``cutoff`` (``llf_max - chi2_1(1 - alpha)/2``), ``lower``, ``upper``
    (the profile interval) and ``note``.
    """
    alpha = _check_alpha(alpha)
    prof = profiler(res)
    if params is None:
        params = [n for n, v in zip(prof.names, prof.is_variance) if v]
    elif isinstance(params, (str, int, np.integer)):
        params = [params]
    indices = [prof.index(p) for p in params]
    if grid is not None and len(indices) != 1:
        raise ValueError(f"grid is for one parameter; got {len(indices)} "
                         "params: pass one name, or no grid")
    critical = stats.chi2.ppf(1 - alpha, 1)
    panels = []
    for index in indices:
        lower, upper, note = profile_interval(res, index, alpha)
        frame = profile_loglike(res, index, grid, alpha)
        llf_max = frame.attrs["llf_max"]
        panels.append(dict(
            name=prof.names[index], value=frame["value"].to_numpy(),
            llf=frame["llf"].to_numpy(), estimate=prof.estimates[index],
            llf_max=llf_max, cutoff=llf_max - critical / 2, lower=lower,
            upper=upper, note=note, level=1 - alpha))
    return panels
