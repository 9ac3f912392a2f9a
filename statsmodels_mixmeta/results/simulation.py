"""
Simulation from a fitted (or specified) marginal model, and the parametric
bootstrap.

For independent outer groups ``i`` the marginal model is

.. math::

    y_i \\sim N(\\mu_i, \\Sigma_i), \\qquad
    \\Sigma_i = S_i + \\sum_l \\tilde Z_{il} (I \\otimes \\Psi_l)
                \\tilde Z_{il}',

over the observed values of the group (``mu_i = X_i beta`` for a fit; see
:mod:`statsmodels_mixmeta.kernels.likelihood`).  A draw is
``y*_i = mu_i + L_i e_i`` with ``Sigma_i = L_i L_i'`` and ``e_i`` standard
normal: the groups of equal size come stacked by the model's batches
(:mod:`statsmodels_mixmeta.kernels.batches`), so that one batched Cholesky
factorisation serves every group and every draw.  Standard normals are taken
in the design's long order (one per observed value and draw), so the draws
depend on the seed and the data only, not on how the groups are batched.
Unobserved outcomes are not drawn: they stay NaN, as the fit's missing
pattern.

:func:`simulate_results` draws from a fit (``MixMetaResults.simulate``),
:func:`bootstrap` refits every draw through ``design.with_endog`` (a
parametric bootstrap), and :func:`draw` is the kernel both use, also from
the top-level ``statsmodels_mixmeta.simulate`` for a model not fitted (R's
``mixmetaSim``).

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A. An extended mixed-effects
framework for meta-analysis. Statistics in Medicine 2019; 38: 5429-5444
(``mixmetaSim``).
"""
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from . import many_refit

from ..kernels.likelihood import marginal_cov


def _factor(sigma):
    """Lower factors ``L`` with ``L L' = sigma`` of a stack ``(g, n, n)``;
    a symmetric square root where a matrix is only semi-definite."""
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(sigma)
        if np.any(values < -1e-8 * np.maximum(values.max(axis=-1), 1.0)
                  [..., None]):
            raise ValueError(
                "simulate: a marginal covariance S_i + Z Psi Z' is not "
                "positive semi-definite; check S and Psi") from None
        return vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]


def draw(batches, psis, mean_long, nsim, seed):
    """
    Draws of the observed values, in long order.

    Parameters
    ----------
    batches : BatchSet
        The groups stacked by size (``model._batches``).
    psis : sequence of ndarray
        Psi of every level the batches carry (empty for Psi = 0).
    mean_long : ndarray, (N,)
        Mean of every observed value, long order.
    nsim : int
        Number of draws.
    seed : None, int, SeedSequence or Generator
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    ndarray, (nsim, N)
    """
    nsim = _check_nsim(nsim)
    rng = np.random.default_rng(seed)
    n_values = batches.n_values
    noise = rng.standard_normal((nsim, n_values))
    out = np.empty((nsim, n_values))
    for batch in batches:
        chol = _factor(marginal_cov(batch, psis))          # (g, n, n)
        e = np.where(batch.valid, noise[:, batch.index], 0.0)  # (s, g, n)
        values = np.einsum("gij,sgj->sgi", chol, e)
        out[:, batch.index[batch.valid]] = values[:, batch.valid]
    return out + mean_long


def to_cells(long, values, n_rows, n_outcomes):
    """Long-order draws ``(nsim, N)`` at their (row, outcome) cells,
    ``(nsim, n_rows, n_outcomes)``, NaN where nothing is observed."""
    out = np.full((values.shape[0], n_rows, n_outcomes), np.nan)
    out[:, long.row, long.outcome] = values
    return out


def simulate_results(results, nsim=1, seed=None):
    """
    Outcomes drawn from the fitted marginal model: ``(nsim, n_rows, k)`` in
    the row order of the fitted data, NaN where the data are missing.

    ``y*_i ~ N(X_i beta_hat, S_i + sum_l Z~_il (I (x) Psi_hat_l) Z~_il')``
    with the fit's Psi at every level (none for fixed effects).
    """
    model = results.model
    design = model.design
    long = design.long
    mean_long = long.X @ np.asarray(results.params, dtype=float)
    values = draw(model._batches, tuple(results.psis), mean_long, nsim, seed)
    return to_cells(long, values, design.endog.shape[0], design.n_outcomes)


