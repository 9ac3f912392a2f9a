"""
Network contrasts from arm-level data (issue 14, criterion 2).

The smoking data's contrasts ``yB, yC, yD`` and covariances ``SBB ... SDD``
(Sera et al. 2019) are rebuilt from the arms the trials really have, the
augmented reference arms added by ``network_contrasts`` itself; the
consistency model fitted on them is R's ``smoking_prop`` reference case.
Hand computations check a three-arm trial for every measure, the zero-cell
rule, augmentation of continuous data, and every error.
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from agreement import COEF_TOL, PSI_TOL, assert_loglike
from reference_cases import case
from statsmodels_mixmeta import datasets

S_COLS = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]


def smoking_long():
    """The smoking arms in long form, without the stored augmented arms."""
    wide = datasets.load_smoking()
    parts = [pd.DataFrame({"study": wide["study"], "treatment": t,
                           "events": wide["d" + t], "n": wide["n" + t],
                           "design": wide["design"]}) for t in "ABCD"]
    arms = pd.concat(parts).dropna(subset=["events"])
    # a study has a real arm t when its design names it; the stored A arms
    # of the other studies (0.001 events among 0.01) are the augmentation
    real = [t.lower() in d for t, d in zip(arms["treatment"], arms["design"])]
    arms = arms[real].sort_values(["study", "treatment"])
    return wide, arms.drop(columns="design").reset_index(drop=True)


def paper_columns(net):
    return net.frame[net.outcomes + net.S_columns].to_numpy(float)


def test_smoking_rebuilds_the_papers_contrasts():
    wide, arms = smoking_long()
    assert len(arms) == 50 and not (arms["n"] < 1).any()
    net = smm.network_contrasts(arms, "study", "treatment", "A",
                                events="events", n="n")
    ref = wide[["yB", "yC", "yD"] + S_COLS].to_numpy(float)
    ours = paper_columns(net)
    assert net.outcomes == ["y_B", "y_C", "y_D"]
    assert list(net.frame.index) == list(wide["study"])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    # S of the augmented studies is about 1111: relative agreement; the
    # stored arm is a float32 copy of (0.001, 0.01), off by 7.6e-8 in yB
    # of study 22 (0.0656), hence the absolute 1e-7 on y
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours[:, 3:], ref[:, 3:], rtol=1e-6)
    augmented = ~wide["design"].str.contains("a").to_numpy()
    np.testing.assert_array_equal(net.info["augmented"], augmented)
    assert augmented.sum() == 5
    np.testing.assert_allclose(ours[~augmented], ref[~augmented], rtol=1e-7)
    assert (net.design.to_numpy() == wide["design"].str.upper()).all()
    assert not net.info["corrected"].any()   # studies 9 and 20 come corrected
    assert net.measure == "OR" and net.treatments == list("ABCD")


def test_smoking_zero_cells_are_the_papers_correction():
    """Studies 9 and 20 are stored with 0.5 added to every cell (0.5
    events among 34, 9.5 among 49; 0.5 among 21, 9.5 among 21): undone,
    the zero-cell rule restores them."""
    wide, arms = smoking_long()
    corrected = arms["study"].isin([9, 20])
    assert (arms.loc[corrected, "events"] % 1 == 0.5).all()
    raw = arms.assign(events=arms["events"] - 0.5 * corrected,
                      n=arms["n"] - 1.0 * corrected)
    assert (raw.loc[corrected & (raw["treatment"] == "A"), "events"]
            == 0).all()
    net = smm.network_contrasts(raw, "study", "treatment", "A",
                                events="events", n="n")
    assert net.info.index[net.info["corrected"]].tolist() == [9, 20]
    ref = wide[["yB", "yC", "yD"] + S_COLS].to_numpy(float)
    np.testing.assert_allclose(paper_columns(net), ref, rtol=1e-6,
                               atol=1e-7)


def stored_augment(wide):
    """The augmented arm stored in the data: float32 (0.001, 0.01)."""
    stored = wide.loc[~wide["design"].str.contains("a"), ["dA", "nA"]]
    assert stored.nunique().tolist() == [1, 1]
    augment = tuple(stored.iloc[0])
    assert augment == pytest.approx((0.001, 0.01), rel=1e-7)
    assert augment != (0.001, 0.01)
    return augment


def as_stored(net):
    """The contrasts rounded to float32, as the data set stores them."""
    frame = net.frame.copy()
    columns = net.outcomes + net.S_columns
    frame[columns] = frame[columns].astype(np.float32).astype(float)
    return frame


def test_smoking_with_the_stored_augmented_arm_is_the_stored_columns():
    wide, arms = smoking_long()
    net = smm.network_contrasts(arms, "study", "treatment", "A",
                                events="events", n="n",
                                augment=stored_augment(wide))
    ref = wide[["yB", "yC", "yD"] + S_COLS].to_numpy(float)
    np.testing.assert_allclose(paper_columns(net), ref, rtol=1e-7)
    stored = as_stored(net)[net.outcomes + net.S_columns].to_numpy()
    np.testing.assert_allclose(stored, ref, rtol=1e-14)


def fit_prop(frame, net):
    return smf.mixmeta("y_B + y_C + y_D ~ 1", data=frame, S=net.S_columns,
                       bscov="prop", psi_fix=np.eye(3) + 1).fit()


def assert_estimates_of_smoking_prop(res, ref):
    assert ref.outcomes == ["yB", "yC", "yD"] and res.converged
    assert list(res.params.index) == ["y_B:Intercept", "y_C:Intercept",
                                      "y_D:Intercept"]
    np.testing.assert_allclose(res.params, ref.coef, **COEF_TOL)
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(ref.vcov)),
                               **COEF_TOL)
    np.testing.assert_allclose(res.psi, ref.psi, **PSI_TOL)


def test_consistency_model_on_rebuilt_contrasts_is_smoking_prop():
    """R's smoking_prop at the reference tolerances, log-likelihood
    included, from the arms: the contrasts rebuilt with the data set's
    augmented arm and stored, as its columns are, in float32."""
    wide, arms = smoking_long()
    net = smm.network_contrasts(arms, "study", "treatment", "A",
                                events="events", n="n",
                                augment=stored_augment(wide))
    ref = case("smoking_prop")
    res = fit_prop(as_stored(net), net)
    assert_loglike(res, ref)
    assert res.llf == pytest.approx(ref.logLik, abs=1e-6)
    assert_estimates_of_smoking_prop(res, ref)


def test_consistency_model_on_exact_contrasts_agrees_with_smoking_prop():
    """With the exact augmentation (0.001, 0.01) and no float32 rounding
    the estimates, standard errors and Psi are still R's at the reference
    tolerances.  The log-likelihood is 8.2e-5 lower: in the augmented
    studies S is about 1111 everywhere and its determinant rests on the
    differences (about 0.1) between its entries, which float32 storage
    of the paper's columns perturbs by about 1e-4 relative."""
    _, arms = smoking_long()
    net = smm.network_contrasts(arms, "study", "treatment", "A",
                                events="events", n="n")
    ref = case("smoking_prop")
    res = fit_prop(net.frame, net)
    assert_estimates_of_smoking_prop(res, ref)
    assert res.llf - ref.logLik == pytest.approx(-8.2e-5, abs=5e-6)
    rounded = fit_prop(as_stored(net), net)
    assert rounded.llf - ref.logLik == pytest.approx(-2.2e-4, abs=5e-6)


