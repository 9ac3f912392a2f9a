"""
The method-of-moments and variance-components estimators of ``Psi``, from
the GLS of the batched kernel.

The model for outer group ``i`` (a study, or the rows sharing a known
covariance ``S_i`` given per group) with one random effect per value is

.. math::

    y_i = X_i \\beta + Z_i b + e_i, \\qquad b \\sim N(0, \\Psi), \\qquad
    e_i \\sim N(0, S_i), \\qquad \\Sigma_i = S_i + Z_i \\Psi Z_i',

where every row of ``Z_i`` is a unit vector and no two values of a group
share one: ``Z_i`` selects which of the ``r`` random effects (in a
multivariate meta-analysis, the ``k`` outcomes) each observed value
carries.  The standard multivariate model has ``Z_i = P_i``, the outcomes
observed in study ``i``, and ``X_i = (I_k \\otimes x_i')`` restricted to
them.  :func:`layout_problem` says whether a design has this form.

Everything is computed on the stacked batches
(:mod:`statsmodels_mixmeta.kernels.batches`) from the GLS of the one
batched kernel, :class:`~statsmodels_mixmeta.kernels.likelihood.ProfiledLikelihood`:
whitened residuals ``e_i = L_i^{-1} r_i`` (``Sigma_i = L_i L_i'``), the
whitened random design ``Y_i = L_i^{-1} Z_i`` and the whitened fixed design
times a factor ``T`` of ``F^{-1} = T T'``, ``U_i = L_i^{-1} X_i T``.  With
``a_i = Z_i' X_i T`` and ``c_i = Z_i' W_i X_i T = Y_i' U_i`` (``W_i =
Sigma_i^{-1}``) every hat-matrix quantity projected on the random effects
is a product of ``(r, p)`` blocks: ``Z_i' W_i X_i F^{-1} X_j' W_j Z_j =
c_i c_j'``.

:func:`method_of_moments_psi`
    The matrix method of moments of Jackson, White & Riley (2013);
    DerSimonian-Laird for one random effect.
:func:`variance_components_psi`
    The iterative variance-components estimator (Berkey et al. 1998,
    Chen et al. 2012), with R mixmeta's optional residual adjustment.

:func:`method_of_moments` and :func:`variance_components` are the same
estimators for plain arrays ``(y, X, S)`` of independent studies.  Both
estimators end with R mixmeta's projection (its ``set.negeigen``): the
estimate is symmetrised and every eigenvalue below ``PSD_FLOOR = sqrt(eps)``
raised to it (:func:`statsmodels_mixmeta.structures.psd.project_psd`).

What R supports and what is added
---------------------------------
R mixmeta 1.2.1 offers ``"mm"`` and ``"vc"`` for models without
``random=`` (each row its own group), with ``S`` or with ``addSlist`` (one
matrix per row).  Here they also accept one grouping level whose groups
hold several rows, as long as every value of a group has its own random
effect (e.g. a long-format meta-analysis with ``random="~ 0 + time |
study"`` and ``addS`` per study): the formulas below are written for any
selection ``Z_i`` and reduce to R's for ``Z_i = P_i``.  Multilevel moment
estimators are not standard and are refused.

References
----------
Jackson D, White IR, Riley RD (2013). A matrix-based method of moments for
fitting the multivariate random effects model for meta-analysis and
meta-regression. Biometrical Journal 55:231-245.

Berkey CS, Hoaglin DC, Antczak-Bouckoms A, Mosteller F, Colditz GA (1998).
Meta-analysis of multiple outcomes by regression with random effects.
Statistics in Medicine 17:2537-2550.

Chen H, Manning AK, Dupuis J (2012). A method of pooling genome-wide
association studies that allows for heterogeneity. Biometrics 68:1106-1113.

Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. Statistics in Medicine
38:5429-5444.
"""
import warnings

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ..design.core import conditioning_basis, study_arrays
from ..design.labels import label_list
from ..structures.psd import PSD_FLOOR, project_psd
from .batches import study_batches
from .likelihood import ProfiledLikelihood, marginal_cov


