r"""
Per-arm summaries of a network's arm-level data: each arm's estimate on the
scale of the contrast (log odds, log risk, risk or mean) with its variance,
the checks of the arm values, and the continuity correction of studies with
zero cells.

For an arm with ``d`` events among ``n`` individuals (``p = d / n``):

========  ==========================  ===========================
measure   arm estimate                its variance
========  ==========================  ===========================
``OR``    :math:`\log\{d / (n - d)\}` :math:`1/d + 1/(n - d)`
``RR``    :math:`\log(d / n)`         :math:`1/d - 1/n`
``RD``    :math:`p`                   :math:`p (1 - p) / n`
``MD``    the arm's mean ``m``        :math:`s^2 / n`
``SMD``   :math:`J(\nu)\, m / s_p`    :math:`1 / n`
========  ==========================  ===========================

(the large-sample variances of the log odds, log proportion and proportion
of a binomial count, and of a sample mean with standard deviation ``s``).
The contrast of two arms of the same study is the difference of their
estimates: the log odds ratio, log risk ratio, risk difference or mean
difference of metafor's ``escalc`` (measures "OR", "RR", "RD", "MD").

For "SMD" the means are scaled by the standard deviation pooled over all
the study's arms, :math:`s_p^2 = \sum_j (n_j - 1) s_j^2 / \nu` with
:math:`\nu = \sum_j (n_j - 1)`, and Hedges' exact correction
:math:`J(\nu) = \Gamma(\nu/2) / \{\sqrt{\nu/2}\,\Gamma((\nu-1)/2)\}`;
the contrasts :math:`g_t` then have the large-sample covariances of
standardized mean differences sharing a control (Gleser & Olkin 2009),

.. math::

    \operatorname{cov}(g_t, g_u) = \frac{1}{n_r} + \frac{\delta_{tu}}{n_t}
        + \frac{g_t g_u}{2 N}, \qquad N = \sum_j n_j,

which for two arms is metafor's default variance of "SMD" (``vtype="LS"``);
some authors write the degrees of freedom :math:`\nu` for :math:`N`, the
same to first order.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

BINARY = ("OR", "RR", "RD")
CONTINUOUS = ("MD", "SMD")
MEASURES = BINARY + CONTINUOUS
ADD_TO = ("only0", "all", "if0all", "none")


def name_rows(labels, mask, limit=10):
    """The labels where ``mask`` holds, at most ``limit`` of them."""
    bad = [labels[i] for i in np.flatnonzero(mask)]
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{bad[:limit]}{more}"


def check_binary(events, n, labels):
    """
    Refuse negative counts, empty arms and more events than individuals,
    naming the rows (``labels``) at fault.
    """
    checks = [(events < 0, "negative events"),
              (n <= 0, "n not positive"),
              (events > n, "more events than n")]
    for mask, what in checks:
        if mask.any():
            raise ValueError(f"arm-level data: {what} in rows "
                             f"{name_rows(labels, mask)}; events must satisfy "
                             "0 <= events <= n with n > 0")


def check_continuous(sd, n, labels):
    """Refuse non-positive standard deviations and arm sizes."""
    for values, name in ((sd, "sd"), (n, "n")):
        mask = values <= 0
        if mask.any():
            raise ValueError(f"arm-level data: {name} not positive in rows "
                             f"{name_rows(labels, mask)}; {name} must be > 0")


def check_correction(add, to):
    """Refuse an unknown ``to`` and a negative or non-numeric ``add``."""
    if to not in ADD_TO:
        raise ValueError(f"to must be one of {list(ADD_TO)}, got {to!r}")
    if not (isinstance(add, (int, float, np.number)) and np.isfinite(add)
            and add >= 0):
        raise ValueError(f"add must be a number >= 0, got {add!r}")


def continuity_correction(events, n, study_codes, n_studies, add, to):
    r"""
    Add ``add`` to the events and the non-events of every arm of the
    studies chosen by ``to``.

    ``to="only0"`` (the default) corrects the studies in which some arm
    has no events or no non-events; ``"all"`` every study; ``"if0all"``
    every study if any study has a zero cell; ``"none"`` none.  This is
    the rule of netmeta's ``pairwise`` (``incr``, default 0.5, added to
    all arms of a study with a zero cell) and, for two arms, of metafor's
    ``escalc`` (``add=1/2, to="only0"``); an arm then has
    :math:`d + a` events among :math:`n + 2a` individuals.

    Returns
    -------
    events, n : ndarray
        The corrected counts (new arrays).
    corrected : ndarray of bool, ``(n_studies,)``
        The studies that were corrected.
    """
    check_correction(add, to)
    zero = (events == 0) | (events == n)
    has_zero = np.bincount(study_codes, weights=zero,
                           minlength=n_studies) > 0
    corrected = {"only0": has_zero,
                 "all": np.ones(n_studies, bool),
                 "if0all": np.full(n_studies, has_zero.any()),
                 "none": np.zeros(n_studies, bool)}[to]
    if add == 0:
        corrected = np.zeros(n_studies, bool)
    shift = np.where(corrected[study_codes], add, 0.0)
    return events + shift, n + 2 * shift, corrected


def binary_arms(events, n, measure):
    """Each arm's estimate and variance for a binary ``measure``."""
    p = events / n
    if measure == "OR":
        return np.log(events / (n - events)), 1 / events + 1 / (n - events)
    if measure == "RR":
        return np.log(p), 1 / events - 1 / n
    return p, p * (1 - p) / n


