"""
Dense references for the multilevel likelihood, written here from the
definitions and sharing no code with the package.

The observed values ``y`` (row-major: row by row, outcomes in order, missing
ones left out) have mean ``X beta`` and the full marginal covariance

.. math:: \\Sigma = S + \\sum_l \\sum_{g \\in \\text{level } l}
          Z_{lg} \\Psi_l Z_{lg}',

built entry by entry: ``Sigma[a, b]`` gets ``z_a' Psi_l z_b`` when values
``a`` and ``b`` share their labels of levels ``1 .. l``.  With
``P = Sigma^-1 - Sigma^-1 X (X' Sigma^-1 X)^-1 X' Sigma^-1`` the expected
information of covariance parameters ``theta`` is (Harville 1977)

.. math:: I_{st} = \\tfrac12 \\operatorname{tr}(A \\Sigma_s A \\Sigma_t),
          \\qquad A = \\Sigma^{-1} \\text{ (ML)}, \\quad A = P \\text{ (REML)},

``Sigma_s = dSigma / dtheta_s``.

References
----------
Harville DA (1977). Maximum likelihood approaches to variance component
estimation and to related problems. JASA 72, 320-338.
"""
import numpy as np


def dense_marginal(endog, exog, labels, designs, psis, within=None,
                   addS=None):
    """
    The observed values, their design matrix and marginal covariance.

    Parameters
    ----------
    endog : (n, k) array, NaN for missing outcomes
    exog : (n, p) array
    labels : (n, L) array of grouping labels, outer to inner
    designs : list of (n, q_l) arrays, one per level
    psis : list of (k q_l, k q_l) arrays, outcome-major
    within : (n, k, k) array of within-row covariances, or
    addS : dict {outer label: covariance of the group's values, row order}

    Returns
    -------
    y : (N,) ; X : (N, k p) ; sigma : (N, N)
    """
    endog = np.asarray(endog, dtype=float).reshape(len(endog), -1)
    exog = np.asarray(exog, dtype=float)
    labels = np.asarray(labels, dtype=object)
    n, k = endog.shape
    p = exog.shape[1]
    row, outcome = np.nonzero(~np.isnan(endog))
    N = row.size
    y = endog[row, outcome]
    X = np.zeros((N, k * p))
    for j in range(k):
        X[outcome == j, j * p:(j + 1) * p] = exog[row[outcome == j]]
    sigma = np.zeros((N, N))
    if within is not None:
        same_row = row[:, None] == row[None, :]
        # NaN (a missing outcome's entry) only ever across rows
        sigma += np.where(same_row, within[row[:, None], outcome[:, None],
                                           outcome[None, :]], 0.0)
    else:
        for label, matrix in addS.items():
            idx = np.flatnonzero(labels[row, 0] == label)
            sigma[np.ix_(idx, idx)] += np.asarray(matrix, dtype=float)
    same = np.ones((N, N), dtype=bool)
    for level, (z, psi) in enumerate(zip(designs, psis)):
        lab = labels[row, level]
        same &= lab[:, None] == lab[None, :]
        z = np.asarray(z, dtype=float).reshape(n, -1)
        q = z.shape[1]
        Z = np.zeros((N, k * q))
        for j in range(k):
            Z[outcome == j, j * q:(j + 1) * q] = z[row[outcome == j]]
        sigma += same * (Z @ np.asarray(psi, dtype=float) @ Z.T)
    return y, X, sigma


def dense_ml(endog, exog, labels, designs, psis, within=None, addS=None):
    """
    ML log-likelihood and GLS coefficients from the dense marginal
    covariance of all observed values (arguments as
    :func:`dense_marginal`).
    """
    y, X, sigma = dense_marginal(endog, exog, labels, designs, psis,
                                 within=within, addS=addS)
    inv = np.linalg.inv(sigma)
    beta = np.linalg.solve(X.T @ inv @ X, X.T @ inv @ y)
    resid = y - X @ beta
    logdet = np.linalg.slogdet(sigma)[1]
    llf = -0.5 * (y.size * np.log(2 * np.pi) + logdet
                  + resid @ inv @ resid)
    return llf, beta


def dense_information(sigma, sigma_derivatives, X, reml):
    """
    ``I_st = tr(A Sigma_s A Sigma_t) / 2`` with ``A = Sigma^-1`` (ML) or
    ``P`` (REML); ``sigma_derivatives`` is ``(P, N, N)``.
    """
    inv = np.linalg.inv(sigma)
    A = inv
    if reml:
        XtA = X.T @ inv
        A = inv - XtA.T @ np.linalg.solve(XtA @ X, XtA)
    AD = A @ sigma_derivatives                        # (P, N, N)
    n_params = AD.shape[0]
    # tr(AD_s AD_t) = sum_ab AD_s[a, b] AD_t[b, a]
    return 0.5 * (AD.reshape(n_params, -1)
                  @ np.swapaxes(AD, 1, 2).reshape(n_params, -1).T)
