"""
The first-stage helper ``two_stage`` (serially) and its result: estimates
and covariance blocks against hand loops over the groups, the pooled
estimates against hand computations, each kind of first-stage failure, the
partial keep, covariates, ``from_results`` and the input errors.
"""
import concurrent.futures as cf
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm


def ols_sites(n_sites=8, n=30, seed=0):
    rng = np.random.default_rng(seed)
    site = np.repeat([f"s{i:02d}" for i in range(n_sites)], n)
    x = rng.normal(size=n_sites * n)
    slope = 0.5 + rng.normal(0, 0.2, n_sites)
    lat = np.repeat(np.round(rng.uniform(20, 60, n_sites), 1), n)
    region = np.repeat(np.array(["north", "south"])[np.arange(n_sites) % 2], n)
    y = 1 + np.repeat(slope, n) * x + rng.normal(size=n_sites * n)
    return pd.DataFrame({"site": site, "x": x, "y": y, "lat": lat,
                         "region": region})


def poisson_sites(n_sites=10, n=80, seed=1):
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), n)
    x = rng.normal(size=n_sites * n)
    treat = rng.integers(0, 2, n_sites * n)
    effect = 0.2 + rng.normal(0, 0.1, n_sites)
    mu = np.exp(1 + 0.3 * x + effect[site] * treat)
    trials = rng.integers(5, 15, n_sites * n)
    p = 1 / (1 + np.exp(-(-0.5 + 0.4 * x + effect[site] * treat)))
    return pd.DataFrame({"site": site, "x": x, "treat": treat,
                         "deaths": rng.poisson(mu), "trials": trials,
                         "events": rng.binomial(trials, p)})


def fit_ols(frame):
    return smf.ols("y ~ x", frame).fit()


def fit_poisson(frame):
    return smf.glm("deaths ~ x + treat", frame,
                   family=sm.families.Poisson()).fit()


def fit_binomial(frame):
    endog = np.column_stack([frame["events"],
                             frame["trials"] - frame["events"]])
    exog = sm.add_constant(frame[["x", "treat"]])
    return sm.GLM(endog, exog, family=sm.families.Binomial()).fit()


def quietly(call, *args, **kwargs):
    """Without statsmodels' warnings (ours still show)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", smm.FirstStageWarning)
        return call(*args, **kwargs)


def by_hand(data, column, fit, names):
    """The hand-written loop: each group's estimates and cov block."""
    y, S, labels = [], [], []
    for label, frame in data.groupby(column):
        res = fit(frame)
        y.append(np.asarray(res.params.loc[names]))
        S.append(np.asarray(res.cov_params().loc[names, names]))
        labels.append(label)
    return labels, np.array(y), np.array(S)


@pytest.mark.parametrize("fit, names, make", [
    (fit_ols, ["x"], ols_sites),
    (fit_ols, ["Intercept", "x"], ols_sites),
    (fit_poisson, ["treat"], poisson_sites),
    (fit_poisson, ["x", "treat"], poisson_sites),
    (fit_binomial, ["x", "treat"], poisson_sites),
])
def test_estimates_and_blocks_equal_a_hand_loop(fit, names, make):
    data = make()
    res2 = smm.two_stage(data, "site", fit, names)
    labels, y, S = by_hand(data, "site", fit, names)
    assert list(res2.groups) == labels
    assert res2.param_names == names
    assert list(res2.y.columns) == names
    np.testing.assert_allclose(res2.y.to_numpy(), y, rtol=1e-12, atol=0)
    np.testing.assert_allclose(res2.S, S, rtol=1e-12, atol=0)
    assert res2.failures.empty
    table = res2.table
    for j, name in enumerate(names):
        np.testing.assert_allclose(table[f"se_{name}"],
                                   np.sqrt(S[:, j, j]), rtol=1e-12)
    if len(names) == 2:
        np.testing.assert_allclose(table[f"cov_{names[0]}_{names[1]}"],
                                   S[:, 0, 1], rtol=1e-12)
        assert np.all(S[:, 0, 1] != 0)        # the covariance is carried
    assert table["nobs"].tolist() == data.groupby("site").size().tolist()
    assert table["converged"].all() and table["pooled"].all()