__all__ = ["PSD_FLOOR", "method_of_moments", "variance_components",
           "method_of_moments_psi", "variance_components_psi",
           "layout_problem", "pair_counts", "fixed_basis",
           "not_positive_definite"]


# ---------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------

def layout_problem(long):
    """
    Why the moment estimators do not apply to a single-level layout, or
    None: every value needs a random design row that is a unit vector, and
    the values of a group distinct ones.
    """
    Z = long.Z[0]
    if not np.all((Z == 0) | (Z == 1)) or not np.all(Z.sum(axis=1) == 1):
        return ("its random design is not one indicator per value (random "
                "slopes or sums of effects)")
    key = long.group * Z.shape[1] + Z.argmax(axis=1)
    if np.unique(key).size < key.size:
        return ("a group holds two values of the same random effect (rows "
                "of a group must report different outcomes)")
    return None


def fixed_basis(batches):
    """The conditioning basis of the fixed design (None for one column)."""
    X = batches.long.X
    if X.shape[1] == 1:
        return None
    return conditioning_basis(X.T @ X)


def pair_counts(batches, names=None):
    """``N_ab``: groups observing both effects; error if a pair never is."""
    counts = 0.0
    for batch in batches:
        present = batch.Z[0].sum(axis=1)                    # (g, r)
        counts = counts + present.T @ present
    if np.any(counts == 0):
        a, b = np.argwhere(counts == 0)[0]
        if names is not None:
            a, b = names[a], names[b]
        raise ValueError(f"outcomes {a} and {b} are never observed in the same "
                         "study; their covariance cannot be estimated")
    return counts


def _sum_kron(a, b):
    """``sum_i kron(a_i, b_i)`` for stacks ``a`` (m, r, s) and ``b`` (m, t, u)."""
    r, s = a.shape[1:]
    t, u = b.shape[1:]
    return np.einsum("iab,icd->acbd", a, b).reshape(r * t, s * u)


def _t(stack):
    return np.swapaxes(stack, 1, 2)


def _gls(lik, psis):
    """The GLS state and a factor ``T`` of ``F^{-1}`` in the kernel's basis."""
    state = lik.evaluate(psis)
    return state, np.linalg.cholesky(state.cov_work)


def residuals(batch, beta):
    """Raw residuals ``r = y - X beta`` of a batch, ``(g, n)`` (0 at
    padding)."""
    return batch.y - batch.X @ beta


# ---------------------------------------------------------------------------
# method of moments
# ---------------------------------------------------------------------------

#: ``method="mm"`` refuses moment equations whose coefficient matrix has a
#: smallest singular value below this times its largest: singular (a
#: pattern of missing outcomes that leaves too few values for some entries
#: of Psi scores about 1e-13 and less) or too badly scaled to solve (700
#: random well-posed problems: 1e-2 and more).  ``fit_many`` uses it too.
MOMENT_RCOND = 1e-12


