"""
The pooled dose-response curve of a dose-response meta-analysis, with its
confidence band, optionally the studies' own curves and estimates.

The model is a formula fit of one outcome (a log relative risk against a
reference level) on terms of a dose variable, e.g. ``logrr ~ 0 + dose`` or a
spline ``logrr ~ 0 + bs(dose, ...)`` with ``addS`` from
``greenland_longnecker_addS`` (see the README's dose-response section).
What is drawn over a grid of doses ``d``:

* the pooled curve ``f(d) = x(d)' beta`` and its ``1 - alpha`` confidence
  band ``f(d) -+ q se(d)``, ``se(d)^2 = x(d)' V x(d)``, ``V`` the covariance
  of ``beta`` -- exactly ``results.get_prediction(grid)``'s ``mean`` and
  ``mean_ci_lower/upper`` (``q`` normal, or t with ``use_t``); ``x(d)`` are
  the formula's columns rebuilt at the new doses;
* with ``reference=d0``: the curve relative to the dose ``d0``,
  ``f(d) - f(d0) = (x(d) - x(d0))' beta`` with variance
  ``(x(d) - x(d0))' V (x(d) - x(d0))`` (for curves not already 0 there);
* with ``studies=True``: each study's curve from its BLUP,
  ``x(d)' (beta + b_i)`` over the study's own dose range (from the
  reference dose, when given; thin grey lines),
  and its reported estimates (grey dots), when the random effects are on the
  same terms as the fixed effects (``random="~ 0 + <same terms> | study"``);
* with ``exp=True``: everything on the ratio scale, ``exp(f)``.

Artists carry labels (``"pooled curve"``, ``"confidence band"``,
``"study curves"``, ``"observed"``, ``"reference dose"``).
"""
import numpy as np
import pandas as pd

from ._base import create_axes


def plot_dose_response(results, dose, grid=None, at=None, reference=None,
                       studies=False, alpha=0.05, exp=False, ax=None,
                       figsize=None):
    """
    Pooled dose-response curve with its confidence band; see the module
    docstring for what is drawn.

    Parameters
    ----------
    results : MixMetaResults
        A formula fit of one outcome on terms of ``dose``.
    dose : str
        The dose variable of the formula's data.
    grid : array_like, optional
        Doses to draw the curve at; by default 101 points from the smallest
        to the largest dose of the rows used (0 included when
        ``reference=0``).
    at : dict, optional
        Values of the formula's other variables (held fixed along the
        curve).
    reference : float, optional
        Draw the curve relative to this dose (and mark it).
    studies : bool
        Also draw each study's BLUP curve and reported estimates.
    alpha : float
        The band is ``1 - alpha``.
    exp : bool
        Draw ``exp`` of the curve (relative risks for log relative risks).
    ax : matplotlib Axes, optional
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a model without a formula, several outcomes, an unknown
        ``dose``, ``studies=True`` when the random effects are not on the
        fixed terms, or an ``ax`` that is not an Axes.
    """
    frame = _formula_frame(results, dose)
    if len(results.model.design.outcome_names) != 1:
        raise ValueError("plot_dose_response draws one outcome; the fit has "
                         f"{list(results.model.design.outcome_names)}")
    used = frame[dose].loc[results.model.design.row_labels].to_numpy(float)
    if grid is None:
        low = min(used.min(), reference) if reference is not None \
            else used.min()
        grid = np.linspace(low, used.max(), 101)
    grid = np.asarray(grid, dtype=float).ravel()
    new = _new_data(dose, grid, at)
    pred = results.get_prediction(new, alpha=alpha)
    table = pred.summary_frame()
    mean = table["mean"].to_numpy()
    lower, upper = (table["mean_ci_lower"].to_numpy(),
                    table["mean_ci_upper"].to_numpy())
    rows = np.asarray(pred.exog, dtype=float)
    ref_row = None
    if reference is not None:
        ref_row = np.asarray(results.get_prediction(
            _new_data(dose, [reference], at)).exog, dtype=float)[0]
        mean, lower, upper = _relative(results, rows - ref_row, table)
    fig, (axis,) = create_axes(ax, 1, figsize=figsize or (5.5, 4.0))
    tf = np.exp if exp else (lambda v: v)
    if studies:
        _draw_studies(axis, results, rows, ref_row, reference, grid, used,
                      tf)
    axis.fill_between(grid, tf(lower), tf(upper), color="tab:blue",
                      alpha=0.25, lw=0, label="confidence band")
    axis.plot(grid, tf(mean), color="tab:blue", lw=2, label="pooled curve")
    if reference is not None:
        axis.axvline(reference, color="0.5", ls=":", lw=1,
                     label="reference dose")
        axis.axhline(tf(0.0), color="0.5", lw=0.8, zorder=0)
    axis.set_xlabel(dose)
    outcome = results.model.design.outcome_names[0]
    axis.set_ylabel(f"exp({outcome})" if exp else outcome)
    if ax is None:
        fig.tight_layout()
    return fig


