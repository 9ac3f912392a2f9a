"""
Cochran's Q test of heterogeneity and the I-squared statistic.

The Python counterpart of R ``mixmeta::qtest`` and of the ``i2stat`` entry of
``summary.mixmeta`` (Sera et al. 2019).  Both depend only on the fixed part of
the model: the outcomes :math:`y`, the study-level predictors :math:`X` and the
known within-study covariances :math:`S`.  Random effects play no part, so every
model fitted to the same data with the same fixed-effects formula has the same
Q, whatever its estimator or random-effects structure.

The statistics are computed by :func:`statsmodels_mixmeta.kernels.cochran.q_statistics`,
the batched GLS kernel at ``Psi = 0``; this module holds the result
container, I-squared and the two entry points: :func:`cochran_q` for arrays
of independent studies and :func:`model_q_test` for a model's own batches
(with ``addS`` too, where R's ``qtest`` has no per-outcome statistics: here
they use the variances on the diagonal of the group matrices).

Model and notation
------------------
Study :math:`i = 1, \\dots, m` reports :math:`k` outcomes :math:`y_i`, of which
the subset :math:`O_i` is observed, with known covariance :math:`S_i`.  With
study predictors :math:`x_i` (length :math:`p`, intercept included) the
multivariate fixed-effects model for the observed values is

.. math:: y_{i,O_i} = Z_i \\beta + \\varepsilon_i, \\qquad
          \\varepsilon_i \\sim N(0, S_{i,O_i O_i}),
          \\qquad Z_i = (I_k \\otimes x_i')_{O_i,\\cdot},

with outcome-major coefficients: :math:`\\beta_{(j)}`, the :math:`p`
coefficients of outcome :math:`j`, come before those of outcome :math:`j+1`.
The generalised-least-squares estimate :math:`\\hat\\beta` gives residuals
:math:`r_i = y_{i,O_i} - Z_i \\hat\\beta` and

.. math:: Q = \\sum_i r_i' S_{i,O_i O_i}^{-1} r_i, \\qquad
          \\mathrm{df} = N - k p,

where :math:`N = \\sum_i |O_i|` is the number of observed values.  Under
homogeneity :math:`Q \\sim \\chi^2_{\\mathrm{df}}`.

Per-outcome statistics (k > 1)
------------------------------
R adds one statistic per outcome :math:`j`.  These are *not* separate
univariate meta-analyses: they reuse the multivariate fit, with residuals
:math:`R = y - X \\hat B` (:math:`\\hat B` the :math:`p \\times k` matrix whose
column :math:`j` is :math:`\\hat\\beta_{(j)}`), scaled by the variances alone:

.. math:: Q_j = \\sum_{i=1}^m \\frac{R_{ij}^2}{S_{i,jj}}, \\qquad
          \\mathrm{df}_j = n_j - p,

with :math:`n_j` the number of studies reporting outcome :math:`j`.
R sums over *all* studies without removing missing values, so :math:`Q_j` (and
its p-value and I²) is NA as soon as one study lacks outcome :math:`j`, while
:math:`\\mathrm{df}_j` still counts the studies that report it.  This module
reproduces that behaviour, returning NaN.  It is R's rule, not a choice made
for statistical reasons: a meta-analysis with missing outcomes gets no
per-outcome Q.  Data sets in which missing outcomes are already filled in with
a zero estimate and a huge variance (as R's ``fibrinogen``) have nothing
missing, so their per-outcome Q is a number.

I-squared
---------
Higgins and Thompson's :math:`I^2 = \\max\\{0, (Q - \\mathrm{df}) / Q\\}`,
computed for every entry of the Q test.  It is returned as a *fraction*;
R's ``summary`` prints percent.

Missing data
------------
Rows are used as in R: a row with a missing predictor or with no observed
outcome is left out; a row with some outcomes observed contributes those.  The
within-study covariance is read only on the observed block; NaN elsewhere
(the rows and columns of missing outcomes) is expected.

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. *Statistics in Medicine* 38(29),
5429-5444.

Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine* 21(11), 1539-1558.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..design.core import study_arrays
from ..design.labels import label_list
from ..kernels import cochran, moments
from ..kernels.batches import study_batches

__all__ = ["QTestResult", "cochran_q", "model_q_test", "i_squared"]

#: Name of the overall (all outcomes together) entry.
OVERALL = "overall"


@dataclass(frozen=True)
class QTestResult:
    """
    Cochran's Q test of heterogeneity.

    Entries are the overall test first, then, when there is more than one
    outcome, one test per outcome (see the module docstring for R's rule).

    Attributes
    ----------
    statistic : ndarray
        Q statistics; NaN for an outcome missing in some study (R gives NA).
    df : ndarray of int
        Degrees of freedom.
    pvalue : ndarray
        Upper-tail chi-square probabilities, NaN where ``statistic`` is NaN.
    names : tuple of str
        ``("overall",)`` or ``("overall", <outcome names>...)``.
    """

    statistic: np.ndarray
    df: np.ndarray
    pvalue: np.ndarray
    names: tuple

    def summary_frame(self):
        """
        The test as a table, one row per entry.

        Returns
        -------
        pandas.DataFrame
            Index ``names``; columns ``statistic``, ``df``, ``pvalue`` and
            ``i_squared`` (a fraction, see :func:`i_squared`).
        """
        import pandas as pd

        return pd.DataFrame(
            {
                "statistic": self.statistic,
                "df": self.df,
                "pvalue": self.pvalue,
                "i_squared": i_squared(self),
            },
            index=pd.Index(self.names, name="test"),
        )


def _validate(y, X, within_cov):
    """Return float arrays y (m, k), X (m, p), within_cov (m, k, k)."""
    y, X, within_cov = study_arrays(y, X, within_cov)
    if y.ndim != 2 or X.ndim != 2:
        raise ValueError(
            f"y must be (m, k) and X (m, p); got shapes {y.shape} and {X.shape}"
        )
    m, k = y.shape
    if X.shape[0] != m or within_cov.shape != (m, k, k):
        raise ValueError(
            f"for y of shape {y.shape}, X must have {m} rows and within_cov "
            f"shape ({m}, {k}, {k}); got X {X.shape} and within_cov "
            f"{within_cov.shape}"
        )
    return y, X, within_cov


def _study_batches(y, X, within_cov, observed, row_index):
    """The rows used as batches of independent studies, checked."""
    k, p = y.shape[1], X.shape[1]
    pairs = observed[:, :, None] & observed[:, None, :]
    missing = (pairs & ~np.isfinite(within_cov)).any(axis=(1, 2))
    if missing.any():
        raise ValueError(
            f"within_cov has missing values in the block of observed outcomes "
            f"at rows {label_list(row_index[missing])}"
        )
    bad = moments.not_positive_definite(within_cov, observed)
    if bad.size:
        raise ValueError(
            f"within_cov is not positive definite on the observed outcomes at "
            f"rows {label_list(row_index[bad])}"
        )
    batches = study_batches(y, X, within_cov, observed)
    rank = np.linalg.matrix_rank(batches.long.X)
    if rank < k * p:
        raise ValueError(
            f"the fixed-effects design has rank {rank} < {k * p} coefficients "
            f"(k={k} outcomes x p={p} predictors); each outcome needs at least "
            f"p observed rows with linearly independent predictors"
        )
    return batches


def cochran_q(y, X, within_cov, outcome_names=None):
    """
    Cochran's Q test of heterogeneity, as R ``mixmeta::qtest``.

    Parameters
    ----------
    y : array_like, shape (m, k) or (m,)
        Outcomes, NaN where missing.
    X : array_like, shape (m, p) or (m,)
        Study-level predictors, including the intercept column.
    within_cov : array_like, shape (m, k, k), or (m,) when k = 1
        Known within-study covariances; only the block of observed outcomes
        is read (NaN elsewhere is fine).
    outcome_names : sequence of str, optional
        Names of the ``k`` outcomes; default ``y1, ..., yk`` as R.

    Returns
    -------
    QTestResult
        Overall test :math:`Q = \\sum_i r_i' S_i^{-1} r_i` with
        :math:`N - kp` degrees of freedom (residuals of the multivariate
        fixed-effects fit on the observed values), then for k > 1 one test per
        outcome, :math:`Q_j = \\sum_i R_{ij}^2 / S_{i,jj}` with the same
        residuals and :math:`n_j - p` degrees of freedom.  :math:`Q_j` is NaN
        when any used study lacks outcome j, as R (which sums without
        removing NA) reports NA there; see the module docstring.

    Raises
    ------
    ValueError
        If the shapes disagree, ``outcome_names`` has the wrong length, the
        observed block of ``within_cov`` has missing values or is not positive
        definite (the message names the input rows), ``X`` is collinear, or
        the coefficients are not estimable.

    Notes
    -----
    Rows with a missing predictor or no observed outcome are left out, as in
    R.  P-values are ``scipy.stats.chi2.sf(Q, df)``; R computes
    ``1 - pchisq(Q, df)``, which agrees to about 1e-16 and rounds tail
    probabilities below that to 0.

    Examples
    --------
    >>> y = [0.1, 0.3, 0.35]
    >>> X = [1.0, 1.0, 1.0]
    >>> q = cochran_q(y, X, [0.01, 0.02, 0.04])
    >>> round(float(q.statistic[0]), 10), int(q.df[0])  # 115/56
    (2.0535714286, 2)
    """
    y, X, within_cov = _validate(y, X, within_cov)
    k, p = y.shape[1], X.shape[1]
    if outcome_names is None:
        outcome_names = [f"y{j + 1}" for j in range(k)]
    outcome_names = tuple(str(name) for name in outcome_names)
    if len(outcome_names) != k:
        raise ValueError(
            f"outcome_names has {len(outcome_names)} names for k={k} outcomes"
        )
    used = np.all(np.isfinite(X), axis=1) & np.any(~np.isnan(y), axis=1)
    row_index = np.flatnonzero(used)  # for error messages
    y, X, within_cov = y[used], X[used], within_cov[used]
    observed = ~np.isnan(y)
    rank = np.linalg.matrix_rank(X) if X.size else 0
    if rank < p:
        raise ValueError(
            f"X has rank {rank} < {p} columns on the {X.shape[0]} rows used "
            f"(rows with a missing predictor or no outcome are left out); "
            f"drop collinear predictors"
        )
    batches = _study_batches(y, X, within_cov, observed, row_index)
    statistic, df = cochran.q_statistics(batches, moments.fixed_basis(batches),
                                         k, p)
    names = (OVERALL,) + (outcome_names if k > 1 else ())
    return QTestResult(statistic, df, stats.chi2.sf(statistic, df), names)


def model_q_test(batches, basis, outcome_names, n_terms):
    """
    The Q test of a model: its own batches (known covariances per row or
    per group, ``addS``) evaluated at ``Psi = 0``.  With ``addS`` R's
    ``qtest`` has no per-outcome statistics (it reads them off ``S``); here
    they come from the variances on the diagonal of the group matrices.
    """
    k = len(outcome_names)
    statistic, df = cochran.q_statistics(batches, basis, k, n_terms)
    names = (OVERALL,) + (tuple(outcome_names) if k > 1 else ())
    return QTestResult(statistic, df, stats.chi2.sf(statistic, df), names)


def i_squared(q):
    """
    Higgins and Thompson's I² for every entry of a Q test.

    .. math:: I^2 = \\max\\left\\{0, \\frac{Q - \\mathrm{df}}{Q}\\right\\}

    Parameters
    ----------
    q : QTestResult

    Returns
    -------
    ndarray
        I² as fractions (R's ``summary`` reports percent), NaN where ``Q`` is
        NaN.
    """
    statistic = np.asarray(q.statistic, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (statistic - q.df) / statistic
    return np.where(np.isnan(ratio), np.nan, np.maximum(ratio, 0.0))
