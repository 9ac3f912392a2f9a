r"""
Effect sizes of two groups with event counts ``x`` over person-time ``t``
(after any zero-count correction): the log incidence rate ratio (IRR) and
the incidence rate difference (IRD), with Poisson variances.

References
----------
Rothman, K. J., Greenland, S. & Lash, T. L. (2008). *Modern Epidemiology*,
3rd ed. Lippincott Williams & Wilkins (chapter 14, person-time data).
"""
from __future__ import annotations

import numpy as np


def log_rate_ratio(x1, t1, x2, t2):
    r"""
    Log incidence rate ratio and its variance.

    .. math::

        y = \log\frac{x_1 / t_1}{x_2 / t_2}, \qquad
        v = \frac1{x_1} + \frac1{x_2} .
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(x1 / t1) - np.log(x2 / t2), 1 / x1 + 1 / x2)


def rate_difference(x1, t1, x2, t2):
    r"""
    Incidence rate difference and its variance.

    .. math::

        y = \frac{x_1}{t_1} - \frac{x_2}{t_2}, \qquad
        v = \frac{x_1}{t_1^2} + \frac{x_2}{t_2^2} .
    """
    return x1 / t1 - x2 / t2, x1 / t1 ** 2 + x2 / t2 ** 2


MEASURES = {"IRR": log_rate_ratio, "IRD": rate_difference}
