"""
The pieces that escalc, escalc_correlated and network_contrasts share: the
per-group formulas (effectsize.groups), the zero-cell rule's choice of rows
(effectsize.zero_cells) and the look-up of an argument in the data
(effectsize.checks), each against hand computation; and, since the three
APIs now compute through them, their agreement to the last bit.
"""
import math

import numpy as np
import pandas as pd
import pytest

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.effectsize import checks, groups, zero_cells


def test_group_formulas_by_hand():
    y, v = groups.log_odds(3.0, 7.0)
    assert (y, v) == (pytest.approx(math.log(3 / 7), rel=1e-15),
                      pytest.approx(1 / 3 + 1 / 7, rel=1e-15))
    y, v = groups.log_risk(3.0, 10.0)
    assert (y, v) == (pytest.approx(math.log(0.3), rel=1e-15),
                      pytest.approx(1 / 3 - 1 / 10, rel=1e-15))
    y, v = groups.risk(3.0, 10.0)
    assert (y, v) == (pytest.approx(0.3), pytest.approx(0.3 * 0.7 / 10))
    y, v = groups.mean(2.5, 2.0, 16.0)
    assert (y, v) == (2.5, 0.25)
    y, v = groups.log_mean(2.0, 1.0, 4.0)
    assert (y, v) == (pytest.approx(math.log(2)), pytest.approx(1 / 16))
    assert groups.difference((5.0, 1.0), (2.0, 0.5)) == (3.0, 1.5)
    # (n1 - 1) s1^2 + (n2 - 1) s2^2 = 9 * 4 + 19 * 1 = 55 on 28 df
    assert groups.pooled_sd(55.0, 28.0) == pytest.approx(math.sqrt(55 / 28))
    assert np.isinf(groups.log_odds(np.array([0.0]), np.array([5.0]))[1])


@pytest.mark.parametrize("to, expected", [
    ("only0", [False, True, False]), ("all", [True, True, True]),
    ("if0all", [True, True, True]), ("none", [False, False, False])])
def test_zero_cell_rows_chosen_by_to(to, expected):
    has_zero = np.array([False, True, False])
    assert zero_cells.selected(has_zero, to).tolist() == expected
    assert not zero_cells.selected(np.zeros(3, bool), "if0all").any()


@pytest.mark.parametrize("add, value", [
    (0.5, 0.5), (0, 0.0), (np.float32(1), 1.0), (-0.5, np.nan),
    (True, np.nan), ("half", np.nan), (np.inf, np.nan), (None, np.nan)])
def test_add_value(add, value):
    np.testing.assert_equal(zero_cells.add_value(add), value)


def test_lookup_finds_columns_and_names_each_fault():
    data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}, index=["x", "y"])
    messages = {checks.NO_DATA: "{column!r} without data",
                checks.NOT_IN_DATA: "{column!r} not in {columns} ({joined})",
                checks.MISALIGNED: "misaligned"}
    values, column = checks.lookup("b", data, messages)
    assert column == "b" and values.tolist() == [3.0, 4.0]
    values, column = checks.lookup([5, 6], data, messages)
    assert column is None and values == [5, 6]
    with pytest.raises(ValueError,
                       match=r"^'c' not in \['a', 'b'\] \(a, b\)$"):
        checks.lookup("c", data, messages)
    with pytest.raises(ValueError, match=r"^'a' without data$"):
        checks.lookup("a", None, messages)
    with pytest.raises(ValueError, match="^misaligned$"):
        checks.lookup(pd.Series([1, 2]), data, messages)


def test_nan_safe_comparisons():
    values = np.array([-1.0, 0.0, np.nan, 2.0])
    assert checks.below(values, 0).tolist() == [True, False, False, False]
    assert checks.not_above(values, 0).tolist() == [True, True, False, False]
    assert checks.above(values, 1).tolist() == [False, False, False, True]


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_three_apis_agree_to_the_bit_on_two_arm_tables(measure):
    # one formula per group now: a two-arm network contrast, escalc and
    # escalc_correlated's effect sizes are the same floating-point numbers,
    # zero cells included (study 1 has none in arm B, so 1/2 is added)
    arms = pd.DataFrame({"study": [1, 1, 2, 2, 3, 3],
                         "treatment": ["A", "B"] * 3,
                         "events": [3.0, 0.0, 5.0, 9.0, 12.0, 20.0],
                         "n": [30.0, 30.0, 40.0, 41.0, 60.0, 58.0]})
    wide = arms.pivot(index="study", columns="treatment")
    table = pd.DataFrame({"a": wide["events"]["B"], "n1": wide["n"]["B"],
                          "c": wide["events"]["A"], "n2": wide["n"]["A"]})
    cells = dict(ai="a", n1i="n1", ci="c", n2i="n2")
    es = smm.escalc(measure, data=table, **cells)
    net = smm.network_contrasts(arms, "study", "treatment", "A",
                                measure=measure, events="events", n="n")
    np.testing.assert_array_equal(net.frame["y_B"], es["yi"])
    np.testing.assert_array_equal(net.frame["S_B_B"], es["vi"])
    if measure == "RD":
        return
    eff = smm.escalc_correlated(measure, data=table, rho=0.3,
                                outcomes=[cells, cells])
    np.testing.assert_array_equal(eff.y["y1"], es["yi"])
    # the diagonal of D R D is sqrt(u1)**2 + sqrt(u2)**2: a rounding apart
    np.testing.assert_allclose(eff.S[:, 0, 0], es["vi"], rtol=1e-15)
