"""
The design of the design-by-treatment interaction model: which treatments
each study's design compares, which deviations from consistency the designs
identify, and the long format (one row per observed contrast) in which each
contrast gets its own fixed-effects columns.

The parameterisation.  Treatments ``A`` (the reference), ``B``, ... ; a
study of design ``d`` (the set of treatments it compares; with data
augmentation its outcomes are its contrasts ``y_t`` of every treatment
``t`` of ``d`` against ``A``).  Under consistency

.. math::  E[y_{it}] = \\delta_t \\qquad (\\delta_A = 0),

the basic parameters.  A design ``d`` with base ``b_d`` (its first treatment
in the network's order: ``A`` when ``d`` holds it) estimates the
``|d| - 1`` contrasts ``t - b_d``, ``t`` in ``d`` other than ``b_d``.  The
design-by-treatment interaction model (Higgins et al. 2012; White et al.
2012) lets each design have contrasts of its own,

.. math::  E[y_{it}] = \\delta_t + \\omega_{d t} \\quad (t \\ne b_d), \\qquad
           E[y_{i b_d}] = \\delta_{b_d},

so that design ``d``'s contrast ``t - b_d`` is
``delta_t - delta_{b_d} + omega_{dt}``.  The model has
``sum_d (|d| - 1)`` identified means, of which ``T - 1`` are the basic
parameters, so ``sum_d (|d| - 1) - (T - 1)`` deviations are identified (in a
connected network): the contrasts of a spanning set of design contrasts,
the *anchors*, get no deviation.  Anchors are chosen greedily among the
design contrasts, those against the reference first, then those of designs
with fewer arms and more studies: in a network with two-arm trials against
the reference those trials estimate the basic parameters and every other
design's deviations are measured from them (White et al.'s choice).  The
outcome ``b_d`` of a design without the reference (its augmented arm) has
no deviation: its mean is the basic parameter ``delta_{b_d}``.

Which contrasts are anchors changes neither the fit nor the global Wald
test when no study has an augmented reference arm (the columns span the
same space).  With augmented arms it changes them through the augmented
arms' information alone, which is negligible but not zero: on the smoking
network the statistic is 5.112 with the anchors above (p = 0.646, the
published value) and 5.100 when the anchors are the BC, BD and AD trials.

A study's contrasts share its reference arm, so they are correlated and
enter as one group with its known covariance (``addS``) and the random
effects of its contrasts (``Psi`` on the ``T - 1`` contrasts, as in a
MixMeta fit of the wide contrasts): the same model as the multivariate
meta-regression, written in the long format so that each contrast has its
own design columns.

References
----------
Higgins JPT, Jackson D, Barrett JK, Lu G, Ades AE, White IR. Consistency
and inconsistency in network meta-analysis: concepts and models for
multi-arm studies. Research Synthesis Methods 2012; 3: 98-110.

White IR, Barrett JK, Jackson D, Higgins JPT. Consistency and inconsistency
in network meta-analysis: model estimation using multivariate
meta-regression. Research Synthesis Methods 2012; 3: 111-125.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.labels import describe_rows


@dataclass(frozen=True)
class NetworkDesigns:
    """
    The designs of a network and the deviations they identify.

    Attributes
    ----------
    treatments : tuple of str
        All treatments, the reference first.
    designs : tuple of tuple of str
        The distinct designs, each its treatments in network order.
    names : tuple of str
        The designs' names: the label of their first study (``"acd"``).
    study_design : ndarray of int
        Each study's design, an index into ``designs``.
    anchors, deviations : tuple of (int, str)
        Design contrasts ``(design, t)`` (``t`` against the design's base)
        without and with a deviation from consistency.
    """

    treatments: tuple
    designs: tuple
    names: tuple
    study_design: np.ndarray
    anchors: tuple
    deviations: tuple

    @property
    def reference(self) -> str:
        """The reference treatment."""
        return self.treatments[0]

    @property
    def n_studies(self) -> np.ndarray:
        """Number of studies of each design."""
        return np.bincount(self.study_design, minlength=len(self.designs))

    def contrast_name(self, design, treatment):
        """``"ACD: D vs A"``: design ``design``'s contrast of
        ``treatment`` against its base."""
        return (f"{self.names[design]}: {treatment} vs "
                f"{self.designs[design][0]}")

    @property
    def deviation_names(self) -> list:
        """Names of the inconsistency coefficients, one per deviation."""
        return [self.contrast_name(d, t) for d, t in self.deviations]


def design_treatments(label, treatments):
    """
    The treatments a design label names, in network order, or None.

    A label joins treatment names with ``":"`` (``"A:C:D"``) or without a
    separator (``"ACD"``); names match ignoring case when that is
    unambiguous (``"acd"``).
    """
    text = str(label).strip()
    folded = {t.casefold() for t in treatments}
    fold = str.casefold if len(folded) == len(treatments) else str
    lookup = {fold(t): t for t in treatments}
    if ":" in text:
        found = [lookup.get(fold(part.strip())) for part in text.split(":")]
        if None in found:
            return None
    else:
        found = _segment(fold(text), lookup)
    if found is None or len(found) < 2 or len(set(found)) < len(found):
        return None
    order = {t: i for i, t in enumerate(treatments)}
    return tuple(sorted(found, key=order.get))


def _segment(text, lookup):
    """``text`` as a concatenation of names in ``lookup`` (longest names
    tried first), or None."""
    if not text:
        return []
    for name in sorted(lookup, key=len, reverse=True):
        if name and text.startswith(name):
            rest = _segment(text[len(name):], lookup)
            if rest is not None:
                return [lookup[name]] + rest
    return None


def network_designs(contrasts) -> NetworkDesigns:
    """
    Read and check the designs of a :class:`NetworkContrasts`.

    Each study's design label must name the treatments whose contrasts it
    observes (the reference too, unless its reference arm was added by
    augmentation), and the network must be connected.

    Raises
    ------
    ValueError
        Naming the rows whose labels cannot be read or do not match their
        observed contrasts, or the treatments not connected to the
        reference.
    """
    treatments = tuple(contrasts.treatments)
    labels = contrasts.design.astype(str).to_numpy()
    rows = contrasts.y.index.to_numpy()
    codes, uniques = pd.factorize(labels)
    parsed = [design_treatments(label, treatments) for label in uniques]
    unread = np.array([p is None for p in parsed], dtype=bool)[codes]
    if unread.any():
        raise ValueError(
            f"cannot read the design labels at {describe_rows(unread, rows)} "
            f"({sorted({str(v) for v in labels[unread]})}): a design joins "
            f"two or more of the treatments {list(treatments)}, say "
            f"'{''.join(treatments[:3])}' or '{':'.join(treatments[:3])}'")
    designed = np.array([[t in p for t in treatments[1:]] for p in parsed],
                        dtype=bool).reshape(len(parsed), -1)[codes]
    observed = ~np.isnan(contrasts.y.to_numpy(dtype=float))
    wrong = (designed != observed).any(axis=1)
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        seen = [c for c, o in zip(contrasts.outcomes, observed[first]) if o]
        raise ValueError(
            f"the design labels do not match the observed contrasts at "
            f"{describe_rows(wrong, rows)}: row {rows[first]} has design "
            f"{labels[first]!r} but observes {seen or 'no contrast'}; a "
            f"design names the treatments whose contrasts against the "
            f"reference {treatments[0]!r} the study observes")
    designs = sorted(set(parsed),
                     key=lambda d: [treatments.index(t) for t in d])
    code = {d: i for i, d in enumerate(designs)}
    study_design = np.array([code[p] for p in parsed], dtype=int)[codes]
    _check_connected(designs, treatments)
    first = {}
    for label, design in zip(uniques, parsed):   # labels in data order
        first.setdefault(design, str(label))
    names = tuple(first[d] for d in designs)
    anchors, deviations = _split_contrasts(
        designs, treatments, np.bincount(study_design,
                                         minlength=len(designs)))
    return NetworkDesigns(treatments, tuple(designs), names, study_design,
                          anchors, deviations)


def _check_connected(designs, treatments):
    """Refuse treatments that no chain of designs links to the
    reference."""
    reached = {treatments[0]}
    grew = True
    while grew:
        grew = False
        for design in designs:
            if reached.intersection(design) and not reached.issuperset(
                    design):
                reached.update(design)
                grew = True
    apart = [t for t in treatments if t not in reached]
    if apart:
        raise ValueError(
            f"the network is not connected: no design links the treatments "
            f"{apart} to the reference {treatments[0]!r}; analyse the "
            "connected parts separately")


def _split_contrasts(designs, treatments, n_studies):
    """
    Anchors (a spanning set of design contrasts, no deviation) and the
    identified deviations, each ``(design, t)`` with ``t`` against the
    design's base.
    """
    position = {t: i - 1 for i, t in enumerate(treatments)}  # reference -1
    rows = [(d, t) for d, design in enumerate(designs) for t in design[1:]]

    def vector(d, t):
        v = np.zeros(len(treatments) - 1)
        v[position[t]] = 1.0
        base = designs[d][0]
        if position[base] >= 0:
            v[position[base]] = -1.0
        return v

    preference = sorted(rows, key=lambda r: (
        designs[r[0]][0] != treatments[0], len(designs[r[0]]),
        -n_studies[r[0]], r[0], position[r[1]]))
    kept = []
    for row in preference:
        trial = np.array([vector(*r) for r in kept + [row]])
        if np.linalg.matrix_rank(trial) > len(kept):
            kept.append(row)
    anchors = tuple(r for r in rows if r in kept)
    deviations = tuple(r for r in rows if r not in kept)
    return anchors, deviations


def long_format(contrasts, designs, deviations=True):
    """
    The contrasts in the long format, one row per observed contrast.

    Returns
    -------
    dict
        ``endog`` (Series), ``exog`` (DataFrame: one indicator per basic
        parameter, named as the contrast columns, then with
        ``deviations`` one per identified deviation), ``groups`` (the
        study of each row), ``exog_re`` (the contrast indicators, one
        random effect per contrast) and ``addS`` (each study's known
        covariance of its observed contrasts, keyed by study): the
        arguments of :class:`~statsmodels_mixmeta.MixMeta`.
    """
    y = contrasts.y
    outcomes = contrasts.outcomes
    observed = ~np.isnan(y.to_numpy(dtype=float))
    study, outcome = np.nonzero(observed)
    studies = y.index.to_numpy()
    index = pd.Index([f"{studies[s]}:{outcomes[o]}"
                      for s, o in zip(study, outcome)])
    endog = pd.Series(y.to_numpy(dtype=float)[study, outcome], index=index,
                      name="contrast")
    indicators = np.eye(len(outcomes))[outcome]
    exog_re = pd.DataFrame(indicators, index=index, columns=outcomes)
    exog = exog_re.copy()
    if deviations:
        position = {t: i for i, t in enumerate(designs.treatments[1:])}
        row_design = designs.study_design[study]
        for d, t in designs.deviations:
            exog[designs.contrast_name(d, t)] = (
                (row_design == d) & (outcome == position[t])).astype(float)
    addS = {label: contrasts.S[i][np.ix_(observed[i], observed[i])]
            for i, label in enumerate(studies)}
    groups = pd.Series(studies[study], index=index, name="study")
    return dict(endog=endog, exog=exog, groups=groups, exog_re=exog_re,
                addS=addS)