def test_mixedlm_first_stage_takes_the_fixed_block_by_name():
    rng = np.random.default_rng(3)
    n_sites, n_clusters, m = 5, 10, 8
    n = n_sites * n_clusters * m
    site = np.repeat(np.arange(n_sites), n_clusters * m)
    cluster = np.repeat(np.arange(n_sites * n_clusters), m)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 1, n_sites * n_clusters)[cluster] \
        + rng.normal(size=n)
    data = pd.DataFrame({"site": site, "cluster": cluster, "x": x, "y": y})

    def fit(frame):
        return smf.mixedlm("y ~ x", frame, groups="cluster").fit()
    res2 = quietly(smm.two_stage, data, "site", fit, ["Intercept", "x"])
    assert res2.failures.empty
    for i, (label, frame) in enumerate(data.groupby("site")):
        res = quietly(fit, frame)
        assert "cluster Var" in res.cov_params().index
        np.testing.assert_allclose(res2.y.iloc[i], res.fe_params,
                                   rtol=1e-12)
        np.testing.assert_allclose(
            res2.S[i], res.cov_params().loc[["Intercept", "x"],
                                            ["Intercept", "x"]], rtol=1e-12)


def test_fixed_pooling_is_the_inverse_variance_mean():
    data = ols_sites()
    res2 = smm.two_stage(data, "site", fit_ols, ["x"])
    fit = res2.fit(method="fixed")
    w = 1 / res2.S[:, 0, 0]
    mean = np.sum(w * res2.y["x"]) / np.sum(w)
    assert list(fit.params.index) == ["x"]
    np.testing.assert_allclose(fit.params["x"], mean, rtol=1e-10)
    np.testing.assert_allclose(fit.bse["x"], np.sqrt(1 / np.sum(w)),
                               rtol=1e-10)


def test_multivariate_fixed_pooling_is_the_gls_mean():
    data = poisson_sites()
    names = ["x", "treat"]
    res2 = smm.two_stage(data, "site", fit_poisson, names)
    fit = res2.fit(method="fixed")
    precision = np.linalg.inv(res2.S)
    total = precision.sum(axis=0)
    mean = np.linalg.solve(total, np.einsum("ijk,ik->j", precision,
                                            res2.y.to_numpy()))
    assert list(fit.params.index) == names
    np.testing.assert_allclose(fit.params, mean, rtol=1e-10)
    np.testing.assert_allclose(fit.cov_params(), np.linalg.inv(total),
                               rtol=1e-10)


def test_reml_pooling_equals_mixmeta_on_the_arrays():
    data = poisson_sites()
    res2 = smm.two_stage(data, "site", fit_poisson, ["x", "treat"])
    fit = res2.fit()
    direct = smm.MixMeta(res2.y.to_numpy(), None, S=res2.S).fit()
    np.testing.assert_allclose(fit.params.to_numpy(), direct.params,
                               rtol=1e-10)
    np.testing.assert_allclose(fit.psi, direct.psi, rtol=1e-8, atol=1e-12)
    assert list(fit.params.index) == ["x", "treat"]


def test_covariates_flow_to_the_table_and_the_meta_regression():
    data = ols_sites()
    res2 = smm.two_stage(data, "site", fit_ols, ["x"],
                         covariates=["lat", "region"])
    lat = data.groupby("site")["lat"].first()
    np.testing.assert_array_equal(res2.table["lat"], lat)
    np.testing.assert_array_equal(res2.covariates["lat"], lat)
    assert res2.table["region"].tolist()[:2] == ["north", "south"]
    fit = res2.fit("~ lat", method="ml")
    assert list(fit.params.index) == ["x:Intercept", "x:lat"]
    frame = pd.DataFrame({"b": res2.y["x"], "v": res2.S[:, 0, 0],
                          "lat": lat})
    direct = smf.mixmeta("b ~ lat", data=frame, S="v", method="ml").fit()
    np.testing.assert_allclose(fit.params.to_numpy(), direct.params,
                               rtol=1e-10)
    np.testing.assert_allclose(fit.bse.to_numpy(), direct.bse, rtol=1e-8)
    # random= over a group-level factor (two sites per region level)
    nested = res2.mixmeta("~ 1", random="~ 1 | region").fit()
    frame["region"] = res2.covariates["region"]
    same = smf.mixmeta("b ~ 1", data=frame, S="v",
                       random="~ 1 | region").fit()
    np.testing.assert_allclose(nested.params.to_numpy(), same.params,
                               rtol=1e-8)
    assert list(nested.params.index) == ["x"]


