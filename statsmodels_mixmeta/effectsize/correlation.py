r"""
Effect sizes from correlation coefficients ``r`` of samples of size ``n``:
the raw correlation (COR) with its large-sample variance and Fisher's
z-transformation (ZCOR) with its variance-stabilised ``1 / (n - 3)``.

As in metafor, the variance is not given (NaN, with a warning from
:func:`~statsmodels_mixmeta.escalc`) for ``n <= 4``.

References
----------
Fisher, R. A. (1921). On the "probable error" of a coefficient of
correlation deduced from a small sample. *Metron* 1, 3-32.

Borenstein, M. (2009). Effect sizes for continuous data. In Cooper, Hedges
& Valentine (eds.), *The Handbook of Research Synthesis and Meta-Analysis*,
2nd ed., 221-235 (eq. 12.27).
"""
from __future__ import annotations

import numpy as np

MIN_N_FOR_VARIANCE = 5


def correlation(r, n):
    r"""
    Raw correlation and its large-sample variance.

    .. math::

        y = r, \qquad v = \frac{(1 - r^2)^2}{n - 1} .
    """
    return np.array(r, dtype=float), (1 - r ** 2) ** 2 / (n - 1)


def fisher_z(r, n):
    r"""
    Fisher's z-transformed correlation and its variance.

    .. math::

        y = \tfrac12 \log\frac{1 + r}{1 - r} = \operatorname{artanh} r,
        \qquad v = \frac1{n - 3} .
    """
    return np.arctanh(r), 1 / (n - 3)


MEASURES = {"COR": correlation, "ZCOR": fisher_z}
