"""
Profile log-likelihood plot: for each Psi parameter, the profile
(restricted) log-likelihood along a grid of its values (the other Psi
parameters re-optimised at each), its maximum, the ``chi2_1(1 - alpha)/2``
cut-off below it and the profile-likelihood interval where the curve
crosses the cut-off; one panel per parameter.

It draws what it is handed (plain arrays in dicts, as
``results.psi_intervals.profile_panels`` builds them) and imports no
results code.
"""
import math

import numpy as np

from ._base import create_axes

#: keys each panel must have
PANEL_KEYS = ("name", "value", "llf", "estimate", "llf_max", "cutoff",
              "lower", "upper")


def plot_profile(panels, ax=None, figsize=None):
    """
    Draw profile log-likelihoods, one panel per parameter.

    Parameters
    ----------
    panels : list of dict
        Each with ``name``; ``value`` and ``llf``, the profile along the
        grid; ``estimate`` and ``llf_max``, the maximum; ``cutoff``, the
        log-likelihood ``llf_max - chi2_1(1 - alpha)/2``; ``lower`` and
        ``upper``, the profile interval (an infinite bound is not drawn);
        optionally ``level`` (``1 - alpha``, for the legend).
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per panel; a new figure with the panels side by side by
        default.
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure
        Each panel holds, in order, the lines ``"profile"`` (the curve,
        markers at the grid), ``"cut-off"`` (horizontal) and
        ``"maximum"`` (one point), and a shaded span ``"interval"``.
    """
    if not panels:
        raise ValueError("plot_profile needs at least one panel; got none")
    for i, panel in enumerate(panels):
        missing = [key for key in PANEL_KEYS if key not in panel]
        if missing:
            raise ValueError(f"panel {i} lacks {missing}; each panel needs "
                             f"{list(PANEL_KEYS)}")
    fig, axes = create_axes(ax, len(panels), figsize=figsize)
    for axis, panel in zip(axes, panels):
        _draw(axis, panel)
    return fig


def _draw(axis, panel):
    value = np.asarray(panel["value"], dtype=float)
    llf = np.asarray(panel["llf"], dtype=float)
    order = np.argsort(value)
    axis.plot(value[order], llf[order], marker=".", color="C0",
              label="profile")
    level = panel.get("level")
    cut_label = "cut-off" if level is None else f"cut-off ({level:.0%})"
    axis.axhline(panel["cutoff"], color="C3", linestyle="--",
                 label=cut_label)
    axis.plot([panel["estimate"]], [panel["llf_max"]], marker="o",
              color="black", linestyle="none", label="maximum")
    lower, upper = float(panel["lower"]), float(panel["upper"])
    right = upper if math.isfinite(upper) else np.nanmax(value)
    axis.axvspan(lower, right, color="C0", alpha=0.12, label="interval")
    for bound in (lower, upper):
        if math.isfinite(bound):
            axis.axvline(bound, color="C0", linestyle=":", linewidth=1)
    # a profile that plunges (a variance near 0) would squash the rest:
    # show down to twice the cut-off's depth below the maximum
    depth = panel["llf_max"] - panel["cutoff"]
    finite = llf[np.isfinite(llf)]
    if finite.size and depth > 0:
        bottom = max(finite.min(), panel["cutoff"] - 2 * depth)
        axis.set_ylim(bottom - 0.05 * depth, panel["llf_max"] + 0.3 * depth)
    axis.set_xlabel(str(panel["name"]))
    axis.set_ylabel("profile log-likelihood")
    axis.set_title(str(panel["name"]))
    axis.legend(loc="best", fontsize="small")
