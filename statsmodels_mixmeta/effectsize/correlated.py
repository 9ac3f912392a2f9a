"""
Effect sizes of several outcomes measured on the same patients, with their
within-study covariance matrices by the delta method: log odds ratios, log
risk ratios and standardised mean differences, given the correlation of the
outcomes within patients (``smm.escalc_correlated``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..design.labels import describe_rows
from . import groups, zero_cells
from .continuous import standardized_mean_difference
from .correlated_inputs import (check_keys, check_means, differing_sizes,
                                outcome_specs, read_columns, table_cells)
from .correlated_rho import check_correlations, correlation_stack
from .multivariate import MultivariateEffects

MEASURES = ("OR", "RR", "SMD")


def escalc_correlated(measure, data=None, outcomes=None, rho=None, rho2=None,
                      names=None, add=0.5, to="only0", drop00=False):
    r"""
    Effect sizes of several outcomes on the same patients and their
    within-study covariance matrices.

    Parameters
    ----------
    measure : {"OR", "RR", "SMD"}
        Log odds ratio, log risk ratio, or standardised mean difference
        (Hedges' g with the exact bias correction), as in metafor's
        ``escalc``.
    data : DataFrame, optional
        The studies, one row each; strings in ``outcomes`` and ``rho`` name
        its columns.  It is not modified.
    outcomes : list of dict, or dict of dict
        One argument set per outcome, with metafor's names: ``ai, bi, ci,
        di`` or ``ai, n1i, ci, n2i`` (events and non-events or group sizes
        of group 1, then group 2) for "OR" and "RR"; ``m1i, sd1i, n1i, m2i,
        sd2i, n2i`` for "SMD".  Values are column names of ``data`` or
        arrays of one value per study; every outcome takes the same
        argument set.  A dict keyed by outcome name names the outcomes.
        NaN in an outcome's values makes that outcome missing for the study.
    rho : float, array_like or str
        The correlation of the outcomes within patients (see Notes for which
        correlation): a number (every pair of outcomes), a ``k x k``
        correlation matrix, a column name of ``data`` or an ``(n,)`` array
        (one number per study), or an ``(n, k, k)`` array (one matrix per
        study).  For "OR" and "RR" it applies to both groups unless
        ``rho2`` is given.  Off the diagonal ``|rho| < 1``; each matrix must
        be positive semi-definite on the outcomes the study reports, and
        may be NaN only for pairs of outcomes a study does not both report.
    rho2 : float, array_like or str, optional
        "OR" and "RR" only: the correlation in group 2 (``ci, di``) when it
        differs from group 1's ``rho``; the same forms as ``rho``.
    names : list of str, optional
        Names of the outcomes (columns of ``y``); ``y1, y2, ...`` by default.
    add, to, drop00 : optional
        metafor's zero-cell rule for "OR" and "RR", applied to each outcome's
        2x2 tables as ``escalc`` applies it: ``add`` (0.5) is added to the
        four cells of each table with a zero cell (``to="only0"``), of every
        table (``"all"``), of every table of an outcome when any of its tables
        has a zero cell (``"if0all"``), or of none (``"none"``; an infinite
        log ratio is then missing).  ``drop00=True`` makes an outcome missing
        where neither group has an event (or both have only events).

    Returns
    -------
    MultivariateEffects
        ``y``, an ``(n, k)`` DataFrame indexed like ``data``, and ``S``, the
        ``(n, k, k)`` covariance matrices (NaN rows and columns for missing
        outcomes); ``frame`` and ``S_columns`` give ``smf.mixmeta`` its
        ``data`` and ``S``.

    Warns
    -----
    UserWarning
        When a study's group sizes differ across its outcomes: the outcomes
        were then not all measured on the same patients, and the covariance
        (which assumes full overlap) is too large in size (see Notes).  And
        when a log ratio is infinite (a zero cell with ``to="none"``): the
        outcome is missing in that study.

    Raises
    ------
    ValueError
        Naming the outcome, argument, column and studies at fault: an
        unknown measure or argument set, outcomes with different argument
        sets, a column not in ``data``, negative counts, events above the
        group size, an empty group, ``sd <= 0``, ``n1i + n2i < 4`` ("SMD"),
        and correlations that are infinite, ``|rho| >= 1`` off the diagonal,
        missing for two outcomes a study reports, or not positive
        semi-definite on the outcomes a study reports.

    Notes
    -----
    *Binary outcomes* ("OR", "RR").  In group :math:`j` (1: ``ai, bi``; 2:
    ``ci, di``) of :math:`n_j` patients, outcome :math:`o` occurs with
    probability :math:`p_{oj}`, estimated by :math:`\hat p_{oj} =
    x_{oj}/n_j`.  ``rho`` (``rho2``) is :math:`\rho_j`, the correlation of
    the two binary indicators within a patient of group :math:`j` (the phi
    coefficient of the joint 2x2 table of outcomes A and B, :math:`(P(A
    \cap B) - p_A p_B)/\sqrt{p_A q_A p_B q_B}`), so that
    :math:`\operatorname{cov}(\hat p_{Aj}, \hat p_{Bj}) = \rho_j \sqrt{p_{Aj}
    q_{Aj} p_{Bj} q_{Bj}} / n_j`.  With :math:`g` the logit ("OR") or log
    ("RR"), the delta method gives :math:`\operatorname{cov}(g(\hat p_{Aj}),
    g(\hat p_{Bj})) = \rho_j \sqrt{u_{Aj} u_{Bj}}`, where :math:`u_{oj} =
    g'(p_{oj})^2 p_{oj} q_{oj} / n_j` is the group's part of the univariate
    variance (:math:`1/x + 1/(n_j - x)` for the logit, :math:`1/x - 1/n_j`
    for the log).  The groups are independent, so

    .. math::

        \operatorname{cov}(y_A, y_B) = \rho_1 \sqrt{u_{A1} u_{B1}}
            + \rho_2 \sqrt{u_{A2} u_{B2}},

    evaluated at the (zero-cell adjusted) counts; on the diagonal
    (:math:`\rho = 1`) it is the univariate variance, :math:`1/a + 1/b + 1/c
    + 1/d` ("OR") or :math:`1/a - 1/n_1 + 1/c - 1/n_2` ("RR").  This is the
    large-sample covariance of Wei and Higgins (2013, binary outcomes).

    The phi coefficient is bounded by the margins: :math:`\rho \le
    \sqrt{p_A q_B / (q_A p_B)}` for :math:`p_A \le p_B` (and a negative
    bound likewise), so a large ``rho`` with rare events overstates the
    covariance.  When a trial reports how many patients of each arm had
    both events, :func:`phi_coefficient` gives ``rho`` (or ``rho2``) from
    that joint table, one per study.

    *Standardised mean differences* ("SMD").  ``rho`` is the correlation of
    the two continuous outcomes within a patient, the same in both groups
    (as the pooled standard deviation assumes a common variance).  The mean
    differences then have covariance :math:`\rho \sigma_A \sigma_B (1/n_1 +
    1/n_2)`, and the pooled standard deviations (a Wishart matrix) have
    :math:`\operatorname{cov}(s_A, s_B) \approx \rho^2 \sigma_A \sigma_B /
    (2\nu)`; the delta method for :math:`d = D/s` gives the large-sample
    covariance of Gleser and Olkin (2009, eq. 19.19 for multiple-endpoint
    studies),

    .. math::

        \operatorname{cov}(g_A, g_B) = \rho \left(\frac{1}{n_1}
            + \frac{1}{n_2}\right) + \frac{\rho^2 g_A g_B}{2 (n_1 + n_2)},

    with :math:`\nu` replaced by :math:`n_1 + n_2` and the bias-corrected
    :math:`g = J(n_1 + n_2 - 2)\, d` in place of :math:`\delta`, exactly as
    metafor's default (``vtype="LS"``) variance :math:`1/n_1 + 1/n_2 +
    g^2/(2(n_1 + n_2))`, which is its diagonal (the factor :math:`J^2 = 1 -
    O(1/n)` of the exact covariance of the corrected estimates is dropped
    with the other terms of that order).

    *Different group sizes across outcomes.*  Both covariances are written
    with geometric means where outcomes' group sizes could differ
    (:math:`\sqrt{u_{Aj} u_{Bj}}`; :math:`\sqrt{(1/n_{1A} + 1/n_{2A})(1/n_{1B}
    + 1/n_{2B})}` and :math:`2\sqrt{N_A N_B}` for "SMD"), which equal the
    formulas above when the sizes agree.  When they differ (some patients
    lack one outcome) only the :math:`n_{AB}` patients with both outcomes
    contribute, :math:`\operatorname{cov}(\hat p_A, \hat p_B) = \rho
    \sqrt{p_A q_A p_B q_B}\, n_{AB} / (n_A n_B) \le \rho \sqrt{p_A q_A p_B
    q_B} / \sqrt{n_A n_B}`, so the covariance returned is an upper bound in
    size; a warning names the studies.

    In matrix form :math:`S = D_1 R_1 D_1 + D_2 R_2 D_2` (binary) and
    :math:`S = D_a R D_a + D_b (R \circ R) D_b` ("SMD") with diagonal
    :math:`D`'s, so :math:`S` is positive semi-definite whenever the
    correlation matrices are (Schur's product theorem).

    References
    ----------
    Gleser, L. J. and Olkin, I. (2009). Stochastically dependent effect
    sizes.  In H. Cooper, L. V. Hedges and J. C. Valentine (eds.), *The
    Handbook of Research Synthesis and Meta-Analysis*, 2nd ed., 357-376.
    Russell Sage Foundation.

    Wei, Y. and Higgins, J. P. T. (2013). Estimating within-study covariances
    in multivariate meta-analysis with multiple outcomes.  *Statistics in
    Medicine* 32, 1191-1205.

    Examples
    --------
    >>> import pandas as pd
    >>> import statsmodels_mixmeta as smm
    >>> trials = pd.DataFrame({"d1": [12, 8], "s1": [88, 92], "d0": [20, 15],
    ...                        "s0": [80, 85], "h1": [30, 25], "k1": [70, 75],
    ...                        "h0": [41, 33], "k0": [59, 67]})
    >>> eff = smm.escalc_correlated(
    ...     "OR", data=trials, rho=0.4, names=["death", "hosp"],
    ...     outcomes=[dict(ai="d1", bi="s1", ci="d0", di="s0"),
    ...               dict(ai="h1", bi="k1", ci="h0", di="k0")])
    >>> eff.S_columns
    ['S_death_death', 'S_death_hosp', 'S_hosp_hosp']
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got "
                         f"{measure!r} (escalc computes single outcomes)")
    if data is not None and not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a DataFrame, got "
                         f"{type(data).__name__}")
    if outcomes is None:
        raise ValueError("outcomes is required: one dict of arguments per "
                         "outcome")
    add, to = zero_cells.check_options(add, to)
    if measure == "SMD" and rho2 is not None:
        raise ValueError("rho2 applies to 'OR' and 'RR' only: for 'SMD' the "
                         "correlation is the same in both groups (give rho)")
    names, specs = outcome_specs(outcomes, names)
    check_keys(measure, set(specs[0]))
    columns, index = {}, None
    for name, spec in zip(names, specs):
        columns[name], this = read_columns(spec, name, data)
        if index is not None and len(this) != len(index):
            raise ValueError(f"outcome {name!r} has {len(this)} studies, "
                             f"outcome {names[0]!r} {len(index)}")
        index = this if index is None else index
    compute = _tables if measure != "SMD" else _means
    y, parts, sizes = compute(measure, columns, names, index, add, to, drop00)
    observed = np.isfinite(y) & np.isfinite(parts[0][0])
    n, k = y.shape
    correlations = [correlation_stack(rho, data, n, k, index)]
    if measure != "SMD":
        correlations.append(correlations[0] if rho2 is None else
                            correlation_stack(rho2, data, n, k, index, "rho2"))
    for label, stack in zip(("rho", "rho2"), correlations):
        check_correlations(stack, observed, index, label)
    _warn_on_sizes(sizes, observed, index)
    S = within_covariance(parts, correlations, observed)
    y = pd.DataFrame(np.where(observed, y, np.nan), index=index, columns=names)
    return MultivariateEffects(y, S)


def within_covariance(parts, correlations, observed):
    r"""
    :math:`S_i = \sum_m D_{im} R_{im} D_{im}` over the parts of the variance.

    Parameters
    ----------
    parts : list of (ndarray, int)
        ``(scale, power)``: ``scale`` ``(n, k)`` is the diagonal of
        :math:`D_m` and ``power`` says which correlation matrix the part
        takes, elementwise: ``R`` (1) or ``R \circ R`` (2).
    correlations : list of ndarray
        ``(n, k, k)`` correlation stacks; part ``m`` takes the ``m``-th, or
        the only one.
    observed : ndarray of bool, ``(n, k)``
        Rows and columns of unobserved outcomes are NaN.
    """
    both = observed[:, :, None] & observed[:, None, :]
    total = 0.0
    for m, (scale, power) in enumerate(parts):
        corr = correlations[min(m, len(correlations) - 1)]
        scale = np.where(observed, scale, 0.0)
        outer = scale[:, :, None] * scale[:, None, :]
        total = total + outer * np.where(both, corr, 0.0) ** power
    return np.where(both, total, np.nan)


def _tables(measure, columns, names, index, add, to, drop00):
    """Log ratios of 2x2 tables: ``y``, the two groups' parts, group sizes."""
    y, group1, group2, sizes1, sizes2, present = [], [], [], [], [], []
    for name in names:
        raw = table_cells(columns[name], name, index)
        sizes1.append(raw[0] + raw[1])
        sizes2.append(raw[2] + raw[3])
        a, b, c, d = zero_cells.adjust_tables(list(raw), add, to, drop00)
        present.append(~np.isnan(a + b + c + d))
        first = groups.BINARY[measure](a, b, a + b)
        second = groups.BINARY[measure](c, d, c + d)
        y.append(groups.difference(first, second)[0])
        group1.append(first[1])
        group2.append(second[1])
    y, u1, u2 = (np.column_stack(v) for v in (y, group1, group2))
    finite = np.isfinite(y) & np.isfinite(u1) & np.isfinite(u2)
    lost = ~finite & np.column_stack(present)
    for j in np.flatnonzero(lost.any(axis=0)):
        warnings.warn(
            f"outcome {names[j]!r}: the log ratio is infinite in "
            f"{describe_rows(lost[:, j], list(index))} (a zero cell with "
            f"to={to!r}); it is missing there", UserWarning, stacklevel=3)
    u1, u2 = np.where(finite, u1, np.nan), np.where(finite, u2, np.nan)
    parts = [(np.sqrt(u1), 1), (np.sqrt(u2), 1)]
    return (np.where(finite, y, np.nan), parts,
            (np.column_stack(sizes1), np.column_stack(sizes2)))


def _means(measure, columns, names, index, add, to, drop00):
    """Hedges' g: ``y``, the mean and scale parts, group sizes."""
    y, mean_part, scale_part, sizes1, sizes2 = [], [], [], [], []
    for name in names:
        v = columns[name]
        check_means(v, name, index)
        n1, n2 = v["n1i"], v["n2i"]
        g, _ = standardized_mean_difference(v["m1i"], v["sd1i"], n1,
                                            v["m2i"], v["sd2i"], n2)
        y.append(g)
        mean_part.append(np.sqrt(1 / n1 + 1 / n2))
        scale_part.append(g / np.sqrt(2 * (n1 + n2)))
        sizes1.append(n1)
        sizes2.append(n2)
    y = np.column_stack(y)
    parts = [(np.column_stack(mean_part), 1), (np.column_stack(scale_part), 2)]
    return y, parts, (np.column_stack(sizes1), np.column_stack(sizes2))


def _warn_on_sizes(sizes, observed, index):
    differ = np.zeros(len(index), dtype=bool)
    for size in sizes:
        differ |= differing_sizes(size, observed)
    if differ.any():
        warnings.warn(
            f"the group sizes of {describe_rows(differ, list(index))} differ "
            "across outcomes: not all patients report every outcome, so the "
            "covariances (which assume the same patients) are upper bounds "
            "in size", UserWarning, stacklevel=3)


def phi_coefficient(both, events_a, events_b, n):
    r"""
    The correlation of two binary outcomes within patients (the phi
    coefficient) from their joint 2x2 table in one group.

    Parameters
    ----------
    both, events_a, events_b, n : array_like
        Per study: patients with both events, with event A, with event B,
        and patients in the group.

    Returns
    -------
    ndarray
        :math:`(n x_{AB} - x_A x_B) / \sqrt{x_A (n - x_A) x_B (n - x_B)}`,
        to pass as ``rho`` (group 1) or ``rho2`` (group 2) of
        :func:`escalc_correlated`; NaN where an outcome has no events or
        only events.
    """
    both, events_a, events_b, n = (np.asarray(v, dtype=float)
                                   for v in (both, events_a, events_b, n))
    bad = ((both < 0) | (both > np.minimum(events_a, events_b))
           | (events_a + events_b - both > n) | (events_a < 0)
           | (events_b < 0))
    if np.any(bad):
        raise ValueError(
            f"phi_coefficient: the joint tables of "
            f"{describe_rows(np.atleast_1d(bad))} are impossible (need 0 <= "
            "both <= min(events_a, events_b) and events_a + events_b - both "
            "<= n)")
    spread = events_a * (n - events_a) * events_b * (n - events_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = (n * both - events_a * events_b) / np.sqrt(spread)
    return np.where(spread > 0, phi, np.nan)