def test_from_results_equals_two_stage():
    data = poisson_sites()
    names = ["x", "treat"]
    res2 = smm.two_stage(data, "site", fit_poisson, names)
    fits = {label: fit_poisson(frame)
            for label, frame in data.groupby("site")}
    again = smm.two_stage.from_results(fits, names)
    assert list(again.groups) == list(res2.groups)
    np.testing.assert_array_equal(again.y, res2.y)
    np.testing.assert_array_equal(again.S, res2.S)
    listed = smm.TwoStage.from_results(list(fits.values()), names)
    assert list(listed.groups) == list(range(len(fits)))
    np.testing.assert_array_equal(listed.S, res2.S)
    covariates = pd.DataFrame({"w": np.arange(len(fits)) * 1.0},
                              index=list(fits))
    with_cov = smm.two_stage.from_results(fits, names, covariates=covariates)
    np.testing.assert_array_equal(with_cov.table["w"], covariates["w"])
    with pytest.raises(ValueError, match="no row for the groups"):
        smm.two_stage.from_results(fits, names, covariates=covariates.iloc[1:])


def test_callable_params():
    data = ols_sites()
    res2 = smm.two_stage(data, "site", fit_ols,
                         lambda res: [n for n in res.params.index
                                      if n != "Intercept"])
    assert res2.param_names == ["x"]


# --------------------------------------------------------------- failures

def failing_data():
    """Ten Poisson sites; site 3 observed only the treated condition (its
    treat column equals the intercept)."""
    data = poisson_sites()
    data.loc[data["site"] == 3, "treat"] = 1
    return data


def test_single_condition_site_keeps_its_estimable_coefficient():
    data = failing_data()
    with pytest.warns(smm.FirstStageWarning, match="0 of 10 groups left "
                      "out and 1 kept"):
        res2 = quietly(smm.two_stage, data, "site", fit_poisson,
                       ["x", "treat"])
    # statsmodels still reports a (minimum-norm) treat "estimate" with a
    # finite variance
    bogus = quietly(fit_poisson, data[data["site"] == 3])
    assert bogus.params["treat"] > 0.3 and 0 < bogus.bse["treat"] < 0.05
    np.testing.assert_allclose(bogus.params["treat"],
                               bogus.params["Intercept"], rtol=1e-8)
    assert res2.failures.to_dict("records") == [{
        "group": 3, "reason": "not identified: treat (rank-deficient design)",
        "params": "treat", "action": "kept estimable"}]
    assert len(res2.groups) == 10
    assert np.isnan(res2.y.loc[3, "treat"])
    np.testing.assert_allclose(res2.y.loc[3, "x"], bogus.params["x"],
                               rtol=1e-12)
    assert np.isnan(res2.S[3, 1, :]).all() and np.isnan(res2.S[3, :, 1]).all()
    np.testing.assert_allclose(res2.S[3, 0, 0], bogus.bse["x"] ** 2,
                               rtol=1e-12)
    # the second stage treats it as a missing outcome
    fit = res2.fit(method="fixed")
    assert fit.model.design.n_values == 19
    only_treat = smm.two_stage(data[data["site"] != 3], "site", fit_poisson,
                               ["treat"]).fit(method="fixed")
    w = 1 / res2.S[:, 1, 1]
    keep = np.isfinite(w)
    mean = np.sum(w[keep] * res2.y["treat"][keep]) / np.sum(w[keep])
    np.testing.assert_allclose(only_treat.params["treat"], mean, rtol=1e-10)


