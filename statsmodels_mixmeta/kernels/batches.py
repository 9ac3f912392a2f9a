"""
Stacking of independent groups into equal-size batches.

The likelihood of the model is a sum over independent outer groups.  Each
group ``i`` contributes a vector of ``n_i`` observed outcome values (the
"long" format: one entry per observed outcome of each row), so the work is
organised by group size: groups of the same or nearby sizes are stacked into
3-D arrays once (the shorter ones padded with values that contribute
nothing, marked by ``valid``), and every later evaluation of the likelihood
works on a handful of stacks instead of looping over groups.

A :class:`GroupBatch` holds, for ``g`` groups of ``n`` values each,

* ``y``: ``(g, n)`` outcome values,
* ``X``: ``(g, n, p)`` fixed-effects design,
* ``S``: ``(g, n, n)`` known within-group covariance,
* ``Z``: one ``(g, n, r_l)`` random-effects design per grouping level,
* ``Z_expanded``: the same design spread over the ``C_l`` level-``l``
  groups inside each outer group, ``(g, n, C_l r_l)``: value ``v`` of inner
  group ``c`` has its row of ``Z`` in column block ``c`` and zeros elsewhere
  (``C = 1`` for the outer level),
* ``same_group``: for levels with ``C > 1``, which pairs of values share a
  level group, ``(g, n, n)``, so that ``Z~ (I (x) Psi) Z~' = (Z Psi Z') o M``
  can be formed from the narrow design,

so that the marginal covariance of the stacked groups is

.. math:: \\Sigma = S + \\sum_l \\tilde Z_l (I_{C_l} \\otimes \\Psi_l)
          \\tilde Z_l' .

The batches of one design come as a :class:`BatchSet`, which also maps
between the stacks and the data: per-value stacks to long order or to
``(row, outcome)`` cells, and long or per-row arrays into stacks (the
scatter and gather that prediction, BLUPs and simulation use instead of
re-deriving positions).

Nothing here knows about formulas, pandas or likelihoods.
"""
from dataclasses import dataclass, replace

import numpy as np

from ..design.core import expand_by_outcome
from ..design.frozen import LongFormat


@dataclass(frozen=True)
class GroupBatch:
    """Groups of equal size stacked along the first axis."""

    groups: np.ndarray       # (g,) outer-group codes
    index: np.ndarray        # (g, n) positions of the values in long order
    valid: np.ndarray        # (g, n) False for padding
    y: np.ndarray            # (g, n)
    X: np.ndarray            # (g, n, p)
    S: np.ndarray            # (g, n, n)
    Z: tuple                 # per level (g, n, r_l)
    Z_expanded: tuple        # per level (g, n, C_l * r_l)
    same_group: tuple        # per level (g, n, n) bool, None if C_l == 1

    @property
    def size(self):
        """Number of values per group in this batch (padding included)."""
        return self.y.shape[1]

    @property
    def identity_designs(self):
        """Per level, whether ``Z_expanded`` is the identity of every group
        (each value its own random effect: the innermost level of a nested
        design), so that products with it can be skipped."""
        cached = self.__dict__.get("_identity_designs")
        if cached is None:
            n = self.size
            cached = tuple(
                zx.shape[2] == n and bool(np.all(zx == np.eye(n)))
                for zx in self.Z_expanded)
            self.__dict__["_identity_designs"] = cached
        return cached

    @property
    def n_values(self):
        """Number of real (not padded) values in this batch."""
        return int(self.valid.sum())


