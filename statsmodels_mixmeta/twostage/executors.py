"""
Where the first stage runs: serially, on a ``concurrent.futures.Executor``
or on a Dask cluster; and how its progress is shown.

The groups are cut out of the data once (one ``groupby``; serially its
frames are handed out as they come) and sent to a pool or a cluster in
chunks of consecutive groups, each one frame with the group boundaries,
so that it receives a few dozen tasks and frames rather than one per
group.  Every task runs :func:`~.first_stage.fit_one` and returns
:class:`~.first_stage.GroupOutcome` objects (arrays and text), never the
fitted results objects.  Whatever runs them, the outcomes come back in
group order and the numbers are the same.

Dask (the optional ``dask`` extra, ``dask[distributed]``) is imported only
when asked for.
"""
import concurrent.futures as cf
import math

import numpy as np
import pandas as pd

from ..progress import Progress
from .first_stage import fit_one

#: Groups from which an automatic progress display appears (on a TTY).
PROGRESS_MIN_GROUPS = 100
#: Most groups in one task sent to a pool or a cluster.
MAX_CHUNK = 50


class Groups:
    """
    The groups of the rows of ``data``: their labels (sorted when they
    sort, else in order of appearance), the rows of each one by one for a
    serial run, and chunks of consecutive groups for a pool or a cluster.

    Parameters
    ----------
    data : DataFrame
        Never modified.
    keys : array_like or Series, (n,)
        The group label of every row (no missing labels).
    """

    def __init__(self, data, keys):
        try:
            grouped = data.groupby(keys, sort=True)
            sizes = grouped.size()
        except TypeError:                     # labels that do not sort
            grouped = data.groupby(keys, sort=False)
            sizes = grouped.size()
        self.data, self.grouped = data, grouped
        self.labels = pd.Index(sizes.index)
        self.sizes = sizes.to_numpy()

    def __len__(self):
        return len(self.labels)

    def frames(self):
        """Each group's rows, in label order: pandas' own ``groupby``
        iteration, which costs less per group than slicing by hand."""
        return (frame for _, frame in self.grouped)

    def chunks(self, size):
        """
        Consecutive groups, ``size`` at a time, as ``(labels, rows,
        bounds)``: one frame of the chunk's rows (sorted by group, a slice
        of one sorted copy of the data) and the group boundaries in it, so
        that a task carries one frame rather than one per group.
        """
        codes = self.grouped.ngroup().to_numpy()
        ordered = self.data
        if np.any(np.diff(codes) < 0):
            ordered = self.data.take(np.argsort(codes, kind="stable"))
        bounds = np.concatenate([[0], np.cumsum(self.sizes)])
        out = []
        for first in range(0, len(self), size):
            last = min(first + size, len(self))
            rows = ordered.iloc[bounds[first]:bounds[last]]
            out.append((list(self.labels[first:last]), rows,
                        bounds[first:last + 1] - bounds[first]))
        return out


def fit_chunk(fit_group, params, labels, rows, bounds):
    """Fit the groups of one chunk (one task of a pool): group ``i`` is
    ``rows.iloc[bounds[i]:bounds[i + 1]]``.  Coefficients picked by
    position are named until one group names them."""
    outcomes, named = [], False
    for i, label in enumerate(labels):
        outcome = fit_one(fit_group, params, label,
                          rows.iloc[bounds[i]:bounds[i + 1]],
                          name_positions=not named)
        named = named or (outcome.names is not None and outcome.converged)
        outcomes.append(outcome)
    return outcomes


def run_groups(fit_group, params, groups, executor=None, progress=None):
    """
    Fit every group and return their outcomes in group order.

    Parameters
    ----------
    fit_group, params
        As for :func:`~statsmodels_mixmeta.twostage.two_stage`.
    groups : Groups
    executor : None, concurrent.futures.Executor, dask Client or "dask"
    progress : bool or None
        None shows progress only on a terminal and for at least
        :data:`PROGRESS_MIN_GROUPS` groups.

    Returns
    -------
    list of GroupOutcome
    """
    n_groups = len(groups)
    bar = Progress(n_groups, progress, desc="two_stage", unit="group",
                   min_total=PROGRESS_MIN_GROUPS)
    try:
        if executor is None:
            outcomes, named = [], False
            for label, frame in zip(groups.labels, groups.frames()):
                outcome = fit_one(fit_group, params, label, frame,
                                  name_positions=not named)
                named = named or (outcome.names is not None
                                  and outcome.converged)
                outcomes.append(outcome)
                bar.update(1)
            return outcomes
        if _is_dask(executor):
            client = _dask_client(executor)
            return _run_dask(client, fit_group, params,
                             groups.chunks(_chunk_size(n_groups)), bar)
        _check_executor(executor)
        return _run_futures(executor, fit_group, params,
                            groups.chunks(_chunk_size(n_groups)), bar)
    finally:
        bar.close()


def _chunk_size(n_groups):
    return max(1, min(MAX_CHUNK, math.ceil(n_groups / 32)))


def _check_executor(executor):
    if not isinstance(executor, cf.Executor):
        raise ValueError(
            "executor must be None (serial), a concurrent.futures.Executor, "
            "a dask.distributed.Client or 'dask' (the current Dask client); "
            f"got {executor!r}")


def _run_futures(executor, fit_group, params, chunks, bar):
    futures = {executor.submit(fit_chunk, fit_group, params, *chunk): i
               for i, chunk in enumerate(chunks)}
    done = [None] * len(chunks)
    for future in cf.as_completed(futures):
        done[futures[future]] = future.result()
        bar.update(len(done[futures[future]]))
    return [outcome for chunk in done for outcome in chunk]


def _is_dask(executor):
    if isinstance(executor, str):
        if executor != "dask":
            raise ValueError(
                f"executor={executor!r}: the only string accepted is 'dask' "
                "(the current Dask client)")
        return True
    module = type(executor).__module__ or ""
    return module.startswith("distributed")


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "executor='dask' or a Dask client needs dask.distributed: "
            "install the 'dask' extra, pip install "
            "'statsmodels-mixmeta[dask]'") from exc
    return distributed


def _dask_client(executor):
    distributed = _import_distributed()
    if isinstance(executor, str):
        try:
            return distributed.get_client()
        except ValueError as exc:
            raise ValueError(
                "executor='dask' needs a running Dask client: create one "
                "first, e.g. dask.distributed.Client(LocalCluster())") from exc
    return executor


def _run_dask(client, fit_group, params, chunks, bar):
    distributed = _import_distributed()
    # the rows go to the workers directly, not through the scheduler
    data = client.scatter([rows for _, rows, _ in chunks])
    futures = [client.submit(fit_chunk, fit_group, params, labels, rows,
                             bounds, pure=False)
               for (labels, _, bounds), rows in zip(chunks, data)]
    position = {future.key: i for i, future in enumerate(futures)}
    done = [None] * len(chunks)
    for future in distributed.as_completed(futures):
        result = future.result()
        done[position[future.key]] = result
        bar.update(len(result))
    return [outcome for chunk in done for outcome in chunk]
