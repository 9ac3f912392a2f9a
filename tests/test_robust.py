"""
Cluster-robust covariances (``cov_type="cr0"``, ``"cr1"``, ``"cr2"``,
:mod:`statsmodels_mixmeta.results.robust`): standard errors, Satterthwaite
df and the HTZ test against dense N x N matrix algebra written here (one
loop per cluster), for univariate, multivariate and multilevel fits; CR2's
defining property; closed forms; and the checks made before fitting.
"""
import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.results.robust import ClusterRobust


# ------------------------------------------------------------ small designs
def univariate_data():
    return pd.DataFrame({
        "y": [0.31, -0.12, 0.55, 0.08, 0.92, 0.40, -0.25, 0.61],
        "v": [0.04, 0.09, 0.05, 0.12, 0.07, 0.03, 0.10, 0.06],
        "x": [1.0, 2.5, 0.3, 1.8, 3.1, 2.2, 0.7, 2.9],
        "pair": [1, 1, 2, 2, 3, 3, 4, 4]})


def univariate_phi(data, res):
    return np.diag(data["v"].to_numpy() + res.psis[0][0, 0])


def bivariate_data():
    frame = pd.DataFrame({
        "y1": [0.42, 0.15, 0.61, 0.33, 0.78, 0.20, 0.51],
        "y2": [-0.31, -0.52, np.nan, -0.20, -0.65, -0.12, -0.44],
        "v1": [0.020, 0.035, 0.018, 0.050, 0.027, 0.041, 0.030],
        "c12": [0.006, 0.010, 0.004, 0.012, 0.009, 0.011, 0.008],
        "v2": [0.030, 0.045, 0.026, 0.060, 0.031, 0.052, 0.036],
        "x": [0.2, 1.4, 0.9, 2.0, 0.5, 1.7, 1.1]})
    return frame


def bivariate_dense(data, res):
    """Values in (row, outcome) order with X, y and Phi = S_i + Psi."""
    psi = res.psis[0]
    X, y, blocks = [], [], []
    for _, row in data.iterrows():
        S = np.array([[row.v1, row.c12], [row.c12, row.v2]])
        seen = [j for j, name in enumerate(["y1", "y2"])
                if not np.isnan(row[name])]
        for j in seen:
            xj = np.zeros(4)
            xj[2 * j:2 * j + 2] = [1.0, row.x]
            X.append(xj)
            y.append(row[["y1", "y2"][j]])
        blocks.append((S + psi)[np.ix_(seen, seen)])
    return np.array(X), np.array(y), scipy.linalg.block_diag(*blocks)


