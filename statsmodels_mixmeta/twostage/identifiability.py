"""
Which coefficients a first-stage fit identifies.

A coefficient ``beta_j`` of a linear predictor ``X beta`` is estimable from
the rows of ``X`` when ``e_j`` lies in the row space of ``X``, that is when
every vector ``v`` of the null space of ``X`` has ``v_j = 0``.  With a
rank-deficient ``X`` statsmodels' pseudo-inverse still returns a number for
an aliased coefficient (the minimum-norm solution) and a finite variance,
so the first stage must look at the design itself: a site that observed
only one condition has a treatment column of zeros (or a column equal to
the intercept), and its "treatment effect" is an artefact.

The null space is read from the singular value decomposition
``X = U D V'``: the right singular vectors whose singular values are at
most ``max(n, p) * eps * d_max`` (numpy's ``matrix_rank`` rule) span it.
Most designs are plainly of full rank: when the smallest eigenvalue of
``X'X`` scaled to unit diagonal exceeds :data:`FAST_TOL`, the decomposition
is skipped (the first stage runs this for every group), and so is all of
it when statsmodels already computed the rank of a linear or generalized
linear model's design (:func:`known_full_rank`).

The within-group covariance block is checked on its correlation scale, so
that coefficients measured in very different units are not mistaken for a
singular block: the block is singular when the smallest eigenvalue of
``D^{-1/2} C D^{-1/2}`` is at most :data:`SINGULAR_TOL`.
"""
import math

import numpy as np
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.regression.linear_model import RegressionModel

#: Smallest eigenvalue of a block's correlation matrix below which the
#: block is treated as singular.
SINGULAR_TOL = 1e-10
#: Smallest eigenvalue of the design's scaled ``X'X`` above which the
#: design has full rank without looking further.
FAST_TOL = 1e-8
#: A standard error at most this fraction of its estimate's magnitude is
#: a zero variance (an exact fit), not information.
SE_RTOL = 1e-10
#: Largest squared length of the projection of ``e_j`` on the null space
#: of the design for which coefficient ``j`` still counts as estimable.
NULL_TOL = 1e-10


def identifying_design(model):
    """
    The rows of a statsmodels model's (fixed-effects) design that carry
    information: ``wexog`` of WLS/GLS, ``exog`` with zero-weight rows
    removed for GLM frequency or variance weights, ``exog`` otherwise.
    None when the model has no ``exog`` (then nothing is checked).
    """
    exog = getattr(model, "wexog", None)
    if exog is None:
        exog = getattr(model, "exog", None)
        if exog is None:
            return None
        for attr in ("freq_weights", "var_weights"):
            weights = getattr(model, attr, None)
            if isinstance(weights, np.ndarray) and weights.ndim == 1 \
                    and weights.shape[0] == exog.shape[0] \
                    and not weights.all():
                exog = exog[weights != 0]
    exog = np.asarray(exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    return exog


def known_full_rank(model):
    """
    True when statsmodels already found the model's design of full rank
    with numpy's ``matrix_rank`` (the rule used here), so that nothing needs
    to be checked again: a linear regression's ``rank`` (with no zero
    weight), a GLM's ``df_model + 1`` (with no zero frequency or variance
    weight).  False when unknown.
    """
    exog = getattr(model, "exog", None)
    if exog is None or exog.ndim != 2:
        return False
    if isinstance(model, RegressionModel):
        rank, weights = model.rank, (getattr(model, "weights", 1.0),)
    elif isinstance(model, GLM):
        rank = model.df_model + 1
        weights = (model.freq_weights, model.var_weights)
    else:
        return False
    return rank == exog.shape[1] and all(
        w.all() if isinstance(w, np.ndarray) else bool(np.all(w))
        for w in weights)


def non_estimable(exog, columns):
    """
    Positions among ``columns`` (column indices of ``exog``) of the
    coefficients that ``exog`` does not identify.

    Parameters
    ----------
    exog : ndarray, (n, p)
    columns : sequence of int

    Returns
    -------
    list of int
        Indices into ``columns``.
    """
    n, p = exog.shape
    if n == 0 or not np.isfinite(exog).all():
        return list(range(len(columns)))
    # fast path: a well-conditioned X'X on the correlation scale has full
    # rank; only a doubtful one is decomposed
    gram = exog.T @ exog
    scale = np.sqrt(np.diagonal(gram))
    if scale.all():
        corr = gram / scale[:, None] / scale[None, :]
        if p == 1 or np.linalg.eigvalsh(corr)[0] > FAST_TOL:
            return []
    _, singular, vt = np.linalg.svd(exog, full_matrices=False)
    top = singular[0] if singular.size else 0.0
    rank = int(np.sum(singular > max(n, p) * np.finfo(float).eps * top)) \
        if top > 0 else 0
    if rank == p:
        return []
    # |projection of e_j on the null space|^2 = 1 - |projection on the
    # row space|^2, the row space spanned by the first `rank` rows of V'
    in_null = 1.0 - np.sum(vt[:rank] ** 2, axis=0)
    return [i for i, col in enumerate(columns) if in_null[col] > NULL_TOL]


def singular_block(cov):
    """
    True when the covariance block ``cov`` (positive diagonal) is
    singular on its correlation scale.
    """
    cov = np.asarray(cov, dtype=float)
    k = cov.shape[0]
    if k <= 1:
        return False
    if k == 2:       # eigenvalues of [[1, r], [r, 1]] are 1 - |r|, 1 + |r|
        (a, b), (_, d) = cov.tolist()
        return 1.0 - abs(b) / math.sqrt(a * d) <= SINGULAR_TOL
    scale = 1.0 / np.sqrt(np.diagonal(cov))
    corr = cov * scale[:, None] * scale[None, :]
    corr = (corr + corr.T) / 2
    return bool(np.linalg.eigvalsh(corr)[0] <= SINGULAR_TOL)
