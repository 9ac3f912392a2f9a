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

from . import groups


def proportion(x, m):
    r"""
    Raw proportion and its binomial variance.

    .. math::

        y = p = \frac{x}{n}, \qquad v = \frac{p (1 - p)}{n} .
    """
    return groups.risk(x, x + m)


def logit_proportion(x, m):
    r"""
    Logit of a proportion (the log odds) and its delta-method variance.

    .. math::

        y = \log\frac{x}{m}, \qquad v = \frac1x + \frac1m .
    """
    return groups.log_odds(x, m)


MEASURES = {"PR": proportion, "PLO": logit_proportion}
