r"""
Effect sizes of single groups with a binary outcome, from the number of
events ``x`` and non-events ``m`` (``n = x + m``, after any zero-cell
correction): the raw proportion (PR) and its logit (PLO), with metafor's
default large-sample variances.

References
----------
Agresti, A. (2013). *Categorical Data Analysis*, 3rd ed. Wiley (sections
1.3 and 3.1: the binomial proportion and the delta method for the logit).
"""
from __future__ import annotations

import numpy as np


def proportion(x, m):
    r"""
    Raw proportion and its binomial variance.

    .. math::

        y = p = \frac{x}{n}, \qquad v = \frac{p (1 - p)}{n} .
    """
    n = x + m
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        return p, p * (1 - p) / n


def logit_proportion(x, m):
    r"""
    Logit of a proportion (the log odds) and its delta-method variance.

    .. math::

        y = \log\frac{x}{m}, \qquad v = \frac1x + \frac1m .
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x) - np.log(m), 1 / x + 1 / m


MEASURES = {"PR": proportion, "PLO": logit_proportion}
