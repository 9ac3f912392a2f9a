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


def leave_one_out_q_statistics(batches, basis, n_outcomes, n_terms,
                               n_groups):
    """
    :func:`q_statistics` of the data without each outer group, all groups
    at once, by downdating the fixed-effects GLS.

    With the whitened design and residuals of the full fixed-effects fit
    ``beta_0`` (``e_g = L_g^-1 (y_g - X_g beta_0)``, ``A_g = L_g^-1 X_g``),
    the sums ``F = sum_g A_g' A_g``, ``c = sum_g A_g' e_g`` and
    ``q = sum_g e_g' e_g`` lose group ``i``'s terms, and

    .. math:: Q_{(-i)} = q_{(-i)} - c_{(-i)}' F_{(-i)}^{-1} c_{(-i)},
              \\qquad \\beta_{(-i)} - \\beta_0 = F_{(-i)}^{-1} c_{(-i)}

    (the residual sum of squares of a least-squares problem written around
    ``beta_0``, so that only residual-sized numbers are subtracted).  The
    per-outcome statistics expand ``sum_v (r_v - x_v' delta)^2 / S_vv`` in
    the same way, with ``r_v`` the residuals at ``beta_0`` and
    ``delta = beta_(-i) - beta_0``.

    Returns
    -------
    statistic, df : ndarray, ``(n_groups, 1 [+ n_outcomes])``
        Overall first, then (``n_outcomes > 1``) one per outcome; NaN
        where the fixed effects are not estimable without the group.
    """
    lik = ProfiledLikelihood(batches, reml=False, basis=basis)
    state = lik.evaluate(())
    p = lik.n_fixed
    F = np.zeros((n_groups, p, p))
    c = np.zeros((n_groups, p))
    q = np.zeros(n_groups)
    n_values = np.zeros(n_groups)
    for batch, wb, e in zip(batches, state.whitened, state.resid_w):
        g = batch.groups
        F[g] = np.einsum("gna,gnb->gab", wb.X, wb.X)
        c[g] = np.einsum("gna,gn->ga", wb.X, e)
        q[g] = np.einsum("gn,gn->g", e, e)
        n_values[g] = batch.valid.sum(axis=1)
    F_del = F.sum(axis=0) - F
    c_del = c.sum(axis=0) - c
    delta, ok = _solve_each(F_del, c_del)
    overall = q.sum() - q - np.einsum("ga,ga->g", c_del, delta)
    statistic = [np.where(ok, overall, np.nan)]
    df = [np.where(ok, batches.n_values - n_values - p, np.nan)]
    if n_outcomes > 1:
        # delta in the coefficients' own basis
        delta = delta if basis is None else delta @ basis.T
        per_outcome, counts = _outcome_sums(batches, state.beta, delta,
                                            n_outcomes, n_groups)
        statistic.extend(np.where(ok[:, None] & (counts[0] == counts[1]),
                                  per_outcome, np.nan).T)
        df.extend(np.where(ok[:, None], counts[0] - n_terms, np.nan).T)
    return (np.column_stack(statistic).astype(float),
            np.column_stack(df).astype(float))


def _solve_each(F, c):
    """``F_g^-1 c_g`` for each ``g`` and whether ``F_g`` is positive
    definite (NaN where not)."""
    eigval = np.linalg.eigvalsh(F)
    ok = eigval[:, 0] > 1e-12 * np.maximum(np.abs(eigval[:, -1]), 1e-300)
    out = np.full(c.shape, np.nan)
    if ok.any():
        out[ok] = np.linalg.solve(F[ok], c[ok][..., None])[..., 0]
    return out, ok


def _outcome_sums(batches, beta, delta, n_outcomes, n_groups):
    """
    ``Q_j`` of every outcome without each group,
    ``sum_v w_v (r_v - x_v' delta_i)^2`` over the values of outcome ``j``
    outside group ``i`` (``w_v = 1 / S_vv``, ``r_v`` at ``beta``), and the
    counts R's rule needs: values of the outcome and rows left, per group.
    """
    k = n_outcomes
    P = delta.shape[1]
    a = np.zeros((n_groups, k))
    b = np.zeros((n_groups, k, P))
    C = np.zeros((n_groups, k, P, P))
    count = np.zeros((n_groups, k))
    outcome_stacks = batches.from_long(batches.long.outcome, fill=-1)
    for batch, outcome in zip(batches, outcome_stacks):
        g = batch.groups
        w = np.where(batch.valid, 1.0 / np.einsum("gnn->gn", batch.S), 0.0)
        r = residuals(batch, beta)
        onehot = (outcome[..., None] == np.arange(k)) * w[..., None]
        a[g] = np.einsum("gnj,gn->gj", onehot, r * r)
        b[g] = np.einsum("gnj,gn,gna->gja", onehot, r, batch.X)
        C[g] = np.einsum("gnj,gna,gnb->gjab", onehot, batch.X, batch.X)
        count[g] = np.einsum("gnj->gj", (outcome[..., None] == np.arange(k))
                             & batch.valid[..., None])
    rows = batches.long.row
    group_of_row = np.zeros(rows.max() + 1, dtype=int)
    group_of_row[rows] = batches.long.group
    used = np.zeros(rows.max() + 1, dtype=bool)
    used[rows] = True
    rows_per_group = np.bincount(group_of_row[used], minlength=n_groups)
    a_del = a.sum(axis=0) - a
    b_del = b.sum(axis=0) - b
    C_del = C.sum(axis=0) - C
    stat = (a_del - 2 * np.einsum("gja,ga->gj", b_del, delta)
            + np.einsum("ga,gjab,gb->gj", delta, C_del, delta))
    counts = (count.sum(axis=0) - count,
              (rows_per_group.sum() - rows_per_group)[:, None])
    return stat, counts
