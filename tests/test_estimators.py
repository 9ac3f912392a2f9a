"""
Tests of the method-of-moments and variance-components estimators of Psi.

Reference numbers are R mixmeta 1.2.1 output stored in
``tests/results/mixmeta_reference.json`` (case names as keys; the R call of
each case is stored with it).  The inputs are rebuilt from the shipped data
sets exactly as ``tests/results/make_reference.R`` does.  Independent checks
use a dense, study-by-study transcription of the defining formulas.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import linalg
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.kernels.moments import (PSD_FLOOR, method_of_moments,
                                            variance_components)

REFERENCE = json.loads(
    (Path(__file__).parent / "results" / "mixmeta_reference.json").read_text())["cases"]


# ---------------------------------------------------------------------------
# inputs, as in make_reference.R
# ---------------------------------------------------------------------------

def _sym(columns, k):
    """Within-study matrices from the vech-by-column columns (m, k(k+1)/2)."""
    columns = np.asarray(columns, dtype=float)
    out = np.empty((columns.shape[0], k, k))
    rows, cols = np.triu_indices(k)
    # vech by column of the lower triangle = row-wise upper triangle
    out[:, cols, rows] = columns
    out[:, rows, cols] = columns
    return out


def bcg_data(predictors=()):
    data = datasets.load_bcg()
    X = np.column_stack([np.ones(len(data))] + [data[c] for c in predictors])
    return data[["logor"]].to_numpy(), X, data["logorvar"].to_numpy()[:, None, None]


def berkey_data():
    data = datasets.load_berkey98()
    X = np.column_stack([np.ones(len(data)), data["pubyear"] - 1983])
    return (data[["PD", "AL"]].to_numpy(), X,
            _sym(data[["var_PD", "cov_PD_AL", "var_AL"]], 2))


def hyp_data(predictors=()):
    data = datasets.load_hyp()
    X = np.column_stack([np.ones(len(data))] + [data[c] for c in predictors])
    cov = data["rho"] * data["sbp_se"] * data["dbp_se"]
    S = _sym(np.column_stack([data["sbp_se"] ** 2, cov, data["dbp_se"] ** 2]), 2)
    return data[["sbp", "dbp"]].to_numpy(), X, S


def hsls_data():
    data = datasets.load_hsls()
    S = _sym(data[["V11", "V12", "V13", "V22", "V23", "V33"]], 3)
    return data[["b1", "b2", "b3"]].to_numpy(), np.ones((len(data), 1)), S


def smoking_data():
    """k = 3 with missing outcomes (no mm/vc reference in R's output)."""
    data = datasets.load_smoking()
    S = _sym(data[["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]], 3)
    return data[["yB", "yC", "yD"]].to_numpy(), np.ones((len(data), 1)), S


def fibrinogen_data():
    """k = 4 with missing outcomes; an artificial predictor for p = 2."""
    data = datasets.load_fibrinogen()
    names = [f"V_{a}_{b}" for a in range(2, 6) for b in range(a, 6)]
    X = np.column_stack([np.ones(len(data)), np.arange(len(data)) % 3])
    return data[["b2", "b3", "b4", "b5"]].to_numpy(), X, _sym(data[names], 4)


INPUTS = {
    "bcg_mm": (bcg_data, {}),
    "bcg_vc": (bcg_data, {"adjust": True}),
    "berkey_mm": (berkey_data, {}),
    "berkey_vc": (berkey_data, {"adjust": False}),
    "berkey_vc_adj": (berkey_data, {"adjust": True}),
    "hyp_mm": (hyp_data, {}),
    "hyp_reg_mm": (lambda: hyp_data(["ish"]), {}),
    "hsls_mm": (hsls_data, {}),
}
MM_CASES = [c for c in INPUTS if c.endswith("_mm")]
VC_CASES = [c for c in INPUTS if "_vc" in c]


def reference_psi(case):
    return np.array(REFERENCE[case]["psi"]["values"], dtype=float)


def reference_coef(case, k, p):
    """R's predictor-major coefficients in our outcome-major order."""
    return np.asarray(REFERENCE[case]["coef"]).reshape(p, k).T.ravel()


# ---------------------------------------------------------------------------
# dense, study-by-study transcriptions of the definitions
# ---------------------------------------------------------------------------

def long_format(y, X, S):
    """Observed values stacked study by study, with block-diagonal S."""
    k, p = y.shape[1], X.shape[1]
    ys, rows, blocks, where = [], [], [], []
    for i in range(y.shape[0]):
        obs = np.flatnonzero(~np.isnan(y[i]))
        ys.append(y[i, obs])
        rows.append(np.kron(np.eye(k)[obs], X[i]))
        blocks.append(S[i][np.ix_(obs, obs)])
        where.append(obs)
    return np.concatenate(ys), np.vstack(rows), linalg.block_diag(*blocks), where


def dense_gls(y, X, S, psi):
    y_long, x_long, s_long, where = long_format(y, X, S)
    extra = linalg.block_diag(*[psi[np.ix_(o, o)] for o in where])
    weight = np.linalg.inv(s_long + extra)
    info = x_long.T @ weight @ x_long
    beta = np.linalg.solve(info, x_long.T @ weight @ y_long)
    return beta, y_long - x_long @ beta, np.linalg.inv(info), where, s_long + extra


def dense_project(psi):
    values, vectors = np.linalg.eigh((psi + psi.T) / 2)
    return vectors @ np.diag(np.maximum(values, PSD_FLOOR)) @ vectors.T


def dense_mm(y, X, S):
    """Jackson, White & Riley (2013): solve E[Q] = Q over all k^2 entries."""
    k = y.shape[1]
    y_long, x_long, s_long, where = long_format(y, X, S)
    weight = np.linalg.inv(s_long)
    hat = x_long @ np.linalg.solve(x_long.T @ weight @ x_long, x_long.T @ weight)
    resid_op = np.eye(len(y_long)) - hat
    starts = np.cumsum([0] + [len(o) for o in where])

    def btr(matrix):
        out = np.zeros((k, k))
        for o, a, b in zip(where, starts[:-1], starts[1:]):
            out[np.ix_(o, o)] += matrix[a:b, a:b]
        return out

    def expected(cov):
        return btr(weight @ resid_op @ cov @ resid_op.T)

    q_stat = btr(weight @ resid_op @ np.outer(y_long, y_long) @ resid_op.T)
    columns = []
    for b in range(k):          # column-major vec of the unit matrices
        for a in range(k):
            unit = np.zeros((k, k))
            unit[a, b] = 1.0
            cov = linalg.block_diag(*[unit[np.ix_(o, o)] for o in where])
            columns.append(expected(cov).ravel(order="F"))
    rhs = (q_stat - expected(s_long)).ravel(order="F")
    psi = np.linalg.solve(np.column_stack(columns), rhs).reshape(k, k, order="F")
    return dense_project(psi)


def dense_vc(y, X, S, adjust, tol=PSD_FLOOR, max_iter=100):
    """Variance components, one study at a time."""
    k, p = y.shape[1], X.shape[1]
    observed = ~np.isnan(y)
    counts = observed.T.astype(float) @ observed
    s_sum = np.zeros((k, k))
    for i, o in enumerate(observed):
        s_sum[np.ix_(o, o)] += S[i][np.ix_(o, o)]
    psi = np.zeros((k, k))
    for n_iter in range(1, max_iter + 1):
        beta, resid, info_inv, where, sigma = dense_gls(y, X, S, psi)
        _, x_long, _, _ = long_format(y, X, S)
        cross = np.zeros((k, k))
        start = 0
        for o in where:
            sl = slice(start, start + len(o))
            r = resid[sl]
            if adjust:
                xi = x_long[sl]
                hat_ii = xi @ info_inv @ xi.T @ np.linalg.inv(sigma[sl, sl])
                r = np.linalg.solve(linalg.sqrtm(np.eye(len(o)) - hat_ii), r).real
            cross[np.ix_(o, o)] += np.outer(r, r)
            start += len(o)
        new = dense_project(cross / (counts - (0 if adjust else p)) - s_sum / counts)
        done = np.all(np.abs(new - psi) < tol * np.abs(new + tol))
        psi = new
        if done:
            return psi, n_iter
    raise AssertionError("dense_vc did not converge")


# ---------------------------------------------------------------------------
# agreement with R mixmeta
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", MM_CASES)
def test_mm_matches_r(case):
    build, _ = INPUTS[case]
    assert_allclose(method_of_moments(*build()), reference_psi(case), rtol=1e-8)


@pytest.mark.parametrize("case", VC_CASES)
def test_vc_matches_r(case):
    build, options = INPUTS[case]
    psi, n_iter, converged = variance_components(*build(), **options)
    assert converged and 1 < n_iter < 100
    assert_allclose(psi, reference_psi(case), rtol=1e-8)


@pytest.mark.parametrize("case", VC_CASES)
def test_vc_with_r_tolerance_stops_where_r_does(case):
    # R's reltol = sqrt(eps) = PSD_FLOOR; R's iterate is then reproduced to
    # rounding, while the default tol=1e-10 goes closer to the fixed point.
    build, options = INPUTS[case]
    psi, _, converged = variance_components(*build(), tol=PSD_FLOOR, **options)
    assert converged
    assert_allclose(psi, reference_psi(case), rtol=1e-12)


@pytest.mark.parametrize("case", MM_CASES + VC_CASES)
def test_gls_with_estimate_matches_r_coef(case):
    build, options = INPUTS[case]
    y, X, S = build()
    if case in MM_CASES:
        psi = method_of_moments(y, X, S)
    else:
        psi = variance_components(y, X, S, **options)[0]
    beta = dense_gls(y, X, S, psi)[0]
    assert_allclose(beta, reference_coef(case, y.shape[1], X.shape[1]), rtol=1e-8)


@pytest.mark.parametrize("case", VC_CASES)
def test_r_vc_coef_is_gls_at_the_previous_iterate(case):
    # R returns the last update of Psi but the coefficients of the GLS fit
    # that produced it, i.e. at the previous iterate (agreement ~1e-15, while
    # the GLS at R's own Psi differs from R's coef by up to ~4e-9).
    build, options = INPUTS[case]
    y, X, S = build()
    _, n_iter, _ = variance_components(y, X, S, tol=PSD_FLOOR, **options)
    with pytest.warns(ConvergenceWarning):
        previous = variance_components(y, X, S, tol=PSD_FLOOR,
                                       max_iter=n_iter - 1, **options)[0]
    assert_allclose(dense_gls(y, X, S, previous)[0],
                    reference_coef(case, y.shape[1], X.shape[1]), rtol=1e-12)


def test_mm_floor_is_reached_in_hsls():
    # R's hsls_mm estimate has its smallest eigenvalue at set.negeigen
    assert_allclose(np.linalg.eigvalsh(reference_psi("hsls_mm"))[0], PSD_FLOOR,
                    rtol=1e-6)
    psi = method_of_moments(*hsls_data())
    assert_allclose(np.linalg.eigvalsh(psi)[0], PSD_FLOOR, rtol=1e-6)


# ---------------------------------------------------------------------------
# independent checks
# ---------------------------------------------------------------------------

def dersimonian_laird(y, X, v):
    """Closed form; predictors are centred and scaled first (tau^2 does not
    change, and F^{-1} is then computed accurately even for calendar years)."""
    X = np.column_stack([X[:, :1]] + [(c - c.mean()) / c.std() for c in X[:, 1:].T])
    w = 1 / v
    info_inv = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = info_inv @ X.T @ (w * y)
    q_stat = np.sum(w * (y - X @ beta) ** 2)
    denom = w.sum() - np.trace(info_inv @ X.T @ (w[:, None] ** 2 * X))
    return max(0.0, (q_stat - (len(y) - X.shape[1])) / denom)


@pytest.mark.parametrize("predictors", [(), ("ablat",), ("ablat", "year")])
def test_univariate_mm_is_dersimonian_laird(predictors):
    y, X, S = bcg_data(predictors)
    tau2 = dersimonian_laird(y[:, 0], X, S[:, 0, 0])
    assert tau2 > 0
    assert_allclose(method_of_moments(y, X, S), [[tau2]], rtol=1e-12)


def test_mm_invariant_to_scaling_of_predictors():
    # a predictor with a large offset and a small spread (X'WX has condition
    # number ~1e13): the estimates must not change with its location and scale
    y, X, S = hyp_data(["ish"])
    X_years = np.column_stack([X[:, 0], 1970 + 0.1 * X[:, 1]])
    assert np.linalg.cond(X_years.T @ X_years) > 1e12
    assert_allclose(method_of_moments(y, X_years, S), method_of_moments(y, X, S),
                    rtol=1e-9)
    assert_allclose(variance_components(y, X_years, S)[0],
                    variance_components(y, X, S)[0], rtol=1e-9)


def test_univariate_negative_moment_estimate_is_floored():
    y, X, S = bcg_data()
    y = np.linspace(-0.01, 0.01, len(y))[:, None]   # far less spread than S
    assert dersimonian_laird(y[:, 0], X, S[:, 0, 0]) == 0
    assert_allclose(method_of_moments(y, X, S), [[PSD_FLOOR]], rtol=1e-12)
    psi, _, converged = variance_components(y, X, S)
    assert converged
    assert_allclose(psi, [[PSD_FLOOR]], rtol=1e-12)


def test_bivariate_projection_to_psd():
    # hyp with the dbp outcomes shrunk towards their mean: the moment
    # estimate of Var(dbp) is negative, so the raw Psi is indefinite
    y, X, S = hyp_data()
    y[:, 1] = y[:, 1].mean() + 0.05 * (y[:, 1] - y[:, 1].mean())
    psi = method_of_moments(y, X, S)
    assert_allclose(psi, psi.T, rtol=0, atol=0)
    values = np.linalg.eigvalsh(psi)
    assert values[1] > 1
    assert_allclose(values[0], PSD_FLOOR, rtol=1e-6)
    assert_allclose(psi, dense_mm(y, X, S), rtol=1e-10, atol=1e-12)
    psi_vc, _, converged = variance_components(y, X, S)
    assert converged
    assert_allclose(np.linalg.eigvalsh(psi_vc)[0], PSD_FLOOR, rtol=1e-6)


@pytest.mark.parametrize("build", [berkey_data, hyp_data, lambda: hyp_data(["ish"]),
                                   hsls_data, smoking_data, fibrinogen_data])
def test_mm_equals_dense_definition(build):
    y, X, S = build()
    assert_allclose(method_of_moments(y, X, S), dense_mm(y, X, S),
                    rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("adjust", [True, False])
@pytest.mark.parametrize("build", [berkey_data, hyp_data, smoking_data,
                                   fibrinogen_data])
def test_vc_equals_dense_definition(build, adjust):
    y, X, S = build()
    psi, n_iter, converged = variance_components(y, X, S, adjust=adjust,
                                                 tol=PSD_FLOOR)
    expected, expected_iter = dense_vc(y, X, S, adjust)
    assert converged and n_iter == expected_iter
    assert_allclose(psi, expected, rtol=1e-9, atol=1e-12)


def test_missing_outcomes_are_used():
    y, X, S = smoking_data()
    assert np.isnan(y).any(axis=1).sum() > 0
    psi = method_of_moments(y, X, S)
    complete = ~np.isnan(y).any(axis=1)
    assert not np.allclose(psi, method_of_moments(y[complete], X[complete],
                                                  S[complete]))


@pytest.mark.parametrize("build", [smoking_data, fibrinogen_data, berkey_data])
def test_row_order_does_not_matter(build):
    y, X, S = build()
    order = np.random.default_rng(0).permutation(len(y))
    assert_allclose(method_of_moments(y[order], X[order], S[order]),
                    method_of_moments(y, X, S), rtol=1e-10)
    assert_allclose(variance_components(y[order], X[order], S[order])[0],
                    variance_components(y, X, S)[0], rtol=1e-10)


def test_covariance_entries_of_missing_outcomes_are_ignored():
    y, X, S = smoking_data()
    junk = np.where(np.isnan(S), 123.0, S)
    assert_allclose(method_of_moments(y, X, junk), method_of_moments(y, X, S))
    assert_allclose(variance_components(y, X, junk)[0],
                    variance_components(y, X, S)[0])


def test_univariate_vectors_accepted():
    y, X, S = bcg_data()
    assert_allclose(method_of_moments(y[:, 0], X, S[:, 0, 0]),
                    method_of_moments(y, X, S))
    assert_allclose(variance_components(y[:, 0], X[:, 0], S[:, 0, 0])[0],
                    variance_components(y, X, S)[0])


def test_rows_without_outcomes_are_dropped():
    y, X, S = berkey_data()
    y2 = np.vstack([y, [np.nan, np.nan]])
    X2 = np.vstack([X, [1.0, 3.0]])
    S2 = np.concatenate([S, np.full((1, 2, 2), np.nan)])
    assert_allclose(method_of_moments(y2, X2, S2), method_of_moments(y, X, S))


# ---------------------------------------------------------------------------
# convergence and errors
# ---------------------------------------------------------------------------

def test_vc_reports_non_convergence():
    with pytest.warns(ConvergenceWarning, match="did not converge in 2"):
        psi, n_iter, converged = variance_components(*berkey_data(), max_iter=2)
    assert n_iter == 2 and not converged
    assert np.all(np.linalg.eigvalsh(psi) >= PSD_FLOOR * (1 - 1e-8))


def test_vc_converged_run_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        variance_components(*berkey_data())


@pytest.mark.parametrize("estimator", [method_of_moments, variance_components])
def test_shape_errors(estimator):
    y, X, S = berkey_data()
    with pytest.raises(ValueError, match="X has 4 rows but y has 5"):
        estimator(y, X[:4], S)
    with pytest.raises(ValueError, match=r"within_cov has shape \(5, 3, 3\); "
                                         r"expected \(5, 2, 2\)"):
        estimator(y, X, np.zeros((5, 3, 3)))


@pytest.mark.parametrize("estimator", [method_of_moments, variance_components])
def test_missing_values_errors(estimator):
    y, X, S = berkey_data()
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X has missing or infinite values in rows \[3\]"):
        estimator(y, X, S)
    y, X, S = berkey_data()
    S = S.copy()
    S[2, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"within_cov is missing for observed "
                                         r"outcomes in rows \[2\]"):
        estimator(y, X, S)


@pytest.mark.parametrize("estimator", [method_of_moments, variance_components])
def test_pair_never_observed_error(estimator):
    y, X, S = berkey_data()
    y = y.copy()
    y[:3, 1] = np.nan
    y[3:, 0] = np.nan
    with pytest.raises(ValueError, match="outcomes 0 and 1 are never observed "
                                         "in the same study"):
        estimator(y, X, S)


def test_unadjusted_vc_needs_enough_studies():
    y, X, S = berkey_data()
    y = y.copy()
    y[:3, 1] = np.nan           # only 2 studies observe AL, and p = 2
    with pytest.raises(ValueError, match=r"adjust=False needs more than p = 2 "
                                         r"studies .* the fewest is 2"):
        variance_components(y, X, S, adjust=False)