class BatchSet(list):
    """
    The batches of one design, in batch order, with the long layout they
    were stacked from.

    A list of :class:`GroupBatch` (iterate, index and zip it as one), plus
    the maps between per-value stacks (one ``(g, n, ...)`` array per batch,
    padding included) and the data:

    * :meth:`to_long` / :meth:`from_long`: stacks <-> long order
      ``(N, ...)``, one entry per observed value;
    * :meth:`to_cells`: stacks -> ``(n_rows, k, ...)`` at each value's
      (row, outcome), a fill value where an outcome is not observed;
    * :meth:`from_rows`: a per-row array ``(n_rows, ...)`` -> stacks, each
      value taking its row's entry.

    ``from_long`` and ``to_long`` are inverse to each other on the real
    values; padding is filled with ``fill``.
    """

    def __init__(self, batches, long):
        super().__init__(batches)
        self.long = long

    @property
    def n_values(self):
        """Number of observed values (the length of long order)."""
        return self.long.n_values

    def to_long(self, stacks):
        """Per-value stacks, one per batch, gathered into long order."""
        stacks = list(stacks)
        first = np.asarray(stacks[0])
        out = np.zeros((self.n_values,) + first.shape[2:], dtype=first.dtype)
        for batch, stack in zip(self, stacks):
            out[batch.index[batch.valid]] = np.asarray(stack)[batch.valid]
        return out

    def from_long(self, values, fill=0.0):
        """Long-order values ``(N, ...)`` scattered into per-batch stacks
        ``(g, n, ...)``, ``fill`` at the padding."""
        values = np.asarray(values)
        stacks = []
        for batch in self:
            valid = batch.valid.reshape(batch.valid.shape
                                        + (1,) * (values.ndim - 1))
            stacks.append(np.where(valid, values[batch.index], fill))
        return stacks

    def to_cells(self, stacks, n_rows, n_outcomes, fill=np.nan):
        """Per-value stacks placed at their (row, outcome) cells:
        ``(n_rows, n_outcomes, ...)``, ``fill`` where nothing is observed."""
        values = self.to_long(stacks)
        out = np.full((n_rows, n_outcomes) + values.shape[1:], fill,
                      dtype=np.result_type(values, type(fill)))
        out[self.long.row, self.long.outcome] = values
        return out

    def from_rows(self, per_row, fill=0.0):
        """A per-row array ``(n_rows, ...)`` spread over the values of each
        row, as per-batch stacks."""
        return self.from_long(np.asarray(per_row)[self.long.row], fill)

    def with_values(self, y):
        """
        The same batches with new outcome values ``y`` ``(N,)`` in long
        order: designs, covariances and layout shared, only ``y`` stacked
        again (for refits of simulated data on the same design).
        """
        y = np.asarray(y, dtype=float)
        batches = [replace(batch, y=np.where(batch.valid, y[batch.index],
                                             0.0)) for batch in self]
        return BatchSet(batches, replace(self.long, y=y))

    def without_group(self, group, long):
        """
        The batches without outer group ``group`` (its code), for ``long``:
        the long format of the design without that group (the other
        values in the same order, codes above ``group`` one lower, as
        :func:`statsmodels_mixmeta.design.resample.subset` builds it).
        Only the batch that held the group is sliced; the others' stacks
        are shared, their codes and positions renumbered (leave-one-out
        refits).  Batch sizes are kept, so a batch may hold more padding
        than one built anew, which changes no likelihood.
        """
        removed = np.flatnonzero(self.long.group == group)
        batches = []
        for batch in self:
            keep = batch.groups != group
            if not keep.any():
                continue
            if keep.all():
                fields = {}
            else:
                fields = {name: getattr(batch, name)[keep]
                          for name in ("groups", "index", "valid", "y", "X",
                                       "S")}
                fields.update({name: tuple(
                    None if a is None else a[keep]
                    for a in getattr(batch, name))
                    for name in ("Z", "Z_expanded", "same_group")})
            groups = fields.get("groups", batch.groups)
            index = fields.get("index", batch.index)
            fields["groups"] = groups - (groups > group)
            fields["index"] = index - np.searchsorted(removed, index)
            out = replace(batch, **fields)
            if "_identity_designs" in batch.__dict__:
                out.__dict__["_identity_designs"] = \
                    batch.__dict__["_identity_designs"]
            batches.append(out)
        return BatchSet(batches, long)

    def rows(self):
        """Data row of every stacked value, per batch ``(g, n)`` (padding
        repeats a real row of the group: mask it with ``valid``)."""
        return [self.long.row[batch.index] for batch in self]

    def value_codes(self, level):
        """Code of each value's level-``level`` group, in long order."""
        return self.long.group if level == 0 else self.long.level_codes[level]

    def group_sums(self, values, level, n_groups):
        """
        Long-order values ``(N,)`` or ``(N, r)`` summed over the groups of
        a level: ``(n_groups,)`` or ``(n_groups, r)``, in code order.
        """
        codes = self.value_codes(level)
        values = np.asarray(values, dtype=float)
        flat = values.reshape(values.shape[0], -1)
        sums = np.stack([np.bincount(codes, column, minlength=n_groups)
                         for column in flat.T], axis=1)
        return sums.reshape((n_groups,) + values.shape[1:])

    def cells(self, n_outcomes):
        """
        Every (row, outcome) cell of the rows of each group, observed or
        not, per batch: ``rows``, ``outcomes`` and ``valid``, each
        ``(g, P)`` with ``P`` the batch's largest number of rows times
        ``n_outcomes`` (rows in their order within the group, outcomes
        within rows; ``valid`` False for padding, whose row is 0).
        """
        out = []
        for batch, rows in zip(self, self.rows()):
            first = np.ones(rows.shape, dtype=bool)
            first[:, 1:] = rows[:, 1:] != rows[:, :-1]
            first &= batch.valid
            rank = np.cumsum(first, axis=1) - 1
            n_pad = rank.max() + 1
            padded = np.full((rows.shape[0], n_pad), -1)
            slot = np.broadcast_to(np.arange(rows.shape[0])[:, None],
                                   rows.shape)
            padded[slot[first], rank[first]] = rows[first]
            valid = np.repeat(padded >= 0, n_outcomes, axis=1)
            full_rows = np.repeat(np.where(padded >= 0, padded, 0),
                                  n_outcomes, axis=1)
            outcomes = np.broadcast_to(np.tile(np.arange(n_outcomes), n_pad),
                                       full_rows.shape)
            out.append((full_rows, outcomes, valid))
        return out


