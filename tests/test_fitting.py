"""
The fitting stage: the objective of theta, the schedule run on it alone,
scale invariance, the boundary report and the options of ``fit``.

Scale invariance: with ``y -> c y`` and ``S -> c**2 S`` every Sigma is
``c**2`` times the old one at ``Psi -> c**2 Psi``, and the GLS estimate is
``c beta``; so ``log|Sigma_i|`` grows by ``2 n_i log|c|``, the quadratic
form is unchanged, and ``log|F|`` (``F = sum X' Sigma^-1 X``) falls by
``2 p log|c|``.  The ML log-likelihood therefore shifts by ``-N log|c|`` and
the REML one (which adds ``-1/2 log|F|``) by ``-(N - p) log|c|``, ``N``
observed values and ``p`` fixed coefficients.
"""
import warnings

import numpy as np
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.fitting import schedule
from statsmodels_mixmeta.structures.psi import make_structure, STRUCTURE_NAMES

SCALES = [1e-8, 1e-4, 1e-2, 1e2, 1e4, 1e8]
BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]


def scaled_model(k, c, method):
    """bcg (k = 1, logor ~ ablat) or berkey98 (k = 2, PD + AL ~ year) with
    the outcomes times c and the within-study covariances times c**2."""
    if k == 1:
        data = datasets.load_bcg()
        y = data["logor"].to_numpy() * c
        S = data["logorvar"].to_numpy() * c ** 2
        X = np.column_stack([np.ones(len(y)), data["ablat"]])
    else:
        data = datasets.load_berkey98()
        y = data[["PD", "AL"]].to_numpy() * c
        S = data[BERKEY_S].to_numpy() * c ** 2
        X = np.column_stack([np.ones(len(y)), data["pubyear"] - 1983])
    return smm.MixMeta(y, X, S=S, method=method)


def quiet_fit(model, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(**kwargs)
    return res, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def unscaled():
    return {(k, m): quiet_fit(scaled_model(k, 1.0, m))[0]
            for k in (1, 2) for m in ("reml", "ml")}


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("c", SCALES)
def test_rescaled_data_give_rescaled_estimates(unscaled, k, method, c):
    base = unscaled[k, method]
    res, caught = quiet_fit(scaled_model(k, c, method))
    assert caught == []
    assert res.converged is True and base.converged is True
    np.testing.assert_allclose(res.params / c, base.params, rtol=1e-9)
    np.testing.assert_allclose(res.bse / c, base.bse, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.psi) / c ** 2,
                               np.asarray(base.psi), rtol=1e-8)
    n_free = base.nobs - (base.k_fe if method == "reml" else 0)
    assert base.nobs == (13 if k == 1 else 10)
    np.testing.assert_allclose(res.llf - base.llf, -n_free * np.log(c),
                               rtol=0, atol=1e-9)


def test_rescaled_boundary_fit_stays_on_the_boundary():
    # homogeneous studies: REML puts the variance at 0 at every scale
    y = np.array([0.10, 0.12, 0.09, 0.11, 0.10, 0.08])
    v = np.full(6, 0.04)
    for c in SCALES:
        res, caught = quiet_fit(smm.MixMeta(y * c, None, S=v * c ** 2))
        assert caught == [] and res.converged is True
        assert res.psi.iloc[0, 0] == 0.0
        assert res.on_boundary is True


# ------------------------------------------------------ the objective
def test_objective_is_the_models_likelihood_of_theta():
    model = scaled_model(2, 1.0, "reml")
    objective = model.objective
    theta = np.array([0.1, 0.05, 0.2])
    assert objective.loglike(theta) == model.loglike(theta)
    np.testing.assert_array_equal(objective.score(theta), model.score(theta))
    np.testing.assert_array_equal(objective.hessian(theta),
                                  model.hessian(theta))
    # the value is that of the kernel at Psi = L L'
    lower = np.array([[0.1, 0.0], [0.05, 0.2]])
    assert objective.loglike(theta) == model.kernel.loglike(
        (lower @ lower.T,))
    assert objective.param_names == ["chol[y1,y1]", "chol[y2,y1]",
                                     "chol[y2,y2]"]
    np.testing.assert_array_equal(objective.bounds,
                                  [[0, np.inf], [-np.inf, np.inf],
                                   [0, np.inf]])
    assert objective.square_scale is None and not objective.kinked.any()
    # the variance unit: the median within-study variance (Z = I)
    data = datasets.load_berkey98()
    typical = np.median(data[["var_PD", "var_AL"]].to_numpy())
    assert objective.units == pytest.approx((typical,), rel=1e-15)


