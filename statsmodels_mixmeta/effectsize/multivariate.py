"""
The container of several effect sizes per study with their within-study
covariance matrices: the ``y`` and ``S`` of a multivariate MixMeta model, as
arrays and as the named columns that a formula's ``S=`` takes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.covariance import vech


class MultivariateEffects:
    r"""
    Effect sizes ``y_i`` (k per study) and their covariances ``S_i``.

    Parameters
    ----------
    y : DataFrame, ``(n, k)``
        One column per outcome (NaN where a study does not report it),
        indexed like the data the effects were computed from.
    S : ndarray, ``(n, k, k)``
        The within-study covariance matrices, symmetric; rows and columns
        of a missing outcome are NaN.
    info : DataFrame, optional
        Further per-study columns on the same index (say a design label).
    labels : sequence of str, optional
        Short names of the outcomes used to name the covariance columns,
        ``S_<a>_<b>``; by default the columns of ``y``.

    Notes
    -----
    ``vech`` holds the lower triangles by column (R's ``vech``, the order
    that :func:`statsmodels_mixmeta.vech` and ``S=`` use), so that::

        smf.mixmeta(" + ".join(effects.outcomes) + " ~ 1",
                    data=effects.frame, S=effects.S_columns)

    fits the multivariate meta-analysis.
    """

    def __init__(self, y, S, info=None, labels=None):
        if not isinstance(y, pd.DataFrame):
            raise ValueError("y must be a DataFrame with one column per "
                             f"outcome, got {type(y).__name__}")
        S = np.asarray(S, dtype=float)
        n, k = y.shape
        if S.shape != (n, k, k):
            raise ValueError(f"S must have shape (n, k, k) = ({n}, {k}, "
                             f"{k}) to match y, got {S.shape}")
        labels = list(y.columns if labels is None else labels)
        if len(labels) != k:
            raise ValueError(f"labels must name the {k} outcomes, got "
                             f"{len(labels)}")
        if info is not None and not info.index.equals(y.index):
            raise ValueError("info must be indexed like y")
        self.y = y
        self.S = S
        self.info = info
        self.labels = labels

    @property
    def outcomes(self) -> list:
        """The names of the outcome columns of ``y``."""
        return [str(c) for c in self.y.columns]

    @property
    def S_columns(self) -> list:
        """Names of the covariance columns, lower triangle by column."""
        k = len(self.labels)
        return [f"S_{self.labels[j]}_{self.labels[i]}"
                for j in range(k) for i in range(j, k)]

    @property
    def vech(self) -> pd.DataFrame:
        """The covariances as columns, lower triangle by column."""
        return pd.DataFrame(vech(self.S), index=self.y.index,
                            columns=self.S_columns)

    @property
    def frame(self) -> pd.DataFrame:
        """``y``, the covariance columns and ``info``, side by side."""
        parts = [self.y, self.vech]
        if self.info is not None:
            parts.append(self.info)
        return pd.concat(parts, axis=1)

    def __repr__(self):
        n, k = self.y.shape
        return (f"<{type(self).__name__}: {n} studies, {k} outcomes "
                f"{self.outcomes}>")