def multilevel_data():
    rng = np.random.default_rng(11)
    district = np.repeat([1, 2, 3, 4, 5, 6], [3, 2, 4, 3, 2, 3])
    n = district.size
    study = np.arange(n) // 1 + 1
    x = rng.uniform(0, 2, n)
    v = rng.uniform(0.02, 0.1, n)
    y = (0.3 + 0.2 * x + rng.normal(0, 0.3, 6)[district - 1]
         + rng.normal(0, 0.15, n) + rng.normal(0, np.sqrt(v)))
    return pd.DataFrame({"y": y, "v": v, "x": x, "district": district,
                         "study": study,
                         "region": (district + 1) // 2})


def multilevel_phi(data, res):
    psi_district, psi_study = res.psis[0][0, 0], res.psis[1][0, 0]
    d = data["district"].to_numpy()
    s = data["study"].to_numpy()
    return (np.diag(data["v"].to_numpy())
            + psi_district * (d[:, None] == d[None, :])
            + psi_study * (s[:, None] == s[None, :]))


# ------------------------------------------------------- dense hand algebra
class Dense:
    """CR0-2 by the textbook formulas on N x N matrices, one cluster at a
    time: V = M sum_j X_j' W_j A_j e_j e_j' A_j W_j X_j M; Satterthwaite
    from g_j = (I - H)_j' A_j W_j X_j M c and Omega = G' Phi G; HTZ from
    the variance 2 tr(A Phi A Phi) of each quadratic form."""

    def __init__(self, X, y, Phi, clusters, kind):
        W = np.linalg.inv(Phi)
        self.M = M = np.linalg.inv(X.T @ W @ X)
        self.beta = M @ X.T @ W @ y
        e = y - X @ self.beta
        N = len(y)
        IH = np.eye(N) - X @ M @ X.T @ W
        labels = np.unique(clusters)
        m = len(labels)
        self.P = []     # (rows of the cluster in I - H, A_j W_j X_j M)
        V = np.zeros_like(M)
        for c in labels:
            idx = np.flatnonzero(clusters == c)
            Xc, Wc, Pc = X[idx], W[np.ix_(idx, idx)], Phi[np.ix_(idx, idx)]
            if kind == "cr0":
                A = np.eye(len(idx))
            elif kind == "cr1":
                A = np.sqrt(m / (m - 1)) * np.eye(len(idx))
            else:
                D = np.linalg.cholesky(Pc).T             # Phi_j = D'D
                B = D @ (Pc - Xc @ M @ Xc.T) @ D.T
                A = D.T @ np.linalg.inv(scipy.linalg.sqrtm(B).real) @ D
            u = M @ Xc.T @ Wc @ A @ e[idx]
            V += np.outer(u, u)
            self.P.append((IH[idx], A @ Wc @ Xc @ M))
        self.V, self.Phi = V, Phi

    def g(self, c):
        """N x m: g_j of contrast c for every cluster j."""
        return np.column_stack([rows.T @ (P @ c) for rows, P in self.P])

    def satterthwaite(self, c):
        G = self.g(c)
        omega = G.T @ self.Phi @ G
        return np.trace(omega) ** 2 / np.sum(omega ** 2)

    def hotelling(self, L):
        q = L.shape[0]
        E = np.array([[np.trace(self.g(a).T @ self.Phi @ self.g(b))
                       for b in L] for a in L])
        Ls = np.linalg.inv(scipy.linalg.sqrtm(E).real) @ L
        Gs = [self.g(c) for c in Ls]
        total = 0.0
        for s in range(q):
            for t in range(q):
                A = (Gs[s] @ Gs[t].T + Gs[t] @ Gs[s].T) / 2
                total += 2 * np.trace(A @ self.Phi @ A @ self.Phi)
        return q * (q + 1) / total


def check_against_dense(res, dense):
    np.testing.assert_allclose(res.params, dense.beta, rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(res.cov_params(), dense.V, rtol=1e-8,
                               atol=1e-14)
    p = len(res.params)
    np.testing.assert_allclose(
        res.df_inference, [dense.satterthwaite(c) for c in np.eye(p)],
        rtol=1e-8)
    # a contrast of two coefficients, through t_test
    c = np.zeros(p)
    c[0], c[-1] = 1.0, -1.0
    tt = res.t_test(c)
    np.testing.assert_allclose(tt.df_denom, dense.satterthwaite(c),
                               rtol=1e-8)
    np.testing.assert_allclose(
        tt.pvalue, 2 * stats.t.sf(abs(c @ dense.beta)
                                  / np.sqrt(c @ dense.V @ c),
                                  dense.satterthwaite(c)), rtol=1e-8)
    # joint test of the last two coefficients: HTZ
    L = np.eye(p)[-2:]
    eta = dense.hotelling(L)
    diff = L @ dense.beta
    Q = diff @ np.linalg.solve(L @ dense.V @ L.T, diff)
    F = (eta - 1) / (2 * eta) * Q
    f = res.f_test(L)
    np.testing.assert_allclose(f.fvalue, F, rtol=1e-8)
    np.testing.assert_allclose(f.df_denom, eta - 1, rtol=1e-8)
    np.testing.assert_allclose(f.pvalue, stats.f.sf(F, 2, eta - 1),
                               rtol=1e-7)


@pytest.mark.parametrize("kind", ["cr0", "cr1", "cr2"])
@pytest.mark.parametrize("coarse", [False, True])
def test_univariate_against_dense(kind, coarse):
    data = univariate_data()
    kwds = {"groups": data["pair"]} if coarse else None
    res = smf.mixmeta("y ~ x", data=data, S="v").fit(
        cov_type=kind, cov_kwds=kwds, use_t=True)
    X = np.column_stack([np.ones(8), data["x"]])
    clusters = data["pair"].to_numpy() if coarse else np.arange(8)
    check_against_dense(res, Dense(X, data["y"].to_numpy(),
                                   univariate_phi(data, res), clusters,
                                   kind))


@pytest.mark.parametrize("kind", ["cr0", "cr1", "cr2"])
def test_multivariate_with_missing_outcome_against_dense(kind):
    data = bivariate_data()
    res = smf.mixmeta("y1 + y2 ~ x", data=data, S=["v1", "c12", "v2"]).fit(
        cov_type=kind, use_t=True)
    X, y, Phi = bivariate_dense(data, res)
    rows = np.repeat(np.arange(7), [2, 2, 1, 2, 2, 2, 2])
    check_against_dense(res, Dense(X, y, Phi, rows, kind))


@pytest.mark.parametrize("kind", ["cr0", "cr1", "cr2"])
@pytest.mark.parametrize("coarse", [False, True])
def test_multilevel_against_dense(kind, coarse):
    data = multilevel_data()
    kwds = {"groups": "region"} if coarse else None
    res = smf.mixmeta("y ~ x", data=data, S="v",
                      random="~ 1 | district/study").fit(
        cov_type=kind, cov_kwds=kwds, use_t=True)
    X = np.column_stack([np.ones(len(data)), data["x"]])
    clusters = data["region" if coarse else "district"].to_numpy()
    dense = Dense(X, data["y"].to_numpy(), multilevel_phi(data, res),
                  clusters, kind)
    check_against_dense(res, dense)
    assert res.cov_kwds["description"].startswith(kind.upper())


def test_cr1_is_cr0_times_m_over_m_minus_1():
    data = multilevel_data()
    model = smf.mixmeta("y ~ x", data=data, S="v",
                        random="~ 1 | district/study")
    cr0 = model.fit(cov_type="cr0").cov_params()
    cr1 = model.fit(cov_type="cr1").cov_params()
    np.testing.assert_allclose(cr1, cr0 * 6 / 5, rtol=1e-12)


def dose_response_model():
    """A random slope with full within-study matrices (addS)."""
    alcohol = datasets.load_alcohol()
    within = smm.greenland_longnecker_addS(
        alcohol, study="id", cases="cases", n="peryears", log_rr="logrr",
        var_log_rr=alcohol["se"] ** 2, type="type")
    return smf.mixmeta("logrr ~ 0 + dose", data=alcohol.dropna(
        subset=["se"]), addS=within, random="~ 0 + dose | id")


def test_cr2_is_unbiased_under_the_working_model():
    """sum_j M X_j' W_j A_j (Phi - X M X')_jj A_j W_j X_j M = M: the
    expectation of V_CR2 when the fitted covariance is the truth."""
    data = multilevel_data()
    for model in [
            smf.mixmeta("y ~ x", data=data, S="v",
                        random="~ 1 | district/study"),
            smf.mixmeta("y1 + y2 ~ x", data=bivariate_data(),
                        S=["v1", "c12", "v2"]),
            dose_response_model()]:
        res = model.fit()
        robust = ClusterRobust(res, "cr2")
        p = len(res.params)
        expectation, _ = robust.moments(np.eye(p))
        np.testing.assert_allclose(expectation, res.cov_params(),
                                   rtol=1e-10, atol=1e-14)
        # CR0 is biased downwards there
        expectation0, _ = ClusterRobust(res, "cr0").moments(np.eye(p))
        assert np.all(np.diag(expectation0) < np.diag(res.cov_params()))


def test_cr2_equals_classical_variance_in_balanced_one_way_design():
    """m = 6 groups of 3 values with the same known variance, a random
    intercept per group, intercept only (REML, Psi > 0): CR2 is the
    classical variance of the mean of group means, sum (ybar_j - ybar)^2
    / (m (m - 1)), which is also the model-based variance at the REML
    estimate, and its Satterthwaite df are m - 1."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(6), 3)
    y = rng.normal(size=6)[g] + rng.normal(size=18) * 0.7
    data = pd.DataFrame({"y": y, "v": 0.5, "g": g})
    model = smf.mixmeta("y ~ 1", data=data, S="v", random="~ 1 | g")
    res = model.fit(cov_type="cr2", use_t=True)
    ybar = data.groupby("g")["y"].mean().to_numpy()
    classical = np.sum((ybar - ybar.mean()) ** 2) / (6 * 5)
    assert res.psis[0][0, 0] > 0
    np.testing.assert_allclose(res.bse.iloc[0] ** 2, classical, rtol=1e-6)
    np.testing.assert_allclose(model.fit().bse.iloc[0] ** 2, classical,
                               rtol=1e-6)
    np.testing.assert_allclose(res.df_inference, [5.0], rtol=1e-10)


def test_closed_forms_of_the_clustered_mean():
    """Intercept only, unit known variances, no heterogeneity (an OLS
    mean), clusters of sizes n_j summing to N: with r_j = ybar_j - ybar,
    CR0 = sum n_j^2 r_j^2 / N^2, CR1 = m / (m - 1) CR0, CR2 = sum n_j^2
    r_j^2 / (1 - n_j / N) / N^2, and Satterthwaite df
    (N^2 - s2)^2 / (N^2 s2 - 2 N s3 + s2^2) (CR0, CR1; s_k = sum n_j^k)
    and N^2 / (N^2 sum n_j^2/(N-n_j)^2 - 2 N sum n_j^3/(N-n_j)^2
    + (sum n_j^2/(N-n_j))^2) (CR2), derived from Omega = G' G."""
    nj = np.array([1, 3, 2, 5, 2, 4, 1, 3])
    N, m = nj.sum(), nj.size
    cluster = np.repeat(np.arange(m), nj)
    y = np.random.default_rng(5).normal(size=N)
    data = pd.DataFrame({"y": y, "v": 1.0, "cluster": cluster})
    model = smf.mixmeta("y ~ 1", data=data, S="v", method="fixed")
    r = data.groupby("cluster")["y"].mean().to_numpy() - y.mean()
    cr0 = np.sum(nj ** 2 * r ** 2) / N ** 2
    s2, s3 = np.sum(nj ** 2), np.sum(nj ** 3)
    df0 = (N ** 2 - s2) ** 2 / (N ** 2 * s2 - 2 * N * s3 + s2 ** 2)
    expected = {
        "cr0": (cr0, df0),
        "cr1": (m / (m - 1) * cr0, df0),
        "cr2": (np.sum(nj ** 2 * r ** 2 / (1 - nj / N)) / N ** 2,
                N ** 2 / (N ** 2 * np.sum(nj ** 2 / (N - nj) ** 2)
                          - 2 * N * np.sum(nj ** 3 / (N - nj) ** 2)
                          + np.sum(nj ** 2 / (N - nj)) ** 2))}
    for kind, (var, df) in expected.items():
        res = model.fit(cov_type=kind, cov_kwds={"groups": cluster},
                        use_t=True)
        np.testing.assert_allclose(res.bse.iloc[0] ** 2, var, rtol=1e-10)
        np.testing.assert_allclose(res.df_inference, [df], rtol=1e-10)


def test_without_use_t_normal_references_with_robust_se():
    data = multilevel_data()
    res = smf.mixmeta("y ~ x", data=data, S="v",
                      random="~ 1 | district/study").fit(cov_type="cr2")
    assert res.df_inference is None
    np.testing.assert_allclose(
        res.pvalues, 2 * stats.norm.sf(abs(res.params / res.bse)),
        rtol=1e-12)
    assert res.cov_type == "cr2"


def test_caller_groups_are_not_modified():
    data = univariate_data()
    groups = data["pair"].to_numpy().copy()
    before = groups.copy()
    smf.mixmeta("y ~ x", data=data, S="v").fit(
        cov_type="cr2", cov_kwds={"groups": groups})
    np.testing.assert_array_equal(groups, before)


@pytest.mark.parametrize("kwargs, message", [
    (dict(cov_type="cr2", cov_kwds={"groups": [1, 2, 3]}),
     r"one cluster label per row used by the model \(8 rows"),
    (dict(cov_type="cr1", cov_kwds={"cluster": [1] * 8}),
     r"takes cov_kwds \['groups'\]; got unknown \['cluster'\]"),
    (dict(cov_type="cr0", cov_kwds={"groups": [1] * 8}),
     "gives one cluster"),
    (dict(cov_type="cr2", cov_kwds={"groups": [1, 1, 2, None, 3, 3, 4, 4]}),
     r"missing for rows \[3\]"),
    (dict(cov_type="cr2", cov_kwds={"groups": "nope"}),
     "'nope' is not a column"),
    (dict(cov_type="cr2", use_t=True, df_method="residual"),
     "brings its own degrees of freedom"),
])
def test_bad_cluster_options_refused_before_fitting(kwargs, message):
    model = smf.mixmeta("y ~ x", data=univariate_data(), S="v")
    with pytest.raises(ValueError, match=message):
        model.fit(**kwargs)


def test_clusters_must_hold_whole_outer_groups():
    data = multilevel_data()
    model = smf.mixmeta("y ~ x", data=data, S="v",
                        random="~ 1 | district/study")
    split = np.arange(len(data)) % 2
    with pytest.raises(ValueError, match=r"splits outer groups \(district "
                       r"\[1, 2, 3, 4, 5, 6\]\)"):
        model.fit(cov_type="cr2", cov_kwds={"groups": split})


def test_groups_as_series_aligned_on_row_labels():
    data = univariate_data()
    model = smf.mixmeta("y ~ x", data=data, S="v")
    shuffled = data["pair"].iloc[::-1]
    res = model.fit(cov_type="cr2", cov_kwds={"groups": shuffled})
    same = model.fit(cov_type="cr2", cov_kwds={"groups": data["pair"]})
    np.testing.assert_allclose(res.bse, same.bse, rtol=1e-12)
    with pytest.raises(ValueError, match=r"no label for rows \[6, 7\]"):
        model.fit(cov_type="cr2",
                  cov_kwds={"groups": data["pair"].iloc[:6]})


def test_htz_of_one_contrast_is_the_satterthwaite_t_test():
    data = multilevel_data()
    res = smf.mixmeta("y ~ x", data=data, S="v",
                      random="~ 1 | district/study").fit(
        cov_type="cr2", use_t=True)
    f = res.f_test("x = 0")
    t = res.t_test("x = 0")
    np.testing.assert_allclose(f.fvalue, np.ravel(t.tvalue)[0] ** 2, rtol=1e-10)
    np.testing.assert_allclose(f.df_denom, res.df_inference[1], rtol=1e-10)
    np.testing.assert_allclose(f.pvalue, res.pvalues.iloc[1], rtol=1e-8)
