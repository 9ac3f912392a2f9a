"""
The forest plot of a fitted meta-analysis: one row per study with its
estimate and confidence interval from the within-study variance, the pooled
estimate and the prediction interval of a new study, optionally the BLUP of
each study beside it; one panel per outcome; rows grouped by the outer level
of a multilevel model.

What is drawn, per panel (outcome ``j``), from the top:

* study ``i``: a square at ``y_ij`` and the line ``y_ij -+ z sqrt(S_i,jj)``,
  ``z = z_{1 - alpha/2}`` normal, as the study reported it; rows whose
  outcome ``j`` is missing are left out of the panel.  In a multilevel model
  the studies come under a header row per outer group (e.g. district).
* ``blup=True``: an open circle at the BLUP just below each study, with its
  ``1 - alpha`` prediction interval ``blup -+ q pi_se`` (metafor's; see
  ``results.blup(pi=True)``); in a multilevel model also a green diamond on
  each group's header row at the group's BLUP of the outer level alone
  (``results.blup(level=1)``, the group's mean effect) with its interval.
* an intercept-only model (``~ 1``): a diamond spanning the pooled
  estimate's confidence interval (``results.get_prediction``, so t-based
  with ``use_t``), a dashed vertical line at the estimate, and, for a
  random-effects fit, a row with the prediction interval of a new study's
  true effect (``obs_ci_lower/upper``: ``Psi`` of every level added).
* a meta-regression has no single pooled estimate: each study's fitted value
  ``x_i' beta`` is drawn as a grey diamond over its confidence interval on
  the study's row (as metafor's ``forest`` does), and no pooled row.

Artists carry labels (``"estimates"``, ``"study intervals"``, ``"BLUP"``,
``"BLUP intervals"``, ``"group BLUP"``, ``"group BLUP intervals"``,
``"pooled"``, ``"prediction interval"``,
``"fitted values"``) so that a legend, or a test, can find them.
"""
import numpy as np

from ._base import create_axes, normal_quantile
from ._studies import has_random_effects, outcome_columns, studies

DIAMOND = 0.3      # half-height of the pooled diamond (rows are 1 apart)
BLUP_OFFSET = 0.3  # the BLUP sits this far below its study


def plot_forest(results, ax=None, labels=None, outcome=None, blup=False,
                alpha=0.05, pi=None, refline=None, annotate=False,
                figsize=None):
    """
    Forest plot of a fitted meta-analysis; see the module docstring for
    what is drawn.

    Parameters
    ----------
    results : MixMetaResults
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes for one outcome panel; one Axes per panel for several.
        The default draws into a new figure.
    labels : sequence, Series or str, optional
        Study labels: one per row used in the fit, a Series indexed like the
        data, or the name of a column of the formula's data.  The default is
        the data's row labels.
    outcome : str or list of str, optional
        The outcome(s) to draw, one panel each; the default draws all.
    blup : bool
        Draw each study's BLUP with its prediction interval.
    alpha : float
        Intervals are ``1 - alpha``.
    pi : bool, optional
        Draw the prediction interval of a new study.  The default draws it
        for an intercept-only random-effects fit with random intercepts.
    refline : float, optional
        Draw a vertical reference line there (e.g. 0, no effect).
    annotate : bool
        Write each row's numbers right of the panel: ``estimate [lower,
        upper]`` for the studies and the pooled estimate, ``[lower, upper]``
        for the prediction interval (two decimals).
    figsize : tuple, optional
        Size of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For an unknown ``outcome``, ``labels`` that do not match the rows,
        an ``ax`` of the wrong kind or number, or ``pi=True`` where there is
        no prediction interval to draw (a fixed-effects fit, whose ``Psi``
        is 0; a meta-regression; random slopes).
    """
    st = studies(results, labels)
    cols = outcome_columns(st.outcomes, outcome)
    pi = _check_pi(results, st, pi)
    z = normal_quantile(alpha)
    pred = results.get_prediction(alpha=alpha)
    mean = np.asarray(pred.predicted, dtype=float)
    ci = [np.asarray(c, dtype=float) for c in pred.conf_int()]
    pi_limits = ([np.asarray(c, dtype=float) for c in pred.conf_int(obs=True)]
                 if pi else None)
    k = len(st.outcomes)
    blups = _blup_arrays(results, alpha, k) if blup else None
    outer_blups = (_blup_arrays(results, alpha, k, level=1)
                   if blup and st.groups is not None else None)
    rows = [_row_layout(st, j) for j in cols]
    if figsize is None and ax is None:
        height = max(len(r[0]) for r in rows) + (3 if st.intercept_only
                                                 else 0)
        figsize = (5.0 * len(cols), 1.2 + 0.28 * height)
    fig, axes = create_axes(ax, len(cols), figsize=figsize)
    for axis, j, (order, headers) in zip(axes, cols, rows):
        y, ticks = _draw_studies(axis, st, j, order, headers, z)
        if blups is not None:
            _draw_blups(axis, blups, j, order, y)
        if outer_blups is not None:
            _draw_outer_blups(axis, outer_blups, st.groups, j, order, headers)
        limits = (None if pi_limits is None else
                  (pi_limits[0][0, j], pi_limits[1][0, j]))
        if st.intercept_only:
            ticks += _draw_pooled(axis, results, y.min() - 2.0, mean[0, j],
                                  ci[0][0, j], ci[1][0, j], limits, alpha)
        else:
            _draw_fitted(axis, mean[order, j], ci[0][order, j],
                         ci[1][order, j], y)
        _set_rows(axis, ticks)
        if annotate:
            _annotate(axis, y, st.estimates[order, j],
                      z * np.sqrt(st.variances[order, j]),
                      (mean[0, j], ci[0][0, j], ci[1][0, j])
                      if st.intercept_only else None, limits)
        if refline is not None:
            axis.axvline(refline, color="0.5", lw=0.8, zorder=0,
                         label="reference")
        axis.set_xlabel(st.outcomes[j])
        if len(st.outcomes) > 1:
            axis.set_title(st.outcomes[j])
    if ax is None:
        fig.tight_layout()
    return fig