def bootstrap(results, nsim=1, seed=None, fit_kwargs=None):
    """
    Parametric bootstrap: refit the model to each of ``nsim`` draws of
    :func:`simulate_results`.

    Every draw is refitted through ``design.with_endog(y*)`` and
    ``MixMeta.from_design`` with the fit's estimator, Psi structures,
    ``psi_fix``, ``init_psi`` and ``vc_adjust``: nothing is parsed or
    validated again.  ML and REML refits start from the fit's estimate
    (unless it is on the boundary of the parameter space, or
    ``fit_kwargs`` gives ``start_params``).  A two-level fit of random
    intercepts with one row per inner group ("cs", "diag" or "id" Psi, no
    missing outcome, no ``fit_kwargs``) is refitted to all draws at once
    instead (:mod:`statsmodels_mixmeta.results.many_refit`, the machinery of
    ``fit_many(..., groups=G)``), with the same estimates.

    Returns
    -------
    DataFrame
        One row per draw: the fixed effects (by parameter name), the
        entries of every level's Psi on and below the diagonal
        (``"psi[{level}]:{effect_i},{effect_j}"``; ``"psi:..."`` for one
        level), ``llf``, ``converged`` and ``n_warnings`` (warnings the
        refit raised, collected rather than shown).  The total number of
        warnings, by message, is in ``attrs["warnings"]``.
    """
    model = results.model
    sims = simulate_results(results, nsim, seed)
    if many_refit.covered(model, fit_kwargs):
        return _frame_of_many(results, many_refit.refit(model, sims))
    design = _unlabelled(model.design)
    fit_kwargs = dict(fit_kwargs or {})
    if model.method in ("reml", "ml") and results.theta.size \
            and not results.on_boundary:
        # the fit's optimum is a start close to every refit's (a Psi on
        # its boundary is not: a standard deviation at 0 can hold a
        # gradient method there)
        fit_kwargs.setdefault("start_params", results.theta)
    refit = type(model).from_design
    options = dict(method=model.method, bscov=model.bscov,
                   psi_fix=model.psi_fix, init_psi=model.init_psi,
                   vc_adjust=model.vc_adjust)
    names = list(results.model.data.param_names)
    psi_names = _psi_names(model.random)
    batches = model._batches
    rows, messages = [], {}
    squeeze = design.n_outcomes == 1
    for y in sims:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            new = design.with_endog(y[:, 0] if squeeze else y)
            model_b = refit(new, **options)
            # only the outcomes differ: the stacks of the fit's model are
            # reused with the new values (a model builds them on first use)
            model_b.__dict__["_batch_cache"] = batches.with_values(
                new.long.y)
            fit = model_b.fit(**fit_kwargs)
        for w in caught:
            key = f"{w.category.__name__}: {w.message}"
            messages[key] = messages.get(key, 0) + 1
        row = list(np.asarray(fit.params, dtype=float))
        row += _psi_entries(fit.psis)
        row += [float(fit.llf), bool(fit.converged), len(caught)]
        rows.append(row)
    frame = pd.DataFrame(rows, columns=names + psi_names
                         + ["llf", "converged", "n_warnings"])
    frame.index.name = "draw"
    frame.attrs["warnings"] = messages
    return frame


def _frame_of_many(results, values):
    """The bootstrap frame of refits made all at once
    (:mod:`statsmodels_mixmeta.results.many_refit`); a refit that did not
    converge counts one warning."""
    names = list(results.model.data.param_names)
    frame = pd.DataFrame(values, columns=names + _psi_names(
        results.model.random) + ["llf", "converged"])
    frame["converged"] = frame["converged"].astype(bool)
    frame["n_warnings"] = (~frame["converged"]).astype(int)
    frame.index.name = "draw"
    failed = int(frame["n_warnings"].sum())
    frame.attrs["warnings"] = ({"ConvergenceWarning: refit did not "
                                "converge": failed} if failed else {})
    return frame


def _unlabelled(design):
    """The design without pandas labels (its refits build no frames; their
    estimates are read as arrays), keeping what it has derived."""
    if not design.labelled:
        return design
    plain = replace(design, labelled=False)
    for name in ("long", "xtx", "basis"):
        if name in design.__dict__:
            plain.__dict__[name] = design.__dict__[name]
    return plain


def _psi_entries(psis):
    out = []
    for psi in psis:
        rows, cols = np.tril_indices(psi.shape[0])
        out += list(np.asarray(psi)[rows, cols])
    return out


def _psi_names(random):
    """``psi[level]:a,b`` for the lower triangle of every level's Psi (by
    row), ``psi:a,b`` for a single level."""
    names = []
    single = random.n_levels == 1
    for level, effects in zip(random.level_names, random.effect_names):
        prefix = "psi" if single else f"psi[{level}]"
        rows, cols = np.tril_indices(len(effects))
        names += [f"{prefix}:{effects[i]},{effects[j]}"
                  for i, j in zip(rows, cols)]
    return names


def _check_nsim(nsim):
    if isinstance(nsim, (bool, np.bool_)) or not isinstance(
            nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer; got {nsim!r}")
    return int(nsim)