def continuous_arms(mean, sd, n):
    """Each arm's mean and its variance ``sd**2 / n``."""
    return np.asarray(mean, float), sd ** 2 / n


def pooled_arm(mean, sd, n, study_codes, n_studies):
    r"""
    The mean and standard deviation of all a study's arms together, the
    mean weighted by arm size and the standard deviation pooled,
    :math:`s^2 = \sum_j (n_j - 1) s_j^2 / \sum_j (n_j - 1)`: the values
    given to an augmented reference arm of a continuous measure.
    """
    weight = np.bincount(study_codes, weights=n, minlength=n_studies)
    pooled_mean = np.bincount(study_codes, weights=n * mean,
                              minlength=n_studies) / weight
    df = np.bincount(study_codes, weights=n - 1, minlength=n_studies)
    ss = np.bincount(study_codes, weights=(n - 1) * sd ** 2,
                     minlength=n_studies)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled_sd = np.sqrt(np.where(df > 0, ss / df, np.nan))
    # arms of one individual or fewer: the arms' mean sd instead
    mean_sd = np.bincount(study_codes, weights=sd, minlength=n_studies) / \
        np.bincount(study_codes, minlength=n_studies)
    return pooled_mean, np.where(df > 0, pooled_sd, mean_sd)


def hedges_j(df):
    """Hedges' exact small-sample correction ``J(df)`` (df > 1)."""
    return np.exp(gammaln(df / 2) - gammaln((df - 1) / 2)) / np.sqrt(df / 2)


def standardized_arms(mean, sd, n, study_codes, n_studies):
    r"""
    Each arm's mean scaled by ``J(nu) / s_p`` of its study and ``1 / n``,
    with each study's ``2 N`` (twice its total size), the pieces of the
    standardized mean differences and their covariances (see above).
    Studies with ``nu <= 1`` have no correction and get NaN.
    """
    _, pooled_sd = pooled_arm(mean, sd, n, study_codes, n_studies)
    df = np.bincount(study_codes, weights=n - 1, minlength=n_studies)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(df > 1, hedges_j(np.maximum(df, 1.5)), np.nan)
    est = mean * (scale / pooled_sd)[study_codes]
    total = np.bincount(study_codes, weights=n, minlength=n_studies)
    return est, 1 / n, 2 * total
