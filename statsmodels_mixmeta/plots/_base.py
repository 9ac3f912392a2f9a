"""
What every plot shares: the lazy matplotlib import (the optional ``plot``
extra) and the figure/axes handling (draw into the caller's ``ax`` or a new
figure; return the Figure, as statsmodels' ``CombineResults.plot_forest``
does).

The API, for the plot modules:

* :func:`import_pyplot` -> ``matplotlib.pyplot``, or an ImportError that
  names the extra;
* :func:`create_axes` ``(ax, n_panels, ...)`` -> ``(fig, [axes])``: the
  caller's axes (one ``Axes`` for one panel, a sequence of ``n_panels`` for
  several) or a new figure with ``n_panels`` side by side;
* :func:`normal_quantile` ``(alpha)`` -> ``z_{1 - alpha/2}``, with
  ``alpha`` checked.
"""
import numpy as np
from scipy import stats

EXTRA_HINT = ("pip install statsmodels-mixmeta[plot] (or pip install "
              "matplotlib)")


def import_pyplot():
    """
    ``matplotlib.pyplot``, imported when a plot is drawn.

    Raises
    ------
    ImportError
        Naming the ``plot`` extra, when matplotlib is not installed.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib, the optional 'plot' "
                          f"extra: {EXTRA_HINT}") from err
    return plt


def _is_axes(obj):
    from matplotlib.axes import Axes
    return isinstance(obj, Axes)


def create_axes(ax=None, n_panels=1, figsize=None, sharey=False,
                panel_size=(5.0, 4.0)):
    """
    The figure and the axes to draw ``n_panels`` panels into.

    Parameters
    ----------
    ax : matplotlib Axes or sequence of Axes, optional
        Where to draw: one ``Axes`` when ``n_panels == 1``, a sequence of
        exactly ``n_panels`` ``Axes`` (of one figure) otherwise.  ``None``
        creates a new figure with the panels side by side.
    n_panels : int
        Number of panels the plot needs.
    figsize : tuple, optional
        Size of a new figure in inches; the default is ``panel_size`` per
        panel.
    sharey : bool
        Panels of a new figure share their y axis.
    panel_size : tuple
        Width and height of one panel of a new figure.

    Returns
    -------
    fig : matplotlib Figure
    axes : list of Axes, ``n_panels`` long

    Raises
    ------
    ValueError
        When ``ax`` is not an Axes (or a sequence of ``n_panels`` Axes), or
        its axes belong to different figures.
    """
    plt = import_pyplot()
    n_panels = int(n_panels)
    if ax is None:
        if figsize is None:
            figsize = (panel_size[0] * n_panels, panel_size[1])
        fig, axes = plt.subplots(1, n_panels, figsize=figsize,
                                 sharey=sharey, squeeze=False)
        return fig, list(axes[0])
    if _is_axes(ax):
        axes = [ax]
    elif isinstance(ax, (list, tuple, np.ndarray)):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
    else:
        want = ("a matplotlib Axes" if n_panels == 1 else
                f"a sequence of {n_panels} matplotlib Axes (one per panel)")
        raise ValueError(f"ax must be {want} or None; got "
                         f"{type(ax).__name__}")
    bad = [i for i, a in enumerate(axes) if not _is_axes(a)]
    if bad:
        raise ValueError(f"ax must hold matplotlib Axes; items {bad} are "
                         f"{sorted({type(axes[i]).__name__ for i in bad})}")
    if len(axes) != n_panels:
        what = ("one Axes" if n_panels == 1 else
                f"a sequence of {n_panels} Axes, one per panel")
        raise ValueError(f"ax: this plot draws {n_panels} panel(s) and "
                         f"needs {what}; got {len(axes)} Axes")
    figures = {id(a.figure) for a in axes}
    if len(figures) != 1:
        raise ValueError("ax: the Axes must belong to one figure")
    return axes[0].figure, axes


def normal_quantile(alpha):
    """
    ``z_{1 - alpha/2}``, the normal quantile of a two-sided ``1 - alpha``
    interval.

    Raises
    ------
    ValueError
        Unless ``0 < alpha < 1``.
    """
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
    return stats.norm.ppf(1 - alpha / 2)