def _check_pi(results, st, pi):
    random = has_random_effects(results)
    slopes = any(not np.all(np.asarray(z) == 1)
                 for z in results.model.design.levels.random_exog)
    if pi is None:
        return random and st.intercept_only and not slopes
    if not pi:
        return False
    if not random:
        raise ValueError(
            "pi=True: a fixed-effects fit (method='fixed') has Psi = 0, so "
            "the prediction interval of a new study is the confidence "
            "interval of the pooled estimate; use pi=False, or fit a "
            "random-effects model (method='reml', 'ml', 'mm' or 'vc')")
    if not st.intercept_only:
        raise ValueError(
            "pi=True: a meta-regression has no single pooled estimate, so "
            "the forest plot draws each study's fitted value with its "
            "confidence interval and no pooled prediction interval; for "
            "prediction intervals at chosen covariates use "
            "results.get_prediction(exog).summary_frame()")
    if slopes:
        raise ValueError(
            "pi=True: with random slopes the prediction interval of a new "
            "study depends on its random predictors; use "
            "results.get_prediction(exog, exog_re=...).summary_frame()")
    return True


def _row_layout(st, j):
    """
    Rows of panel ``j`` that report the outcome, ordered by outer group
    (stable), and the header rows: a list of (position in the panel's row
    sequence, group label).
    """
    present = np.flatnonzero(~np.isnan(st.estimates[:, j]))
    if st.groups is None:
        return present, []
    groups = st.groups[present]
    keys = np.unique(groups)
    order, headers = [], []
    for g in keys:            # a loop over groups to lay out rows; not hot
        members = present[groups == g]
        headers.append((len(order) + len(headers), g))
        order.extend(members)
    return np.asarray(order, dtype=int), headers


def _draw_studies(ax, st, j, order, headers, z):
    """Studies from the top (y = -1, -2, ...); returns their y."""
    n_rows = len(order) + len(headers)
    header_at = {pos for pos, _ in headers}
    slots = [pos for pos in range(n_rows) if pos not in header_at]
    y = -1.0 - np.asarray(slots, dtype=float)
    est = st.estimates[order, j]
    half = z * np.sqrt(st.variances[order, j])
    ax.hlines(y, est - half, est + half, color="k", lw=1.0,
              label="study intervals")
    ax.plot(est, y, "s", color="k", ms=5, ls="none", label="estimates")
    ticks = [(yy, st.labels[i], False) for yy, i in zip(y, order)]
    ticks += [(-1.0 - pos, f"{st.group_name} {g}", True)
              for pos, g in headers]
    return y, ticks