# --------------------------------------------------------------------------
# hand computations
# --------------------------------------------------------------------------

def three_arm():
    """Study s1 with arms P (reference), X, Y; study s2 with P and Y."""
    return pd.DataFrame({
        "trial": ["s1", "s1", "s1", "s2", "s2"],
        "arm": ["X", "P", "Y", "P", "Y"],
        "d": [12.0, 8.0, 20.0, 5.0, 9.0],
        "size": [50.0, 40.0, 60.0, 30.0, 31.0],
        "m": [1.5, 1.0, 2.25, 0.5, 1.0],
        "s": [2.0, 1.5, 3.0, 1.0, 1.2],
    })


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_three_arm_binary_contrasts_by_hand(measure):
    data = three_arm()
    net = smm.network_contrasts(data, "trial", "arm", "P", measure=measure,
                                events="d", n="size")
    arm = {}
    for (_, row) in data.iterrows():
        d, n, p = row["d"], row["size"], row["d"] / row["size"]
        arm[row["trial"], row["arm"]] = {
            "OR": (np.log(d / (n - d)), 1 / d + 1 / (n - d)),
            "RR": (np.log(p), 1 / d - 1 / n),
            "RD": (p, p * (1 - p) / n)}[measure]
    (xp, vx), (pp, vp), (yp, vy) = (arm["s1", t] for t in "XPY")
    assert list(net.y.columns) == ["y_X", "y_Y"]
    np.testing.assert_allclose(net.y.loc["s1"], [xp - pp, yp - pp],
                               rtol=1e-14)
    np.testing.assert_allclose(net.S[0], [[vx + vp, vp], [vp, vy + vp]],
                               rtol=1e-14)
    (p2, v2), (y2, w2) = arm["s2", "P"], arm["s2", "Y"]
    assert np.isnan(net.y.loc["s2", "y_X"])
    assert net.y.loc["s2", "y_Y"] == pytest.approx(y2 - p2, rel=1e-14)
    assert np.isnan(net.S[1, 0]).all() and np.isnan(net.S[1, :, 0]).all()
    assert net.S[1, 1, 1] == pytest.approx(w2 + v2, rel=1e-14)
    assert net.design.tolist() == ["PXY", "PY"]
    assert net.frame.index.name == "trial"


