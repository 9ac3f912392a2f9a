"""
Leave-one-out refits and influence diagnostics (issue 11).

Every leave-one-out row is held against a fit of the data without that
group from scratch (a new formula model, default start), at the project's
tolerances; every influence statistic is computed here by hand, with dense
matrices, from those fits from scratch (the formulas of
``statsmodels_mixmeta.results.influence``, which are metafor's
``influence.rma.uni`` for one value per group).
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta  # noqa: F401  (registers smf.mixmeta)
from statsmodels_mixmeta import datasets

COEF = dict(rtol=1e-4, atol=1e-6)
PSI = dict(rtol=1e-3, atol=1e-5)
CLOSED = dict(rtol=1e-8, atol=1e-10)
LLF = dict(rtol=0, atol=1e-6)


def bcg():
    return datasets.load_bcg()


def berkey():
    data = datasets.load_berkey98().set_index("trial")
    data["year"] = data["pubyear"] - 1983
    return data


BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]

# name: (data, group column or None (a row is a group), formula, options)
CASES = {
    "bcg_meta": (bcg, None, "logor ~ 1", dict(S="logorvar")),
    "bcg_metareg": (bcg, None, "logor ~ ablat", dict(S="logorvar")),
    "bcg_metareg_ml": (bcg, None, "logor ~ ablat",
                       dict(S="logorvar", method="ml")),
    "bcg_fixed": (bcg, None, "logor ~ ablat",
                  dict(S="logorvar", method="fixed")),
    "bcg_mm": (bcg, None, "logor ~ ablat", dict(S="logorvar", method="mm")),
    "bcg_vc": (bcg, None, "logor ~ ablat", dict(S="logorvar", method="vc")),
    "berkey_ml": (berkey, None, "PD + AL ~ year",
                  dict(S=BERKEY_S, method="ml")),
    "berkey_reml": (berkey, None, "PD + AL ~ year", dict(S=BERKEY_S)),
    "berkey_mm": (berkey, None, "PD + AL ~ year",
                  dict(S=BERKEY_S, method="mm")),
    "school": (datasets.load_school, "district", "effect ~ 1",
               dict(S="var", random="~ 1 | district/study")),
    # Psi on its boundary: every refit runs the second start
    "p53": (datasets.load_p53, None, "y1 + y2 ~ 1",
            dict(S=["V1", "V2"], Scor=0.95)),
    # three outcomes, most of them missing; Psi on its boundary
    "smoking": (datasets.load_smoking, None, "yB + yC + yD ~ 1",
                dict(S=["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"])),
}

_FITS = {}


def fits(case):
    """The full fit, its leave-one-out frame and the fits from scratch
    without each group (computed once per case)."""
    if case not in _FITS:
        load, group, formula, options = CASES[case]
        data = load()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = smf.mixmeta(formula, data=data, **options).fit()
            loo = full.leave_one_out()
            keys = data.index if group is None else data[group]
            scratch = {label: smf.mixmeta(
                formula, data=data[np.asarray(keys != label)],
                **options).fit() for label in loo.index}
        _FITS[case] = (data, full, loo, scratch)
    return _FITS[case]


def psi_blocks(fit):
    psi = fit.psi
    frames = psi.values() if isinstance(psi, dict) else [psi]
    return [np.asarray(f, dtype=float) for f in frames]


# ----------------------------------------------------------- leave-one-out
@pytest.mark.parametrize("case", sorted(CASES))
def test_leave_one_out_rows_equal_fits_from_scratch(case):
    _, full, loo, scratch = fits(case)
    names = list(full.params.index)
    assert loo.index.tolist() == list(scratch)
    assert loo["converged"].all()
    for label, fit in scratch.items():
        row = loo.loc[label]
        np.testing.assert_allclose(row[names].astype(float), fit.params,
                                   **COEF)
        np.testing.assert_allclose(
            row[[f"se:{n}" for n in names]].astype(float), fit.bse, **COEF)
        psi_columns = [c for c in loo.columns if c.startswith("psi")]
        entries = np.concatenate([b[np.tril_indices(b.shape[0])]
                                  for b in psi_blocks(fit)]) \
            if psi_columns else np.empty(0)
        np.testing.assert_allclose(row[psi_columns].astype(float), entries,
                                   **PSI)
        q = fit.q_test()
        q_columns = [c for c in loo.columns
                     if c == "q" or c.startswith("q:")]
        np.testing.assert_allclose(row[q_columns].astype(float),
                                   q.statistic, **CLOSED)
        i2_columns = [c for c in loo.columns
                      if c == "i2" or c.startswith("i2:")]
        np.testing.assert_allclose(row[i2_columns].astype(float),
                                   np.asarray(fit.i2), **CLOSED)
        if np.isfinite(fit.llf):
            np.testing.assert_allclose(row["llf"], fit.llf, **LLF)
        else:
            assert np.isnan(row["llf"])


def test_leave_one_out_columns_and_index():
    _, full, loo, _ = fits("berkey_ml")
    assert loo.index.name == "group"
    assert list(loo.index) == list(berkey().index)
    assert list(loo.columns[:4]) == list(full.params.index)
    assert ["psi:PD,PD", "psi:AL,PD", "psi:AL,AL"] == [
        c for c in loo.columns if c.startswith("psi")]
    assert {"q", "q:PD", "q:AL", "i2", "i2:AL", "q_df"} <= set(loo.columns)
    _, _, school_loo, _ = fits("school")
    assert school_loo.index.name == "district"
    assert "psi[study]:Intercept,Intercept" in school_loo.columns


def test_a_group_that_cannot_be_left_out_gets_nan_and_a_message():
    data = bcg()
    data.loc[0, "alloc"] = "other"     # a level only trial 0 has
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = smf.mixmeta("logor ~ C(alloc)", data=data,
                          S="logorvar").fit()
        loo = res.leave_one_out()
    assert not loo.loc[0, "converged"]
    assert loo.loc[0].drop("converged").astype(float).isna().all()
    assert loo.drop(index=0)["converged"].all()
    assert any("ValueError" in key for key in loo.attrs["messages"])


# --------------------------------------------------- influence by hand
def univariate_by_hand(data, full, scratch, formula_x):
    """metafor's influence.rma.uni statistics from fits from scratch."""
    y = data["logor"].to_numpy()
    v = data["logorvar"].to_numpy()
    X = formula_x(data)
    b, V = np.asarray(full.params), np.asarray(full.cov_params())
    tau2 = float(np.asarray(full.psi).ravel()[0]) if full.psis else 0.0
    W = np.diag(1 / (v + tau2))
    hat = np.diag(X @ V @ X.T @ W)
    rows = []
    for i, fit in enumerate(scratch.values()):
        bi, Vi = np.asarray(fit.params), np.asarray(fit.cov_params())
        tau2_i = float(np.asarray(fit.psi).ravel()[0]) if fit.psis else 0.0
        x = X[i]
        rows.append({
            "student_resid": (y[i] - x @ bi)
            / np.sqrt(v[i] + tau2_i + x @ Vi @ x),
            "dffits": (x @ b - x @ bi) / np.sqrt(hat[i] * (tau2_i + v[i])),
            "cooks_d": (b - bi) @ np.linalg.inv(V) @ (b - bi),
            "cov_ratio": np.linalg.det(Vi) / np.linalg.det(V),
            "hat_diag": hat[i],
            **{f"dfb_{name}": d for name, d in zip(
                full.params.index, (b - bi) / np.sqrt(np.diag(Vi)))},
            **({"tau2_del": tau2_i} if full.psis else {}),
            "q_del": fit.q_test().statistic[0],
        })
    return pd.DataFrame(rows, index=list(scratch))