def test_a_dropped_level_is_not_in_the_fit():
    data = failing_data()

    def fit(frame):
        return smf.glm("deaths ~ x + C(treat)", frame,
                       family=sm.families.Poisson()).fit()
    with pytest.warns(smm.FirstStageWarning):
        res2 = quietly(smm.two_stage, data, "site", fit,
                       ["x", "C(treat)[T.1]"])
    assert res2.failures["reason"].tolist() == [
        "not identified: C(treat)[T.1] (not in this group's fit)"]
    assert np.isnan(res2.y.loc[3, "C(treat)[T.1]"])
    assert list(res2.fit().params.index) == ["x", "C(treat)[T.1]"]


def raises_on_site_2(frame):
    if frame["site"].iloc[0] == 2:
        raise np.linalg.LinAlgError("Singular matrix")
    return fit_poisson(frame)


def one_iteration_on_site_5(frame):
    model = smf.glm("deaths ~ x + treat", frame,
                    family=sm.families.Poisson())
    return model.fit(maxiter=1 if frame["site"].iloc[0] == 5 else 100)


def test_each_kind_of_failure_is_reported():
    data = failing_data()
    with pytest.warns(smm.FirstStageWarning, match="1 of 10 groups left out"):
        raised = quietly(smm.two_stage, data, "site", raises_on_site_2,
                         ["x", "treat"])
    first = raised.failures.iloc[0]
    assert first["group"] == 2 and first["action"] == "dropped"
    assert first["reason"] == "raised: LinAlgError: Singular matrix"
    assert first["params"] == "x, treat"
    assert 2 not in raised.groups and 3 in raised.groups
    assert not raised.table.loc[2, "pooled"]

    with pytest.warns(smm.FirstStageWarning):
        stopped = quietly(smm.two_stage, data, "site",
                          one_iteration_on_site_5, ["x", "treat"])
    row = stopped.failures[stopped.failures["group"] == 5].iloc[0]
    assert row["reason"] == "did not converge" and row["action"] == "dropped"
    assert not stopped.table.loc[5, "converged"]
    assert 5 not in stopped.groups


def test_zero_and_non_finite_variances_and_a_singular_block():
    rng = np.random.default_rng(4)
    frames = []
    for site in range(6):
        x = rng.normal(size=20)
        frames.append(pd.DataFrame({"site": site, "x": x, "cl": np.arange(20) % 2,
                                    "y": 1 + 0.5 * x + rng.normal(size=20)}))
    data = pd.concat(frames, ignore_index=True)
    data.loc[data["site"] == 1, "y"] = 2 + 3 * data["x"]       # exact fit
    data = data[(data["site"] != 2) | (data.index % 20 < 2)]   # 2 rows, 2 coefs

    def fit(frame):
        if frame["site"].iloc[0] == 4:   # two clusters: a rank-1 covariance
            return smf.ols("y ~ x", frame).fit(
                cov_type="cluster", cov_kwds={"groups": frame["cl"]})
        return smf.ols("y ~ x", frame).fit()
    with pytest.warns(smm.FirstStageWarning):
        res2 = quietly(smm.two_stage, data, "site", fit, ["Intercept", "x"])
    reasons = dict(zip(res2.failures["group"], res2.failures["reason"]))
    assert reasons == {1: "non-positive variance: Intercept, x",
                       2: "non-finite variance: Intercept, x",
                       4: "singular covariance block"}
    assert set(res2.failures["action"]) == {"dropped"}
    assert list(res2.groups) == [0, 3, 5]
    with pytest.raises(ValueError) as error:
        quietly(smm.two_stage, data, "site", fit, ["Intercept", "x"],
                on_failure="raise")
    text = str(error.value)
    for part in ["3 group(s)", "1: non-positive variance", "2: non-finite",
                 "4: singular covariance block"]:
        assert part in text


