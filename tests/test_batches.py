"""
Scatter and gather between the stacked batches and the data's order.

On a two-level model with missing outcomes and groups of several sizes
(so that batches are padded), every map must be the identity where it
should be, exactly.
"""
import numpy as np
import pandas as pd
import pytest

import statsmodels_mixmeta as smm


@pytest.fixture(scope="module")
def model():
    # outer groups of 3 to 6 rows, rows in pairs of inner groups, about a
    # quarter of the outcomes missing: group sizes 4 to 12 values
    rng = np.random.default_rng(0)
    sizes = [3, 4, 4, 5, 6, 6, 3, 5]
    outer = np.repeat(np.arange(len(sizes)), sizes)
    inner = np.concatenate([np.arange(s) // 2 for s in sizes])
    n = outer.size
    endog = rng.normal(size=(n, 2))
    endog[rng.random((n, 2)) < 0.25] = np.nan
    endog[np.isnan(endog).all(axis=1), 1] = 0.3
    S = np.array([[0.2, 0.05], [0.05, 0.3]]) * rng.uniform(0.5, 2, n)[:, None,
                                                                       None]
    groups = pd.DataFrame({"outer": outer, "inner": inner})
    exog = np.column_stack([np.ones(n), rng.normal(size=n)])
    return smm.MixMeta(endog, exog, S=S, groups=groups)


@pytest.fixture(scope="module")
def batches(model):
    return model._batches


def test_the_layout_is_a_hard_one(model, batches):
    # missing outcomes, two levels, and padded batches
    assert np.isnan(model.design.endog).any()
    assert model.random.n_levels == 2
    assert any((~b.valid).any() for b in batches)
    assert len(batches) > 1


def test_gather_of_scatter_is_the_identity(batches):
    rng = np.random.default_rng(1)
    for shape in [(), (3,)]:
        values = rng.normal(size=(batches.n_values,) + shape)
        stacks = batches.from_long(values, fill=np.nan)
        assert np.array_equal(batches.to_long(stacks), values)
        for batch, stack in zip(batches, stacks):
            assert stack.shape == batch.valid.shape + shape
            assert np.all(np.isnan(stack[~batch.valid]))


def test_scatter_of_gather_is_the_identity_on_real_values(batches):
    stacks = [b.y for b in batches]
    again = batches.from_long(batches.to_long(stacks))
    for batch, stack, back in zip(batches, stacks, again):
        assert np.array_equal(back[batch.valid], stack[batch.valid])


def test_stacks_gather_to_the_data(model, batches):
    # the kernel's own outcome stacks land on the (row, outcome) cells
    cells = batches.to_cells([b.y for b in batches],
                             *model.design.endog.shape)
    assert np.array_equal(cells, model.design.endog, equal_nan=True)
    assert np.array_equal(batches.to_long([b.y for b in batches]),
                          model.design.long.y)


def test_rows_scatter_to_their_values(model, batches):
    per_row = np.arange(model.design.endog.shape[0]) * 10.0
    stacks = batches.from_rows(per_row, fill=-1.0)
    for batch, stack, rows in zip(batches, stacks, batches.rows()):
        assert np.array_equal(stack[batch.valid], 10.0 * rows[batch.valid])
        assert np.all(stack[~batch.valid] == -1.0)


def test_group_sums(model, batches):
    values = np.random.default_rng(2).normal(size=batches.n_values)
    for level in range(2):
        codes = model.design.levels.codes[level][model.design.long.row]
        expected = pd.Series(values).groupby(codes).sum().to_numpy()
        n_groups = model.design.levels.codes[level].max() + 1
        got = batches.group_sums(values, level, n_groups)
        np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_cells_cover_every_row_and_outcome_once(model, batches):
    n_rows, k = model.design.endog.shape
    seen = np.zeros((n_rows, k), dtype=int)
    for (rows, outcomes, valid), batch in zip(batches.cells(k), batches):
        np.add.at(seen, (rows[valid], outcomes[valid]), 1)
        # the cells of a group are its own rows
        groups = model.design.levels.codes[0][rows]
        assert np.all((groups == batch.groups[:, None]) | ~valid)
    assert np.all(seen == 1)
