"""
The multilevel API (issue 4): ``random=`` in its three spellings, per-level
``bscov`` / ``psi_fix`` / ``init_psi``, ``addS``, the labelled results
(``psi``, ``blup(level=)``, ``random_effects()``), nesting, the missing-data
rule with grouping variables, the array interface (``groups``, ``exog_re``)
and the error messages.

Numbers are checked against a dense reference written in tests/dense.py:
the ML log-likelihood of the observed values with the full marginal
covariance built entry by entry, the fixed effects profiled out by GLS.  It
shares no code with the package.
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from dense import dense_ml
from reference_models import MULTILEVEL, _gliomas, _gliomas_addS

SAME = dict(rtol=1e-10, atol=1e-12)          # the same computation
DENSE = dict(rtol=1e-8, atol=1e-10)          # package vs dense reference
OPTIMUM = dict(rtol=1e-5, atol=1e-7)         # two runs to the same optimum
NMMAPS_S = [f"vcov{i}" for i in range(1, 11)]
NMMAPS_Y = ["coef1", "coef2", "coef3", "coef4"]
TIMES = ["C(time)[6]", "C(time)[12]", "C(time)[18]", "C(time)[24]"]


def psi_list(res):
    psi = res.psi
    frames = list(psi.values()) if isinstance(psi, dict) else [psi]
    return [f.to_numpy() for f in frames]


def assert_same_fit(a, b, tol=SAME):
    np.testing.assert_allclose(np.asarray(a.params), np.asarray(b.params),
                               **tol)
    np.testing.assert_allclose(np.asarray(a.bse), np.asarray(b.bse), **tol)
    assert a.llf == pytest.approx(b.llf, rel=tol["rtol"], abs=tol["atol"])
    for pa, pb in zip(psi_list(a), psi_list(b)):
        np.testing.assert_allclose(pa, pb, **tol)
    assert a.n_groups == b.n_groups and a.nobs == b.nobs


def school():
    return datasets.load_school()


def school_fit(random="~ 1 | district/study", data=None, **kw):
    kw.setdefault("method", "ml")
    data = school() if data is None else data
    return smf.mixmeta("effect ~ 1", data=data, S="var", random=random,
                       **kw).fit()


def nmmaps():
    return datasets.load_nmmaps_tmeanagepar()


@pytest.fixture(scope="module")
def school2():
    return school_fit()


@pytest.fixture(scope="module")
def school_district():
    return school_fit("~ 1 | district")


@pytest.fixture(scope="module")
def nmmaps_fit():
    return smf.mixmeta("coef1 + coef2 + coef3 + coef4 ~ agecat",
                       data=nmmaps(), S=NMMAPS_S, random="~ 1 | city",
                       method="ml").fit()


@pytest.fixture(scope="module")
def gliomas_slope():
    return smf.mixmeta("logOR ~ time", data=_gliomas(),
                       random="~ I(time - 15) | study", bscov="diag",
                       addS=_gliomas_addS(), method="ml").fit()


# ------------------------------------------------------- the pinned calls
def test_pinned_school_two_levels(school2):
    data = school()
    assert school2.converged
    assert school2.n_groups == 11 and school2.nobs == 56
    assert list(school2.psi) == ["district", "study"]
    llf, beta = dense_ml(data[["effect"]], np.ones((56, 1)),
                         data[["district", "study"]], [np.ones(56)] * 2,
                         psi_list(school2),
                         within=data["var"].to_numpy()[:, None, None])
    assert school2.llf == pytest.approx(llf, rel=1e-10)
    np.testing.assert_allclose(school2.params.values, beta, **DENSE)
    # both variance components are away from 0
    assert school2.psi["district"].iloc[0, 0] > 0.01
    assert school2.psi["study"].iloc[0, 0] > 0.01


def test_pinned_school_is_the_ml_maximum(school2):
    """The dense likelihood is lower at nearby Psi's."""
    data = school()
    psis = psi_list(school2)
    within = data["var"].to_numpy()[:, None, None]

    def llf(scale1, scale2):
        return dense_ml(data[["effect"]], np.ones((56, 1)),
                        data[["district", "study"]], [np.ones(56)] * 2,
                        [psis[0] * scale1, psis[1] * scale2],
                        within=within)[0]
    for s1, s2 in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
        assert llf(s1, s2) < school2.llf


def test_pinned_gliomas_slope(gliomas_slope):
    res = gliomas_slope
    assert res.converged
    assert res.n_groups == 17 and res.nobs == 66
    assert list(res.psi.index) == ["Intercept", "I(time - 15)"]
    assert list(res.psi.columns) == ["Intercept", "I(time - 15)"]
    assert list(res.params.index) == ["Intercept", "time"]
    # diag: the covariance is structurally zero
    assert res.psi.iloc[0, 1] == 0 and res.psi.iloc[1, 0] == 0
    data = _gliomas()
    z = np.c_[np.ones(len(data)), data.time - 15]
    llf, beta = dense_ml(data[["logOR"]], np.c_[np.ones(len(data)),
                                                 data.time],
                         data[["study"]], [z], psi_list(res),
                         addS=_gliomas_addS())
    assert res.llf == pytest.approx(llf, rel=1e-10)
    np.testing.assert_allclose(res.params.values, beta, **DENSE)
    # the same call as the R reference case
    assert_same_fit(res, MULTILEVEL["gliomas_slope_ml"]().fit())


