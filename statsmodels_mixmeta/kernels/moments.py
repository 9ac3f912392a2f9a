"""
Non-likelihood estimators of the between-study covariance ``Psi``.

The model for study ``i = 1..m`` with ``k`` outcomes (some possibly missing) is

.. math::

    y_i = X_i \\beta + b_i + e_i, \\qquad b_i \\sim N(0, \\Psi), \\qquad
    e_i \\sim N(0, S_i), \\qquad \\Sigma_i = S_i + \\Psi,

restricted to the outcomes observed in study ``i``.  ``S_i`` is known.  With
``p`` study-level predictors ``x_i`` (intercept included) the coefficients are
*outcome-major*: all ``p`` coefficients of outcome 1, then outcome 2, ...,
so the design row of (study ``i``, outcome ``j``) is ``kron(e_j, x_i)`` and
``X_i = I_k \\otimes x_i'`` (``k x kp``, rows of missing outcomes dropped).

Two estimators are provided, both as functions of plain arrays:

:func:`method_of_moments`
    The matrix method of moments of Jackson, White & Riley (2013), which is
    DerSimonian-Laird for ``k = 1``.
:func:`variance_components`
    The iterative variance-components estimator (Berkey et al. 1998,
    Chen et al. 2012), with R mixmeta's optional residual adjustment.

Both end with the projection of R's mixmeta (its ``set.negeigen``): the
estimate is symmetrised and every eigenvalue below ``PSD_FLOOR = sqrt(eps)``
is raised to ``PSD_FLOOR``, so the returned ``Psi`` is positive definite.

Layout and numerics
-------------------
Every study is held *padded* to ``k x k``: a missing outcome has a zero row
in the design, a zero outcome value and zero rows/columns in ``S_i``,
``Sigma_i``, their Cholesky factor ``L_i`` and ``L_i^{-1}``.  The factor of
the observed block is obtained for all studies in one batched call, by
factorising ``Sigma_i`` with the missing block replaced by the identity
(whose factor is the observed block's factor, padded by the identity).
Fixed effects are never formed through ``(X'WX)^{-1}``: the whitened design
``L^{-1} X`` stacked over studies is QR-factorised, ``L^{-1} X = Q R``, and
every hat-matrix quantity is written with ``Q`` or with
``X R^{-1} = L Q`` and ``W X R^{-1} = L^{-T} Q``, which stays accurate for
badly scaled predictors (e.g. calendar years).

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
from scipy import linalg
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ..design.core import study_arrays

#: Smallest eigenvalue of a returned ``Psi`` (R mixmeta's ``set.negeigen``).
#: It is also R's default relative tolerance ``reltol`` of ``method="vc"``.
PSD_FLOOR = np.sqrt(np.finfo(float).eps)


# ---------------------------------------------------------------------------
# input and padded layout
# ---------------------------------------------------------------------------

def _check_inputs(y, X, within_cov):
    """Validate shapes and missing values.

    Returns float arrays ``y`` (NaN zero-filled), ``X``, ``within_cov`` (zero
    outside the observed block) and the ``(m, k)`` observed mask, with studies
    that observe no outcome dropped.
    """
    y, X, within_cov = study_arrays(y, X, within_cov)
    n_studies, k = y.shape
    if X.shape[0] != n_studies:
        raise ValueError(f"X has {X.shape[0]} rows but y has {n_studies}")
    if within_cov.shape != (n_studies, k, k):
        raise ValueError(f"within_cov has shape {within_cov.shape}; "
                         f"expected {(n_studies, k, k)} for y of shape {y.shape}")
    if not np.all(np.isfinite(X)):
        rows = np.flatnonzero(~np.all(np.isfinite(X), axis=1))
        raise ValueError(f"X has missing or infinite values in rows {rows.tolist()}")
    observed = ~np.isnan(y)
    pairs = observed[:, :, None] & observed[:, None, :]
    bad = pairs & ~np.isfinite(within_cov)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=(1, 2)))
        raise ValueError("within_cov is missing for observed outcomes in rows "
                         f"{rows.tolist()}")
    keep = observed.any(axis=1)
    y = np.where(observed, y, 0.0)
    within_cov = np.where(pairs, within_cov, 0.0)
    return y[keep], X[keep], within_cov[keep], observed[keep]


def _padded_design(X, observed):
    """Outcome-major design ``kron(e_j, x_i)`` per study, ``(m, k, k*p)``.

    Rows of missing outcomes are zero.
    """
    n_studies, p = X.shape
    k = observed.shape[1]
    design = np.zeros((n_studies, k, k, p))
    design[:, np.arange(k), np.arange(k), :] = observed[:, :, None] * X[:, None, :]
    return design.reshape(n_studies, k, k * p)


def _pair_counts(observed):
    """``N_ab``: studies observing both outcomes; error if a pair never is."""
    counts = observed.T.astype(float) @ observed
    if np.any(counts == 0):
        a, b = np.argwhere(counts == 0)[0]
        raise ValueError(f"outcomes {a} and {b} are never observed in the same "
                         "study; their covariance cannot be estimated")
    return counts


def _padded_cholesky(cov, observed):
    """Cholesky factor ``L_i`` of each observed block and ``L_i^{-1}``.

    Both are returned zero-padded to ``(m, k, k)``.
    """
    k = observed.shape[1]
    pairs = observed[:, :, None] & observed[:, None, :]
    full = np.where(pairs, cov, np.eye(k))
    try:
        chol = np.linalg.cholesky(full)
    except np.linalg.LinAlgError:
        rows = np.flatnonzero(np.linalg.eigvalsh(full)[:, 0] <= 0)
        raise ValueError("the within-study covariance of the observed outcomes "
                         f"is not positive definite in rows {rows.tolist()}"
                         ) from None
    # a batched LAPACK solve: scipy's solve_triangular loops over a stack
    # in Python (16 ms per 24 studies with scipy 1.17)
    chol_inv = np.linalg.solve(chol, np.broadcast_to(np.eye(k), chol.shape))
    return np.where(pairs, chol, 0.0), np.where(pairs, chol_inv, 0.0)


def _whitened_gls(design, y, chol_inv):
    """GLS by QR of the whitened design.

    With ``U = L^{-1} X`` stacked over studies and ``U = Q R`` (thin QR),
    returns ``Q`` as ``(m, k, kp)``, ``R`` and the whitened residuals
    ``e = L^{-1}(y - X beta) = z - Q Q'z``, ``z = L^{-1} y``, as ``(m, k)``.
    """
    n_studies, k, n_coef = design.shape
    white_x = chol_inv @ design
    white_y = np.einsum("iab,ib->ia", chol_inv, y)
    q, r = np.linalg.qr(white_x.reshape(n_studies * k, n_coef))
    q = q.reshape(n_studies, k, n_coef)
    resid = white_y - q @ np.einsum("iak,ia->k", q, white_y)
    return q, r, resid


def _project_psd(psi):
    """Symmetrise; raise eigenvalues below :data:`PSD_FLOOR` to it."""
    psi = (psi + psi.T) / 2
    values, vectors = np.linalg.eigh(psi)
    if values.min() >= PSD_FLOOR:
        return psi
    return (vectors * np.maximum(values, PSD_FLOOR)) @ vectors.T


def _sum_kron(a, b):
    """``sum_i kron(a_i, b_i)`` for stacks ``a`` (m, r, s) and ``b`` (m, t, u)."""
    r, s = a.shape[1:]
    t, u = b.shape[1:]
    return np.einsum("iab,icd->acbd", a, b).reshape(r * t, s * u)


def _transpose(stack):
    return np.swapaxes(stack, 1, 2)


# ---------------------------------------------------------------------------
# method of moments
# ---------------------------------------------------------------------------

def method_of_moments(y, X, within_cov):
    """
    Multivariate method-of-moments estimate of ``Psi`` (Jackson et al. 2013).

    With ``W = blockdiag(W_i)``, ``W_i = S_i^{-1}``, ``F = X'WX``,
    ``H = X F^{-1} X'W`` and ``A = I - H``, the statistic

    .. math:: Q = \\mathrm{btr}\\{W A y y' A'\\} = \\sum_i W_i r_i r_i'

    (``btr`` sums the ``k x k`` diagonal blocks; ``r`` are the fixed-effects
    residuals) has expectation, linear in ``Psi``,

    .. math::

        E[Q] = \\mathrm{diag}(N_a) - \\sum_i W_i X_i F^{-1} X_i'
               + \\sum_{i,j} W_i A_{ij} P_j \\Psi P_j A_{ij}',

    where ``N_a`` counts the studies observing outcome ``a`` and ``P_j``
    selects the outcomes observed in study ``j``.  Solving ``E[Q] = Q`` for
    ``vec(Psi)`` (``k^2`` equations in ``k^2`` unknowns) gives the estimate,
    which is then symmetrised and projected: eigenvalues below
    :data:`PSD_FLOOR` are raised to it.  For ``k = 1`` this is
    DerSimonian-Laird, except that a negative moment estimate becomes
    ``PSD_FLOOR`` rather than 0 (as in R's mixmeta).

    With ``A_ij P_j = delta_ij P_i - G_ij``, ``G_ij = X_i F^{-1} X_j' W_j``,
    the coefficient matrix of ``vec(Psi)`` is

    .. math::

        \\sum_i (P_i \\otimes W_i - P_i \\otimes W_i G_{ii}
                 - G_{ii} \\otimes W_i)
        + \\Big[\\sum_i a_i \\otimes b_i\\Big]
          \\Big[\\sum_j b_j' \\otimes b_j'\\Big],

    with ``a_i = X_i R^{-1}``, ``b_i = W_i X_i R^{-1}`` and ``F = R'R``, so
    ``G_ij = a_i b_j'``: the double sum over study pairs factorises.

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
        The estimate of ``Psi``.
    """
    y, X, within_cov, observed = _check_inputs(y, X, within_cov)
    _pair_counts(observed)
    k = observed.shape[1]
    design = _padded_design(X, observed)
    chol, chol_inv = _padded_cholesky(within_cov, observed)
    q, _, resid = _whitened_gls(design, y, chol_inv)

    chol_inv_t = _transpose(chol_inv)
    weight = chol_inv_t @ chol_inv                       # W_i
    a = chol @ q                                         # X_i R^{-1}
    b = chol_inv_t @ q                                   # W_i X_i R^{-1}
    hat = a @ _transpose(b)                              # G_ii = H_ii
    select = observed[:, :, None] * np.eye(k)            # P_i

    raw_resid = np.einsum("iab,ib->ia", chol, resid)     # r_i = L_i e_i
    q_stat = np.einsum("iab,ib,ic->ac", chol_inv_t, resid, raw_resid)
    expected_s = np.diag(observed.sum(axis=0).astype(float)) - np.einsum(
        "iak,ibk->ab", b, a)
    coef = (_sum_kron(select, weight) - _sum_kron(select, weight @ hat)
            - _sum_kron(hat, weight)
            + _sum_kron(a, b) @ _sum_kron(_transpose(b), _transpose(b)))
    rhs = (q_stat - expected_s).ravel(order="F")
    psi = np.linalg.solve(coef, rhs).reshape(k, k, order="F")
    return _project_psd(psi)


# ---------------------------------------------------------------------------
# variance components
# ---------------------------------------------------------------------------

def _standardised_residuals(chol, q, resid):
    """``(I - H_ii)^{-1/2} r_i`` from whitened quantities.

    ``I - H_ii = I - X_i F^{-1} X_i' Sigma_i^{-1}`` is not symmetric, but with
    ``Sigma_i = L L'`` it equals ``L B L^{-1}``, ``B = I - Q_i Q_i'``
    symmetric positive definite, so its principal inverse square root is
    ``L B^{-1/2} L^{-1}``, and ``L^{-1} r_i`` is the whitened residual.
    Padded rows of ``Q_i`` are zero, so ``B`` is the identity there.
    """
    k = q.shape[1]
    values, vectors = np.linalg.eigh(np.eye(k) - q @ _transpose(q))
    inv_sqrt = (vectors / np.sqrt(values)[:, None, :]) @ _transpose(vectors)
    return np.einsum("iab,ibc,ic->ia", chol, inv_sqrt, resid)


def variance_components(y, X, within_cov, adjust=True, max_iter=100, tol=1e-10):
    """
    Iterative variance-components estimate of ``Psi``.

    Starting from ``Psi = 0``, each iteration

    1. fits ``beta`` by GLS with ``Sigma_i = S_i + Psi`` and forms the
       residuals ``r_i = y_i - X_i beta``;
    2. if `adjust`, replaces ``r_i`` by ``(I - H_ii)^{-1/2} r_i``, the
       principal inverse square root of the diagonal block of
       ``H = X (X' Sigma^{-1} X)^{-1} X' Sigma^{-1}``;
    3. sets, for every pair of outcomes observed together in ``N_ab``
       studies,

       .. math::

           \\Psi_{ab} = \\frac{\\sum_i r_{ia} r_{ib}}{N_{ab} - c}
                        - \\frac{\\sum_i S_{i,ab}}{N_{ab}},

       with ``c = 0`` if `adjust` and ``c = p`` (predictors per outcome)
       otherwise, then symmetrises and raises eigenvalues below
       :data:`PSD_FLOOR` to it;
    4. stops when every entry satisfies
       ``|Psi_new - Psi_old| < tol * |Psi_new + tol|``.

    This is R mixmeta's ``method = "vc"`` (``vc.adj`` is `adjust`).  R's
    default tolerance is ``reltol = sqrt(eps)``: pass ``tol=PSD_FLOOR`` (the
    same number) to stop at R's iterate; the default ``tol`` goes closer to
    the fixed point.

    Parameters
    ----------
    y : ndarray, (m, k)
        Outcomes; NaN marks a missing outcome.
    X : ndarray, (m, p)
        Study-level predictors, intercept included.
    within_cov : ndarray, (m, k, k)
        Known within-study covariances; entries of missing outcomes ignored.
    adjust : bool
        Standardise the residuals by the hat matrix (R's ``vc.adj``).
    max_iter : int
        Maximum number of iterations (R's ``maxiter``).
    tol : float
        Relative tolerance of the stopping rule.

    Returns
    -------
    psi : ndarray, (k, k)
    n_iter : int
        Iterations performed.
    converged : bool
        False (with a ``ConvergenceWarning``) if `max_iter` was reached.
    """
    y, X, within_cov, observed = _check_inputs(y, X, within_cov)
    counts = _pair_counts(observed)
    n_pred = X.shape[1]
    if not adjust and np.any(counts <= n_pred):
        raise ValueError(f"adjust=False needs more than p = {n_pred} studies "
                         "observing every pair of outcomes; the fewest is "
                         f"{int(counts.min())}")
    design = _padded_design(X, observed)
    mean_s = within_cov.sum(axis=0) / counts
    denominator = counts if adjust else counts - n_pred

    psi = np.zeros_like(counts)
    for n_iter in range(1, max_iter + 1):
        chol, chol_inv = _padded_cholesky(within_cov + psi, observed)
        q, _, resid = _whitened_gls(design, y, chol_inv)
        if adjust:
            resid = _standardised_residuals(chol, q, resid)
        else:
            resid = np.einsum("iab,ib->ia", chol, resid)
        new = _project_psd(resid.T @ resid / denominator - mean_s)
        converged = np.all(np.abs(new - psi) < tol * np.abs(new + tol))
        psi = new
        if converged:
            return psi, n_iter, True
    warnings.warn(f"variance components did not converge in {max_iter} "
                  "iterations", ConvergenceWarning, stacklevel=2)
    return psi, max_iter, False