def test_on_failure_raise_lists_every_group():
    data = failing_data()
    with pytest.raises(ValueError, match=r"2 group\(s\)") as error:
        quietly(smm.two_stage, data, "site", raises_on_site_2,
                ["x", "treat"], on_failure="raise")
    assert "  2: raised: LinAlgError" in str(error.value)
    assert "  3: not identified: treat (rank-deficient design)" \
        in str(error.value)


def test_no_warning_without_failures():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smm.two_stage(ols_sites(), "site", fit_ols, ["x"])


# --------------------------------------------------------------- inputs

def test_bad_inputs_are_refused_by_name():
    data = ols_sites()
    with pytest.raises(ValueError, match="'town' is not a column"):
        smm.two_stage(data, "town", fit_ols, ["x"])
    with pytest.raises(ValueError, match=r"\['slope'\] are not coefficients"
                       r".*\['Intercept', 'x'\]"):
        smm.two_stage(data, "site", fit_ols, ["x", "slope"])
    with pytest.raises(ValueError, match="'x' varies within groups "
                       r"\['s00', 's01'"):
        smm.two_stage(data, "site", fit_ols, ["x"], covariates=["lat", "x"])
    with pytest.raises(ValueError, match=r"covariates \['height'\]"):
        smm.two_stage(data, "site", fit_ols, ["x"], covariates=["height"])
    with pytest.raises(ValueError, match="on_failure"):
        smm.two_stage(data, "site", fit_ols, ["x"], on_failure="skip")
    with pytest.raises(ValueError, match="one label per row"):
        smm.two_stage(data, data["site"][:5], fit_ols, ["x"])
    labels = data["site"].copy()
    labels.iloc[7] = None
    with pytest.raises(ValueError, match="missing labels in 1 row"):
        smm.two_stage(data, labels, fit_ols, ["x"])
    with pytest.raises(ValueError, match="executor must be None"):
        smm.two_stage(data, "site", fit_ols, ["x"], executor=object())
    res2 = smm.two_stage(data, "site", fit_ols, ["x"])
    with pytest.raises(ValueError, match=r"supplies \['S'\] itself"):
        res2.mixmeta("~ 1", S=np.ones(8))
    with pytest.raises(ValueError, match="right-hand side"):
        res2.mixmeta("y ~ 1")


def test_the_callers_data_are_not_modified():
    data = ols_sites().sample(frac=1.0, random_state=2)   # unsorted groups
    before = data.copy()
    res2 = smm.two_stage(data, "site", fit_ols, ["x"], covariates=["lat"])
    pd.testing.assert_frame_equal(data, before)
    labels, y, _ = by_hand(before, "site", fit_ols, ["x"])
    np.testing.assert_allclose(res2.y["x"], y[:, 0], rtol=1e-12)


def test_group_labels_as_an_array_and_unsortable_labels():
    data = ols_sites()
    res2 = smm.two_stage(data, data["site"].to_numpy(), fit_ols, ["x"])
    assert list(res2.groups) == sorted(data["site"].unique())
    mixed = np.where(data["site"] == "s00", 0, data["site"]).astype(object)
    res3 = smm.two_stage(data, mixed, fit_ols, ["x"])
    assert set(res3.groups) == {0} | set(data["site"]) - {"s00"}
    np.testing.assert_array_equal(res3.y.loc[0, "x"], res2.y.loc["s00", "x"])


def test_progress_writes_to_stderr(capsys, monkeypatch):
    data = ols_sites()
    smm.two_stage(data, "site", fit_ols, ["x"], progress=True)
    assert "8/8" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)     # tqdm not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    smm.two_stage(data, "site", fit_ols, ["x"], progress=True)
    assert "two_stage: 8/8 groups" in capsys.readouterr().err
    smm.two_stage(data, "site", fit_ols, ["x"])          # not a terminal
    assert capsys.readouterr().err == ""