def method_of_moments_psi(batches, basis=None, names=None, min_rcond=0.0):
    """
    Multivariate method-of-moments estimate of ``Psi`` (Jackson et al. 2013).

    With the fixed-effects fit (``W_i = S_i^{-1}``, residuals ``r_i``) the
    statistic

    .. math:: Q = \\sum_i Z_i' W_i r_i r_i' Z_i

    (for ``Z_i = P_i``, R's ``btr(W A y y' A')``) has expectation, linear in
    ``Psi``,

    .. math::

        E[Q] = \\sum_i Z_i' (I - W_i X_i F^{-1} X_i') Z_i
               + \\sum_{i,j} Z_i' W_i A_{ij} Z_j \\Psi Z_j' A_{ij}' Z_i,

    ``A = I - X F^{-1} X' W``.  Solving ``E[Q] = Q`` for ``vec(Psi)``
    (``r^2`` equations) and projecting gives the estimate.  With
    ``A_ij = delta_ij I - X_i F^{-1} X_j' W_j`` and the blocks ``a_i``,
    ``c_i`` of the module docstring, the coefficient matrix of
    ``vec(Psi)`` is

    .. math::

        \\sum_i [Z_i'Z_i \\otimes Y_i'Y_i - Z_i'Z_i \\otimes c_i c_i'
                 - a_i c_i' \\otimes Y_i'Y_i]
        + \\Big[\\sum_i a_i \\otimes c_i\\Big]
          \\Big[\\sum_j c_j' \\otimes c_j'\\Big]:

    the double sum over pairs of groups factorises.  For one random effect
    this is DerSimonian-Laird, except that a negative estimate becomes
    ``PSD_FLOOR`` rather than 0 (as in R's mixmeta).

    Parameters
    ----------
    batches : BatchSet
        A single-level layout (see :func:`layout_problem`).
    basis : ndarray, optional
        Conditioning basis of the fixed design (:func:`fixed_basis`).
    names : sequence of str, optional
        Names of the random effects, for messages.
    min_rcond : float
        Refuse (ValueError) moment equations whose smallest singular value
        is below this times the largest (``MOMENT_RCOND`` for
        ``method="mm"``; 0, the default, only exactly singular ones: a
        start for the likelihood may come from ill-scaled equations).

    Returns
    -------
    ndarray, (r, r)
    """
    pair_counts(batches, names)
    lik = ProfiledLikelihood(batches, reml=False, basis=basis)
    state, T = _gls(lik, ())
    scaled = T if basis is None else basis @ T
    r = batches[0].Z[0].shape[2]
    q_stat = np.zeros((r, r))
    expected_s = np.zeros((r, r))
    coef = np.zeros((r * r, r * r))
    left, right = 0.0, 0.0
    for batch, wb, e in zip(batches, state.whitened, state.resid_w):
        Z, Y = batch.Z[0], wb.Z[0]
        raw = residuals(batch, state.beta)
        a = _t(Z) @ (batch.X @ scaled)                          # Z'X T
        c = _t(Y) @ (wb.X @ T)                                  # Z'W X T
        ztz, yty = _t(Z) @ Z, _t(Y) @ Y
        q_stat += np.einsum("gna,gn,gm,gmb->ab", Y, e, raw, Z)
        expected_s += ztz.sum(axis=0) - np.einsum("gak,gbk->ab", c, a)
        coef += (_sum_kron(ztz, yty) - _sum_kron(ztz, c @ _t(c))
                 - _sum_kron(a @ _t(c), yty))
        left = left + _sum_kron(a, c)
        right = right + _sum_kron(_t(c), _t(c))
    coef += left @ right
    rhs = (q_stat - expected_s).ravel(order="F")
    try:
        values = np.linalg.svd(coef, compute_uv=False) if min_rcond else 0
        if min_rcond and not values[-1] > min_rcond * values[0]:
            raise np.linalg.LinAlgError("ill-conditioned")
        psi = np.linalg.solve(coef, rhs).reshape(r, r, order="F")
    except np.linalg.LinAlgError:
        raise ValueError(
            "method='mm' cannot estimate Psi: its moment equations are "
            "singular (too few observed values for the fixed coefficients "
            f"and the {r * (r + 1) // 2} entries of Psi, or a pattern of "
            "missing outcomes that leaves them so, or outcomes on very "
            "different scales: rescale them); use method='reml' or 'ml', or "
            "more studies") from None
    return project_psd(psi, PSD_FLOOR)


# ---------------------------------------------------------------------------
# variance components
# ---------------------------------------------------------------------------