def test_pinned_gliomas_rows_without_outcome_are_dropped_before_addS(
        gliomas_slope):
    """Study 17 has two of its four outcomes missing in the raw data: those
    rows are dropped first, so its addS is 2x2."""
    raw = datasets.load_gliomas()
    assert raw.logOR.isna().sum() == 2
    addS = _gliomas_addS()
    assert addS[17].shape == (2, 2)
    res = smf.mixmeta("logOR ~ time", data=raw,
                      random="~ I(time - 15) | study", bscov="diag",
                      addS=addS, method="ml").fit()
    assert_same_fit(res, gliomas_slope)


def test_pinned_nmmaps(nmmaps_fit):
    res = nmmaps_fit
    assert res.converged
    assert res.n_groups == 108
    assert res.nobs == 324 * 4
    psi = res.psi
    assert isinstance(psi, pd.DataFrame) and psi.shape == (4, 4)
    assert list(psi.index) == NMMAPS_Y and list(psi.columns) == NMMAPS_Y
    np.testing.assert_allclose(psi.values, psi.values.T, rtol=0, atol=0)
    eig = np.linalg.eigvalsh(psi.values)
    assert eig.min() >= -1e-12 * eig.max()
    assert list(res.params.index) == [
        f"{y}:{t}" for y in NMMAPS_Y
        for t in ("Intercept", "agecat[T.75p]", "agecat[T.under65]")]


def test_nmmaps_matches_dense_likelihood(nmmaps_fit):
    data = nmmaps()
    vech = data[NMMAPS_S].to_numpy()
    rows, cols = np.tril_indices(4)
    order = np.lexsort((rows, cols))          # lower triangle by column
    within = np.zeros((len(data), 4, 4))
    within[:, rows[order], cols[order]] = vech
    within[:, cols[order], rows[order]] = vech
    exog = np.c_[np.ones(len(data)), data.agecat == "75p",
                 data.agecat == "under65"]
    llf, beta = dense_ml(data[NMMAPS_Y], exog, data[["city"]],
                         [np.ones(len(data))], psi_list(nmmaps_fit),
                         within=within)
    assert nmmaps_fit.llf == pytest.approx(llf, rel=1e-10)
    np.testing.assert_allclose(nmmaps_fit.params.values, beta, **DENSE)


def test_nmmaps_array_interface(nmmaps_fit):
    data = nmmaps()
    exog = pd.DataFrame({"Intercept": 1.0,
                         "agecat[T.75p]": (data.agecat == "75p") * 1.0,
                         "agecat[T.under65]": (data.agecat == "under65")
                         * 1.0})
    res = smm.MixMeta(data[NMMAPS_Y], exog, S=data[NMMAPS_S].to_numpy(),
                      groups=data["city"], method="ml").fit()
    assert_same_fit(res, nmmaps_fit)
    assert list(res.params.index) == list(nmmaps_fit.params.index)


def _unstr_theta(psi):
    """
    The ``unstr`` parameters of a positive semi-definite Psi: its lower
    Cholesky factor read column by column (also when Psi is singular:
    ``Psi = B B'`` from the eigenvalues, then ``B' = Q R`` gives
    ``Psi = R' R``).
    """
    w, V = np.linalg.eigh(psi)
    r = np.linalg.qr((V * np.sqrt(np.clip(w, 0, None))).T, mode="r")
    lower = r.T * np.where(np.diag(r) < 0, -1.0, 1.0)
    rows, cols = np.tril_indices(len(psi))
    order = np.lexsort((rows, cols))
    return lower[rows[order], cols[order]]


def test_nmmaps_is_a_maximum(nmmaps_fit):
    """
    The nmmaps fit is the ML maximum.  Its Psi is singular (one eigenvalue
    is 3e-18 of the largest), so the maximum is on the boundary of the
    positive semi-definite matrices: there the log-likelihood must be
    stationary in theta, concave, and fall when Psi moves along any of its
    eigenvectors, in both directions where Psi stays PSD and outwards in
    the singular one.  (There is no R reference for this fit in
    tests/results.)
    """
    res, model = nmmaps_fit, nmmaps_fit.model
    theta, llf = res.theta, res.llf
    psi = res.psi.to_numpy()
    eigenvalues, vectors = np.linalg.eigh(psi)
    assert eigenvalues[0] < 1e-12 * eigenvalues[-1] < eigenvalues[1]
    np.testing.assert_allclose(model.psis(_unstr_theta(psi))[0], psi,
                               rtol=0, atol=1e-14)
    # stationary: one more Newton step would gain under 1e-10
    score, hessian = model.score(theta), model.hessian(theta)
    assert np.linalg.eigvalsh(hessian).max() < 0
    assert -score @ np.linalg.solve(hessian, score) / 2 < 1e-10
    # no small move of theta increases the log-likelihood
    rng = np.random.default_rng(4)
    for direction in rng.standard_normal((40, theta.size)):
        direction *= 1e-3 * np.abs(theta).max() / np.linalg.norm(direction)
        assert model.loglike(theta + direction) < llf - 1e-9
        assert model.loglike(theta - direction) < llf - 1e-9
    # nor any move of Psi along its eigenvectors (the singular one only
    # outwards, the others both ways), nor a change of its scale
    moves = [1e-3 * eigenvalues[-1] * np.outer(vectors[:, 0], vectors[:, 0])]
    for value, vector in zip(eigenvalues[1:], vectors.T[1:]):
        moves += [sign * 0.05 * value * np.outer(vector, vector)
                  for sign in (1, -1)]
    moves += [0.01 * psi, -0.01 * psi]
    for move in moves:
        assert model.loglike(_unstr_theta(psi + move)) < llf - 1e-9


