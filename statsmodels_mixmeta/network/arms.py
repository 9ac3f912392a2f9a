r"""
Per-arm summaries of a network's arm-level data: each arm's estimate on the
scale of the contrast (log odds, log risk, risk or mean) with its variance,
the checks of the arm values, and the continuity correction of studies with
zero cells.

An arm's estimate and variance are those of one group in
:mod:`~statsmodels_mixmeta.effectsize.groups`: the log odds ("OR"), log
proportion ("RR"), proportion ("RD") or mean ("MD"), so that the contrast of
two arms of a study, the difference of their estimates, is the log odds
ratio, log risk ratio, risk difference or mean difference of ``escalc``.

For "SMD" (arm estimate :math:`J(\nu)\, m / s_p`, "variance"
:math:`1 / n`) the means are scaled by the standard deviation pooled over all
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

from ..effectsize import groups, zero_cells
from ..effectsize.checks import above, below, not_above, row_list
from ..effectsize.continuous import hedges_correction

BINARY = tuple(groups.BINARY)
CONTINUOUS = ("MD", "SMD")
MEASURES = BINARY + CONTINUOUS


def check_binary(events, n, labels):
    """
    Refuse negative counts, empty arms and more events than individuals,
    naming the rows (``labels``) at fault.
    """
    checks = [(below(events, 0), "negative events"),
              (not_above(n, 0), "n not positive"),
              (above(events, n), "more events than n")]
    for mask, what in checks:
        if mask.any():
            raise ValueError(f"arm-level data: {what} in rows "
                             f"{row_list(labels, mask)}; events must satisfy "
                             "0 <= events <= n with n > 0")


def check_continuous(sd, n, labels):
    """Refuse non-positive standard deviations and arm sizes."""
    for values, name in ((sd, "sd"), (n, "n")):
        mask = not_above(values, 0)
        if mask.any():
            raise ValueError(f"arm-level data: {name} not positive in rows "
                             f"{row_list(labels, mask)}; {name} must be > 0")


def check_correction(add, to):
    """
    Refuse an unknown ``to`` and a negative or non-numeric ``add``;
    return ``add`` as a float.
    """
    if to not in zero_cells.TO_OPTIONS:
        raise ValueError(f"to must be one of {list(zero_cells.TO_OPTIONS)}, "
                         f"got {to!r}")
    if np.isnan(zero_cells.add_value(add)):
        raise ValueError(f"add must be a number >= 0, got {add!r}")
    return zero_cells.add_value(add)


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
    add = check_correction(add, to)
    zero = (events == 0) | (events == n)
    has_zero = np.bincount(study_codes, weights=zero,
                           minlength=n_studies) > 0
    corrected = zero_cells.selected(has_zero, to)
    if add == 0:
        corrected = np.zeros(n_studies, bool)
    shift = np.where(corrected[study_codes], add, 0.0)
    return events + shift, n + 2 * shift, corrected


def binary_arms(events, n, measure):
    """Each arm's estimate and variance for a binary ``measure``."""
    return groups.BINARY[measure](events, n - events, n)


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
    pooled_sd = np.where(df > 0, groups.pooled_sd(ss, df), np.nan)
    # arms of one individual or fewer: the arms' mean sd instead
    mean_sd = np.bincount(study_codes, weights=sd, minlength=n_studies) / \
        np.bincount(study_codes, minlength=n_studies)
    return pooled_mean, np.where(df > 0, pooled_sd, mean_sd)


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
        scale = np.where(df > 1, hedges_correction(np.maximum(df, 1.5)),
                         np.nan)
    est = mean * (scale / pooled_sd)[study_codes]
    total = np.bincount(study_codes, weights=n, minlength=n_studies)
    return est, 1 / n, 2 * total