def _standardised(batch, wb, e, T, psis):
    """
    ``(I - H_ii)^{-1/2} r_i`` from whitened quantities.

    ``I - H_ii = I - X_i F^{-1} X_i' W_i = L B L^{-1}`` with ``B = I -
    U_i U_i'`` symmetric positive definite, so its principal inverse square
    root is ``L B^{-1/2} L^{-1}``; ``L^{-1} r_i = e_i``.  Padded rows of
    ``U_i`` are zero, so ``B`` is the identity there.  ``L`` is the
    kernel's own factor of ``Sigma_i``, recomputed (the kernel keeps only
    its inverse).
    """
    chol = np.linalg.cholesky(marginal_cov(batch, psis))
    U = wb.X @ T
    n = U.shape[1]
    values, vectors = np.linalg.eigh(np.eye(n) - U @ _t(U))
    e = np.einsum("gmn,gm->gn", vectors, e) / np.sqrt(values)
    return np.einsum("gnm,gmk,gk->gn", chol, vectors, e)


def variance_components_psi(batches, basis=None, adjust=True, n_terms=None,
                            max_iter=100, tol=1e-10, names=None):
    """
    Iterative variance-components estimate of ``Psi``.

    Starting from ``Psi = 0``, each iteration

    1. fits ``beta`` by GLS with ``Sigma_i = S_i + Z_i Psi Z_i'`` and forms
       the residuals ``r_i = y_i - X_i beta``;
    2. if `adjust`, replaces ``r_i`` by ``(I - H_ii)^{-1/2} r_i``, the
       principal inverse square root of the diagonal block of
       ``H = X (X' Sigma^{-1} X)^{-1} X' Sigma^{-1}``;
    3. sets, with ``N_ab`` the groups observing both effects ``a`` and
       ``b``,

       .. math::

           \\Psi = \\frac{\\sum_i Z_i' r_i r_i' Z_i}{N - c}
                   - \\frac{\\sum_i Z_i' S_i Z_i}{N}

       entrywise, with ``c = 0`` if `adjust` and ``c = n_terms``
       (predictors per outcome) otherwise, then projects it;
    4. stops when every entry satisfies
       ``|Psi_new - Psi_old| < tol * |Psi_new + tol|``.

    This is R mixmeta's ``method = "vc"`` (``vc.adj`` is `adjust`).  R's
    default tolerance is ``reltol = sqrt(eps)``: pass ``tol=PSD_FLOOR`` (the
    same number) to stop at R's iterate; the default ``tol`` goes closer to
    the fixed point.

    Parameters
    ----------
    batches : BatchSet
        A single-level layout (see :func:`layout_problem`).
    basis : ndarray, optional
        Conditioning basis of the fixed design (:func:`fixed_basis`).
    adjust : bool
    n_terms : int
        Predictors per outcome; needed when not `adjust`.
    max_iter : int
    tol : float
    names : sequence of str, optional

    Returns
    -------
    psi : ndarray, (r, r)
    n_iter : int
    converged : bool
        False (with a ``ConvergenceWarning``) if `max_iter` was reached.
    """
    counts = pair_counts(batches, names)
    if not adjust and np.any(counts <= n_terms):
        raise ValueError(f"adjust=False needs more than p = {n_terms} studies "
                         "observing every pair of outcomes; the fewest is "
                         f"{int(counts.min())}")
    denominator = counts if adjust else counts - n_terms
    mean_s = sum(np.einsum("gna,gnm,gmb->ab", b.Z[0], b.S, b.Z[0])
                 for b in batches) / counts
    lik = ProfiledLikelihood(batches, reml=False, basis=basis)
    psi = np.zeros_like(counts)
    for n_iter in range(1, max_iter + 1):
        state, T = _gls(lik, (psi,))
        cross = 0.0
        for batch, wb, e in zip(batches, state.whitened, state.resid_w):
            res = (_standardised(batch, wb, e, T, (psi,)) if adjust
                   else residuals(batch, state.beta))
            zr = np.einsum("gna,gn->ga", batch.Z[0], res)
            cross = cross + zr.T @ zr
        new = project_psd(cross / denominator - mean_s, PSD_FLOOR)
        converged = np.all(np.abs(new - psi) < tol * np.abs(new + tol))
        psi = new
        if converged:
            return psi, n_iter, True
    warnings.warn(f"variance components did not converge in {max_iter} "
                  "iterations", ConvergenceWarning, stacklevel=2)
    return psi, max_iter, False