def test_three_arm_mean_differences_by_hand():
    data = three_arm()
    net = smm.network_contrasts(data, "trial", "arm", "P", measure="MD",
                                mean="m", sd="s", n="size")
    vp, vx, vy = 1.5 ** 2 / 40, 2.0 ** 2 / 50, 3.0 ** 2 / 60
    np.testing.assert_allclose(net.y.loc["s1"], [0.5, 1.25], rtol=1e-14)
    np.testing.assert_allclose(net.S[0], [[vx + vp, vp], [vp, vy + vp]],
                               rtol=1e-14)
    assert net.S[1, 1, 1] == pytest.approx(1 / 30 + 1.2 ** 2 / 31)
    assert net.measure == "MD" and not net.info["augmented"].any()


def test_continuous_augmentation_uses_the_studys_pooled_arm():
    data = three_arm()
    data = data[data["arm"] != "P"].iloc[[0, 1]]     # s1: X and Y only
    data = pd.concat([data, three_arm().iloc[3:]])
    net = smm.network_contrasts(data, "trial", "arm", "P", measure="MD",
                                mean="m", sd="s", n="size", augment=0.05)
    mean = (50 * 1.5 + 60 * 2.25) / 110
    var = (49 * 4.0 + 59 * 9.0) / 108 / 0.05
    np.testing.assert_allclose(net.y.loc["s1"], [1.5 - mean, 2.25 - mean],
                               rtol=1e-14)
    np.testing.assert_allclose(
        net.S[0], [[4.0 / 50 + var, var], [var, 9.0 / 60 + var]],
        rtol=1e-14)
    assert net.info["augmented"].tolist() == [True, False]
    assert net.design.tolist() == ["XY", "PY"]