# ------------------------------------------------- random= in three forms
@pytest.mark.parametrize("random", [
    ["~ 1 | district", "~ 1 | study"],
    {"district": "~ 1", "study": "~ 1"},
    ("~ 1 | district", "~ 1 | study"),
    "~1|district/study",
])
def test_random_forms_are_equivalent(school2, random):
    res = school_fit(random)
    assert_same_fit(res, school2)
    np.testing.assert_allclose(res.theta, school2.theta, **SAME)
    assert list(res.psi) == ["district", "study"]


def test_random_dict_order_is_the_level_order():
    """A dict lists the levels outer to inner in its own order."""
    model = smf.mixmeta("effect ~ 1", data=school(), S="var",
                        random={"study": "~ 1", "district": "~ 1"})
    assert model.level_names == ["study", "district"]
    # study labels are unique, so the outer groups are the 56 studies
    assert model.n_groups == 56


def test_random_levels_with_their_own_predictors():
    """A random slope at the outer level only, via list and dict."""
    data = school()
    data["yc"] = data.year - 1980
    as_list = school_fit(["~ yc | district", "~ 1 | study"], data=data)
    as_dict = school_fit({"district": "~ yc", "study": "~ 1"}, data=data)
    assert_same_fit(as_list, as_dict)
    assert as_list.converged
    assert list(as_list.psi["district"].index) == ["Intercept", "yc"]
    assert list(as_list.psi["study"].index) == ["Intercept"]
    llf, _ = dense_ml(data[["effect"]], np.ones((56, 1)),
                      data[["district", "study"]],
                      [np.c_[np.ones(56), data.yc], np.ones(56)],
                      psi_list(as_list),
                      within=data["var"].to_numpy()[:, None, None])
    assert as_list.llf == pytest.approx(llf, rel=1e-10)


# ------------------------------------- per-level bscov, psi_fix, init_psi
GLIOMAS_2LEVEL = ["~ I(time - 15) | study", "~ 1 | unit"]


def gliomas_two_levels(**kw):
    return smf.mixmeta("logOR ~ time", data=_gliomas(), S="logORvar",
                       random=GLIOMAS_2LEVEL, method="ml", **kw).fit()


@pytest.fixture(scope="module")
def gliomas_diag2():
    return gliomas_two_levels(bscov="diag")


@pytest.mark.parametrize("bscov", [["diag", "diag"],
                                   {"study": "diag", "unit": "diag"},
                                   ("diag", "diag")])
def test_bscov_per_level_forms(gliomas_diag2, bscov):
    res = gliomas_two_levels(bscov=bscov)
    assert_same_fit(res, gliomas_diag2)
    assert res.psi["study"].iloc[0, 1] == 0


def test_bscov_per_level_differs_by_level(gliomas_diag2):
    unstr = gliomas_two_levels(bscov="unstr")
    mixed = gliomas_two_levels(bscov={"study": "unstr", "unit": "diag"})
    # the unit level has a 1x1 Psi, where unstr and diag coincide
    assert_same_fit(mixed, unstr, OPTIMUM)
    assert unstr.psi["study"].iloc[0, 1] != 0
    assert unstr.llf > gliomas_diag2.llf + 1
    assert mixed.model.random.structures[0].n_params == 3
    assert gliomas_diag2.model.random.structures[0].n_params == 2


@pytest.mark.parametrize("bscov", ["unstr", ["unstr", "unstr"],
                                   {"district": "unstr", "study": "unstr"}])
def test_bscov_unstr_forms_school(school2, bscov):
    assert_same_fit(school_fit(bscov=bscov), school2)


@pytest.mark.parametrize("init_psi", [
    [0.05, 0.05],
    {"district": 0.05, "study": 0.05},
    ([[0.05]], [[0.05]]),
])
def test_init_psi_per_level_forms(init_psi):
    base = school_fit(init_psi=0.05)
    res = school_fit(init_psi=init_psi)
    assert_same_fit(res, base)
    np.testing.assert_allclose(res.theta, base.theta, **SAME)


def test_init_psi_only_for_some_levels_reaches_the_optimum(school2):
    res = school_fit(init_psi={"district": 0.3})
    assert res.converged
    assert_same_fit(res, school2, OPTIMUM)


