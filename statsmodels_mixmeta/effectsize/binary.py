r"""
Effect sizes of two groups with a binary outcome, from the cells of each
study's 2x2 table (after any zero-cell correction):

==========  =========  =========  =====================
            events     no events  total
==========  =========  =========  =====================
group 1     ``a``      ``b``      ``n1 = a + b``
group 2     ``c``      ``d``      ``n2 = c + d``
==========  =========  =========  =====================

Each function takes the cells as arrays and returns ``(yi, vi)``, the effect
size and its large-sample variance; division by zero gives ``inf``/``nan``,
which :func:`~statsmodels_mixmeta.escalc` turns into NaN with a warning.

References
----------
Fleiss, J. L. & Berlin, J. A. (2009). Effect sizes for dichotomous data. In
Cooper, Hedges & Valentine (eds.), *The Handbook of Research Synthesis and
Meta-Analysis*, 2nd ed., 237-253.

Yusuf, S., Peto, R., Lewis, J., Collins, R. & Sleight, P. (1985). Beta
blockade during and after myocardial infarction. *Progress in Cardiovascular
Diseases* 27, 335-371.
"""
from __future__ import annotations

import numpy as np

from . import groups


def log_odds_ratio(a, b, c, d):
    r"""
    Log odds ratio and its Woolf variance.

    .. math::

        y = \log\frac{a d}{b c}, \qquad
        v = \frac1a + \frac1b + \frac1c + \frac1d .
    """
    return groups.difference(groups.log_odds(a, b), groups.log_odds(c, d))


def log_risk_ratio(a, b, c, d):
    r"""
    Log risk ratio and its delta-method variance.

    .. math::

        y = \log\frac{a / n_1}{c / n_2}, \qquad
        v = \frac1a - \frac1{n_1} + \frac1c - \frac1{n_2} .
    """
    return groups.difference(groups.log_risk(a, a + b),
                             groups.log_risk(c, c + d))


def risk_difference(a, b, c, d):
    r"""
    Risk difference and its large-sample (binomial) variance.

    .. math::

        y = p_1 - p_2, \quad p_1 = a / n_1,\ p_2 = c / n_2, \qquad
        v = \frac{p_1 (1 - p_1)}{n_1} + \frac{p_2 (1 - p_2)}{n_2} .
    """
    return groups.difference(groups.risk(a, a + b), groups.risk(c, c + d))


def peto_log_odds_ratio(a, b, c, d):
    r"""
    Peto's one-step log odds ratio, ``(O - E) / V``, with variance ``1 / V``.

    With ``N = n_1 + n_2`` and ``m = a + c`` events in all, the observed
    events of group 1 are ``O = a``; under no effect their hypergeometric
    mean and variance are

    .. math::

        E = \frac{m\, n_1}{N}, \qquad
        V = \frac{m (N - m)\, n_1 n_2}{N^2 (N - 1)},

    and ``y = (O - E) / V``, ``v = 1 / V`` (Yusuf et al., 1985).  A table
    with no events (or only events) has ``V = 0``: no estimate.
    """
    n1, n2 = a + b, c + d
    total = n1 + n2
    events = a + c
    expected = events * n1 / total
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (events * (total - events) * n1 * n2
                    / (total ** 2 * (total - 1)))
        yi = (a - expected) / variance
        vi = 1 / variance
    return yi, vi


MEASURES = {"OR": log_odds_ratio, "RR": log_risk_ratio,
            "RD": risk_difference, "PETO": peto_log_odds_ratio}
