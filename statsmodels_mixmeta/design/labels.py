"""
Row labels in error messages: the one rule for naming offending rows.

Every message that points at rows names them by their labels (the data
frame's index, or positions for arrays), at most :data:`MAX_ROWS_SHOWN`
of them followed by how many more there are.
"""
import numpy as np

#: How many offending rows a message names before summarising.
MAX_ROWS_SHOWN = 5


def label_list(rows, labels=None, limit=MAX_ROWS_SHOWN):
    """
    ``"a, b, c"`` or ``"a, b, c, d, e and 3 more"``.

    Parameters
    ----------
    rows : array_like of int or bool
        Positions of the offending rows, or a mask over all rows.
    labels : sequence, optional
        Label of every row; positions when omitted.
    """
    rows = np.asarray(rows)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    rows = [int(r) for r in rows.ravel()]
    names = rows if labels is None else [labels[r] for r in rows]
    text = ", ".join(str(name) for name in names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text


def describe_rows(rows, labels=None, limit=MAX_ROWS_SHOWN):
    """``"row a"`` for one row, ``"rows a, b and 3 more"`` for several."""
    rows = np.asarray(rows)
    count = int(rows.sum()) if rows.dtype == bool else rows.size
    word = "row" if count == 1 else "rows"
    return f"{word} {label_list(rows, labels, limit)}"