@pytest.mark.parametrize("psi_fix", [
    [0.01, 0.02],
    {"district": 0.01, "study": 0.02},
    [np.array([[0.01]]), np.array([[0.02]])],
])
def test_psi_fix_per_level_forms(psi_fix):
    data = school()
    res = school_fit(bscov="fixed", psi_fix=psi_fix)
    assert res.psi["district"].iloc[0, 0] == 0.01
    assert res.psi["study"].iloc[0, 0] == 0.02
    assert res.k_psi == 0
    llf, beta = dense_ml(data[["effect"]], np.ones((56, 1)),
                         data[["district", "study"]], [np.ones(56)] * 2,
                         [[[0.01]], [[0.02]]],
                         within=data["var"].to_numpy()[:, None, None])
    assert res.llf == pytest.approx(llf, rel=1e-10)
    np.testing.assert_allclose(res.params.values, beta, **DENSE)


def test_psi_fix_one_value_for_all_levels():
    res = school_fit(bscov="fixed", psi_fix=0.01)
    assert res.psi["district"].iloc[0, 0] == 0.01
    assert res.psi["study"].iloc[0, 0] == 0.01


@pytest.mark.parametrize("kwargs", [
    dict(bscov=["unstr", "fixed"], psi_fix={"unit": 0}),
    dict(bscov={"study": "unstr", "unit": "fixed"}, psi_fix={"unit": 0}),
    dict(bscov=["unstr", "fixed"], psi_fix=[None, 0]),
    dict(bscov=["unstr", "fixed"], psi_fix=[None, np.zeros((1, 1))]),
])
def test_psi_fix_zero_inner_level_gliomas(kwargs):
    """A zero Psi for unit: the one-level model by study."""
    res = smf.mixmeta("logOR ~ 0 + C(time)", data=_gliomas(), S="logORvar",
                      random="~ 1 | study/unit", **kwargs).fit()
    ref = MULTILEVEL["gliomas_cs_fixed0"]().fit()
    assert_same_fit(res, ref)
    assert res.converged
    np.testing.assert_array_equal(res.psi["unit"].values, [[0.0]])
    assert res.psi["study"].iloc[0, 0] > 0.01
    one_level = smf.mixmeta("logOR ~ 0 + C(time)", data=_gliomas(),
                            S="logORvar", random="~ 1 | study").fit()
    assert_same_fit(res, one_level, OPTIMUM)


# ------------------------------------------------------------ labelled psi
def test_psi_dict_outer_to_inner(school2):
    psi = school2.psi
    assert isinstance(psi, dict)
    assert list(psi) == ["district", "study"]
    for frame in psi.values():
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.index) == ["Intercept"]
        assert list(frame.columns) == ["Intercept"]


def test_psi_single_level_is_a_frame(school_district):
    psi = school_district.psi
    assert isinstance(psi, pd.DataFrame)
    assert list(psi.index) == ["Intercept"]
    assert psi.iloc[0, 0] > 0


def test_psi_labels_are_the_random_terms():
    res = MULTILEVEL["gliomas_diag"]().fit()
    assert isinstance(res.psi, pd.DataFrame)
    assert list(res.psi.index) == TIMES
    assert list(res.psi.columns) == TIMES
    off_diagonal = res.psi.values[~np.eye(4, dtype=bool)]
    np.testing.assert_array_equal(off_diagonal, 0.0)


def test_psi_labels_multivariate_random_slope():
    """k outcomes times q random terms: "{outcome}:{term}", outcome-major."""
    data = nmmaps()
    data["old"] = (data.agecat == "75p") * 1.0
    res = smf.mixmeta("coef1 + coef2 ~ agecat", data=data,
                      S=["vcov1", "vcov2", "vcov5"], random="~ old | city",
                      bscov="diag", method="ml").fit()
    assert list(res.psi.index) == ["coef1:Intercept", "coef1:old",
                                   "coef2:Intercept", "coef2:old"]
    assert res.converged


# ------------------------------------------------------------------ BLUPs
def test_blup_outer_level_differs(school2):
    inner, outer = school2.blup(), school2.blup(level=1)
    assert inner.shape == outer.shape == (56, 1)
    assert np.abs(inner.values - outer.values).max() > 0.01
    pd.testing.assert_frame_equal(school2.blup(level=2), inner)
    # one value per district at the outer level
    per_district = outer.groupby(school().district.values).nunique()
    assert (per_district.values == 1).all()


@pytest.mark.parametrize("level", [3, 0, -1])
def test_blup_level_out_of_range(school2, level):
    with pytest.raises(ValueError, match=r"level must be between 1 "
                                         r"\(outermost\) and 2; got"):
        school2.blup(level=level)


def test_blup_level_out_of_range_single_level(school_district):
    with pytest.raises(ValueError, match="between 1 .* and 1; got 2"):
        school_district.blup(level=2)


def test_blup_with_se(school2):
    values, errors = school2.blup(level=1, se=True)
    pd.testing.assert_frame_equal(values, school2.blup(level=1))
    assert (errors.values > 0).all() and np.isfinite(errors.values).all()
    inner_se = school2.blup(se=True)[1]
    assert not np.allclose(inner_se.values, errors.values)


