"""
Cochran's Q of the fixed-effects fit: the batched GLS kernel at ``Psi = 0``.

The statistic of R mixmeta's ``qtest`` (Sera et al. 2019), computed from the
whitened residuals of
:class:`~statsmodels_mixmeta.kernels.likelihood.ProfiledLikelihood` with no
random part, so that the known covariances may be given per row (``S``) or
per group (``addS``) alike.  The result container, p-values and I-squared
are :mod:`statsmodels_mixmeta.results.heterogeneity`'s.

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. Statistics in Medicine
38:5429-5444.
"""
import numpy as np

from .likelihood import ProfiledLikelihood
from .moments import residuals


def q_statistics(batches, basis, n_outcomes, n_terms):
    """
    Cochran's Q of the fixed-effects GLS fit: the kernel at ``Psi = 0``.

    .. math:: Q = \\sum_i r_i' S_i^{-1} r_i = \\sum_i e_i' e_i, \\qquad
              \\mathrm{df} = N - P

    (``N`` observed values, ``P`` coefficients).  For several outcomes,
    R's ``qtest`` adds one statistic per outcome ``j`` from the same
    residuals scaled by the variances alone,
    ``Q_j = sum_v r_v^2 / S_vv`` over the values ``v`` of outcome ``j``,
    on ``n_j - n_terms`` degrees of freedom (``n_j`` rows report it); R
    sums over every row without removing missing values, so ``Q_j`` is NaN
    when some row lacks outcome ``j``.

    Returns
    -------
    statistic, df : ndarray
        Overall first, then (``n_outcomes > 1``) one per outcome.
    """
    lik = ProfiledLikelihood(batches, reml=False, basis=basis)
    state = lik.evaluate(())
    statistic = [sum(float(np.vdot(e, e)) for e in state.resid_w)]
    df = [batches.n_values - lik.n_fixed]
    if n_outcomes > 1:
        scaled = batches.to_long(
            residuals(batch, state.beta) ** 2 / np.einsum("gnn->gn", batch.S)
            for batch in batches)
        outcome = batches.long.outcome
        counts = np.bincount(outcome, minlength=n_outcomes)
        sums = np.bincount(outcome, scaled, minlength=n_outcomes)
        n_rows = np.unique(batches.long.row).size
        statistic.extend(np.where(counts == n_rows, sums, np.nan))
        df.extend(counts - n_terms)
    return np.asarray(statistic, dtype=float), np.asarray(df, dtype=int)