def study_batches(y, X, within_cov, observed):
    """
    Batches of independent studies, one group per row, for array inputs.

    Parameters
    ----------
    y : ndarray, (m, k)
        Outcomes (entries of unobserved outcomes are not read).
    X : ndarray, (m, p)
        Study-level predictors; the design of outcome ``j`` is
        ``kron(e_j, x)``, outcome-major.
    within_cov : ndarray, (m, k, k)
    observed : ndarray of bool, (m, k)

    Returns
    -------
    BatchSet
        With one random effect per outcome (``Z = e_outcome``).
    """
    n_rows, k = y.shape
    row, outcome = np.nonzero(observed)
    X_long = expand_by_outcome(X[row], outcome, k)
    Z_long = expand_by_outcome(np.ones((row.size, 1)), outcome, k)
    long = LongFormat(y[row, outcome], X_long, row, outcome, row, (Z_long,),
                      (None,))
    return build_batches(long, n_rows, within_cov=within_cov)


def group_layout(group, n_groups):
    """
    Order values by group and describe each group's slice.

    Returns
    -------
    order : ndarray
        Long positions sorted by group (stable, so that within a group
        values keep their row order).
    starts, sizes : ndarray
        Start (in ``order``) and size of every group.
    """
    sizes = np.bincount(group, minlength=n_groups)
    if np.all(np.diff(group) >= 0):
        order = np.arange(group.shape[0])
    else:
        order = np.argsort(group, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return order, starts, sizes


def size_buckets(sizes, growth=1.3):
    """
    Map every group size to the size of the batch it joins: sizes within a
    factor ``growth`` of a larger one are padded up to it, so that widely
    spread group sizes make a dozen batches rather than dozens.
    """
    bucket = {}
    top = None
    for size in sorted(set(int(s) for s in sizes if s > 0), reverse=True):
        if top is None or size * growth < top:
            top = size
        bucket[size] = top
    return bucket


def build_batches(long, n_groups, within_cov=None, group_cov=None):
    """
    Stack the groups of ``long`` into batches of (nearly) equal size.

    Groups shorter than their batch are padded with values that contribute
    nothing: outcome, fixed and random designs 0, unit variance independent
    of everything (``valid`` marks the real values).  Exactly one of
    ``within_cov`` and ``group_cov`` gives the known covariance.

    Parameters
    ----------
    long : LongFormat
    n_groups : int
    within_cov : ndarray, (n_rows, k, k), optional
        Covariance of the outcomes of each data row; values of different rows
        are independent.
    group_cov : sequence of ndarray, optional
        One full covariance matrix per outer group, covering the group's
        values in long order.

    Returns
    -------
    BatchSet
    """
    order, starts, sizes = group_layout(long.group, n_groups)
    bucket = size_buckets(sizes)
    # batch size of every group, by a lookup over the distinct sizes
    lookup = np.zeros(sizes.max() + 1 if sizes.size else 1, dtype=np.intp)
    for size, top in bucket.items():
        lookup[size] = top
    group_bucket = lookup[sizes]
    batches = []
    for size in sorted(set(bucket.values())):
        groups = np.flatnonzero(group_bucket == size)
        offset = np.arange(size)
        valid = offset[None, :] < sizes[groups][:, None]
        # padding repeats the group's first value, then is zeroed below
        index = order[starts[groups][:, None] + np.where(valid, offset, 0)]
        if within_cov is not None:
            S = _block_diagonal_rows(within_cov, long.row[index],
                                     long.outcome[index])
        else:
            S = np.zeros((groups.size, size, size))
            for slot, i in enumerate(groups):
                m = group_cov[i].shape[0]
                S[slot, :m, :m] = group_cov[i]
        pad = ~valid
        S = np.where(pad[:, :, None] | pad[:, None, :], 0.0, S)
        S[pad] = 0.0
        diag = np.einsum("gnn->gn", S)
        diag[pad] = 1.0
        Z = tuple(np.where(valid[:, :, None], z[index], 0.0)
                  for z in long.Z)
        expanded = tuple(
            z if codes is None else expand_by_inner_group(z, codes[index])
            for z, codes in zip(Z, long.level_codes))
        same_group = tuple(
            None if codes is None or zx.shape[2] == z.shape[2]
            else codes[index][:, :, None] == codes[index][:, None, :]
            for z, zx, codes in zip(Z, expanded, long.level_codes))
        batches.append(GroupBatch(
            groups=groups, index=index, valid=valid, same_group=same_group,
            y=np.where(valid, long.y[index], 0.0),
            X=np.where(valid[:, :, None], long.X[index], 0.0),
            S=S, Z=Z, Z_expanded=expanded))
    return BatchSet(batches, long)


def inner_group_index(codes):
    """
    Number each row's level groups ``0 .. C - 1`` within the row, ``(g, n)``
    codes to local indices, and return them with ``C`` (the largest count).
    """
    order = np.argsort(codes, axis=1, kind="stable")
    ordered = np.take_along_axis(codes, order, axis=1)
    new = np.ones(codes.shape, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    local = np.empty_like(order)
    np.put_along_axis(local, order, np.cumsum(new, axis=1) - 1, axis=1)
    return local, int(local.max()) + 1


def expand_by_inner_group(Z, codes):
    """``Z`` ``(g, n, r)`` spread into column blocks by inner group."""
    g, n, r = Z.shape
    local, n_inner = inner_group_index(codes)
    out = np.zeros((g, n, n_inner, r))
    out[np.arange(g)[:, None], np.arange(n)[None, :], local] = Z
    return out.reshape(g, n, n_inner * r)


def _block_diagonal_rows(within_cov, rows, outcomes):
    """Covariance of stacked values whose rows are independent."""
    cov = within_cov[rows[:, :, None], outcomes[:, :, None],
                     outcomes[:, None, :]]
    if rows.shape[1] > 1:
        cov = np.where(rows[:, :, None] == rows[:, None, :], cov, 0.0)
    return cov