def test_blup_se_by_hand(school2):
    """R's standard error of the innermost BLUP of a row ``a``:
    ``var(beta) + psi1 + psi2 - c' Sigma^-1 c`` with
    ``c = psi1 1 + psi2 e_a`` over the rows of its district."""
    data = school()
    psi1, psi2 = (p[0, 0] for p in psi_list(school2))
    var_beta = school2.bse.iloc[0] ** 2
    errors = school2.blup(se=True)[1]["effect"]
    for _, rows in data.groupby("district"):
        n = len(rows)
        sigma = np.diag(rows["var"]) + psi1 + psi2 * np.eye(n)
        cross = psi1 + psi2 * np.eye(n)               # column a is c_a
        conditional = psi1 + psi2 - np.einsum(
            "ia,ia->a", cross, np.linalg.solve(sigma, cross))
        np.testing.assert_allclose(errors.loc[rows.index],
                                   np.sqrt(var_beta + conditional),
                                   rtol=1e-10)


def test_random_effects_two_levels(school2):
    data = school()
    effects = school2.random_effects()
    assert isinstance(effects, dict)
    assert list(effects) == ["district", "study"]
    district, study = effects["district"], effects["study"]
    assert district.shape == (11, 1)
    assert list(district.index) == sorted(data.district.unique())
    assert list(district.columns) == ["Intercept"]
    assert np.isfinite(district.values).all()
    assert isinstance(study.index, pd.MultiIndex)
    assert list(study.index.names) == ["district", "study"]
    assert study.shape == (56, 1)
    assert set(study.index) == set(zip(data.district, data.study))
    assert np.isfinite(study.values).all()
    # the innermost BLUP is the fixed part plus both levels' effects
    total = (district.loc[data.district].values[:, 0]
             + study.loc[list(zip(data.district, data.study))].values[:, 0])
    fixed = school2.model.predict(school2.params)[:, 0]
    np.testing.assert_allclose(school2.blup().values[:, 0] - fixed, total,
                               rtol=1e-10, atol=1e-12)


def test_random_effects_two_levels_by_hand(school2):
    """b_district = Psi_1 1' Sigma^-1 r over the district's studies."""
    data = school()
    psi1, psi2 = (p[0, 0] for p in psi_list(school2))
    beta = school2.params.iloc[0]
    effects = school2.random_effects()
    for label, rows in data.groupby("district"):
        sigma = (np.diag(rows["var"]) + psi1
                 + psi2 * np.eye(len(rows)))
        weighted = np.linalg.solve(sigma, rows.effect - beta)
        assert effects["district"].loc[label, "Intercept"] == pytest.approx(
            psi1 * weighted.sum(), rel=1e-10)
        np.testing.assert_allclose(
            effects["study"].loc[label].loc[rows.study, "Intercept"],
            psi2 * weighted, rtol=1e-10)


def test_random_effects_single_level(school_district):
    res = school_district
    data = school()
    effects = res.random_effects()
    assert isinstance(effects, pd.DataFrame)
    assert effects.shape == (11, 1)
    assert list(effects.index) == sorted(data.district.unique())
    fixed = res.model.predict(res.params)[:, 0]
    np.testing.assert_allclose(
        res.blup().values[:, 0] - fixed,
        effects.loc[data.district].values[:, 0], rtol=1e-12, atol=1e-14)