# ---------------------------------------------------------------------------
# plain arrays of independent studies
# ---------------------------------------------------------------------------

def not_positive_definite(cov, observed):
    """Rows whose covariance of the observed outcomes is not positive
    definite (the rest padded with the identity)."""
    k = observed.shape[1]
    pairs = observed[:, :, None] & observed[:, None, :]
    full = np.where(pairs, cov, np.eye(k))
    return np.flatnonzero(np.linalg.eigvalsh(full)[:, 0] <= 0)


def _check_inputs(y, X, within_cov):
    """Validate shapes and missing values.

    Returns float arrays ``y``, ``X``, ``within_cov`` and the ``(m, k)``
    observed mask, studies that observe no outcome dropped.
    """
    y, X, within_cov = study_arrays(y, X, within_cov)
    n_studies, k = y.shape
    if X.shape[0] != n_studies:
        raise ValueError(f"X has {X.shape[0]} rows but y has {n_studies}")
    if within_cov.shape != (n_studies, k, k):
        raise ValueError(f"within_cov has shape {within_cov.shape}; "
                         f"expected {(n_studies, k, k)} for y of shape {y.shape}")
    bad = ~np.all(np.isfinite(X), axis=1)
    if bad.any():
        raise ValueError("X has missing or infinite values in rows "
                         f"[{label_list(bad)}]")
    observed = ~np.isnan(y)
    pairs = observed[:, :, None] & observed[:, None, :]
    bad = (pairs & ~np.isfinite(within_cov)).any(axis=(1, 2))
    if bad.any():
        raise ValueError("within_cov is missing for observed outcomes in rows "
                         f"[{label_list(bad)}]")
    keep = observed.any(axis=1)
    return y[keep], X[keep], within_cov[keep], observed[keep]


def _study_problem(y, X, within_cov):
    """Validated arrays as batches of studies, with their basis."""
    y, X, within_cov, observed = _check_inputs(y, X, within_cov)
    rows = not_positive_definite(within_cov, observed)
    if rows.size:
        raise ValueError("the within-study covariance of the observed outcomes "
                         f"is not positive definite in rows [{label_list(rows)}]")
    batches = study_batches(y, X, within_cov, observed)
    return batches, fixed_basis(batches), X.shape[1]


def method_of_moments(y, X, within_cov):
    """
    :func:`method_of_moments_psi` for arrays of independent studies.

    Parameters
    ----------
    y : ndarray, (m, k)
        Outcomes; NaN marks a missing outcome.
    X : ndarray, (m, p)
        Study-level predictors, intercept included.
    within_cov : ndarray, (m, k, k)
        Known within-study covariances; entries of missing outcomes ignored.

    Returns
    -------
    ndarray, (k, k)
    """
    batches, basis, _ = _study_problem(y, X, within_cov)
    return method_of_moments_psi(batches, basis)


def variance_components(y, X, within_cov, adjust=True, max_iter=100,
                        tol=1e-10):
    """
    :func:`variance_components_psi` for arrays of independent studies
    (arguments as :func:`method_of_moments`; `adjust`, `max_iter` and `tol`
    as there).

    Returns
    -------
    psi : ndarray, (k, k)
    n_iter : int
    converged : bool
    """
    batches, basis, n_terms = _study_problem(y, X, within_cov)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        psi, n_iter, converged = variance_components_psi(
            batches, basis, adjust, n_terms, max_iter, tol)
    if not converged:
        warnings.warn(f"variance components did not converge in {max_iter} "
                      "iterations", ConvergenceWarning, stacklevel=2)
    return psi, n_iter, converged
