r"""
The estimate and large-sample variance of one group (one arm) on the scale
of a contrast: the building blocks that ``escalc``'s two-group measures,
``escalc_correlated``'s per-group covariance parts and
``network_contrasts``' per-arm estimates all take differences of.

For ``x`` events and ``m`` non-events among ``n = x + m`` individuals
(``p = x / n``), and for a mean ``mu`` with standard deviation ``s``:

===============  ==========================  ==============================
function         estimate                    variance
===============  ==========================  ==============================
``log_odds``     :math:`\log(x / m)`         :math:`1/x + 1/m`
``log_risk``     :math:`\log p`              :math:`1/x - 1/n`
``risk``         :math:`p`                   :math:`p (1 - p) / n`
``mean``         :math:`\mu`                 :math:`s^2 / n`
``log_mean``     :math:`\log\mu`             :math:`s^2 / (n \mu^2)`
===============  ==========================  ==============================

(the delta-method variances of the log odds and log proportion of a
binomial count, the binomial variance of a proportion and the variance of a
sample mean; Agresti 2013, sections 1.3 and 3.1).  Independent groups give a
contrast :math:`y = \theta_1 - \theta_2` with variance :math:`v_1 + v_2`
(:func:`difference`).  Division by zero gives ``inf``/``nan`` without a
warning; the callers decide what that means.

References
----------
Agresti, A. (2013). *Categorical Data Analysis*, 3rd ed. Wiley.
"""
from __future__ import annotations

import numpy as np


def log_odds(events, non_events):
    """The log odds ``log(x / m)`` and its variance ``1/x + 1/m``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(events) - np.log(non_events),
                1 / events + 1 / non_events)


def log_risk(events, size):
    """The log proportion ``log(x / n)`` and its variance ``1/x - 1/n``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(events / size), 1 / events - 1 / size


def risk(events, size):
    """The proportion ``p = x / n`` and its variance ``p (1 - p) / n``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = events / size
        return p, p * (1 - p) / size


def mean(mean, sd, size):
    """A sample mean and its variance ``sd**2 / n``."""
    return np.asarray(mean, dtype=float), sd ** 2 / size


def log_mean(mean, sd, size):
    """The log of a positive mean and its variance ``sd**2 / (n mean**2)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(mean), sd ** 2 / (size * mean ** 2)


def difference(first, second):
    """``(y1 - y2, v1 + v2)``: the contrast of two independent groups."""
    (y1, v1), (y2, v2) = first, second
    return y1 - y2, v1 + v2


def non_events(values, events, part, total):
    """
    A group's non-events: ``values[part]`` when given (say ``bi``), else
    ``values[total] - values[events]`` (say ``n1i - ai``).
    """
    if part in values:
        return values[part]
    return values[total] - values[events]


def pooled_sd(sum_of_squares, df):
    r"""
    The pooled standard deviation
    :math:`s_p = \sqrt{\sum_j (n_j - 1) s_j^2 / \nu}`,
    :math:`\nu = \sum_j (n_j - 1)`, from the sum of squares
    :math:`\sum_j (n_j - 1) s_j^2` and the degrees of freedom :math:`\nu`.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(sum_of_squares / df)


#: The per-group estimate of each binary two-group measure, as a function
#: of the events, non-events and size of the group.
BINARY = {
    "OR": lambda events, non_events, size: log_odds(events, non_events),
    "RR": lambda events, non_events, size: log_risk(events, size),
    "RD": lambda events, non_events, size: risk(events, size),
}
