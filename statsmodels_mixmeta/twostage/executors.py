"""
Where the first stage runs: serially, on a ``concurrent.futures.Executor``
or on a Dask cluster; and how its progress is shown.

The groups are cut out of the data once (one ``groupby``, its frames
handed out as they come) and sent in chunks, so
that a process pool or a cluster receives a few dozen tasks rather than
one per group.  Every task runs :func:`~.first_stage.fit_one` and returns
:class:`~.first_stage.GroupOutcome` objects (arrays and text), never the
fitted results objects.  Whatever runs them, the outcomes come back in
group order and the numbers are the same.

Dask (the optional ``dask`` extra, ``dask[distributed]``) is imported only
when asked for.
"""
import math
import sys
import time

import pandas as pd

from .first_stage import fit_one

#: Groups from which an automatic progress display appears (on a TTY).
PROGRESS_MIN_GROUPS = 100
#: Most groups in one task sent to a pool or a cluster.
MAX_CHUNK = 50


def split_groups(data, keys):
    """
    Labels of the groups (sorted when they sort, else in order of
    appearance) and an iterator over each group's rows of ``data``.

    pandas' own ``groupby`` iteration cuts the groups (it sorts the rows
    once and slices them; ``data`` itself is never modified): it costs
    less per group than slicing by hand.

    Parameters
    ----------
    data : DataFrame
    keys : ndarray, (n,)
        The group label of every row (no missing labels).

    Returns
    -------
    labels : Index
    frames : iterator of DataFrame
        The groups' rows, in the order of ``labels``.
    """
    try:
        grouped = data.groupby(keys, sort=True)
        labels = grouped.size().index
    except TypeError:                     # labels that do not sort
        grouped = data.groupby(keys, sort=False)
        labels = grouped.size().index
    return pd.Index(labels), (frame for _, frame in grouped)


def fit_chunk(fit_group, params, items):
    """Fit a list of ``(label, frame)`` pairs (one task of a pool); the
    coefficients picked by position are named until one group names them."""
    outcomes, named = [], False
    for label, frame in items:
        outcome = fit_one(fit_group, params, label, frame,
                          name_positions=not named)
        named = named or (outcome.names is not None and outcome.converged)
        outcomes.append(outcome)
    return outcomes


def run_groups(fit_group, params, labels, frames, executor=None,
               progress=None):
    """
    Fit every group and return their outcomes in group order.

    Parameters
    ----------
    fit_group, params
        As for :func:`~statsmodels_mixmeta.twostage.two_stage`.
    labels : Index
    frames : iterator of DataFrame
        The rows of each group, in the order of ``labels``.
    executor : None, concurrent.futures.Executor, dask Client or "dask"
    progress : bool or None
        None shows progress only on a terminal and for at least
        :data:`PROGRESS_MIN_GROUPS` groups.

    Returns
    -------
    list of GroupOutcome
    """
    n_groups = len(labels)
    bar = Progress(n_groups, progress)
    try:
        if executor is None:
            outcomes, named = [], False
            for label, frame in zip(labels, frames):
                outcome = fit_one(fit_group, params, label, frame,
                                  name_positions=not named)
                named = named or (outcome.names is not None
                                  and outcome.converged)
                outcomes.append(outcome)
                bar.update(1)
            return outcomes
        chunks = _chunks(labels, frames, _chunk_size(n_groups))
        if _is_dask(executor):
            return _run_dask(_dask_client(executor), fit_group, params,
                             chunks, bar)
        return _run_futures(executor, fit_group, params, chunks, bar)
    finally:
        bar.close()


def _chunk_size(n_groups):
    return max(1, min(MAX_CHUNK, math.ceil(n_groups / 32)))


def _chunks(labels, frames, size):
    items = list(zip(labels, frames))
    return [items[start:start + size] for start in range(0, len(items), size)]


def _run_futures(executor, fit_group, params, chunks, bar):
    import concurrent.futures as cf
    if not isinstance(executor, cf.Executor):
        raise ValueError(
            "executor must be None (serial), a concurrent.futures.Executor, "
            "a dask.distributed.Client or 'dask' (the current Dask client); "
            f"got {executor!r}")
    futures = {executor.submit(fit_chunk, fit_group, params, chunk): i
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
    data = client.scatter(chunks)
    futures = [client.submit(fit_chunk, fit_group, params, chunk, pure=False)
               for chunk in data]
    position = {future.key: i for i, future in enumerate(futures)}
    done = [None] * len(chunks)
    for future in distributed.as_completed(futures):
        result = future.result()
        done[position[future.key]] = result
        bar.update(len(result))
    return [outcome for chunk in done for outcome in chunk]


class Progress:
    """
    A progress display on ``sys.stderr``: tqdm's bar when tqdm is
    installed, else one line rewritten at most every half second.

    Parameters
    ----------
    total : int
    enabled : bool or None
        None: only when stderr is a terminal and ``total`` is at least
        :data:`PROGRESS_MIN_GROUPS`.
    """

    def __init__(self, total, enabled=None):
        stream = sys.stderr
        if enabled is None:
            isatty = getattr(stream, "isatty", None)
            enabled = bool(isatty and isatty()) and \
                total >= PROGRESS_MIN_GROUPS
        self.enabled, self.total, self.count = bool(enabled), total, 0
        self.stream, self._bar, self._last = stream, None, 0.0
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._write()
        else:
            self._bar = tqdm(total=total, file=stream, desc="two_stage",
                             unit="group")

    def update(self, n):
        if not self.enabled:
            return
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif time.monotonic() - self._last > 0.5 or self.count >= self.total:
            self._write()

    def _write(self):
        self._last = time.monotonic()
        self.stream.write(f"\rtwo_stage: {self.count}/{self.total} groups")
        self.stream.flush()

    def close(self):
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False
