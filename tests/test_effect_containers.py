"""The containers of multivariate effect sizes and network contrasts."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.network.container import NetworkContrasts

S_COLS = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]


def _smoking_contrasts():
    data = datasets.load_smoking()
    y = data[["yB", "yC", "yD"]].rename(columns=lambda c: "y_" + c[1])
    S = smm.unvech(data[S_COLS].to_numpy(float))
    return data, NetworkContrasts(y, S, design=data["design"],
                                  treatments="ABCD", reference="A")


def test_columns_rebuild_the_smoking_inputs_and_fit_the_same_model():
    data, net = _smoking_contrasts()
    assert net.S_columns == ["S_B_B", "S_B_C", "S_B_D", "S_C_C", "S_C_D",
                             "S_D_D"]
    np.testing.assert_array_equal(net.vech.to_numpy(),
                                  data[S_COLS].to_numpy(float))
    frame = net.frame
    assert list(frame.columns[:3]) == ["y_B", "y_C", "y_D"]
    assert (frame["design"] == data["design"]).all()
    ours = smf.mixmeta("y_B + y_C + y_D ~ 1", data=frame,
                       S=net.S_columns).fit()
    theirs = smf.mixmeta("yB + yC + yD ~ 1", data=data, S=S_COLS).fit()
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-10)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-10)


def test_shapes_and_reference_are_checked():
    data, net = _smoking_contrasts()
    with pytest.raises(ValueError, match=r"\(24, 3, 3\)"):
        NetworkContrasts(net.y, net.S[:, :2, :2], data["design"], "ABCD",
                         "A")
    with pytest.raises(ValueError, match="start with the reference"):
        NetworkContrasts(net.y, net.S, data["design"], "BACD", "A")
    with pytest.raises(ValueError, match="DataFrame"):
        smm.effectsize.multivariate.MultivariateEffects(
            net.y.to_numpy(), net.S)
    assert repr(net) == ("<NetworkContrasts: 24 studies, 3 outcomes "
                         "['y_B', 'y_C', 'y_D']>")
    assert isinstance(net.y, pd.DataFrame)