def test_random_effects_multivariate(nmmaps_fit):
    res = nmmaps_fit
    data = nmmaps()
    effects = res.random_effects()
    assert isinstance(effects, pd.DataFrame)
    assert effects.shape == (108, 4)
    assert list(effects.columns) == NMMAPS_Y
    assert list(effects.index) == sorted(data.city.unique())
    fixed = res.model.predict(res.params)
    np.testing.assert_allclose(res.blup().values - fixed,
                               effects.loc[data.city].values,
                               rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------- nesting
def small_nested():
    """Four outer groups, inner labels "a"/"b" reused under each."""
    rng = np.random.default_rng(7)
    outer = np.repeat(["g1", "g2", "g3", "g4"], [5, 4, 6, 5])
    inner = np.array(list("aabbb" "abbb" "aaabbb" "aabbb"))
    outer_effect = dict(zip(["g1", "g2", "g3", "g4"],
                            rng.normal(0, 0.5, 4)))
    inner_effect = {(o, i): rng.normal(0, 0.4)
                    for o, i in sorted(set(zip(outer, inner)))}
    var = rng.uniform(0.02, 0.1, outer.size)
    y = (1.0 + np.array([outer_effect[o] for o in outer])
         + np.array([inner_effect[(o, i)] for o, i in zip(outer, inner)])
         + rng.normal(0, np.sqrt(var)))
    return pd.DataFrame({"outer": outer, "inner": inner, "y": y, "v": var})


def test_inner_labels_are_nested_within_outer_groups():
    data = small_nested()
    # "a" appears under every outer group
    assert data.groupby("inner").outer.nunique()["a"] == 4
    unique = data.assign(inner=data.outer + "-" + data.inner)
    reused = smf.mixmeta("y ~ 1", data=data, S="v",
                         random="~ 1 | outer/inner", method="ml").fit()
    renamed = smf.mixmeta("y ~ 1", data=unique, S="v",
                          random="~ 1 | outer/inner", method="ml").fit()
    assert reused.converged and renamed.converged
    assert reused.n_groups == 4
    assert_same_fit(reused, renamed)
    assert len(reused.random_effects()["inner"]) == 8
    np.testing.assert_allclose(
        reused.random_effects()["inner"].values,
        renamed.random_effects()["inner"].values, **SAME)
    llf, _ = dense_ml(data[["y"]], np.ones((20, 1)),
                      data[["outer", "inner"]], [np.ones(20)] * 2,
                      psi_list(reused), within=data.v.to_numpy()[:, None,
                                                                 None])
    assert reused.llf == pytest.approx(llf, rel=1e-10)
    # the inner level alone, not nested, groups by "a"/"b": another model
    crossed = smf.mixmeta("y ~ 1", data=data, S="v", random="~ 1 | inner",
                          method="ml").fit()
    assert crossed.n_groups == 2
    assert abs(crossed.llf - reused.llf) > 1e-3


def test_school_inner_labels_reused(school2):
    data = school()
    data["within"] = data.groupby("district").cumcount()
    assert data.within.nunique() == 11
    res = school_fit("~ 1 | district/within", data=data)
    assert_same_fit(res, school2)


# ------------------------------------------------------------ missing data
def school_with_gaps():
    data = school().astype({"district": object, "study": object,
                            "year": float})
    data.loc[[3, 10], "district"] = np.nan
    data.loc[20, "study"] = np.nan
    data.loc[30, "year"] = np.nan          # not used by this model
    return data


def test_missing_grouping_label_is_dropped():
    res = school_fit(data=school_with_gaps())
    by_hand = school_fit(data=school().drop([3, 10, 20]))
    assert res.nobs == 53
    assert_same_fit(res, by_hand)


def test_missing_grouping_label_raises_naming_rows():
    with pytest.raises(ValueError, match=r"rows 3, 10, 20\b"):
        smf.mixmeta("effect ~ 1", data=school_with_gaps(), S="var",
                    random="~ 1 | district/study", method="ml",
                    missing="raise")


def test_missing_grouping_label_array_interface():
    data = school_with_gaps()
    res = smm.MixMeta(data["effect"], None, S=data["var"].to_numpy(),
                      groups=data[["district", "study"]], method="ml").fit()
    by_hand = school_fit(data=school().drop([3, 10, 20]))
    assert_same_fit(res, by_hand)
    with pytest.raises(ValueError, match=r"rows 3, 10, 20\b"):
        smm.MixMeta(data["effect"], None, S=data["var"].to_numpy(),
                    groups=data[["district", "study"]], missing="raise")


def test_missing_random_predictor_is_dropped():
    data = school().astype({"year": float})
    data.loc[[5, 30], "year"] = np.nan
    random = "~ I(year - 1980) | district"
    res = school_fit(random, data=data)
    by_hand = school_fit(random, data=school().drop([5, 30]))
    assert res.nobs == 54 and res.converged
    assert_same_fit(res, by_hand)
    with pytest.raises(ValueError, match=r"rows 5, 30\b"):
        smf.mixmeta("effect ~ 1", data=data, S="var", random=random,
                    missing="raise")


def test_single_row_groups_and_unequal_sizes():
    """Districts 11 and 12 keep one study each; the others 3 to 11."""
    data = school().drop([1, 2, 3, 5, 6, 7])
    sizes = data.groupby("district").size()
    assert (sizes == 1).sum() == 2 and sizes.max() == 11
    for random in ("~ 1 | district", "~ 1 | district/study"):
        res = school_fit(random, data=data)
        assert res.converged and np.isfinite(res.llf)
        assert res.n_groups == 11 and res.nobs == 50
        labels = data[["district", "study"]].iloc[:, :random.count("/") + 1]
        llf, beta = dense_ml(data[["effect"]], np.ones((50, 1)), labels,
                             [np.ones(50)] * labels.shape[1],
                             psi_list(res),
                             within=data["var"].to_numpy()[:, None, None])
        assert res.llf == pytest.approx(llf, rel=1e-10)
        np.testing.assert_allclose(res.params.values, beta, **DENSE)


def test_unbalanced_nesting():
    """Inner groups of one to five rows, 1 to 3 of them per district."""
    data = school()
    position = data.groupby("district").cumcount()
    data["cluster"] = np.select([position < 1, position < 3, position < 8],
                                ["x", "y", "z"], "w")
    sizes = data.groupby(["district", "cluster"]).size()
    assert sizes.min() == 1 and sizes.max() == 5
    res = school_fit("~ 1 | district/cluster", data=data)
    assert res.converged and np.isfinite(res.llf)
    assert len(res.random_effects()["cluster"]) == len(sizes)
    llf, beta = dense_ml(data[["effect"]], np.ones((56, 1)),
                         data[["district", "cluster"]], [np.ones(56)] * 2,
                         psi_list(res),
                         within=data["var"].to_numpy()[:, None, None])
    assert res.llf == pytest.approx(llf, rel=1e-10)
    np.testing.assert_allclose(res.params.values, beta, **DENSE)


def test_missing_outcomes_multivariate_grouped():
    data = nmmaps()
    data.loc[[0, 4, 50, 51, 200], "coef2"] = np.nan
    data.loc[[7, 90], "coef1"] = np.nan
    data.loc[[300], ["coef1", "coef2"]] = np.nan     # dropped row
    S = ["vcov1", "vcov2", "vcov5"]                  # var1, cov12, var2
    res = smf.mixmeta("coef1 + coef2 ~ agecat", data=data, S=S,
                      random="~ 1 | city", method="ml").fit()
    assert res.converged and np.isfinite(res.llf)
    assert res.n_groups == 108
    assert res.nobs == 2 * 323 - 7
    kept = data.drop(300)
    vech = kept[S].to_numpy()
    within = np.stack([np.c_[vech[:, 0], vech[:, 1]],
                       np.c_[vech[:, 1], vech[:, 2]]], axis=1)
    exog = np.c_[np.ones(len(kept)), kept.agecat == "75p",
                 kept.agecat == "under65"]
    llf, beta = dense_ml(kept[["coef1", "coef2"]], exog, kept[["city"]],
                         [np.ones(len(kept))], psi_list(res), within=within)
    assert res.llf == pytest.approx(llf, rel=1e-10)
    np.testing.assert_allclose(res.params.values, beta, **DENSE)
    # BLUPs are given for every outcome of every row, also missing ones
    assert np.isfinite(res.blup().values).all()


# --------------------------------------------------------------- addS
def test_addS_as_list_or_str_keys(gliomas_slope):
    addS = _gliomas_addS()
    for given in (list(addS.values()),
                  {str(k): v for k, v in addS.items()},
                  dict(reversed(list(addS.items())))):
        res = smf.mixmeta("logOR ~ time", data=_gliomas(),
                          random="~ I(time - 15) | study", bscov="diag",
                          addS=given, method="ml").fit()
        assert_same_fit(res, gliomas_slope)


def test_addS_diagonal_equals_S():
    """addS with each group's diagonal of variances is the S model."""
    data = _gliomas()
    addS = {label: np.diag(rows.logORvar)
            for label, rows in data.groupby("study")}
    with_S = smf.mixmeta("logOR ~ 0 + C(time)", data=data, S="logORvar",
                         random="~ 1 | study", method="ml").fit()
    with_addS = smf.mixmeta("logOR ~ 0 + C(time)", data=data, addS=addS,
                            random="~ 1 | study", method="ml").fit()
    assert_same_fit(with_addS, with_S, OPTIMUM)


# ----------------------------------------------------- array interface
def test_array_interface_school_two_levels(school2):
    data = school()
    res = smm.MixMeta(data["effect"], None, S=data["var"].to_numpy(),
                      groups=data[["district", "study"]], exog_re=None,
                      method="ml").fit()
    assert_same_fit(res, school2)
    assert list(res.psi) == ["district", "study"]
    pd.testing.assert_frame_equal(res.blup(level=1), school2.blup(level=1))


def test_array_interface_plain_arrays(school2):
    data = school()
    res = smm.MixMeta(data["effect"].to_numpy(), np.ones((56, 1)),
                      S=data["var"].to_numpy(),
                      groups=data[["district", "study"]].to_numpy(),
                      exog_re=[np.ones(56), np.ones((56, 1))],
                      method="ml").fit()
    assert_same_fit(res, school2)
    assert list(res.psi) == ["group1", "group2"]


def test_array_interface_random_slope_and_addS(gliomas_slope):
    data = _gliomas()
    exog_re = pd.DataFrame({"Intercept": 1.0, "I(time - 15)": data.time
                            - 15.0})
    exog = pd.DataFrame({"Intercept": 1.0, "time": data.time * 1.0})
    res = smm.MixMeta(data["logOR"], exog, groups=data["study"],
                      exog_re=exog_re, bscov="diag", addS=_gliomas_addS(),
                      method="ml").fit()
    assert_same_fit(res, gliomas_slope)
    assert list(res.psi.index) == ["Intercept", "I(time - 15)"]


# ------------------------------------------------------------------ errors
def test_grouping_variable_not_in_data():
    with pytest.raises(ValueError, match=r"not in data: \['county'\]"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random="~ 1 | district/county")


def test_addS_wrong_size_names_group_and_size():
    addS = _gliomas_addS()
    addS[3] = np.eye(3)
    with pytest.raises(ValueError, match=r"addS for group 3 is 3x3; .* "
                                         r"must be 4x4"):
        smf.mixmeta("logOR ~ time", data=_gliomas(), random="~ 1 | study",
                    addS=addS)


def test_addS_not_psd_names_group_and_eigenvalue():
    addS = _gliomas_addS()
    addS[5] = np.diag([0.5, 0.4, 0.3, -0.2])
    with pytest.raises(ValueError, match=r"group 5 is not positive "
                                         r"semi-definite; smallest "
                                         r"eigenvalue -0\.2"):
        smf.mixmeta("logOR ~ time", data=_gliomas(), random="~ 1 | study",
                    addS=addS)


def test_addS_list_of_wrong_length():
    addS = list(_gliomas_addS().values())[:-1]
    with pytest.raises(ValueError, match="addS has 16 matrices for 17 "
                                         "groups"):
        smf.mixmeta("logOR ~ time", data=_gliomas(), random="~ 1 | study",
                    addS=addS)


def test_addS_dict_missing_a_group():
    addS = _gliomas_addS()
    del addS[9]
    with pytest.raises(ValueError, match=r"no matrix for groups \[9\]"):
        smf.mixmeta("logOR ~ time", data=_gliomas(), random="~ 1 | study",
                    addS=addS)


def test_S_and_addS_both_given():
    with pytest.raises(ValueError, match="either S or addS, not both"):
        smf.mixmeta("logOR ~ time", data=_gliomas(), S="logORvar",
                    random="~ 1 | study", addS=_gliomas_addS())


@pytest.mark.parametrize("option, value", [
    ("bscov", {"county": "diag"}),
    ("psi_fix", {"county": 0.0}),
    ("init_psi", {"study": 0.1, "county": 0.1}),
])
def test_option_keyed_by_unknown_level(option, value):
    kwargs = {option: value}
    if option == "psi_fix":
        kwargs["bscov"] = "fixed"
    with pytest.raises(ValueError, match=r"keyed by \['county'\], which are "
                                         r"not grouping levels; the levels "
                                         r"are \['district', 'study'\]"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random="~ 1 | district/study", **kwargs)


def test_bscov_list_of_wrong_length():
    with pytest.raises(ValueError, match=r"bscov has 3 entries for 2 "
                                         r"grouping levels"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random="~ 1 | district/study",
                    bscov=["unstr", "unstr", "diag"])


@pytest.mark.parametrize("random, bscov", [
    ("~ 1 | study", "ar1"),
    ("~ 1 | district/study", ["unstr", "ar1"]),
])
def test_structure_that_does_not_fit_the_dimension(random, bscov):
    with pytest.raises(ValueError, match=r"ar1.*1×1.*level 'study'"):
        smf.mixmeta("effect ~ 1", data=school(), S="var", random=random,
                    bscov=bscov)


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_moment_methods_refuse_multilevel(method):
    with pytest.raises(ValueError, match=f"method='{method}' is available "
                                         "only for single-level"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random="~ 1 | district/study", method=method)


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_moment_methods_refuse_a_shared_random_effect(method):
    # the studies of a district share its random intercept: not the
    # one-effect-per-value layout the moment estimators are defined for
    with pytest.raises(ValueError, match=f"method='{method}' needs every "
                                         "value .* same random effect"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random="~ 1 | district", method=method)


@pytest.mark.parametrize("method", ["mm", "vc"])
def test_moment_methods_with_one_group_per_row(method):
    # random= with one study per group is the model without random=
    data = school()
    plain = smf.mixmeta("effect ~ 1", data=data, S="var",
                        method=method).fit()
    grouped = smf.mixmeta("effect ~ 1", data=data, S="var",
                          random="~ 1 | study", method=method).fit()
    np.testing.assert_allclose(grouped.psi.values, plain.psi.values,
                               rtol=1e-12)
    np.testing.assert_allclose(grouped.params, plain.params, rtol=1e-12)


@pytest.mark.parametrize("random", ["~ 1", ["~ 1 | district", "~ 1"],
                                    "~ year"])
def test_random_formula_without_group(random):
    with pytest.raises(ValueError, match=r"needs a grouping part, "
                                         r"'~ z \| g'"):
        smf.mixmeta("effect ~ 1", data=school(), S="var", random=random)


def test_random_empty_group():
    with pytest.raises(ValueError, match="empty grouping variable"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random="~ 1 | district/")


def test_random_level_named_twice():
    with pytest.raises(ValueError, match=r"more than once: \['district'\]"):
        smf.mixmeta("effect ~ 1", data=school(), S="var",
                    random=["~ 1 | district", "~ 1 | district"])


def test_random_of_a_wrong_type():
    with pytest.raises(ValueError, match="got int"):
        smf.mixmeta("effect ~ 1", data=school(), S="var", random=3)


def test_groups_of_wrong_length():
    data = school()
    with pytest.raises(ValueError, match="endog has 56 rows, groups has 55"):
        smm.MixMeta(data.effect, None, S=data["var"],
                    groups=data.district.iloc[:-1])
    with pytest.raises(ValueError, match="endog has 56 rows, groups has 54"):
        smm.MixMeta(data.effect, None, S=data["var"],
                    groups=data[["district", "study"]].iloc[:-2])


def test_exog_re_of_wrong_length():
    data = school()
    with pytest.raises(ValueError, match=r"exog_re must have one row per "
                                         r"outcome row \(56\); got 55"):
        smm.MixMeta(data.effect, None, S=data["var"], groups=data.district,
                    exog_re=np.ones((55, 1)))


def test_exog_re_for_the_wrong_number_of_levels():
    data = school()
    with pytest.raises(ValueError, match="exog_re has 3 designs for 2 "
                                         "grouping levels"):
        smm.MixMeta(data.effect, None, S=data["var"],
                    groups=data[["district", "study"]],
                    exog_re=[np.ones(56)] * 3)
