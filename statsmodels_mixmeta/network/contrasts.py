r"""
Contrasts against a reference treatment from arm-level data in long form
(one row per arm), with their within-study covariances: the ``y`` and ``S``
of a network meta-analysis, or of multi-arm trials sharing a control arm.

A study with arms :math:`t = 1, \dots, a` has per-arm estimates
:math:`\hat\theta_t` with variances :math:`v_t` (see
:mod:`~statsmodels_mixmeta.network.arms`).  Against its reference arm
:math:`r` the contrasts and their covariances are

.. math::

    y_t = \hat\theta_t - \hat\theta_r, \qquad
    \operatorname{var}(y_t) = v_t + v_r, \qquad
    \operatorname{cov}(y_t, y_u) = v_r \quad (t \ne u),

the arms being independent samples: the shared reference arm gives the
off-diagonal terms (Gleser & Olkin 2009; White et al. 2012).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..effectsize import checks, groups
from ..effectsize.checks import row_list
from . import arms
from .container import NetworkContrasts

DEFAULT_AUGMENT = {"binary": (0.001, 0.01), "continuous": 0.01}


def _column(data, name, what):
    if name is None:
        return None
    return checks.lookup(name, data, {
        checks.NOT_IN_DATA: f"{what}={{column!r}} is not a column of data; "
                            "the columns are {columns}"})[0]


def _numeric(column, name, labels):
    try:
        values = pd.to_numeric(column, errors="raise").to_numpy(float)
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} must hold numbers") from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"column {name!r} is missing or not finite in rows "
                         f"{row_list(labels, bad)}; drop those arms (or "
                         "give their values) first")
    return values


def _arm_columns(measure, events, n, mean, sd):
    """The value columns ``measure`` needs, by argument name."""
    if measure not in arms.MEASURES:
        raise ValueError(f"measure must be one of {list(arms.MEASURES)}, "
                         f"got {measure!r}")
    needed = ({"events": events, "n": n} if measure in arms.BINARY
              else {"mean": mean, "sd": sd, "n": n})
    missing = [key for key, value in needed.items() if value is None]
    if missing:
        raise ValueError(f"measure {measure!r} needs the column names "
                         f"{list(needed)}; {missing} not given")
    return needed


def _study_structure(data, study, treatment, reference):
    """Study codes, treatment codes, the treatments (reference first)."""
    labels = list(data.index)
    studies = _column(data, study, "study")
    treats = _column(data, treatment, "treatment")
    for column, name in ((studies, study), (treats, treatment)):
        missing = column.isna().to_numpy()
        if missing.any():
            raise ValueError(f"column {name!r} is missing in rows "
                             f"{row_list(labels, missing)}")
    names = _sorted_labels(treats)
    treats = treats.astype(str)
    dup = pd.DataFrame({"s": studies.to_numpy(), "t": treats.to_numpy()}
                       ).duplicated(keep=False).to_numpy()
    if dup.any():
        raise ValueError(f"rows {row_list(labels, dup)} repeat a "
                         "(study, treatment) pair; each study has one row "
                         "per arm")
    if str(reference) not in names:
        raise ValueError(f"reference {reference!r} is not a treatment of "
                         f"the data; the treatments are {names}")
    treatments = [str(reference)] + [t for t in names if t != str(reference)]
    try:
        study_codes, study_labels = pd.factorize(studies, sort=True)
    except TypeError:        # labels that do not sort: order of appearance
        study_codes, study_labels = pd.factorize(studies, sort=False)
    treat_codes = pd.Index(treatments).get_indexer(treats)
    n_arms = np.bincount(study_codes, minlength=len(study_labels))
    if (n_arms < 2).any():
        one = [study_labels[i] for i in np.flatnonzero(n_arms < 2)]
        raise ValueError(f"studies {one} have a single arm; each study "
                         "needs at least two arms to give a contrast")
    index = pd.Index(study_labels, name=study)
    return study_codes, treat_codes, treatments, index


def _sorted_labels(values):
    """Distinct labels as strings, sorted as values (else as strings)."""
    unique = pd.unique(values)
    try:
        unique = sorted(unique)
    except TypeError:
        unique = sorted(unique, key=str)
    return [str(v) for v in unique]


def _augment_values(augment, kind):
    if augment is None:
        return DEFAULT_AUGMENT[kind]
    if kind == "binary":
        try:
            events, size = (float(v) for v in augment)
        except (TypeError, ValueError):
            events = size = np.nan
        if not (np.isfinite(size) and 0 < events < size):
            raise ValueError("augment must be a pair (events, n) with 0 < "
                             f"events < n, got {augment!r}")
        return events, size
    try:
        size = float(augment)
    except (TypeError, ValueError):
        size = np.nan
    if not (np.isfinite(size) and size > 0):
        raise ValueError("augment must be a number of individuals > 0 for "
                         f"a continuous measure, got {augment!r}")
    return size


def _arm_estimates(values, measure, codes, n_studies, add, to):
    """Per-arm estimates and variances; the studies corrected for zeros."""
    if measure in arms.BINARY:
        events, size, corrected = arms.continuity_correction(
            values["events"], values["n"], codes, n_studies, add, to)
        with np.errstate(divide="ignore", invalid="ignore"):
            est, var = arms.binary_arms(events, size, measure)
        return est, var, corrected, None
    corrected = np.zeros(n_studies, bool)
    if measure == "SMD":
        est, var, two_n = arms.standardized_arms(
            values["mean"], values["sd"], values["n"], codes, n_studies)
        return est, var, corrected, two_n
    est, var = groups.mean(values["mean"], values["sd"], values["n"])
    return est, var, corrected, None


def _augmented_arm(values, measure, augment, codes, n_studies):
    """The reference arm added to every study (used where it lacks one)."""
    if measure in arms.BINARY:
        events, size = augment
        est, var = arms.binary_arms(np.array([events]), np.array([size]),
                                    measure)
        return np.full(n_studies, est[0]), np.full(n_studies, var[0])
    mean, sd = arms.pooled_arm(values["mean"], values["sd"], values["n"],
                               codes, n_studies)
    return groups.mean(mean, sd, np.full(n_studies, augment))


def _contrasts(est, var):
    """``y`` and ``S`` from per-study arm estimates, reference first."""
    observed = ~np.isnan(est[:, 1:])
    y = est[:, 1:] - est[:, :1]
    k = y.shape[1]
    both = observed[:, :, None] & observed[:, None, :]
    cov = var[:, :1, None] + np.eye(k) * var[:, 1:, None]
    S = np.where(both, cov, np.nan)
    return y, S


def _designs(present, treatments):
    sep = "" if all(len(t) == 1 for t in treatments) else ":"
    names = np.array(treatments, dtype=object)
    return [sep.join(names[row]) for row in present]


def network_contrasts(data, study, treatment, reference, measure="OR",
                      events=None, n=None, mean=None, sd=None, augment=None,
                      add=0.5, to="only0"):
    r"""
    Contrasts of every treatment against a reference, study by study,
    with their within-study covariances, from arm-level data.

    Parameters
    ----------
    data : DataFrame
        Arm-level data in long form: one row per arm of each study.
    study, treatment : str
        The columns naming each arm's study and treatment.
    reference : str
        The reference treatment; contrasts are ``t`` minus ``reference``.
    measure : {"OR", "RR", "RD", "MD", "SMD"}
        Log odds ratio, log risk ratio, risk difference (binary data:
        ``events`` and ``n``), mean difference or standardized mean
        difference (Hedges' g; continuous data: ``mean``, ``sd`` and
        ``n``); the formulas are in :mod:`~statsmodels_mixmeta.network.arms`.
    events, n, mean, sd : str
        The columns of each arm's events, size, mean and standard
        deviation.  Counts need not be integers.
    augment : tuple, number, None or False
        The reference arm given to a study that has none.  For a binary
        measure ``(events, n)``, by default ``(0.001, 0.01)``; for a
        continuous measure the arm size ``n``, by default 0.01, the arm's
        mean and standard deviation being those of the study's arms pooled
        ("SMD" augments no study).  ``False`` refuses studies without the
        reference arm instead.
    add : float
        Added to the events and the non-events of every arm of the studies
        that ``to`` selects, before any augmentation (binary measures).
    to : {"only0", "all", "if0all", "none"}
        The studies corrected: those with an arm that has no events or no
        non-events (``"only0"``), all, all if any has a zero cell, none.

    Returns
    -------
    NetworkContrasts
        One row per study (indexed by ``study``, sorted as ``groupby``
        sorts) with ``y_<t>`` for each non-reference treatment, sorted
        (as values, or as strings if they do not sort; NaN where the
        study has no arm ``t``), ``S`` and its vech columns
        ``S_<t>_<u>``, the study's ``design`` (the treatments of its own
        arms, joined without a separator when every treatment is one
        character long, else with ``":"``), ``augmented`` and
        ``corrected`` (continuity correction applied).

    Notes
    -----
    **Augmentation.**  A study without the reference arm gets one that
    carries almost no information: 0.001 events among 0.01 individuals
    for binary data, the rule of White et al. (2012) used for the smoking
    network by Sera et al. (2019).  Its variance (about
    1111 for the log odds) makes the contrasts against it nearly
    uninformative about the reference, while their differences keep the
    study's comparisons of its own arms.  For continuous data the added
    arm has the pooled mean and standard deviation of the study's arms
    and ``augment`` individuals; the fit hardly depends on its mean, a
    shift common to all the study's contrasts that their large shared
    variance absorbs.  Choosing a different reference in each study
    (each study's contrasts against its own first arm, as netmeta does)
    is an alternative this function leaves to the user.

    **Zero cells.**  With ``to="only0"`` and ``add=0.5`` (the defaults)
    every arm of a study in which some arm has zero events or zero
    non-events gets 0.5 added to both, netmeta's ``pairwise`` default
    (``incr=0.5``; metafor's ``escalc`` ``add=1/2, to="only0"`` for two
    arms).  Studies with no events in any arm are kept, with the
    correction (netmeta's ``allstudies=TRUE``; metafor's
    ``drop00=FALSE``); drop them from ``data`` first to leave them out.

    References
    ----------
    Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
    mixed-effects framework for meta-analysis. Statistics in Medicine
    38:5429-5444.

    White IR, Barrett JK, Jackson D, Higgins JPT (2012). Consistency and
    inconsistency in network meta-analysis: model estimation using
    multivariate meta-regression. Research Synthesis Methods 3:111-125.

    Gleser LJ, Olkin I (2009). Stochastically dependent effect sizes. In
    The Handbook of Research Synthesis and Meta-Analysis, 2nd ed.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError("data must be a DataFrame with one row per arm, "
                         f"got {type(data).__name__}")
    columns = _arm_columns(measure, events, n, mean, sd)
    arms.check_correction(add, to)
    for key, name in columns.items():
        _column(data, name, key)
    kind = "binary" if measure in arms.BINARY else "continuous"
    if augment is not False:
        augment = _augment_values(augment, kind)
    codes, tcodes, treatments, index = _study_structure(
        data, study, treatment, reference)
    labels = list(data.index)
    values = {key: _numeric(data[name], name, labels)
              for key, name in columns.items()}
    if kind == "binary":
        arms.check_binary(values["events"], values["n"], labels)
    else:
        arms.check_continuous(values["sd"], values["n"], labels)
    n_studies, n_treat = len(index), len(treatments)
    est_arm, var_arm, corrected, two_n = _arm_estimates(
        values, measure, codes, n_studies, add, to)
    _check_finite(est_arm, var_arm, codes, index, measure)
    est = np.full((n_studies, n_treat), np.nan)
    var = np.full((n_studies, n_treat), np.nan)
    est[codes, tcodes] = est_arm
    var[codes, tcodes] = var_arm
    present = ~np.isnan(est)
    lacking = ~present[:, 0]
    if lacking.any():
        if measure == "SMD" and augment is not False:
            raise ValueError(f"studies {list(index[lacking])} have no arm of "
                             f"the reference {reference!r}, and 'SMD' "
                             "cannot augment one (its standard deviation "
                             "would scale the study); use 'MD' or a "
                             "reference that every study includes")
        if augment is False:
            raise ValueError(f"studies {list(index[lacking])} have no arm of "
                             f"the reference {reference!r}; every study "
                             "must include it (or allow augmentation)")
        ref_est, ref_var = _augmented_arm(values, measure, augment, codes,
                                          n_studies)
        est[lacking, 0] = ref_est[lacking]
        var[lacking, 0] = ref_var[lacking]
    y, S = _contrasts(est, var)
    if two_n is not None:
        S = S + y[:, :, None] * y[:, None, :] / two_n[:, None, None]
    y = pd.DataFrame(y, index=index,
                     columns=[f"y_{t}" for t in treatments[1:]])
    net = NetworkContrasts(y, S, design=_designs(present, treatments),
                           treatments=treatments, reference=reference,
                           augmented=lacking, corrected=corrected,
                           measure=measure)
    return net


def _check_finite(est_arm, var_arm, codes, index, measure):
    if measure == "SMD":
        bad = ~np.isfinite(est_arm)
        if bad.any():
            studies = list(index[np.unique(codes[bad])])
            raise ValueError(f"studies {studies} have too few individuals "
                             "for 'SMD': the pooled degrees of freedom, "
                             "the sum of n - 1 over the arms, must exceed 1")
        return
    bad = ~np.isfinite(var_arm)
    if measure in ("OR", "RR"):
        bad |= var_arm <= 0
    if bad.any():
        studies = list(index[np.unique(codes[bad])])
        raise ValueError(f"studies {studies} have arms with zero events or "
                         f"zero non-events, where {measure!r} is not "
                         "defined; correct them with add > 0 and to="
                         "'only0' (the default) or drop them")


def multiarm_contrasts(data, study, treatment, control, measure="OR",
                       **columns):
    r"""
    Contrasts of each arm of multi-arm trials against their shared
    control arm, with their within-study covariances.

    The same computation as :func:`network_contrasts` with
    ``reference=control`` and no augmentation: every study must include
    the control arm, and a study without one is an error naming it.
    The covariance of two contrasts of the same trial is the variance of
    the control arm's estimate.

    Parameters
    ----------
    data, study, treatment, measure
        As for :func:`network_contrasts`.
    control : str
        The treatment of the shared control arm.
    **columns
        ``events``, ``n``, ``mean``, ``sd``, ``add`` and ``to``, as for
        :func:`network_contrasts`.

    Returns
    -------
    NetworkContrasts
    """
    if "augment" in columns:
        raise ValueError("multiarm_contrasts takes no augment: every study "
                         "must include the control arm (use "
                         "network_contrasts to augment)")
    return network_contrasts(data, study, treatment, control,
                             measure=measure, augment=False, **columns)
