"""
Simulation from a specified model that has not been fitted: the analogue of
R mixmeta's ``mixmetaSim``.

The inputs are wired into a :class:`~statsmodels_mixmeta.model.MixMeta`
whose Psi is fixed at the given matrices (``bscov="fixed"``), so that ``S``,
``random=``, ``groups=``, ``addS`` and missing outcomes are read and checked
exactly as for a fit, and the draws come from the same kernel as
``MixMetaResults.simulate``
(:func:`statsmodels_mixmeta.results.simulation.draw`).
"""
import numpy as np
import pandas as pd

from .model import MixMeta
from .results import simulation as _simulation


def simulate(y, S=None, psi=None, random=None, data=None, nsim=1, seed=None,
             groups=None, exog_re=None, Scor=None, addS=None):
    """
    Outcomes drawn from a multivariate, multilevel meta-analysis model.

    ``y*_i ~ N(mu_i, S_i + sum_l Z~_il (I (x) Psi_l) Z~_il')`` per outer
    group ``i``, the means ``mu`` given (R: ``mixmetaSim(y, S, Psi,
    random, data, nsim, seed)``).  Missing means stay missing.

    Parameters
    ----------
    y : array_like, str or list of str, or MixMetaResults
        The means, ``(n,)`` or ``(n, k)`` with NaN for outcomes not
        observed (R's ``y``: the fitted values, a matrix); column names of
        ``data``; or a fitted results object, whose own ``simulate`` is
        called (R's ``simulate.mixmeta``).
    S : array_like, str or list of str
        Within-study (co)variances in any form :class:`MixMeta` accepts
        (R's ``S``: variances, vech of the covariances, or matrices);
        column names of ``data`` when ``data`` is given.
    psi : array_like, list or dict, optional
        Random-effects covariance: one ``k x k`` matrix (``q x q`` for
        random predictors) per grouping level, as a list outer level first
        or a dict keyed by level (R's ``Psi``: a matrix, or a list for
        multilevel models).  None simulates from the fixed-effects model
        (Psi = 0).
    random : str, list or dict, optional
        The random part as :meth:`MixMeta.from_formula` takes it (R's
        ``random``); needs ``data``.  Without it (and without ``groups``)
        every row is its own group with one random effect per outcome.
    data : DataFrame, optional
        Where ``y``, ``S`` and the variables of ``random`` are looked up
        (R's ``data``).
    nsim : int
        Number of draws (R's ``nsim``).
    seed : None, int, SeedSequence or Generator
        Anything :func:`numpy.random.default_rng` accepts (R's ``seed``);
        the same seed gives the same draws.
    groups, exog_re, Scor, addS
        As for :class:`MixMeta` (array input instead of ``random``).

    Returns
    -------
    ndarray, ``(nsim, n, k)``
        In the rows' order; NaN where the mean is NaN (a row whose outcomes
        are all missing is all NaN).  R returns a matrix for ``nsim = 1``
        and a list of them otherwise.

    Examples
    --------
    >>> sims = simulate(res.fittedvalues, S=res.model.S, psi=res.psi,
    ...                 nsim=100, seed=1)        # doctest: +SKIP
    """
    if hasattr(y, "simulate") and hasattr(y, "model"):
        return y.simulate(nsim=nsim, seed=seed)
    if random is not None and data is None:
        raise ValueError("simulate: random= names variables of data=; pass "
                         "data= too, or give the grouping as groups=")
    means, names = _means(y, data)
    kwargs = dict(S=S, Scor=Scor, addS=addS, groups=groups, exog_re=exog_re)
    if psi is None:
        kwargs.update(method="fixed")
    else:
        kwargs.update(method="ml", bscov="fixed", psi_fix=_psi_matrices(psi))
    try:
        model = _model(means, names, data, random, kwargs)
    except ValueError as err:     # Psi is the model's fixed structure
        raise ValueError(f"simulate: {err}".replace("psi_fix", "psi")) \
            from None
    design = model.design
    rows = np.asarray(design.row_labels, dtype=np.intp)
    long = design.long
    mean_long = means[rows][long.row, long.outcome]
    psis = model.random.psis(np.zeros(model.random.n_params))
    values = _simulation.draw(model._batches, tuple(psis), mean_long, nsim,
                              seed)
    cells = _simulation.to_cells(long, values, rows.size, means.shape[1])
    out = np.full((cells.shape[0],) + means.shape, np.nan)
    out[:, rows] = cells
    return out


def _model(means, names, data, random, kwargs):
    """The model of the means (an intercept per outcome, as endog)."""
    if data is None:
        return MixMeta(means if means.shape[1] > 1 else means[:, 0],
                       **kwargs)
    frame = pd.DataFrame(data).reset_index(drop=True)
    frame[names] = means
    formula = " + ".join(names) + " ~ 1"
    return MixMeta.from_formula(formula, frame, random=random, **kwargs)


def _means(y, data):
    """The means as a float array ``(n, k)`` and outcome column names that
    do not clash with ``data``."""
    if data is not None and (isinstance(y, str) or (
            isinstance(y, (list, tuple)) and y
            and all(isinstance(v, str) for v in y))):
        y = pd.DataFrame(data)[[y] if isinstance(y, str) else list(y)]
    means = np.array(y, dtype=float)
    if means.ndim == 1:
        means = means[:, None]
    if means.ndim != 2:
        raise ValueError(f"simulate: y must be means (n,) or (n, k); got "
                         f"shape {np.shape(y)}")
    if data is not None and len(data) != means.shape[0]:
        raise ValueError(f"simulate: y has {means.shape[0]} rows and data "
                         f"{len(data)}; give one mean per row of data")
    taken = set() if data is None else set(map(str, pd.DataFrame(data)))
    stem = "sim_y"
    while any(f"{stem}{j + 1}" in taken for j in range(means.shape[1])):
        stem = "_" + stem
    return means, [f"{stem}{j + 1}" for j in range(means.shape[1])]


def _psi_matrices(psi):
    """Psi per level as float matrices (a dict or list kept as such)."""
    if isinstance(psi, dict):
        return {key: np.atleast_2d(np.asarray(value, dtype=float))
                for key, value in psi.items()}
    if isinstance(psi, (list, tuple)):
        try:
            stacked = np.asarray(psi, dtype=float)
        except (TypeError, ValueError):    # matrices of different sizes
            stacked = None
        if stacked is not None and stacked.ndim <= 2:  # one matrix
            return np.atleast_2d(stacked)
        if len(psi) == 1:
            return np.atleast_2d(np.asarray(psi[0], dtype=float))
        return [np.atleast_2d(np.asarray(value, dtype=float))
                for value in psi]
    return np.atleast_2d(np.asarray(psi, dtype=float))
