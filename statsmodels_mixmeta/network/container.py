"""
The container of a network's contrasts: one row per study with the
contrasts of each non-reference treatment against the reference, their
within-study covariances and the study's design.
"""
from __future__ import annotations

import pandas as pd

from ..effectsize.multivariate import MultivariateEffects


class NetworkContrasts(MultivariateEffects):
    r"""
    Contrasts against a reference treatment, study by study.

    Parameters
    ----------
    y : DataFrame, ``(n, T - 1)``
        Columns ``y_<t>`` for the non-reference treatments ``t`` in
        ``treatments[1:]``, NaN where the study has no arm ``t``.
    S : ndarray, ``(n, T - 1, T - 1)``
        Within-study covariances of the contrasts (the shared reference arm
        gives the off-diagonal terms).
    design : Series of str
        Each study's design, the treatments it compares joined in the
        order of ``treatments`` (say ``"ACD"`` or ``"A:C:D"``).
    treatments : sequence of str
        All treatments, the reference first.
    reference : str
        The reference treatment (``treatments[0]``).
    augmented : Series of bool, optional
        Whether the study's reference arm was added by data augmentation.
    corrected : Series of bool, optional
        Whether the study's counts were corrected for zero cells.
    measure : str, optional
        The measure of the contrasts (say ``"OR"``).
    """

    def __init__(self, y, S, design, treatments, reference,
                 augmented=None, corrected=None, measure=None):
        treatments = [str(t) for t in treatments]
        if not treatments or treatments[0] != str(reference):
            raise ValueError("treatments must start with the reference "
                             f"{reference!r}, got {treatments}")
        info = pd.DataFrame({"design": pd.Series(design, index=y.index)})
        if augmented is not None:
            info["augmented"] = pd.Series(augmented, index=y.index)
        if corrected is not None:
            info["corrected"] = pd.Series(corrected, index=y.index)
        super().__init__(y, S, info=info, labels=treatments[1:])
        self.treatments = treatments
        self.reference = str(reference)
        self.measure = measure

    @property
    def design(self) -> pd.Series:
        """Each study's design."""
        return self.info["design"]
