"""Locate and read the example data sets shipped as package data.

The CSV files live in ``statsmodels_mixmeta/datasets/data/`` and are found with
:mod:`importlib.resources`, so they load the same from a source checkout, an
editable install or a wheel. Every call reads the file again and returns a new
:class:`pandas.DataFrame`; callers may modify it freely.
"""

from importlib import resources

import pandas as pd

_PACKAGE = "statsmodels_mixmeta.datasets"
_DATA_DIR = "data"


def _data_dir():
    return resources.files(_PACKAGE) / _DATA_DIR


def names():
    """Names of the data sets that ship with the package.

    Returns
    -------
    list of str
        Sorted names, each valid for :func:`load`.
    """
    return sorted(
        entry.name[: -len(".csv")]
        for entry in _data_dir().iterdir()
        if entry.name.endswith(".csv")
    )


def data_path(name):
    """Resource handle of the CSV file behind data set `name`.

    Parameters
    ----------
    name : str
        One of :func:`names`.

    Returns
    -------
    importlib.resources.abc.Traversable
        Use ``importlib.resources.as_file`` for a real file-system path.
    """
    available = names()
    if name not in available:
        raise ValueError(
            f"unknown data set {name!r}; valid names are: {', '.join(available)}"
        )
    return _data_dir() / f"{name}.csv"


def load(name):
    """Read data set `name` into a new DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`names`, e.g. ``"bcg"`` or ``"berkey98"``.

    Returns
    -------
    pandas.DataFrame
        The data as stored in the CSV file; ``NA`` entries become NaN.

    Raises
    ------
    ValueError
        If `name` is not a shipped data set; the message lists the valid names.
    """
    with data_path(name).open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, na_values=["NA"])
