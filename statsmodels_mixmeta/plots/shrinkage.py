"""
The shrinkage plot: each study's observed estimate and its BLUP, joined by a
line, one panel per outcome.

Observed estimates ``y_ij`` sit on the upper row, the BLUPs
``x_i' beta + z_i' b_i`` (``results.blup(level)``) on the lower row; the
line from one to the other shows how far, and in which direction, the
random-effects model moves each study: toward the pooled estimate (a dashed
vertical line) for an intercept-only model, toward the study's fitted value
``x_i' beta`` (a grey cross on the lower row) for a meta-regression.  Noisy
studies (large ``S_i``) move most; crossing lines show a change of rank.

Artists carry labels (``"observed"``, ``"BLUP"``, ``"shrinkage"``,
``"pooled estimate"``, ``"fitted values"``) so that a legend, or a test, can
find them.
"""
import numpy as np

from ._base import create_axes
from ._studies import has_random_effects, outcome_columns, studies

OBSERVED_Y, BLUP_Y = 1.0, 0.0


def plot_shrinkage(results, ax=None, outcome=None, level=None,
                   figsize=None):
    """
    Shrinkage plot of a random-effects fit: observed estimates against
    BLUPs; see the module docstring for what is drawn.

    Parameters
    ----------
    results : MixMetaResults
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per outcome panel; a new figure by default.
    outcome : str or list of str, optional
        Outcomes to draw; all by default.
    level : int, optional
        BLUPs up to this grouping level (``results.blup(level)``); the
        innermost by default.
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a fixed-effects fit (no random effects: every BLUP is the fitted
        value), an unknown ``outcome`` or an ``ax`` of the wrong kind.
    """
    if not has_random_effects(results):
        raise ValueError(
            "plot_shrinkage: a fixed-effects fit (method='fixed') has no "
            "random effects, so every BLUP equals the fitted value and "
            "nothing is shrunk; fit a random-effects model (method='reml', "
            "'ml', 'mm' or 'vc')")
    st = studies(results)
    cols = outcome_columns(st.outcomes, outcome)
    blups = np.asarray(results.blup(level=level), dtype=float)
    fitted = np.asarray(results.predict(), dtype=float).reshape(blups.shape)
    if figsize is None and ax is None:
        figsize = (4.5 * len(cols), 3.2)
    fig, axes = create_axes(ax, len(cols), figsize=figsize)
    for axis, j in zip(axes, cols):
        rows = np.flatnonzero(~np.isnan(st.estimates[:, j]))
        _draw_panel(axis, st.estimates[rows, j], blups[rows, j],
                    fitted[rows, j], st.intercept_only)
        axis.set_xlabel(st.outcomes[j])
        if len(st.outcomes) > 1:
            axis.set_title(st.outcomes[j])
    if ax is None:
        fig.tight_layout()
    return fig


def _draw_panel(ax, observed, blup, fitted, intercept_only):
    from matplotlib.collections import LineCollection
    segments = np.stack([np.column_stack([observed,
                                          np.full_like(observed, OBSERVED_Y)]),
                         np.column_stack([blup,
                                          np.full_like(blup, BLUP_Y)])],
                        axis=1)
    ax.add_collection(LineCollection(segments, colors="0.4", lw=0.8,
                                     label="shrinkage"))
    ax.plot(observed, np.full_like(observed, OBSERVED_Y), "s", color="k",
            ms=5, ls="none", label="observed")
    ax.plot(blup, np.full_like(blup, BLUP_Y), "o", mfc="white",
            mec="tab:blue", ms=5, ls="none", label="BLUP")
    if intercept_only:
        ax.axvline(fitted[0], color="k", ls="--", lw=0.8, zorder=0,
                   label="pooled estimate")
    else:
        ax.plot(fitted, np.full_like(fitted, BLUP_Y), "x", color="0.5",
                ms=6, ls="none", label="fitted values")
    ax.set_yticks([OBSERVED_Y, BLUP_Y], ["observed", "BLUP"])
    ax.set_ylim(BLUP_Y - 0.25, OBSERVED_Y + 0.25)
    ax.autoscale_view()
