r"""
Effect sizes of two groups with a continuous outcome, from each group's
mean ``m``, standard deviation ``sd`` and size ``n``: the raw mean
difference (MD), the standardised mean difference with Hedges' exact bias
correction (SMD, Hedges' g) and the log ratio of means (ROM).  Each function
returns ``(yi, vi)`` with metafor's default large-sample variance
(``vtype="LS"``).

References
----------
Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect
size and related estimators. *Journal of Educational Statistics* 6, 107-128.

Hedges, L. V. (1982). Estimation of effect size from a series of independent
experiments. *Psychological Bulletin* 92, 490-499.

Hedges, L. V., Gurevitch, J. & Curtis, P. S. (1999). The meta-analysis of
response ratios in experimental ecology. *Ecology* 80, 1150-1156.
"""
from __future__ import annotations

import numpy as np
from scipy.special import poch

from . import groups


def hedges_correction(df):
    r"""
    Hedges' exact bias-correction factor of a standardised mean difference.

    .. math::

        c(m) = \frac{\Gamma(m/2)}{\sqrt{m/2}\;\Gamma\!\left((m-1)/2\right)},
        \qquad m = n_1 + n_2 - 2,

    computed as the Pochhammer ratio ``Gamma(x + 1/2) / Gamma(x)``,
    ``x = (m - 1) / 2`` (:func:`scipy.special.poch`), which neither
    overflows nor loses digits for large ``m`` (a difference of log-gammas
    loses about ``1e-11`` at ``m = 10^5``); ``c(m) \approx 1 - 3 / (4m - 1)``
    (Hedges, 1981).  Defined for ``m > 1``.
    """
    df = np.asarray(df, dtype=float)
    return poch((df - 1) / 2, 0.5) / np.sqrt(df / 2)


def mean_difference(m1, sd1, n1, m2, sd2, n2):
    r"""
    Raw mean difference and its variance (no equal-variance assumption).

    .. math::

        y = m_1 - m_2, \qquad v = \frac{s_1^2}{n_1} + \frac{s_2^2}{n_2} .
    """
    return groups.difference(groups.mean(m1, sd1, n1),
                             groups.mean(m2, sd2, n2))


def standardized_mean_difference(m1, sd1, n1, m2, sd2, n2):
    r"""
    Hedges' g and its large-sample variance (Hedges, 1982, eq. 8).

    .. math::

        s_p^2 = \frac{(n_1 - 1) s_1^2 + (n_2 - 1) s_2^2}{n_1 + n_2 - 2},
        \qquad g = c(n_1 + n_2 - 2)\, \frac{m_1 - m_2}{s_p},

        v = \frac1{n_1} + \frac1{n_2} + \frac{g^2}{2 (n_1 + n_2)} .
    """
    df = n1 + n2 - 2
    pooled_sd = groups.pooled_sd((n1 - 1) * sd1 ** 2 + (n2 - 1) * sd2 ** 2,
                                 df)
    g = hedges_correction(df) * (m1 - m2) / pooled_sd
    return g, 1 / n1 + 1 / n2 + g ** 2 / (2 * (n1 + n2))


def log_ratio_of_means(m1, sd1, n1, m2, sd2, n2):
    r"""
    Log ratio of means (response ratio) and its delta-method variance
    (Hedges et al., 1999, eq. 1); for positive (ratio-scale) means.

    .. math::

        y = \log\frac{m_1}{m_2}, \qquad
        v = \frac{s_1^2}{n_1 m_1^2} + \frac{s_2^2}{n_2 m_2^2} .
    """
    return groups.difference(groups.log_mean(m1, sd1, n1),
                             groups.log_mean(m2, sd2, n2))


MEASURES = {"MD": mean_difference, "SMD": standardized_mean_difference,
            "ROM": log_ratio_of_means}