def test_names_that_are_not_formula_outcomes():
    data = ols_sites()

    def fit(frame):
        return smf.ols("y ~ I(x + 1)", frame).fit()
    res2 = smm.two_stage(data, "site", fit, ["I(x + 1)"],
                         covariates=["lat"])
    plain = smm.two_stage(data, "site", fit_ols, ["x"], covariates=["lat"])
    np.testing.assert_allclose(res2.y.to_numpy(), plain.y.to_numpy(),
                               rtol=1e-10)
    fit2 = res2.fit()
    assert list(fit2.params.index) == ["I(x + 1)"]
    assert fit2.model.design.outcome_names == ("I(x + 1)",)
    np.testing.assert_allclose(fit2.params.to_numpy(),
                               plain.fit().params.to_numpy(), rtol=1e-8)
    assert list(res2.fit("~ lat").params.index) == ["I(x + 1):Intercept",
                                                    "I(x + 1):lat"]


def test_table_columns_in_order():
    res2 = smm.two_stage(poisson_sites(), "site", fit_poisson,
                         ["Intercept", "x", "treat"])
    assert list(res2.table.columns) == [
        "Intercept", "x", "treat", "se_Intercept", "se_x", "se_treat",
        "cov_Intercept_x", "cov_Intercept_treat", "cov_x_treat", "nobs",
        "converged", "pooled"]
    np.testing.assert_allclose(res2.table["cov_x_treat"], res2.S[:, 1, 2],
                               rtol=1e-12)
    assert res2.S.shape == (10, 3, 3)


def fit_logit(frame):
    return smf.logit("died ~ x + treat", frame).fit(disp=0)


def fit_gee(frame):
    return smf.gee("deaths ~ x + treat", "cluster", frame,
                   family=sm.families.Poisson()).fit()


def test_logit_and_gee_first_stages():
    data = poisson_sites()
    data["died"] = (data["events"] > data["trials"] / 2).astype(int)
    data["cluster"] = np.arange(len(data)) // 8
    for fit in (fit_logit, fit_gee):
        res2 = smm.two_stage(data, "site", fit, ["x", "treat"])
        labels, y, S = by_hand(data, "site", fit, ["x", "treat"])
        np.testing.assert_allclose(res2.y.to_numpy(), y, rtol=1e-12)
        np.testing.assert_allclose(res2.S, S, rtol=1e-12)
        assert res2.failures.empty


def test_logit_that_stops_early_did_not_converge():
    data = poisson_sites()
    data["died"] = (data["events"] > data["trials"] / 2).astype(int)

    def fit(frame):
        return smf.logit("died ~ x + treat", frame).fit(
            disp=0, maxiter=1 if frame["site"].iloc[0] == 0 else 35)
    with pytest.warns(smm.FirstStageWarning):
        res2 = quietly(smm.two_stage, data, "site", fit, ["treat"])
    assert res2.failures.to_dict("records") == [{
        "group": 0, "reason": "did not converge", "params": "treat",
        "action": "dropped"}]
    assert list(res2.groups) == list(range(1, 10))


def test_dask_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"statsmodels-mixmeta\[dask\]"):
        smm.two_stage(ols_sites(), "site", fit_ols, ["x"], executor="dask")


def fit_poisson_arrays(frame):
    exog = np.column_stack([np.ones(len(frame)), frame["x"], frame["treat"]])
    return sm.GLM(frame["deaths"].to_numpy(), exog,
                  family=sm.families.Poisson()).fit()


@pytest.mark.filterwarnings(
    "ignore::statsmodels.tools.sm_exceptions.SingularMatrixWarning")