@pytest.mark.parametrize("k", [1, 2])
def test_schedule_fits_an_objective_alone(k):
    model = scaled_model(k, 1.0, "reml")
    res = model.fit()
    # statsmodels' optimiser on the objective, without the model
    outcome = schedule.fit(model.objective)
    assert outcome.converged is True
    np.testing.assert_allclose(outcome.theta, res.theta, rtol=1e-7)
    assert abs(model.loglike(outcome.theta) - res.llf) < 1e-10
    assert outcome.retvals["on_boundary"] == [False]


def test_restart_step_is_called_once_on_the_optimum():
    model = scaled_model(2, 1.0, "reml")
    best = model.fit()
    calls = []

    def restart(objective, theta, retvals, refit):
        calls.append(theta.copy())
        # a second start far away reaches the same optimum
        other, other_retvals = refit(np.array([1.0, 0.0, 1.0]))
        better = objective.loglike(other) > objective.loglike(theta) + 1e-8
        retvals["restart"] = {"won": bool(better)}
        return (other, other_retvals) if better else (theta, retvals)

    outcome = schedule.fit(model.objective, restart=restart)
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], best.theta, rtol=1e-7)
    assert abs(model.loglike(outcome.theta) - best.llf) < 1e-10
    assert outcome.retvals["start"] == "default"
    assert outcome.retvals["restart"] == {"won": False}
    assert model.fit(start_params=best.theta).mle_retvals["start"] == "user"


def test_a_fit_that_never_leaves_its_start_says_so():
    model = scaled_model(2, 1.0, "reml")
    with pytest.warns(ConvergenceWarning, match="did not move from its start"):
        res = model.fit(maxiter=0, scoring_iter=0)
    assert res.converged is False
    assert res.mle_retvals["moved"] is False
    np.testing.assert_array_equal(res.theta, model.start_params())


# ------------------------------------------------- structures' interface
@pytest.mark.parametrize("name", STRUCTURE_NAMES)
def test_sd_params_carry_the_scale_of_psi(name):
    fix = {"prop": np.diag([2.0, 1.0, 0.5]), "fixed": np.eye(3),
           "cor": np.full((3, 3), 0.3) + 0.7 * np.eye(3)}.get(name)
    s = make_structure(name, 3, fix)
    theta = np.linspace(0.3, 0.9, s.n_params)
    a = 7.5
    scaled = np.where(s.sd_params(), a * theta, theta)
    if name == "fixed":
        return np.testing.assert_array_equal(s.psi(scaled), s.psi(theta))
    np.testing.assert_allclose(s.psi(scaled), a ** 2 * s.psi(theta),
                               rtol=1e-13)
    bounds = s.bounds()
    assert bounds.shape == (s.n_params, 2)
    assert np.all(np.isin(bounds[:, 0], [0.0, -np.inf]))
    assert np.all(bounds[:, 1] == np.inf)
    # a parameter at its lower bound 0 makes Psi singular
    for t in np.flatnonzero(bounds[:, 0] == 0):
        at_zero = theta.copy()
        at_zero[t] = 0.0
        assert np.linalg.eigvalsh(s.psi(at_zero))[0] < 1e-12


def test_square_scale_is_public():
    assert make_structure("unstr", 1).square_scale == 1.0
    assert make_structure("prop", 1, [[2.5]]).square_scale == 2.5
    assert make_structure("unstr", 2).square_scale is None
    assert make_structure("fixed", 1, [[0.3]]).square_scale is None
    s = make_structure("prop", 1, [[2.5]])
    np.testing.assert_allclose(s.psi([0.4]), [[2.5 * 0.16]], rtol=1e-15)


# ------------------------------------------------------- the boundary
def test_interior_fit_is_not_on_the_boundary():
    res = scaled_model(2, 1.0, "reml").fit()
    assert res.on_boundary is False
    assert res.mle_retvals["on_boundary"] == [False]
    assert "boundary" not in str(res.summary())


def test_boundary_is_reported_in_the_summary():
    y = np.array([0.10, 0.12, 0.09, 0.11, 0.10, 0.08])
    res = smm.MixMeta(y, None, S=np.full(6, 0.04), method="ml").fit()
    assert res.on_boundary is True
    text = " ".join(str(res.summary()).split())
    assert "The MLE of Psi is on the boundary of its parameter space" in text


