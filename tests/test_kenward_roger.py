"""
Kenward-Roger and Satterthwaite degrees of freedom against a dense N x N
computation written here from the model's own matrices (y, X, Z per level,
the within-study covariances, the group codes): Sigma, its derivatives in
the covariance parameters, the REML information, Phi_A, the df of each
coefficient, the joint F, lambda and m of Kenward & Roger (1997).
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.results.sigma_derivatives import linear_basis

BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]


def berkey(bscov="unstr", method="reml"):
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S,
                       bscov=bscov, method=method)


def bcg():
    data = datasets.load_bcg()
    return smf.mixmeta("logor ~ ablat", data=data, S="logorvar")


def random_slope(bscov="unstr"):
    data = datasets.load_gliomas().dropna(subset=["logOR"])
    return smf.mixmeta("logOR ~ time", data=data, S="logORvar",
                       random="~ I(time - 15) | study", bscov=bscov)


def two_level(seed=3, n_outer=6, n_inner=3, k=3, bscov="cs"):
    """k outcomes, n_outer groups of n_inner studies, seeded draws."""
    rng = np.random.default_rng(seed)
    n = n_outer * n_inner
    outer = np.repeat(np.arange(n_outer), n_inner)
    data = pd.DataFrame({"outer": outer, "inner": np.tile(np.arange(n_inner),
                                                          n_outer)})
    data["x"] = rng.normal(size=n)
    s_cols = []
    for a in range(k):
        for b in range(a, k):
            name = f"s{a}{b}"
            data[name] = (rng.uniform(0.05, 0.3, n) if a == b
                          else 0.0)
            s_cols.append(name)
    for a in range(k):
        for b in range(a + 1, k):
            data[f"s{a}{b}"] = 0.4 * np.sqrt(data[f"s{a}{a}"]
                                             * data[f"s{b}{b}"])
    mu = 0.5 + 0.3 * data["x"].to_numpy()[:, None]
    u_out = rng.normal(scale=0.5, size=(n_outer, k))[outer]
    u_in = rng.normal(scale=0.3, size=(n, k))
    y = mu + u_out + u_in + rng.normal(scale=0.3, size=(n, k))
    names = [f"y{a}" for a in range(k)]
    for a, name in enumerate(names):
        data[name] = y[:, a]
    return smf.mixmeta(" + ".join(names) + " ~ x", data=data, S=s_cols,
                       random="~ 1 | outer/inner", bscov=bscov)


# ------------------------------------------------------------ dense algebra
def dense_parts(res):
    """Sigma, dSigma/dphi_s, d2Sigma/dphi_s dphi_t (dense) and X, y."""
    model = res._results.model if hasattr(res, "_results") else res.model
    d = model.design
    long = d.long
    N = long.y.shape[0]
    same_row = long.row[:, None] == long.row[None, :]
    S = np.where(same_row, d.within_cov[long.row[:, None], long.outcome[:, None],
                                        long.outcome[None, :]], 0.0)
    levels = model.random.n_levels
    codes = ([long.group] + list(long.level_codes[1:]))[:levels]
    sigma = S.copy()
    first, second = [], []
    theta_parts = model.random.split(res.theta)
    for lev, (structure, theta, code) in enumerate(
            zip(model.random.structures, theta_parts, codes)):
        Z = long.Z[lev]
        r = structure.dim
        mask = code[:, None] == code[None, :]
        Zb = Z.reshape(N, -1, r)      # kron(e_outcome, z): blocks of r

        def spread(M):
            return np.einsum("nca,ab,mcb->nm", Zb, M, Zb) * mask
        sigma += spread(structure.psi(theta))
        lin = linear_basis(structure)
        if lin is not None:
            D, C = lin[0], None
        else:
            D, C = structure.jacobian(theta), structure.curvature(theta)
        T = D.shape[0]
        block = [spread(M) for M in D]
        curv = ([[spread(C[s, t]) for t in range(T)] for s in range(T)]
                if C is not None else [[np.zeros((N, N))] * T] * T)
        first.append(block)
        second.append(curv)
    derivs = [m for block in first for m in block]
    T = len(derivs)
    hess = np.zeros((T, T, N, N))
    start = 0
    for block, curv in zip(first, second):
        n_lev = len(block)
        for s in range(n_lev):
            for t in range(n_lev):
                hess[start + s, start + t] = curv[s][t]
        start += n_lev
    return sigma, derivs, hess, long.X, long.y


def dense_kr(res, L):
    sigma, derivs, hess, X, y = dense_parts(res)
    Winv = np.linalg.inv(sigma)
    phi = np.linalg.inv(X.T @ Winv @ X)
    proj = Winv - Winv @ X @ phi @ X.T @ Winv
    T = len(derivs)
    info = np.array([[0.5 * np.trace(proj @ derivs[s] @ proj @ derivs[t])
                      for t in range(T)] for s in range(T)])
    W = np.linalg.inv(info)
    P = [-X.T @ Winv @ D @ Winv @ X for D in derivs]
    Q = [[X.T @ Winv @ derivs[s] @ Winv @ derivs[t] @ Winv @ X
          for t in range(T)] for s in range(T)]
    R = [[X.T @ Winv @ hess[s, t] @ Winv @ X for t in range(T)]
         for s in range(T)]
    inner = sum(W[s, t] * (Q[s][t] - P[s] @ phi @ P[t] - R[s][t] / 4)
                for s in range(T) for t in range(T))
    phi_a = phi + 2 * phi @ inner @ phi
    beta = phi @ X.T @ Winv @ y
    # per-coefficient df (Satterthwaite: 2 v^2 / g' W g)
    df = []
    for j in range(len(beta)):
        e = np.eye(len(beta))[j]
        g = np.array([-e @ phi @ P[s] @ phi @ e for s in range(T)])
        df.append(2 * (e @ phi @ e) ** 2 / (g @ W @ g))
    # joint test of L
    J = L.shape[0]
    theta = L.T @ np.linalg.inv(L @ phi @ L.T) @ L
    tr = [np.trace(theta @ phi @ P[s] @ phi) for s in range(T)]
    A1 = sum(W[s, t] * tr[s] * tr[t] for s in range(T) for t in range(T))
    A2 = sum(W[s, t] * np.trace(theta @ phi @ P[s] @ phi @ theta @ phi
                                @ P[t] @ phi)
             for s in range(T) for t in range(T))
    B = (A1 + 6 * A2) / (2 * J)
    g = ((J + 1) * A1 - (J + 4) * A2) / ((J + 2) * A2)
    c1, c2, c3 = (np.array([g, J - g, J + 2 - g])
                  / (3 * J + 2 * (1 - g)))
    E = 1 / (1 - A2 / J)
    V = 2 / J * (1 + c1 * B) / ((1 - c2 * B) ** 2 * (1 - c3 * B))
    rho = V / (2 * E ** 2)
    m = 4 + (J + 2) / (J * rho - 1)
    lam = m / (E * (m - 2))
    diff = L @ beta
    F = diff @ np.linalg.solve(L @ phi_a @ L.T, diff) / J
    return dict(phi=phi, phi_a=phi_a, df=np.array(df), m=m, lam=lam, F=F,
                beta=beta)


def joint(res):
    p = len(res.params)
    return np.eye(p)[1:]


CASES = {
    "univariate": lambda: bcg(),
    "multivariate-unstr": lambda: berkey("unstr"),
    "multilevel-cs": lambda: two_level(),
    "multivariate-hcs": lambda: berkey("hcs"),
    "multilevel-diag": lambda: two_level(seed=5, k=2, bscov="diag"),
    "random-slope-unstr": lambda: random_slope(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kenward_roger_equals_dense_computation(case):
    res = CASES[case]().fit(use_t=True, df_method="kenward-roger")
    L = joint(res)
    dense = dense_kr(res, L)
    np.testing.assert_allclose(res.params, dense["beta"], rtol=1e-8,
                               atol=1e-10)
    scale = np.abs(dense["phi_a"]).max()
    np.testing.assert_allclose(res.cov_params(), dense["phi_a"], rtol=1e-8,
                               atol=1e-8 * scale)
    assert np.any(np.abs(dense["phi_a"] - dense["phi"]) > 1e-6 * scale)
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(dense["phi_a"])),
                               rtol=1e-8)
    np.testing.assert_allclose(res.df_inference, dense["df"], rtol=1e-8)
    rule = res._results._df_rule
    m, lam = rule.scaling(L)
    np.testing.assert_allclose([m, lam], [dense["m"], dense["lam"]],
                               rtol=1e-8)
    test = res.f_test(L)
    np.testing.assert_allclose(float(test.fvalue), dense["lam"] * dense["F"],
                               rtol=1e-8)
    np.testing.assert_allclose(float(test.df_denom), dense["m"], rtol=1e-8)
    assert float(test.df_num) == L.shape[0]
    # t tests and intervals on each coefficient's own df
    t = res.params / res.bse
    np.testing.assert_allclose(res.pvalues,
                               2 * stats.t.sf(np.abs(t), dense["df"]),
                               rtol=1e-8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_satterthwaite_equals_dense_and_single_kr(case):
    """Kenward & Roger (1997): for one contrast (J = 1) A1 = A2, so that
    g = -1, lambda = 1 and m = 2 (l'Phi l)^2 / (g'W g): the Satterthwaite
    df of the unadjusted covariance, exactly."""
    model = CASES[case]()
    sat = model.fit(use_t=True, df_method="satterthwaite")
    kr = model.fit(use_t=True, df_method="kenward-roger")
    dense = dense_kr(sat, joint(sat))
    np.testing.assert_allclose(sat.df_inference, dense["df"], rtol=1e-8)
    np.testing.assert_allclose(kr.df_inference, sat.df_inference, rtol=1e-8)
    # Satterthwaite keeps the model-based covariance
    np.testing.assert_allclose(sat.cov_params(), dense["phi"], rtol=1e-8,
                               atol=1e-12)
    # a contrast that is not a coefficient, and lambda = 1 for one row
    row = np.zeros(len(sat.params))
    row[0], row[-1] = 1.0, -1.0
    rule = kr._results._df_rule
    m, lam = rule.scaling(row[None])
    np.testing.assert_allclose(lam, 1.0, rtol=1e-10)
    np.testing.assert_allclose(m, float(sat.t_test(row).df_denom),
                               rtol=1e-8)
    np.testing.assert_allclose(float(kr.t_test(row).df_denom), m, rtol=1e-8)


def test_satterthwaite_joint_f_is_lmertest_rule():
    res = two_level().fit(use_t=True, df_method="satterthwaite")
    L = joint(res)
    cov = np.asarray(res.cov_params())
    d, U = np.linalg.eigh(L @ cov @ L.T)
    nu = np.array([float(res.t_test(row).df_denom) for row in U.T @ L])
    E = np.sum(nu / (nu - 2))
    test = res.f_test(L)
    np.testing.assert_allclose(float(test.df_denom), 2 * E / (E - len(nu)),
                               rtol=1e-10)
    diff = L @ np.asarray(res.params)
    np.testing.assert_allclose(
        float(test.fvalue), diff @ np.linalg.solve(L @ cov @ L.T, diff) / L.shape[0],
        rtol=1e-10)


def test_satterthwaite_with_ml_uses_ml_information():
    res = berkey(method="ml").fit(use_t=True, df_method="satterthwaite")
    dense_res = res
    sigma, derivs, _, X, _ = dense_parts(dense_res)
    Winv = np.linalg.inv(sigma)
    T = len(derivs)
    info = np.array([[0.5 * np.trace(Winv @ derivs[s] @ Winv @ derivs[t])
                      for t in range(T)] for s in range(T)])
    phi = np.linalg.inv(X.T @ Winv @ X)
    W = np.linalg.inv(info)
    df = []
    for j in range(X.shape[1]):
        e = np.eye(X.shape[1])[j]
        g = np.array([e @ phi @ X.T @ Winv @ D @ Winv @ X @ phi @ e
                      for D in derivs])
        df.append(2 * (e @ phi @ e) ** 2 / (g @ W @ g))
    np.testing.assert_allclose(res.df_inference, df, rtol=1e-8)


@pytest.mark.parametrize("method", ["ml", "mm", "vc", "fixed"])
def test_kenward_roger_refuses_other_estimators_before_fitting(method):
    model = berkey(method=method)
    with pytest.raises(ValueError, match="needs a REML fit.*method="):
        model.fit(use_t=True, df_method="kenward-roger")


@pytest.mark.parametrize("method", ["mm", "vc", "fixed"])
def test_satterthwaite_refuses_moment_and_fixed_fits(method):
    with pytest.raises(ValueError, match="ML or REML fit"):
        berkey(method=method).fit(use_t=True, df_method="satterthwaite")


def test_df_methods_need_use_t():
    with pytest.raises(ValueError, match="use_t=True"):
        berkey().fit(df_method="kenward-roger")


def test_kenward_roger_is_invariant_to_the_scale_of_the_data():
    """Phi_A scales with the data's variance unit, the df do not."""
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    a = smf.mixmeta("PD + AL ~ year", data=data, S=BERKEY_S).fit(
        use_t=True, df_method="kenward-roger")
    scaled = data.copy()
    scaled[["PD", "AL"]] *= 10
    scaled[BERKEY_S] *= 100
    b = smf.mixmeta("PD + AL ~ year", data=scaled, S=BERKEY_S).fit(
        use_t=True, df_method="kenward-roger")
    np.testing.assert_allclose(b.df_inference, a.df_inference, rtol=1e-5)
    np.testing.assert_allclose(b.bse, 10 * a.bse, rtol=1e-5)