def test_standardized_mean_differences_by_hand():
    """Hedges' g against the shared arm, the SD pooled over the study's
    arms; a two-arm study gets metafor's escalc("SMD") values."""
    from scipy.special import gamma
    data = three_arm()
    net = smm.network_contrasts(data, "trial", "arm", "P", measure="SMD",
                                mean="m", sd="s", n="size")
    nu = 49 + 39 + 59
    sp = np.sqrt((49 * 4.0 + 39 * 2.25 + 59 * 9.0) / nu)
    j = gamma(nu / 2) / (np.sqrt(nu / 2) * gamma((nu - 1) / 2))
    gx, gy = j * 0.5 / sp, j * 1.25 / sp
    np.testing.assert_allclose(net.y.loc["s1"], [gx, gy], rtol=1e-12)
    big_n = 150
    expected = [[1 / 50 + 1 / 40 + gx ** 2 / (2 * big_n),
                 1 / 40 + gx * gy / (2 * big_n)],
                [1 / 40 + gx * gy / (2 * big_n),
                 1 / 60 + 1 / 40 + gy ** 2 / (2 * big_n)]]
    np.testing.assert_allclose(net.S[0], expected, rtol=1e-12)
    # two arms: sd pooled over the pair, J(n1 + n2 - 2), metafor's "LS"
    sp2 = np.sqrt((29 * 1.0 + 30 * 1.44) / 59)
    g = (1 - 3 / (4 * 59 - 1)) * 0.5 / sp2     # J's usual approximation
    assert net.y.loc["s2", "y_Y"] == pytest.approx(g, rel=1e-4)
    g = net.y.loc["s2", "y_Y"]
    assert net.S[1, 1, 1] == pytest.approx(1 / 30 + 1 / 31 + g ** 2 / 122,
                                           rel=1e-12)
    with pytest.raises(ValueError, match=r"studies \['s1'\] have no arm "
                       "of the reference 'P', and 'SMD' cannot augment"):
        smm.network_contrasts(data.drop(index=1), "trial", "arm", "P",
                              measure="SMD", mean="m", sd="s", n="size")
    tiny = data.assign(size=[1.0, 1.0, 1.0, 30.0, 31.0])
    with pytest.raises(ValueError, match=r"studies \['s1'\] have too few "
                       "individuals for 'SMD'"):
        smm.network_contrasts(tiny, "trial", "arm", "P", measure="SMD",
                              mean="m", sd="s", n="size")


def test_multiarm_contrasts_share_the_control_arm():
    data = three_arm()
    multi = smm.multiarm_contrasts(data, "trial", "arm", "P", events="d",
                                   n="size")
    net = smm.network_contrasts(data, "trial", "arm", "P", events="d",
                                n="size")
    pd.testing.assert_frame_equal(multi.frame, net.frame)
    assert multi.S[0, 0, 1] == pytest.approx(1 / 8 + 1 / 32, rel=1e-14)
    no_control = data[~((data["trial"] == "s2") & (data["arm"] == "P"))]
    no_control = pd.concat([no_control, pd.DataFrame(
        {"trial": ["s2"], "arm": ["X"], "d": [3.0], "size": [30.0]})])
    with pytest.raises(ValueError, match=r"studies \['s2'\] have no arm of "
                       "the reference 'P'"):
        smm.multiarm_contrasts(no_control, "trial", "arm", "P", events="d",
                               n="size")
    with pytest.raises(ValueError, match="takes no augment"):
        smm.multiarm_contrasts(data, "trial", "arm", "P", events="d",
                               n="size", augment=(0.1, 1.0))


def test_treatment_labels_of_several_characters_and_numbers():
    data = three_arm().replace({"arm": {"P": "placebo", "X": "drug x",
                                        "Y": "drug y"}})
    net = smm.network_contrasts(data, "trial", "arm", "placebo",
                                events="d", n="size")
    assert net.outcomes == ["y_drug x", "y_drug y"]
    assert net.design.tolist() == ["placebo:drug x:drug y", "placebo:drug y"]
    coded = three_arm().replace({"arm": {"P": 0, "X": 10, "Y": 2}})
    by_code = smm.network_contrasts(coded, "trial", "arm", 0, events="d",
                                    n="size")
    assert by_code.outcomes == ["y_2", "y_10"]      # sorted as numbers
    np.testing.assert_array_equal(by_code.y.to_numpy(),
                                  net.y.to_numpy()[:, ::-1])
    assert by_code.design.tolist() == ["0:2:10", "0:2"]