def test_boundary_is_reported_per_level():
    data = datasets.load_thrombolytic()
    data["subtrial"] = np.arange(1, len(data) + 1)
    res = smf.mixmeta("absrisk ~ 1", data=data, S="var",
                      random="~ 1 | trial/subtrial").fit()
    # R's mixmeta gives the trial variance as 6.6e-12 (its optimiser's
    # stopping point beside 0), the subtrial one as 5.6e-05
    assert res.psi["trial"].iloc[0, 0] < 1e-15
    assert abs(res.psi["subtrial"].iloc[0, 0] - 5.5736e-05) < 1e-5
    assert res.boundary_levels == [True, False]
    assert res.on_boundary is True
    text = " ".join(str(res.summary()).split())
    assert "REML estimate of Psi at level trial is on the boundary" in text


def test_singular_unstructured_psi_is_on_the_boundary():
    data = datasets.load_fibrinogen()
    S = ["V_2_2", "V_2_3", "V_2_4", "V_2_5", "V_3_3", "V_3_4", "V_3_5",
         "V_4_4", "V_4_5", "V_5_5"]
    res = smf.mixmeta("b2 + b3 + b4 + b5 ~ 1", data=data, S=S).fit()
    eig = np.linalg.eigvalsh(np.asarray(res.psi))
    assert eig[0] < 1e-12 * eig[-1]
    assert res.on_boundary is True


# ------------------------------------------------------ fit's options
@pytest.mark.parametrize("estimator", ["ml", "REML", "mm", "vc", "fixed"])
def test_fit_method_is_not_the_estimator(estimator):
    model = scaled_model(1, 1.0, "reml")
    with pytest.raises(ValueError, match=r"chooses the optimiser .* not the "
                                         r"estimator: choose '[a-z]+' on the "
                                         r"model, MixMeta\(\.\.\., method="):
        model.fit(method=estimator)


def test_fit_method_is_case_insensitive():
    model = scaled_model(2, 1.0, "reml")
    best = model.fit()
    for name in ("Newton", "BFGS"):
        res = model.fit(method=name)
        assert res.converged is True
        assert abs(res.llf - best.llf) < 1e-8


def test_use_t_reaches_the_results():
    model = scaled_model(1, 1.0, "reml")
    normal, student = model.fit(), model.fit(use_t=True)
    assert normal.use_t is False and student.use_t is True
    assert student.cov_type == "nonrobust"
    np.testing.assert_array_equal(student.params, normal.params)
    df = student.df_resid
    assert df == 13 - 2
    expected = 2 * stats.t.sf(np.abs(student.tvalues), df)
    np.testing.assert_allclose(student.pvalues, expected, rtol=1e-12)
    assert np.all(student.pvalues > normal.pvalues)


def test_unknown_cov_type_is_refused():
    model = scaled_model(1, 1.0, "reml")
    with pytest.raises(ValueError, match="cov_type='HC0'.*'nonrobust'"):
        model.fit(cov_type="HC0")


def test_start_params_of_the_wrong_length_name_the_parameters():
    model = smf.mixmeta("PD + AL ~ year", data=_berkey(), S=BERKEY_S)
    for wrong in ([0.1, 0.1], [0.1] * 4, [0.1] * 9):
        with pytest.raises(ValueError, match=r"start_params must have length"
                           r" 3, the structure parameters \['chol\[PD,PD\]', "
                           r"'chol\[AL,PD\]', 'chol\[AL,AL\]'\]"):
            model.fit(start_params=wrong)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_start_params_must_be_finite(bad):
    model = smf.mixmeta("PD + AL ~ year", data=_berkey(), S=BERKEY_S)
    with pytest.raises(ValueError, match=r"start_params must be finite; "
                                         r"\['chol\[AL,PD\]'\] are not"):
        model.fit(start_params=[0.1, bad, 0.1])


def _berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return data


@pytest.mark.parametrize("init_psi, message", [
    ([[0.01, 0.02], [0.02, 0.01]], r"init_psi is not positive semi-definite"
                                   r" \(its smallest eigenvalue is -0\.01\)"),
    ([[np.nan, 0.0], [0.0, 0.01]], r"init_psi contains NaN or infinite"),
    ([[np.inf, 0.0], [0.0, 0.01]], r"init_psi contains NaN or infinite"),
    (np.eye(3), r"init_psi must be a 2x2 matrix \(one row and column per "
                r"random effect: \['PD', 'AL'\]\); got shape \(3, 3\)"),
    ([[0.01, 0.0], [0.005, 0.01]], r"init_psi is not symmetric"),
    ("big", r"init_psi must be a numeric 2x2 matrix"),
])
def test_bad_init_psi_is_refused(init_psi, message):
    with pytest.raises(ValueError, match=message):
        smf.mixmeta("PD + AL ~ year", data=_berkey(), S=BERKEY_S,
                    init_psi=init_psi)