@pytest.mark.filterwarnings("ignore::UserWarning:statsmodels")
def test_params_by_position():
    data = failing_data()
    with pytest.warns(smm.FirstStageWarning):
        by_name = smm.two_stage(data, "site", fit_poisson, ["x", "treat"])
    with pytest.warns(smm.FirstStageWarning):
        by_position = smm.two_stage(data, "site", fit_poisson, [1, 2])
    assert by_position.param_names == ["x", "treat"]
    np.testing.assert_array_equal(by_position.y, by_name.y)
    np.testing.assert_array_equal(by_position.S, by_name.S)
    pd.testing.assert_frame_equal(by_position.failures, by_name.failures)
    with pytest.warns(smm.FirstStageWarning):
        arrays = smm.two_stage(data, "site", fit_poisson_arrays, [1, 2])
    assert arrays.param_names == ["x1", "x2"]      # statsmodels' names
    np.testing.assert_allclose(arrays.y.to_numpy(), by_name.y.to_numpy(),
                               rtol=1e-10)
    assert arrays.failures["reason"].tolist() == [
        "not identified: x2 (rank-deficient design)"]
    with cf.ThreadPoolExecutor(2) as pool, \
            pytest.warns(smm.FirstStageWarning):
        pooled = smm.two_stage(data, "site", fit_poisson_arrays, [1, 2],
                               executor=pool)
    np.testing.assert_array_equal(pooled.S, arrays.S)
    assert pooled.param_names == ["x1", "x2"]
    with pytest.raises(ValueError, match=r"params \[7\] are not coefficients"
                       r".*\['const', 'x1', 'x2'\]"):
        smm.two_stage(data, "site", fit_poisson_arrays, [1, 7])
    with pytest.raises(ValueError, match="non-negative integers"):
        smm.two_stage(data, "site", fit_poisson_arrays, [1, -1])


def test_dropping_columns_keeps_the_two_stage_names():
    data = poisson_sites()
    data["rich"] = data["site"] % 3 == 0
    res2 = smm.two_stage(data, "site", fit_poisson, ["x", "treat"],
                         covariates=["rich"])
    design = res2.mixmeta("~ rich").design
    assert design.param_names == ["x:Intercept", "x:rich[T.True]",
                                  "treat:Intercept", "treat:rich[T.True]"]
    assert design.drop_columns([1]).param_names == ["x:Intercept",
                                                    "treat:Intercept"]


def test_every_group_failing_is_an_error():
    def fail(frame):
        raise RuntimeError("no fit")
    with pytest.raises(ValueError, match="(?s)no group has an estimable "
                       "coefficient.*s00: raised: RuntimeError: no fit"):
        smm.two_stage(ols_sites(), "site", fail, ["x"])


def test_from_results_leaves_the_covariates_alone():
    data = ols_sites()
    fits = {label: fit_ols(frame) for label, frame in data.groupby("site")}
    covariates = pd.DataFrame({"lat": data.groupby("site")["lat"].first()})
    covariates.index.name = "city"
    before = covariates.copy()
    res2 = smm.TwoStage.from_results(fits, ["x"], covariates=covariates)
    pd.testing.assert_frame_equal(covariates, before)
    assert covariates.index.name == "city"
    np.testing.assert_array_equal(res2.covariates["lat"], before["lat"])


def test_a_fit_group_that_returns_no_results_is_a_failure_of_that_group():
    data = pd.DataFrame({"g": np.repeat([1, 2, 3], 4),
                         "x": np.tile(np.arange(4.0), 3)})
    data["y"] = 0.5 * data["x"] + np.sin(np.arange(12.0))

    def fit(frame):
        if frame["g"].iloc[0] == 2:
            return None
        return sm.OLS(frame["y"], sm.add_constant(frame["x"])).fit()

    with pytest.warns(UserWarning, match="1 of 3 groups left out"):
        res = smm.two_stage(data, "g", fit, ["x"])
    assert list(res.groups) == [1, 3]
    (row,) = res.failures.itertuples()
    assert row.group == 2 and row.reason.startswith(
        "fit_group returned a NoneType, not fitted statsmodels results")
    hand = sm.OLS(data["y"][data["g"] == 3],
                  sm.add_constant(data["x"][data["g"] == 3])).fit()
    np.testing.assert_allclose(res.y.loc[3, "x"], hand.params["x"],
                               rtol=1e-12)
    with pytest.raises(ValueError, match="no group has an estimable"):
        smm.two_stage(data, "g", lambda frame: "fitted", ["x"])
