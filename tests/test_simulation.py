"""
Simulation from fitted and specified models, and the parametric bootstrap
(``MixMetaResults.simulate``, ``statsmodels_mixmeta.simulate``).

The statistical checks compare Monte-Carlo averages with the model's own
mean and covariance, built here by hand from S, Psi and the grouping, within
a stated number of Monte-Carlo standard errors computed in the test.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets

# Monte-Carlo tolerance, in standard errors
MC_SE = 4.0
N_DRAWS = 2000
RANDOM = "~ 1 | outer/inner"
S_COLS = ["S11", "S12", "S22"]


def nested_data():
    """Ten outer groups of three rows, k = 2, one predictor, six missing
    outcomes (never both of a row)."""
    rng = np.random.default_rng(20261207)
    n_outer, per = 10, 3
    n = n_outer * per
    outer = np.repeat(np.arange(n_outer), per)
    x = rng.uniform(-1, 1, n)
    psi_outer = np.array([[0.3, 0.1], [0.1, 0.2]])
    psi_inner = np.array([[0.2, 0.05], [0.05, 0.15]])
    sd = np.sqrt(rng.uniform(0.05, 0.3, (n, 2)))
    S = np.stack([np.diag(s ** 2) for s in sd])
    S[:, 0, 1] = S[:, 1, 0] = 0.4 * sd[:, 0] * sd[:, 1]
    u = (rng.multivariate_normal([0, 0], psi_outer, n_outer)[outer]
         + rng.multivariate_normal([0, 0], psi_inner, n))
    e = np.einsum("nij,nj->ni", np.linalg.cholesky(S),
                  rng.standard_normal((n, 2)))
    y = np.c_[0.5 + 0.3 * x, -0.2 + 0.1 * x] + u + e
    y[[1, 7, 14], 0] = np.nan
    y[[4, 20, 27], 1] = np.nan
    return pd.DataFrame({
        "y1": y[:, 0], "y2": y[:, 1], "x": x, "S11": S[:, 0, 0],
        "S12": S[:, 0, 1], "S22": S[:, 1, 1], "outer": outer + 1,
        "inner": np.arange(n) + 1}, index=[f"r{i}" for i in range(n)])


@pytest.fixture(scope="module")
def data():
    return nested_data()


@pytest.fixture(scope="module")
def fitted(data):
    return smf.mixmeta("y1 + y2 ~ x", data=data, S=S_COLS,
                       random=RANDOM).fit()


def marginal_moments(data, beta, psi_outer, psi_inner):
    """Mean and covariance of the observed values (row-major), by hand:
    ``Sigma[(a, j), (b, l)] = [a = b] (S_a + Psi_inner)_jl
    + [outer_a = outer_b] Psi_outer_jl``."""
    y = data[["y1", "y2"]].to_numpy()
    row, outcome = np.nonzero(~np.isnan(y))
    x = data["x"].to_numpy()[row]
    B = np.asarray(beta).reshape(2, 2)
    mean = B[outcome, 0] + B[outcome, 1] * x
    S = np.zeros((len(data), 2, 2))
    S[:, 0, 0], S[:, 1, 1] = data["S11"], data["S22"]
    S[:, 0, 1] = S[:, 1, 0] = data["S12"]
    j, l = outcome[:, None], outcome[None, :]
    same_row = row[:, None] == row[None, :]
    outer = data["outer"].to_numpy()[row]
    within = S[row[:, None], j, l]          # S_a[j, l], used for a = b
    cov = (np.where(same_row, within + psi_inner[j, l], 0.0)
           + np.where(outer[:, None] == outer[None, :], psi_outer[j, l],
                      0.0))
    return row, outcome, mean, cov


def test_draws_match_the_fitted_mean_and_covariance(data, fitted):
    sims = fitted.simulate(N_DRAWS, seed=123)
    assert sims.shape == (N_DRAWS, len(data), 2)
    row, outcome, mean, cov = marginal_moments(
        data, fitted.params, fitted.psi["outer"].to_numpy(),
        fitted.psi["inner"].to_numpy())
    # the hand-built mean is X beta_hat of the fit
    np.testing.assert_allclose(
        mean, fitted.fittedvalues.to_numpy()[row, outcome], rtol=1e-12)
    values = sims[:, row, outcome]                       # (nsim, N)
    var = np.diag(cov)
    # empirical mean: MC SE sqrt(Sigma_aa / nsim)
    z_mean = (values.mean(axis=0) - mean) / np.sqrt(var / N_DRAWS)
    assert np.abs(z_mean).max() < MC_SE
    # empirical covariance, every pair (across groups too, where it is 0):
    # for normal draws Var(s_ab) ~ (Sigma_aa Sigma_bb + Sigma_ab^2) / nsim
    emp = np.cov(values, rowvar=False)
    se = np.sqrt((np.outer(var, var) + cov ** 2) / N_DRAWS)
    z_cov = (emp - cov) / se
    assert np.abs(z_cov).max() < MC_SE
    # the check can fail: the covariance without the outer level's Psi is
    # far outside the tolerance
    _, _, _, wrong = marginal_moments(
        data, fitted.params, np.zeros((2, 2)),
        fitted.psi["inner"].to_numpy())
    assert np.abs((emp - wrong) / se).max() > 5 * MC_SE


def test_missing_outcomes_stay_missing(data, fitted):
    sims = fitted.simulate(5, seed=1)
    missing = data[["y1", "y2"]].isna().to_numpy()
    assert np.isnan(sims[:, missing]).all()
    assert np.isfinite(sims[:, ~missing]).all()


def test_same_seed_same_draws(fitted):
    first = fitted.simulate(3, seed=7)
    np.testing.assert_array_equal(first, fitted.simulate(3, seed=7))
    np.testing.assert_array_equal(
        first, fitted.simulate(3, seed=np.random.SeedSequence(7)))
    np.testing.assert_array_equal(
        first, fitted.simulate(3, seed=np.random.default_rng(7)))
    other = fitted.simulate(3, seed=8)
    observed = ~np.isnan(first)
    assert not np.any(first[observed] == other[observed])
    # the first draws do not depend on how many are taken
    np.testing.assert_allclose(
        first[0][observed[0]], fitted.simulate(1, seed=7)[0][observed[0]],
        rtol=1e-13)


def test_module_simulate_equals_results_simulate(data, fitted):
    expected = fitted.simulate(4, seed=11)
    got = smm.simulate(fitted.fittedvalues, S=S_COLS, psi=fitted.psi,
                       random=RANDOM, data=data, nsim=4, seed=11)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # Psi as a list, outer level first, and a results object as y
    listed = smm.simulate(
        fitted.fittedvalues.to_numpy(), S=S_COLS,
        psi=[fitted.psi["outer"].to_numpy(), fitted.psi["inner"].to_numpy()],
        random=RANDOM, data=data, nsim=4, seed=11)
    np.testing.assert_allclose(listed, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(smm.simulate(fitted, nsim=4, seed=11),
                                  expected)


def test_module_simulate_from_arrays_by_hand():
    # one study, k = 2, Psi = 0: y* = mu + L e with L L' = S, e standard
    # normal in the order (draw, outcome)
    mu = np.array([[1.0, -2.0]])
    S = np.array([[[2.0, 0.6], [0.6, 1.0]]])
    psi = np.array([[0.5, 0.1], [0.1, 0.3]])
    got = smm.simulate(mu, S=S, psi=None, nsim=3, seed=5)
    e = np.random.default_rng(5).standard_normal((3, 2))
    expected = mu + e @ np.linalg.cholesky(S[0]).T
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12)
    # with Psi: the factor of S + Psi
    got = smm.simulate(mu, S=S, psi=psi, nsim=3, seed=5)
    expected = mu + e @ np.linalg.cholesky(S[0] + psi).T
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12)


def test_module_simulate_rows_all_missing_stay_missing():
    mu = np.array([[0.0, 1.0], [np.nan, np.nan], [2.0, np.nan]])
    S = np.array([[1.0, 0.2, 1.0]] * 3)
    sims = smm.simulate(mu, S=S, psi=np.eye(2), nsim=2, seed=0)
    assert sims.shape == (2, 3, 2)
    assert np.isnan(sims[:, 1]).all() and np.isnan(sims[:, 2, 1]).all()
    assert np.isfinite(sims[:, 0]).all() and np.isfinite(sims[:, 2, 0]).all()


def test_module_simulate_random_needs_data():
    with pytest.raises(ValueError, match="data="):
        smm.simulate(np.zeros((3, 1)), S=np.ones(3), psi=1.0,
                     random="~ 1 | g")


@pytest.mark.parametrize("nsim", [0, -1, 1.5, True])
def test_nsim_must_be_a_positive_integer(fitted, nsim):
    with pytest.raises(ValueError, match="nsim"):
        fitted.simulate(nsim)


@pytest.mark.parametrize("method", ["fixed", "mm", "vc"])
def test_fixed_and_moment_fits_draw_with_their_psi(method):
    bcg = datasets.load_bcg()
    res = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar",
                      method=method).fit()
    sims = res.simulate(N_DRAWS, seed=3)[:, :, 0]
    tau2 = 0.0 if method == "fixed" else float(res.psi.iloc[0, 0])
    var = bcg["logorvar"].to_numpy() + tau2
    mean = res.fittedvalues.to_numpy()[:, 0]
    assert np.abs((sims.mean(axis=0) - mean)
                  / np.sqrt(var / N_DRAWS)).max() < MC_SE
    # sample variance of normal draws: SE sigma^2 sqrt(2 / (nsim - 1))
    assert np.abs((sims.var(axis=0, ddof=1) - var)
                  / (var * np.sqrt(2 / (N_DRAWS - 1)))).max() < MC_SE


def test_parametric_bootstrap_recovers_beta():
    bcg = datasets.load_bcg()
    res = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar").fit()
    n_boot = 200
    boot = res.simulate(n_boot, seed=2026, refit=True)
    assert list(boot.columns) == ["Intercept", "ablat", "psi:logor,logor",
                                  "llf", "converged", "n_warnings"]
    assert len(boot) == n_boot and boot["converged"].all()
    beta = boot[["Intercept", "ablat"]]
    se = beta.std(ddof=1) / np.sqrt(n_boot)
    assert (np.abs(beta.mean() - res.params) / se).max() < MC_SE
    # the bootstrap spread is that of the fit's standard errors (REML's
    # beta_hat has the GLS covariance up to Psi's own uncertainty)
    ratio = beta.std(ddof=1) / res.bse
    assert ((ratio > 0.8) & (ratio < 1.25)).all()
    # the draws refitted are those of simulate with the same seed
    y = res.simulate(1, seed=2026)[0, :, 0]
    first = smf.mixmeta("y ~ ablat", data=bcg.assign(y=y),
                        S="logorvar").fit()
    np.testing.assert_allclose(
        boot.loc[0, ["Intercept", "ablat"]].to_numpy(dtype=float),
        first.params.to_numpy(), rtol=1e-6)


def test_bootstrap_of_a_multilevel_fit_names_psi_by_level(fitted):
    boot = fitted.simulate(3, seed=1, refit=True)
    psi_cols = [c for c in boot.columns if c.startswith("psi")]
    assert psi_cols == ["psi[outer]:y1,y1", "psi[outer]:y2,y1",
                        "psi[outer]:y2,y2", "psi[inner]:y1,y1",
                        "psi[inner]:y2,y1", "psi[inner]:y2,y2"]
    assert list(boot.columns[:4]) == list(fitted.params.index)
    assert np.isfinite(boot[psi_cols].to_numpy()).all()
    assert (boot["n_warnings"] >= 0).all()
    assert isinstance(boot.attrs["warnings"], dict)


def test_bootstrap_collects_warnings_instead_of_showing_them():
    # a fixed-effects refit on arrays whose Psi is 0 raises none; force one
    # through a starting value the optimiser cannot finish from
    bcg = datasets.load_bcg()
    res = smf.mixmeta("logor ~ ablat", data=bcg, S="logorvar").fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boot = res.simulate(5, seed=1, refit=True,
                            fit_kwargs=dict(maxiter=0, scoring_iter=0,
                                            igls_iter=0))
    assert boot["n_warnings"].sum() == sum(boot.attrs["warnings"].values())


def test_batches_with_new_values_equal_batches_built_afresh(fitted):
    model = fitted.model
    y = fitted.simulate(1, seed=4)[0]
    fresh = type(model).from_design(model.design.with_endog(y),
                                    bscov=model.bscov)
    reused = model._batches.with_values(fresh.design.long.y)
    assert len(reused) == len(fresh._batches)
    for a, b in zip(reused, fresh._batches):
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.S, b.S)
        np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(reused.long.y, fresh._batches.long.y)
    # and the refit from them is the refit from scratch
    boot = fitted.simulate(1, seed=4, refit=True)
    scratch = fresh.fit(start_params=fitted.theta)
    np.testing.assert_allclose(boot.iloc[0, :4].to_numpy(dtype=float),
                               scratch.params, rtol=1e-8)
    np.testing.assert_allclose(boot["llf"].iloc[0], scratch.llf, rtol=1e-10)


@pytest.mark.parametrize("psi, message", [
    (np.eye(2), "psi must be a 1x1 matrix"),
    (-1.0, "psi must be positive semi-definite"),
])
def test_module_simulate_names_a_wrong_psi(psi, message):
    with pytest.raises(ValueError, match=message):
        smm.simulate(np.zeros(4), S=np.ones(4), psi=psi)


def test_simulate_after_remove_data_says_why(fitted):
    res = smf.mixmeta("logor ~ 1", data=datasets.load_bcg(),
                      S="logorvar").fit()
    res.remove_data()
    with pytest.raises(AttributeError, match="remove_data"):
        res.simulate(2)


def test_module_simulate_with_groups_equals_an_array_fit(data):
    y = data[["y1", "y2"]].to_numpy()
    exog = np.c_[np.ones(len(data)), data["x"]]
    S = data[S_COLS].to_numpy()
    groups = data[["outer", "inner"]].to_numpy()
    res = smm.MixMeta(y, exog, S=S, groups=groups, method="ml").fit()
    expected = res.simulate(3, seed=9)
    got = smm.simulate(np.asarray(res.fittedvalues), S=S,
                       psi=list(res.psi.values()), groups=groups, nsim=3,
                       seed=9)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(y)[None].repeat(
        3, axis=0))