# --------------------------------------------------------------------------
# zero cells
# --------------------------------------------------------------------------

def zero_cell_data():
    data = three_arm()
    data.loc[1, "d"] = 0.0          # s1's reference arm has no events
    return data


def test_zero_cells_add_a_half_to_every_arm_of_that_study_only():
    data = zero_cell_data()
    net = smm.network_contrasts(data, "trial", "arm", "P", events="d",
                                n="size")
    assert net.info["corrected"].tolist() == [True, False]
    vp = 1 / 0.5 + 1 / 40.5
    x = np.log(12.5 / 38.5) - np.log(0.5 / 40.5)
    assert net.y.loc["s1", "y_X"] == pytest.approx(x, rel=1e-14)
    assert net.S[0, 0, 1] == pytest.approx(vp, rel=1e-14)
    assert net.S[0, 1, 1] == pytest.approx(1 / 20.5 + 1 / 40.5 + vp)
    untouched = smm.network_contrasts(three_arm(), "trial", "arm", "P",
                                      events="d", n="size")
    np.testing.assert_array_equal(net.S[1], untouched.S[1])
    # all studies, or all studies because one has a zero cell
    for to in ("all", "if0all"):
        every = smm.network_contrasts(data, "trial", "arm", "P", events="d",
                                      n="size", to=to, add=0.25)
        assert every.info["corrected"].all()
        assert every.S[1, 1, 1] == pytest.approx(
            1 / 5.25 + 1 / 25.25 + 1 / 9.25 + 1 / 22.25)
    clean = smm.network_contrasts(three_arm(), "trial", "arm", "P",
                                  events="d", n="size", to="if0all")
    assert not clean.info["corrected"].any()


def test_a_study_with_all_events_is_corrected_too():
    data = three_arm()
    data.loc[4, "d"] = 31.0            # s2's arm Y: no non-events
    net = smm.network_contrasts(data, "trial", "arm", "P", events="d",
                                n="size")
    assert net.info["corrected"].tolist() == [False, True]
    assert net.S[1, 1, 1] == pytest.approx(
        1 / 5.5 + 1 / 25.5 + 1 / 31.5 + 1 / 0.5)


def test_uncorrected_zero_cells_are_refused_except_for_risk_differences():
    data = zero_cell_data()
    for measure in ("OR", "RR"):
        with pytest.raises(ValueError, match=r"studies \['s1'\] have arms "
                           "with zero events"):
            smm.network_contrasts(data, "trial", "arm", "P", events="d",
                                  n="size", measure=measure, to="none")
    with pytest.raises(ValueError, match=r"studies \['s1'\]"):
        smm.network_contrasts(data, "trial", "arm", "P", events="d",
                              n="size", add=0)
    rd = smm.network_contrasts(data, "trial", "arm", "P", events="d",
                               n="size", measure="RD", to="none")
    assert rd.y.loc["s1", "y_X"] == pytest.approx(12 / 50)
    assert rd.S[0, 0, 1] == 0.0


# --------------------------------------------------------------------------
# errors, and the caller's data
# --------------------------------------------------------------------------

def call(data, **kw):
    args = dict(study="trial", treatment="arm", reference="P", events="d",
                n="size")
    args.update(kw)
    return smm.network_contrasts(data, **args)