def _set_rows(ax, ticks):
    """Row labels top-down; (y, text, bold) entries, bold for headers and
    pooled rows."""
    ticks = sorted(ticks, key=lambda t: -t[0])
    ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks])
    for text, (_, _, bold) in zip(ax.get_yticklabels(), ticks):
        if bold:
            text.set_fontweight("bold")
    ax.set_ylim(ticks[-1][0] - 0.8, ticks[0][0] + 0.8)


def _blup_arrays(results, alpha, k, level=None):
    frame = results.blup(level=level, pi=True, alpha=alpha)
    n = len(results.model.design.row_labels)
    return {c: frame[c].to_numpy(dtype=float).reshape(n, k)
            for c in ("blup", "pi_lower", "pi_upper")}


def _draw_blups(ax, blups, j, order, y):
    yb = y - BLUP_OFFSET
    ax.hlines(yb, blups["pi_lower"][order, j], blups["pi_upper"][order, j],
              color="tab:blue", lw=0.8, label="BLUP intervals")
    ax.plot(blups["blup"][order, j], yb, "o", mfc="white", mec="tab:blue",
            ms=4, ls="none", label="BLUP")


def _draw_outer_blups(ax, blups, groups, j, order, headers):
    """On each group's header row, the BLUP of the outer level alone (the
    group's mean effect) with its prediction interval."""
    first = [order[np.flatnonzero(groups[order] == g)[0]] for _, g in headers]
    y = -1.0 - np.asarray([pos for pos, _ in headers], dtype=float)
    ax.hlines(y, blups["pi_lower"][first, j], blups["pi_upper"][first, j],
              color="tab:green", lw=1.2, label="group BLUP intervals")
    ax.plot(blups["blup"][first, j], y, "D", color="tab:green", ms=5,
            ls="none", label="group BLUP")


def _draw_pooled(ax, results, y, est, lower, upper, pi_limits, alpha):
    """The pooled diamond at row ``y`` and the prediction interval below;
    returns their row labels."""
    from matplotlib.patches import Polygon
    ax.add_patch(Polygon([(lower, y), (est, y + DIAMOND), (upper, y),
                          (est, y - DIAMOND)], closed=True, color="k",
                         label="pooled"))
    ax.axvline(est, color="k", ls="--", lw=0.8, zorder=0,
               label="pooled estimate")
    ticks = [(y, f"Pooled ({results.method.upper()})", True)]
    if pi_limits is not None:
        ax.hlines(y - 1.0, *pi_limits, color="tab:red", lw=1.5,
                  label="prediction interval")
        ticks.append((y - 1.0, f"{100 * (1 - alpha):g}% prediction interval",
                      True))
    ax.update_datalim([(lower, y), (upper, y)])
    ax.autoscale_view()
    return ticks


def _annotate(ax, y, est, half, pooled, pi_limits):
    """Numbers right of the panel, on the rows' heights (axes x, data y);
    the pooled rows are 2 and 3 below the last study (see _draw_pooled)."""
    where = ax.get_yaxis_transform()
    rows = [(yy, f"{e:.2f} [{e - h:.2f}, {e + h:.2f}]")
            for yy, e, h in zip(y, est, half)]
    if pooled is not None:
        rows.append((y.min() - 2.0, "{:.2f} [{:.2f}, {:.2f}]".format(*pooled)))
    if pi_limits is not None:
        rows.append((y.min() - 3.0, "[{:.2f}, {:.2f}]".format(*pi_limits)))
    for yy, text in rows:       # one text per row, to draw
        ax.text(1.03, yy, text, transform=where, va="center", ha="left",
                fontsize="small", label="annotation")


def _draw_fitted(ax, mean, lower, upper, y):
    from matplotlib.collections import PolyCollection
    h = DIAMOND * 0.8
    shapes = [[(lo, yy), (m, yy + h), (hi, yy), (m, yy - h)]
              for m, lo, hi, yy in zip(mean, lower, upper, y)]
    ax.add_collection(PolyCollection(shapes, facecolor="0.6",
                                     edgecolor="0.4", alpha=0.6, zorder=1,
                                     label="fitted values"))
    ax.update_datalim([(np.min(lower), np.min(y)),
                       (np.max(upper), np.max(y))])
    ax.autoscale_view()
