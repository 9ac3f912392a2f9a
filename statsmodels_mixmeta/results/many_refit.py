"""
The parametric bootstrap of a two-level fit refitted all at once: the draws
of :func:`statsmodels_mixmeta.results.simulation.bootstrap` go through the
nested kernel batched over draws
(:mod:`statsmodels_mixmeta.fitting.many_multilevel`, the machinery of
``fit_many(..., groups=G)``) instead of a loop of single fits, when the
model is one it covers: ML or REML, two nested levels of random intercepts
with one row per inner group, ``bscov`` "cs", "diag" or "id" at each
level, known ``S`` and no missing outcome, and no ``fit_kwargs``.
"""
import numpy as np

from ..fitting import many_multilevel as optimiser
from ..kernels import many_multilevel as kernel


def covered(model, fit_kwargs):
    """Whether :func:`refit` covers ``model`` (else the loop does)."""
    design = model.design
    levels = design.levels
    bscov = model.bscov
    names = [bscov] * 2 if isinstance(bscov, str) else list(bscov or [])
    return (not fit_kwargs and model.method in ("reml", "ml")
            and levels.n_levels == 2 and design.group_cov is None
            and design.within_cov is not None and model.psi_fix is None
            and len(names) == 2
            and all(n in optimiser.STRUCTURES for n in names)
            and design.n_outcomes >= (2 if "cs" in names else 1)
            and not np.isnan(design.endog).any()
            and all(z.shape[1] == 1 and (z == 1).all()
                    for z in levels.random_exog)
            and len(np.unique(levels.codes[1])) == len(design.endog))


def refit(model, sims):
    """
    Refit ``model`` to the draws ``sims`` ``(nsim, n_rows, k)``.

    Returns
    -------
    rows : ndarray ``(nsim, n_coef + n_psi + 2)``
        Coefficients, the lower triangle of each level's Psi by row, llf
        and converged, the columns of the bootstrap frame before
        ``n_warnings``.
    """
    design = model.design
    bscov = model.bscov
    names = [bscov] * 2 if isinstance(bscov, str) else list(bscov)
    stack = kernel.NestedStack(design.within_cov, design.exog,
                               design.levels.codes[0],
                               model.method == "reml")
    y = stack.pad(np.asarray(sims, dtype=float))
    psi_outer, psi_inner, fit, converged, _ = optimiser.maximise(
        stack, y, names)
    rows, cols = np.tril_indices(stack.k)
    return np.column_stack([fit.beta, psi_outer[:, rows, cols],
                            psi_inner[:, rows, cols], fit.llf, converged])