def test_the_callers_data_are_not_modified():
    data = zero_cell_data().set_index(pd.Index(list("abcde")))
    before = data.copy()
    call(data)
    call(data.iloc[1:], augment=(0.01, 0.1))
    call(data, measure="MD", mean="m", sd="s", events=None)
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize("change, message", [
    (lambda d: pd.concat([d, d.iloc[[1]]]),
     r"rows \[1, 1\] repeat a \(study, treatment\) pair"),
    (lambda d: d.assign(d=[12.0, 8.0, 70.0, 5.0, 9.0]),
     r"more events than n in rows \[2\]; events must satisfy 0 <= events"),
    (lambda d: d.assign(d=[12.0, -1.0, 20.0, 5.0, 9.0]),
     r"negative events in rows \[1\]"),
    (lambda d: d.assign(size=[50.0, 40.0, 60.0, 0.0, 31.0]),
     r"n not positive in rows \[3\]"),
    (lambda d: d.drop(index=4),
     r"studies \['s2'\] have a single arm"),
    (lambda d: d.assign(d=[12.0, np.nan, 20.0, 5.0, 9.0]),
     r"column 'd' is missing or not finite in rows \[1\]"),
    (lambda d: d.assign(d=["12", "8", "x", "5", "9"]),
     r"column 'd' must hold numbers"),
    (lambda d: d.assign(arm=["X", None, "Y", "P", "Y"]),
     r"column 'arm' is missing in rows \[1\]"),
])
def test_bad_arms_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        call(change(three_arm()))


def test_bad_arguments_are_named():
    data = three_arm()
    with pytest.raises(ValueError, match=r"reference 'Q' is not a treatment"
                       r" of the data; the treatments are \['P', 'X', 'Y'\]"):
        call(data, reference="Q")
    with pytest.raises(ValueError, match=r"events='deaths' is not a column "
                       r"of data; the columns are \['trial'"):
        call(data, events="deaths")
    with pytest.raises(ValueError, match="study='id' is not a column"):
        call(data, study="id")
    with pytest.raises(ValueError, match=r"measure 'MD' needs the column "
                       r"names \['mean', 'sd', 'n'\]; \['mean', 'sd'\] not"):
        call(data, measure="MD")
    with pytest.raises(ValueError, match=r"measure must be one of \['OR', "
                       r"'RR', 'RD', 'MD', 'SMD'\], got 'ROM'"):
        call(data, measure="ROM")
    with pytest.raises(ValueError, match="data must be a DataFrame"):
        call(data.to_dict())
    with pytest.raises(ValueError, match=r"augment must be a pair \(events, "
                       r"n\) with 0 < events < n, got \(0.1, 0.01\)"):
        call(data, augment=(0.1, 0.01))
    with pytest.raises(ValueError, match="augment must be a number of "
                       "individuals > 0 for a continuous measure"):
        call(data, measure="MD", mean="m", sd="s", augment=(0.1, 0.01))
    with pytest.raises(ValueError, match=r"to must be one of \['only0', "
                       r"'all', 'if0all', 'none'\], got 'zeros'"):
        call(data, to="zeros")
    with pytest.raises(ValueError, match="add must be a number >= 0"):
        call(data, add=-0.5)
    with pytest.raises(ValueError, match=r"sd not positive in rows \[0\]"):
        call(data.assign(s=[0.0, 1.5, 3.0, 1.0, 1.2]), measure="MD",
             mean="m", sd="s")
    with pytest.raises(ValueError, match=r"studies \['s1'\] have no arm of "
                       "the reference 'P'; every study must include it"):
        call(data.drop(index=1), augment=False)


def test_row_order_does_not_matter_and_rows_are_named_by_label():
    _, arms = smoking_long()
    net = smm.network_contrasts(arms, "study", "treatment", "A",
                                events="events", n="n")
    shuffled = arms.sample(frac=1.0, random_state=3)
    again = smm.network_contrasts(shuffled, "study", "treatment", "A",
                                  events="events", n="n")
    pd.testing.assert_frame_equal(again.frame, net.frame)
    np.testing.assert_array_equal(again.S, net.S)
    labelled = three_arm().set_index(pd.Index(list("abcde")))
    labelled.loc["c", "d"] = 61.0
    with pytest.raises(ValueError, match=r"more events than n in rows "
                       r"\['c'\]"):
        call(labelled)