def _formula_frame(results, dose):
    frame = getattr(getattr(results.model, "data", None), "frame", None)
    if (not isinstance(frame, pd.DataFrame)
            or results.model.design.fixed_spec is None):
        raise ValueError("plot_dose_response needs a model fitted from a "
                         "formula and a data frame (the curve rebuilds the "
                         "formula's dose terms at new doses)")
    if dose not in frame:
        raise ValueError(f"dose={dose!r} is not a column of the model's "
                         f"data; columns: {sorted(map(str, frame.columns))}")
    return frame


def _new_data(dose, grid, at):
    columns = {dose: np.asarray(grid, dtype=float)}
    for name, value in (at or {}).items():
        columns[name] = [value] * len(columns[dose])
    return pd.DataFrame(columns)


def _relative(results, diff, table):
    """``f(d) - f(d0)`` and its band, with the prediction's quantile."""
    beta = np.asarray(results.params, dtype=float)
    cov = np.asarray(results.cov_params(), dtype=float)
    mean = diff @ beta
    se = np.sqrt(np.einsum("np,pq,nq->n", diff, cov, diff))
    # the quantile get_prediction used (normal, or t with use_t)
    q = ((table["mean_ci_upper"] - table["mean"]) / table["mean_se"]).dropna()
    q = float(q.iloc[0]) if len(q) else np.nan
    return mean, mean - q * se, mean + q * se


def _draw_studies(ax, results, rows, ref_row, reference, grid, used, tf):
    from matplotlib.collections import LineCollection
    effects = results.random_effects()
    names = list(results.model.design.param_names)
    if (isinstance(effects, dict) or effects.empty
            or list(effects.columns) != names):
        raise ValueError(
            "studies=True draws x(d)' (beta + b_i): the fit needs one "
            "grouping level whose random effects are on the fixed terms "
            f"(random='~ 0 + <the fixed terms> | study'); its random "
            f"effects are {getattr(effects, 'columns', list(effects))!r}")
    design = results.model.design
    study_of_row = design.levels.group_labels[:, 0]
    coef = np.asarray(results.params, dtype=float) + effects.to_numpy(float)
    base = rows if ref_row is None else rows - ref_row
    curves = base @ coef.T                                  # (grid, groups)
    lines = []
    for g, label in enumerate(effects.index):   # a loop to draw, not hot
        doses = used[study_of_row == label]
        low = doses.min() if reference is None else min(doses.min(),
                                                        reference)
        inside = (grid >= low) & (grid <= doses.max())
        lines.append(np.column_stack([grid[inside],
                                      tf(curves[inside, g])]))
    ax.add_collection(LineCollection(lines, colors="0.6", lw=0.8,
                                     label="study curves"))
    ax.plot(used, tf(design.endog[:, 0]), "o", color="0.5", ms=3,
            ls="none", label="observed")