def test_bad_init_psi_names_its_level():
    data = datasets.load_thrombolytic()
    data["subtrial"] = np.arange(1, len(data) + 1)
    with pytest.raises(ValueError, match=r"init_psi of level 'subtrial' is "
                                         r"not positive semi-definite"):
        smf.mixmeta("absrisk ~ 1", data=data, S="var",
                    random="~ 1 | trial/subtrial",
                    init_psi={"subtrial": -0.1})
    # a valid one is used as given
    res = smf.mixmeta("absrisk ~ 1", data=data, S="var",
                      random="~ 1 | trial/subtrial",
                      init_psi={"trial": 0.01, "subtrial": 0.001}).fit()
    assert res.converged is True


def test_init_psi_is_not_modified():
    init = np.array([[0.01, 0.002], [0.002, 0.02]])
    copy = init.copy()
    smf.mixmeta("PD + AL ~ year", data=_berkey(), S=BERKEY_S,
                init_psi=init).fit()
    np.testing.assert_array_equal(init, copy)


SMOKING_S = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]


@pytest.mark.parametrize("bscov", ["cs", "hcs", "ar1", "har1"])
@pytest.mark.parametrize("c", [1e-6, 1e6])
def test_correlation_structures_are_scale_invariant(bscov, c):
    # standard deviations scale with c, correlation parameters do not
    data = datasets.load_smoking()
    y, S = data[["yB", "yC", "yD"]].to_numpy(), data[SMOKING_S].to_numpy()
    base = smm.MixMeta(y, None, S=S, bscov=bscov).fit()
    res, caught = quiet_fit(smm.MixMeta(y * c, None, S=S * c ** 2,
                                        bscov=bscov))
    assert caught == [] and res.converged is True and base.converged
    np.testing.assert_allclose(res.params / c, base.params, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(res.psi) / c ** 2,
                               np.asarray(base.psi), rtol=1e-8, atol=0)
    sd = res.model.random.sd_params()
    np.testing.assert_allclose(res.theta[sd] / c, base.theta[sd], rtol=1e-8)
    np.testing.assert_allclose(res.theta[~sd], base.theta[~sd], rtol=1e-8)


@pytest.mark.parametrize("c", [1e-6, 1e6])
def test_nested_levels_are_scale_invariant(c):
    data = datasets.load_school()
    base = smf.mixmeta("effect ~ 1", data=data, S="var",
                       random="~ 1 | district/study").fit()
    scaled = data.assign(effect=data["effect"] * c, var=data["var"] * c ** 2)
    res, caught = quiet_fit(smf.mixmeta("effect ~ 1", data=scaled, S="var",
                                        random="~ 1 | district/study"))
    assert caught == [] and res.converged is True
    np.testing.assert_allclose(res.params / c, base.params, rtol=1e-9)
    for level in ("district", "study"):
        np.testing.assert_allclose(np.asarray(res.psi[level]) / c ** 2,
                                   np.asarray(base.psi[level]), rtol=1e-8)
    n_free = base.nobs - base.k_fe
    np.testing.assert_allclose(res.llf - base.llf, -n_free * np.log(c),
                               rtol=0, atol=1e-9)


def test_negligible_gain_accepts_only_a_concave_point_with_nothing_to_gain():
    """The second-order test behind certify: True at the REML maximum of
    bcg, False a little away from it (the quadratic model promises a gain
    far above 1e-10) and False where the surface is not concave."""
    from statsmodels_mixmeta.fitting.optimizer import negligible_gain
    data = datasets.load_bcg()
    res = smf.mixmeta("logor ~ 1", data=data, S="logorvar").fit()
    objective = res.model.objective
    theta = np.asarray(res.theta, dtype=float)
    assert objective.square_scale * theta[0] ** 2 == pytest.approx(
        res.psi.iloc[0, 0], rel=1e-12)
    free = np.ones(1, dtype=bool)
    assert negligible_gain(objective, theta, free)
    assert not negligible_gain(objective, theta * 1.01, free)
    # far out in the tail the REML surface of one variance is convex
    far = np.array([50.0])
    assert objective.hessian(far)[0, 0] > 0
    assert not negligible_gain(objective, far, free)