@pytest.mark.parametrize("case, design", [
    ("bcg_meta", lambda d: np.ones((len(d), 1))),
    ("bcg_metareg", lambda d: np.column_stack([np.ones(len(d)),
                                               d["ablat"]])),
    ("bcg_metareg_ml", lambda d: np.column_stack([np.ones(len(d)),
                                                  d["ablat"]])),
    ("bcg_fixed", lambda d: np.column_stack([np.ones(len(d)), d["ablat"]])),
    ("bcg_mm", lambda d: np.column_stack([np.ones(len(d)), d["ablat"]])),
])
def test_univariate_influence_equals_metafor_definitions(case, design):
    data, full, _, scratch = fits(case)
    frame = full.get_influence().summary_frame()
    expected = univariate_by_hand(data, full, scratch, design)
    assert list(frame.columns) == list(expected.columns)
    assert list(frame.index) == list(expected.index)
    np.testing.assert_allclose(frame.to_numpy(float), expected.to_numpy(),
                               rtol=1e-4, atol=1e-6)
    # the hat values of a fit sum to its number of coefficients
    np.testing.assert_allclose(frame["hat_diag"].sum(), len(full.params),
                               **CLOSED)


def grouped_by_hand(full, scratch, blocks):
    """
    The group statistics of the module docstring with dense matrices:
    ``blocks(fit, label) -> (y_i, X_i, Sigma_i)`` of group ``label`` at
    ``fit``'s Psi.
    """
    b, V = np.asarray(full.params), np.asarray(full.cov_params())
    rows = {}
    for label, fit in scratch.items():
        bi, Vi = np.asarray(fit.params), np.asarray(fit.cov_params())
        y, X, sigma = blocks(full, label)
        _, _, sigma_del = blocks(fit, label)
        hat = np.trace(X @ V @ X.T @ np.linalg.inv(sigma))
        d = y - X @ bi
        chi2 = d @ np.linalg.solve(sigma_del + X @ Vi @ X.T, d)
        change = X @ (b - bi)
        rows[label] = {
            "student_resid": np.sqrt(chi2),
            "dffits": np.sqrt(change @ np.linalg.solve(sigma_del, change)
                              / hat),
            "cooks_d": (b - bi) @ np.linalg.solve(V, b - bi),
            "cov_ratio": np.linalg.det(Vi) / np.linalg.det(V),
            "hat_diag": hat,
            **{f"dfb_{n}": x for n, x in zip(
                full.params.index, (b - bi) / np.sqrt(np.diag(Vi)))},
            "q_del": fit.q_test().statistic[0],
            "student_chi2": chi2,
            "n_values": len(y),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


@pytest.mark.parametrize("case", ["berkey_ml", "berkey_reml", "berkey_mm"])
def test_bivariate_influence_by_hand(case):
    data, full, _, scratch = fits(case)

    def blocks(fit, label):
        row = data.loc[label]
        S = np.array([[row.var_PD, row.cov_PD_AL],
                      [row.cov_PD_AL, row.var_AL]])
        X = np.kron(np.eye(2), [[1.0, row.year]])
        return (np.array([row.PD, row.AL]), X,
                S + np.asarray(fit.psi, float))

    frame = full.get_influence().summary_frame()
    expected = grouped_by_hand(full, scratch, blocks)
    psi_del = frame[["psi_del:PD,PD", "psi_del:AL,PD", "psi_del:AL,AL"]]
    np.testing.assert_allclose(
        psi_del.to_numpy(), [np.asarray(f.psi)[[0, 1, 1], [0, 0, 1]]
                             for f in scratch.values()], **PSI)
    frame = frame.drop(columns=psi_del.columns)
    assert list(frame.columns) == list(expected.columns)
    np.testing.assert_allclose(frame.to_numpy(float),
                               expected.to_numpy(float), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(frame["hat_diag"].sum(), 4, **CLOSED)


def test_multilevel_influence_by_hand():
    data, full, _, scratch = fits("school")

    def blocks(fit, label):
        rows = data[data["district"] == label]
        n = len(rows)
        district = float(np.asarray(fit.psi["district"]).item())
        study = float(np.asarray(fit.psi["study"]).item())
        sigma = (np.diag(rows["var"].to_numpy()) + district * np.ones((n, n))
                 + study * np.eye(n))
        return rows["effect"].to_numpy(), np.ones((n, 1)), sigma

    influence = full.get_influence()
    frame = influence.summary_frame()
    expected = grouped_by_hand(full, scratch, blocks)
    psi_columns = ["psi_del[district]:Intercept,Intercept",
                   "psi_del[study]:Intercept,Intercept"]
    np.testing.assert_allclose(
        frame[psi_columns].to_numpy(),
        [[np.asarray(f.psi["district"]).item(),
          np.asarray(f.psi["study"]).item()] for f in scratch.values()],
        **PSI)
    frame = frame.drop(columns=psi_columns)
    assert list(frame.columns) == list(expected.columns)
    np.testing.assert_allclose(frame.to_numpy(float),
                               expected.to_numpy(float), rtol=1e-4,
                               atol=1e-6)
    # statsmodels' attribute names carry the same numbers
    np.testing.assert_allclose(influence.cooks_distance,
                               expected["cooks_d"], rtol=1e-4)
    np.testing.assert_allclose(influence.hat_matrix_diag.sum(), 1.0,
                               **CLOSED)
    np.testing.assert_allclose(
        influence.d_params.to_numpy(),
        np.asarray(full.params) - np.array([np.asarray(f.params)
                                            for f in scratch.values()]),
        **COEF)


def test_influence_attributes_share_the_frame():
    _, full, loo, _ = fits("bcg_metareg")
    influence = full.get_influence()
    frame = influence.summary_frame()
    np.testing.assert_array_equal(influence.resid_studentized_external,
                                  frame["student_resid"])
    np.testing.assert_array_equal(influence.dfbetas.to_numpy(),
                                  frame[["dfb_Intercept",
                                         "dfb_ablat"]].to_numpy())
    np.testing.assert_array_equal(influence.params_not_obsi.to_numpy(),
                                  loo[["Intercept", "ablat"]].to_numpy())
    np.testing.assert_array_equal(influence.q_del, loo["q"])
    # one value per group: no chi-square columns
    assert "student_chi2" not in frame.columns


# ------------------------------------- refits are certified as from scratch
def stuck_data(method):
    """A data set of tests/test_restarts.py whose likelihood has a local
    maximum at tau2 = 0 below an interior global one, and one more study
    at the weighted mean whose addition moves the global maximum to 0."""
    rng = np.random.default_rng({"reml": 1418, "ml": 522}[method])
    v = rng.gamma(2.0, 1 / 20, 20)
    tau2 = rng.uniform(0, 0.1)
    y = 0.1 + rng.normal(0, np.sqrt(tau2), 20) + rng.normal(0, np.sqrt(v))
    return (y, v), (np.append(y, np.average(y, weights=1 / v)),
                    np.append(v, 0.05))


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_a_refit_started_at_a_local_maximum_reaches_the_global_one(method):
    from statsmodels_mixmeta import MixMeta
    from statsmodels_mixmeta.fitting import nearby
    (y, v), (y_all, v_all) = stuck_data(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = MixMeta(y_all, None, S=v_all, method=method).fit()
        without_last = MixMeta(y, None, S=v, method=method).fit()
        loo = full.leave_one_out()
    # the premises: the full fit is at tau2 = 0, the fit without the last
    # study inside, and tau2 = 0 is a local maximum of the latter
    assert full.psis[0][0, 0] == 0
    assert without_last.psis[0][0, 0] > 1e-3
    objective = without_last.model.objective
    assert nearby.beaten_by_scan([objective], np.zeros((1, 1)))[0]
    assert not nearby.beaten_by_scan([objective],
                                     without_last.theta[None, :])[0]
    # the refit started from the full fit's tau2 = 0 is rescued
    np.testing.assert_allclose(loo["psi:y,y"].iloc[-1],
                               without_last.psis[0][0, 0], **PSI)
    np.testing.assert_allclose(loo["llf"].iloc[-1], without_last.llf, **LLF)
    np.testing.assert_allclose(loo["Intercept"].iloc[-1],
                               without_last.params[0], **COEF)


def test_missing_outcomes_influence_by_hand():
    """Groups of one, two and three observed outcomes: a group of one
    value keeps the univariate signs."""
    data, full, _, scratch = fits("smoking")
    outcomes = ["yB", "yC", "yD"]

    def blocks(fit, label):
        row = data.loc[label]
        S = np.array([[row.SBB, row.SBC, row.SBD],
                      [row.SBC, row.SCC, row.SCD],
                      [row.SBD, row.SCD, row.SDD]])
        seen = np.flatnonzero(row[outcomes].notna().to_numpy())
        sigma = (S + np.asarray(fit.psi, float))[np.ix_(seen, seen)]
        X = np.eye(3)[seen]
        return row[outcomes].to_numpy(float)[seen], X, sigma

    frame = full.get_influence().summary_frame()
    expected = grouped_by_hand(full, scratch, blocks)
    single = expected["n_values"] == 1
    assert single.any() and (expected["n_values"] == 3).any()
    # one value: the signed residual and DFFITS of the univariate formulas
    for label in expected.index[single]:
        y, X, _ = blocks(full, label)
        fit = scratch[label]
        bi = np.asarray(fit.params)
        expected.loc[label, "student_resid"] *= np.sign((y - X @ bi)[0])
        expected.loc[label, "dffits"] *= np.sign(
            (X @ (np.asarray(full.params) - bi))[0])
    frame = frame.drop(columns=[c for c in frame.columns
                                if c.startswith("psi_del")])
    assert list(frame.columns) == list(expected.columns)
    np.testing.assert_allclose(frame.to_numpy(float),
                               expected.to_numpy(float), rtol=1e-4,
                               atol=1e-6)
    assert (frame.loc[single, "student_resid"] < 0).any()


def test_after_remove_data_leave_one_out_says_why_it_cannot():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = smf.mixmeta("logor ~ ablat", data=bcg(), S="logorvar").fit()
    res.remove_data()
    for call in (res.leave_one_out, res.get_influence):
        with pytest.raises(AttributeError, match="remove_data"):
            call()


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_group_terms_of_the_score_sum_to_the_score(method):
    """The per-group terms that start the refits add up to the kernel's
    gradient, away from the optimum too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixmeta("effect ~ 1", data=datasets.load_school(), S="var",
                          random="~ 1 | district/study",
                          method=method).fit()
    kernel = fit.model.kernel
    state = fit.model.objective.state(1.3 * fit.theta)
    terms = kernel.group_psi_gradients(state, fit.model.n_groups)
    for per_group, total in zip(terms, kernel.psi_gradient(state)):
        assert per_group.shape == (11,) + total.shape
        np.testing.assert_allclose(per_group.sum(axis=0), total,
                                   rtol=1e-12, atol=1e-12)
        assert np.all(np.abs(per_group).max(axis=(1, 2)) > 0)


@pytest.mark.parametrize("case", ["school", "smoking", "berkey_reml"])
def test_batches_without_a_group_fit_as_the_subsets_own(case):
    """The full fit's stacks less one group's (what the refits use) give
    the likelihood, score and Hessian of the batches built for the design
    without that group, and map its values as those do."""
    load, group, formula, options = CASES[case]
    data = load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixmeta(formula, data=data, **options)
        fit = model.fit()
    design = model.design
    labels = design.levels.outer_labels
    theta = 1.2 * fit.theta + 0.01
    for i in (0, labels.size // 2, labels.size - 1):
        built = type(model).from_design(design.subset(np.delete(labels, i)),
                                        method=model.method)
        masked = type(model).from_design(built.design, method=model.method)
        masked.__dict__["_batch_cache"] = model._batches.without_group(
            i, masked._kernel_long())
        assert masked._batches is not built._batches
        for a, b in ((masked.objective.loglike(theta),
                      built.objective.loglike(theta)),
                     (masked.objective.score(theta),
                      built.objective.score(theta)),
                     (masked.objective.hessian(theta),
                      built.objective.hessian(theta))):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        # each stacked value sits at its own position in long order
        np.testing.assert_array_equal(
            masked._batches.to_long([b.y for b in masked._batches]),
            built.design.long.y)
        np.testing.assert_array_equal(
            masked._batches.to_long([b.X for b in masked._batches]),
            built._batches.to_long([b.X for b in built._batches]))
        for stacks in (masked._batches, built._batches):
            assert sorted(np.concatenate([b.groups for b in stacks])) == \
                list(range(labels.size - 1))
        np.testing.assert_array_equal(
            np.sort(np.concatenate([b.index[b.valid]
                                    for b in masked._batches])),
            np.arange(built._batches.n_values))
