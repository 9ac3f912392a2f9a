"""
``fit_many(..., groups=G)``: one two-level multivariate design refitted to
many data sets equals a loop of single fits (the design of Sera et al.
2019, Table 6: k = 3, intercepts, cs Psi at both nested levels).
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.fitting import many_multilevel as optimiser
from statsmodels_mixmeta.kernels import many_multilevel as kernel
from statsmodels_mixmeta.many import Status

K = 3


def cs(k, var, rho):
    return var * ((1 - rho) * np.eye(k) + rho * np.ones((k, k)))


def design(n_outer, n_inner=10, seed=0, within_corr=0.8, p=1):
    rng = np.random.default_rng(seed)
    n = n_outer * n_inner
    sd = np.sqrt(rng.uniform(0.1, 2.0, (n, K)))
    S = sd[:, :, None] * cs(K, 1.0, within_corr) * sd[:, None, :]
    groups = pd.DataFrame({"outer": np.repeat(np.arange(n_outer), n_inner),
                           "inner": np.tile(np.arange(n_inner), n_outer)})
    exog = np.ones((n, 1)) if p == 1 else np.column_stack(
        [np.ones(n), rng.normal(size=(n, p - 1))])
    return S, groups, exog


def draw(S, groups, n_sets, seed, rho=0.8, psi_outer=None):
    rng = np.random.default_rng(seed)
    n = len(S)
    outer = groups["outer"].to_numpy()
    m = outer.max() + 1
    psi_o = cs(K, 1.0, rho) if psi_outer is None else psi_outer
    u_o = rng.multivariate_normal(np.zeros(K), psi_o, (n_sets, m))
    u_w = rng.multivariate_normal(np.zeros(K), cs(K, 1.0, rho), (n_sets, n))
    e = np.einsum("nab,rnb->rna", np.linalg.cholesky(S),
                  rng.standard_normal((n_sets, n, K)))
    return np.moveaxis(u_o[:, outer] + u_w + e, 0, 2)     # (n, k, n_sets)


def single(y, S, groups, exog, method, bscov=("cs", "cs")):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smm.MixMeta(y, exog, S=S, groups=groups, bscov=list(bscov),
                           method=method).fit()


def assert_same(many, j, fit, rtol=1e-6):
    """llf to 1e-8; coefficients, standard errors and Psi to 1e-6 relative
    (a coefficient near 0 relative to the largest, a Psi at 0 relative to
    the largest Psi)."""
    assert abs(many.llf[j] - fit.llf) < 1e-8
    params = np.asarray(fit.params)
    np.testing.assert_allclose(many.params[j], params, rtol=rtol,
                               atol=rtol * np.abs(params).max())
    np.testing.assert_allclose(many.bse[j], fit.bse, rtol=rtol)
    # a Psi at 0 (the single fit's 1e-20) relative to the other level's
    scale = max(np.abs(psi).max() for psi in fit.psis)
    for level in range(2):
        np.testing.assert_allclose(many.psi[j, level], fit.psis[level],
                                   rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="module")
def table6():
    S, groups, exog = design(10, seed=1)
    return S, groups, exog, draw(S, groups, 24, seed=2)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_equals_single_fits_table6(table6, method):
    S, groups, exog, Y = table6
    many = smm.fit_many(Y, S, groups=groups, bscov=["cs", "cs"],
                        method=method)
    assert many.converged.all() and many.psi.shape == (24, 2, K, K)
    for j in range(Y.shape[2]):
        assert_same(many, j, single(Y[:, :, j], S, groups, exog, method))


def test_formula_fit_and_problem(table6):
    S, groups, _, Y = table6
    many = smm.fit_many(Y[:, :, :3], S, groups=groups, bscov="cs")
    frame = groups.copy()
    cols, rows = np.triu_indices(K)          # lower triangle by column
    names = [f"S{a}{b}" for a, b in zip(rows, cols)]
    frame[names] = S[:, rows, cols]
    frame[["y0", "y1", "y2"]] = Y[:, :, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixmeta("y0 + y1 + y2 ~ 1", data=frame, S=names,
                          random="~ 1 | outer/inner",
                          bscov=["cs", "cs"]).fit()
    assert_same(many, 2, fit)
    assert_same(many, 2, many[2])
    assert_same(many, 1, many.problem(1))
    columns = many.to_frame().columns
    assert "psi[0][1,0]" in columns and "psi[1][2,2]" in columns


def test_vech_S_and_chunks_agree(table6):
    S, groups, _, Y = table6
    cols, rows = np.triu_indices(K)
    full = smm.fit_many(Y, S, groups=groups, bscov=["cs", "cs"])
    vech = smm.fit_many(Y, S[:, rows, cols], groups=groups.to_numpy(),
                        bscov=["cs", "cs"], chunk_size=5)
    np.testing.assert_allclose(vech.params, full.params, rtol=1e-12)
    np.testing.assert_allclose(vech.psi, full.psi, rtol=1e-10, atol=1e-12)
    # rows in any order, groups labelled by strings: the same fits
    order = np.random.default_rng(0).permutation(len(S))
    labels = groups.astype(str).iloc[order]
    shuffled = smm.fit_many(Y[order], S[order], groups=labels,
                            bscov=["cs", "cs"])
    np.testing.assert_allclose(shuffled.llf, full.llf, rtol=1e-12)
    np.testing.assert_allclose(shuffled.psi, full.psi, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("bscov", [("diag", "id"), ("id", "cs")])
def test_other_structures(bscov):
    S, groups, exog = design(6, 5, seed=3, p=2)
    Y = draw(S, groups, 4, seed=4)
    many = smm.fit_many(Y, S, exog, groups=groups, bscov=list(bscov))
    for j in range(4):
        fit = single(Y[:, :, j], S, groups, exog, "reml", bscov)
        assert_same(many, j, fit)


def dense_llf(y, S, exog, outer, psi_o, psi_w, reml):
    """The (restricted) log-likelihood with the full marginal covariance,
    by hand."""
    n = len(y)
    X = np.einsum("nc,ab->nacb", exog, np.eye(K)).reshape(n * K, -1)
    same = (outer[:, None] == outer[None, :]).astype(float)
    V = np.kron(same, psi_o) + np.kron(np.eye(n), psi_w)
    V += np.einsum("nab,nm->namb", S, np.eye(n)).reshape(n * K, n * K)
    Vi = np.linalg.inv(V)
    F = X.T @ Vi @ X
    beta = np.linalg.solve(F, X.T @ Vi @ y.reshape(-1))
    r = y.reshape(-1) - X @ beta
    N, q = n * K, X.shape[1]
    llf = -0.5 * (np.linalg.slogdet(V)[1] + r @ Vi @ r)
    if reml:
        return llf - 0.5 * np.linalg.slogdet(F)[1] - (N - q) * np.log(
            2 * np.pi) / 2 + 0.5 * np.linalg.slogdet(X.T @ X)[1]
    return llf - N * np.log(2 * np.pi) / 2


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_small_m_interior_and_boundary(method):
    """m = 3 outer groups: where the single fit is interior the two agree;
    where it stops at a boundary, fit_many's maximum (over the closed cone)
    is at least as high, and its likelihood is the hand-computed one."""
    S, groups, exog = design(3, 4, seed=5)
    Y = draw(S, groups, 10, seed=6, psi_outer=cs(K, 1.0, 0.5))
    many = smm.fit_many(Y, S, groups=groups, bscov=["cs", "cs"],
                        method=method)
    outer = groups["outer"].to_numpy()
    interior = 0
    for j in range(Y.shape[2]):
        fit = single(Y[:, :, j], S, groups, exog, method)
        hand = dense_llf(Y[:, :, j], S, exog, outer, many.psi[j, 0],
                         many.psi[j, 1], method == "reml")
        assert abs(hand - many.llf[j]) < 1e-8
        assert many.llf[j] >= fit.llf - 1e-8
        if not fit.on_boundary:
            interior += 1
            assert_same(many, j, fit)
    assert 4 <= interior < Y.shape[2]


def test_kernel_against_dense_and_score():
    """Unequal outer groups, a covariate: the nested likelihood equals the
    dense one and its matrix gradients equal central differences."""
    rng = np.random.default_rng(7)
    sizes = [3, 1, 4]
    outer = np.repeat(np.arange(3), sizes)
    n = len(outer)
    sd = np.sqrt(rng.uniform(0.1, 2.0, (n, K)))
    S = sd[:, :, None] * cs(K, 1.0, 0.5) * sd[:, None, :]
    exog = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=(2, n, K))
    B = rng.normal(size=(2, 2, K, K))
    psi_o, psi_w = np.einsum("lrab,lrcb->lrac", B, B) / 3
    bases = tuple(optimiser.cone_basis("cs", K) for _ in range(2))
    for reml in (True, False):
        stack = kernel.NestedStack(S, exog, outer, reml)
        padded = stack.pad(y)
        ev = kernel.evaluate(stack, padded, psi_o, psi_w, bases)
        for r in range(2):
            assert abs(ev.llf[r] - dense_llf(y[r], S, exog, outer, psi_o[r],
                                             psi_w[r], reml)) < 1e-10
        h = 1e-6
        for level, grad in enumerate((ev.grad_outer, ev.grad_inner)):
            for E in bases[level]:
                up = [psi_o, psi_w]
                down = [psi_o, psi_w]
                up[level] = up[level] + h * E
                down[level] = down[level] - h * E
                numeric = (kernel.evaluate(stack, padded, *up).llf
                           - kernel.evaluate(stack, padded, *down).llf
                           ) / (2 * h)
                np.testing.assert_allclose(
                    np.einsum("rab,ab->r", grad, E), numeric, atol=1e-6)
        assert (np.linalg.eigvalsh(ev.info) > 0).all()


def test_theta_of_matches_structure():
    from statsmodels_mixmeta.structures.psi import make_structure
    structure = make_structure("cs", K)
    theta = np.array([1.3, -0.4])
    psi = structure.psi(theta)[None]
    np.testing.assert_allclose(optimiser.theta_of("cs", psi)[0], theta,
                               rtol=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(method="mm"), "method must be one of"),
    (dict(bscov="unstr"), "unstr is not supported"),
    (dict(bscov=["cs"]), "one structure per level"),
    (dict(endog_nan=True), r"endog must be finite with groups.*\(4, 1\)"),
    (dict(S=np.eye(K)), "S must be shared by all data sets"),
    (dict(S_bad=True), r"positive definite; rows \[2\]"),
    (dict(groups=np.zeros((5, 2))), r"groups must be \(n_rows, n_levels\)"),
    (dict(groups_cols=3), "groups must have 2 columns"),
    (dict(groups_repeat=True), r"each inner group must be one row.*rows "
                               r"\[0, 1\]"),
    (dict(exog=np.ones((3, 1))), "exog must be finite"),
])
def test_bad_input(change, message):
    S, groups, exog = design(3, 4, seed=8)
    Y = draw(S, groups, 2, seed=9)
    kwargs = dict(method="reml", bscov=["cs", "cs"], groups=groups)
    S_in, Y_in = S.copy(), Y.copy()
    if change.pop("endog_nan", False):
        Y_in[4, 0, 1] = np.nan
    if change.pop("S_bad", False):
        S_in[2] = -S_in[2]
    if "groups_cols" in change:
        change.pop("groups_cols")
        kwargs["groups"] = np.column_stack([groups, groups["inner"]])
    if change.pop("groups_repeat", False):
        bad = groups.copy()
        bad.loc[1, "inner"] = bad.loc[0, "inner"]
        kwargs["groups"] = bad
    if "S" in change:
        S_in = change.pop("S")
    kwargs.update(change)
    exog_in = kwargs.pop("exog", None)
    before = Y_in.copy()
    with pytest.raises(ValueError, match=message):
        smm.fit_many(Y_in, S_in, exog_in, **kwargs)
    np.testing.assert_array_equal(Y_in, before)


def test_bootstrap_refits_all_draws_at_once(table6):
    """``simulate(refit=True)`` of a two-level cs fit goes through the
    batched climbs and equals single fits of the same draws."""
    S, groups, exog, Y = table6
    fit = single(Y[:, :, 0], S, groups, exog, "reml")
    frame = fit.simulate(4, seed=11, refit=True)
    draws = fit.simulate(4, seed=11)
    assert frame.attrs["warnings"] == {} and frame["converged"].all()
    assert (frame["n_warnings"] == 0).all()
    for j, y in enumerate(draws):
        one = single(y, S, groups, exog, "reml")
        assert abs(frame["llf"][j] - one.llf) < 1e-8
        np.testing.assert_allclose(frame.iloc[j, :K], one.params, rtol=1e-6)
        rows, cols = np.tril_indices(K)
        psi = np.concatenate([p[rows, cols] for p in one.psis])
        np.testing.assert_allclose(frame.iloc[j, K:K + len(psi)], psi,
                                   rtol=1e-6, atol=1e-6)
    # with fit_kwargs the loop of single fits runs: the same estimates
    loop = fit.simulate(4, seed=11, refit=True, fit_kwargs={"maxiter": 500})
    np.testing.assert_allclose(loop["llf"], frame["llf"], atol=1e-8)


def test_maxiter_reports_unconverged(table6):
    S, groups, _, Y = table6
    short = smm.fit_many(Y, S, groups=groups, bscov=["cs", "cs"], maxiter=2)
    assert (~short.converged).all() and (short.n_iter == 2).all()
    assert (short.status == Status.UNCERTIFIED).all()
    assert set(short.messages.index) == set(range(Y.shape[2]))
    full = smm.fit_many(Y, S, groups=groups, bscov=["cs", "cs"])
    assert (short.llf <= full.llf + 1e-12).all()
    assert (full.status == Status.FITTED).all()
