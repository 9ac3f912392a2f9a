"""Tests for the Psi parameterisations in ``structures``."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from statsmodels_mixmeta.structures.psi import (
    STRUCTURE_NAMES, PsiStructure, make_structure)

NEEDS_TWO = {"cs", "hcs", "ar1", "har1"}
IDENTIFIABLE = [name for name in STRUCTURE_NAMES if name != "fixed"]


def _correlation(dim, rng):
    """A random correlation matrix of order ``dim``."""
    factor = rng.standard_normal((dim, dim + 2))
    cov = factor @ factor.T
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def _psi_fix(name, dim, rng):
    """A valid psi_fix for ``name`` (None where it is not used)."""
    if name == "cor":
        return _correlation(dim, rng)
    if name in ("prop", "fixed"):
        scale = np.diag(rng.uniform(0.5, 2.0, dim))
        return scale @ _correlation(dim, rng) @ scale
    return None


def _random_theta(structure, rng):
    """Theta with sds of either sign away from 0, correlations well inside."""
    theta = rng.uniform(0.3, 2.0, structure.n_params)
    theta *= rng.choice([-1.0, 1.0], structure.n_params)
    if structure.name in NEEDS_TWO:
        theta[-1] = rng.uniform(-2.0, 2.0)
    return theta


def _cases():
    for name in STRUCTURE_NAMES:
        for dim in range(1, 5):
            if dim == 1 and name in NEEDS_TWO:
                continue
            yield name, dim


CASES = list(_cases())
CASE_IDS = [f"{name}-{dim}" for name, dim in CASES]


def _structure(name, dim, seed=0):
    rng = np.random.default_rng(seed)
    return make_structure(name, dim, _psi_fix(name, dim, rng)), rng


def _numerical_jacobian(structure, theta, step=1e-6):
    """Central finite differences of ``structure.psi`` at ``theta``."""
    jacobian = np.zeros((structure.n_params, structure.dim, structure.dim))
    for t in range(structure.n_params):
        shift = np.zeros_like(theta)
        shift[t] = step
        jacobian[t] = (structure.psi(theta + shift)
                       - structure.psi(theta - shift)) / (2 * step)
    return jacobian


@pytest.mark.parametrize("name, dim", CASES, ids=CASE_IDS)
def test_jacobian_matches_finite_differences(name, dim):
    structure, rng = _structure(name, dim)
    for _ in range(5):
        theta = _random_theta(structure, rng)
        analytic = structure.jacobian(theta)
        assert analytic.shape == (structure.n_params, dim, dim)
        assert_allclose(analytic, _numerical_jacobian(structure, theta),
                        rtol=1e-6, atol=1e-8)
        assert_allclose(analytic, np.swapaxes(analytic, 1, 2), atol=0)


@pytest.mark.parametrize("name, dim", CASES, ids=CASE_IDS)
def test_psi_is_symmetric_positive_definite(name, dim):
    structure, rng = _structure(name, dim)
    for _ in range(5):
        psi = structure.psi(_random_theta(structure, rng))
        assert psi.shape == (dim, dim)
        assert_allclose(psi, psi.T, atol=0)
        assert np.linalg.eigvalsh(psi)[0] > 0


@pytest.mark.parametrize("name, dim",
                         [case for case in CASES if case[0] in IDENTIFIABLE],
                         ids=[i for c, i in zip(CASES, CASE_IDS)
                              if c[0] in IDENTIFIABLE])
def test_start_reproduces_psi(name, dim):
    structure, rng = _structure(name, dim)
    for _ in range(5):
        psi = structure.psi(_random_theta(structure, rng))
        theta = structure.start(psi)
        assert theta.shape == (structure.n_params,)
        assert_allclose(structure.psi(theta), psi, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, dim", CASES, ids=CASE_IDS)
def test_start_from_small_identity_is_valid(name, dim):
    structure, _ = _structure(name, dim)
    theta = structure.start(0.001 * np.eye(dim))
    assert theta.shape == (structure.n_params,)
    assert np.all(np.isfinite(theta))
    if name in ("unstr", "diag", "id", "cs", "hcs", "ar1", "har1"):
        assert_allclose(structure.psi(theta), 0.001 * np.eye(dim), atol=1e-15)


@pytest.mark.parametrize("name, dim", CASES, ids=CASE_IDS)
def test_param_names_one_per_parameter(name, dim):
    structure, _ = _structure(name, dim)
    names = structure.param_names([f"y{i}" for i in range(dim)])
    assert len(names) == structure.n_params
    assert len(set(names)) == len(names)


def test_param_names_values():
    labels = ["PD", "AL"]
    assert make_structure("unstr", 2).param_names(labels) == [
        "chol[PD,PD]", "chol[AL,PD]", "chol[AL,AL]"]
    assert make_structure("diag", 2).param_names(labels) == [
        "sd[PD]", "sd[AL]"]
    assert make_structure("id", 2).param_names(labels) == ["sd"]
    assert make_structure("cs", 2).param_names(labels) == ["sd", "logit_rho"]
    assert make_structure("hcs", 2).param_names(labels) == [
        "sd[PD]", "sd[AL]", "logit_rho"]
    assert make_structure("ar1", 2).param_names(labels) == ["sd", "atanh_rho"]
    assert make_structure("har1", 2).param_names(labels) == [
        "sd[PD]", "sd[AL]", "atanh_rho"]
    assert make_structure("prop", 2, np.eye(2)).param_names(labels) == [
        "scale"]
    assert make_structure("cor", 2, np.eye(2)).param_names(labels) == [
        "sd[PD]", "sd[AL]"]
    assert make_structure("fixed", 2, np.eye(2)).param_names(labels) == []


def test_param_names_wrong_number_of_labels():
    with pytest.raises(ValueError, match="needs 2 labels; got 3"):
        make_structure("diag", 2).param_names(["a", "b", "c"])


# --- closed-form values -----------------------------------------------------

def test_unstr_closed_form():
    structure = make_structure("unstr", 2)
    # L = [[1, 0], [2, 3]] in column-major vech order (L11, L21, L22)
    assert_allclose(structure.psi([1.0, 2.0, 3.0]), [[1, 2], [2, 13]])
    jacobian = structure.jacobian([1.0, 2.0, 3.0])
    assert_allclose(jacobian[0], [[2, 2], [2, 0]])  # d/dL11
    assert_allclose(jacobian[1], [[0, 1], [1, 4]])  # d/dL21
    assert_allclose(jacobian[2], [[0, 0], [0, 6]])  # d/dL22


def test_diag_and_id_closed_form():
    assert_allclose(make_structure("diag", 3).psi([1.0, -2.0, 0.0]),
                    np.diag([1.0, 4.0, 0.0]))
    assert_allclose(make_structure("id", 2).psi([-3.0]), 9 * np.eye(2))


def test_cs_closed_form():
    # dim 3: lo = -1/2, rho = 0.5 needs expit(a) = 2/3, i.e. a = log(2)
    psi = make_structure("cs", 3).psi([2.0, np.log(2.0)])
    assert_allclose(psi, [[4, 2, 2], [2, 4, 2], [2, 2, 4]])


def test_cs_lower_limit_keeps_positive_definite():
    psi = make_structure("cs", 4).psi([1.0, -30.0])
    assert_allclose(psi[0, 1], -1 / 3, rtol=1e-10)
    assert np.linalg.eigvalsh(psi)[0] > 0


def test_hcs_closed_form():
    # dim 2: lo = -1, rho = 0 at a = 0
    psi = make_structure("hcs", 2).psi([1.0, 3.0, 0.0])
    assert_allclose(psi, np.diag([1.0, 9.0]), atol=1e-15)
    psi = make_structure("hcs", 2).psi([1.0, -3.0, np.log(3.0)])
    assert_allclose(psi, [[1, 1.5], [1.5, 9]])  # rho = -1 + 2 * 3/4


def test_ar1_closed_form():
    psi = make_structure("ar1", 3).psi([2.0, np.arctanh(0.5)])
    assert_allclose(psi, [[4, 2, 1], [2, 4, 2], [1, 2, 4]])


def test_ar1_jacobian_at_zero_correlation():
    jacobian = make_structure("ar1", 3).jacobian([2.0, 0.0])
    assert_allclose(jacobian[1], [[0, 4, 0], [4, 0, 4], [0, 4, 0]])
    assert_allclose(make_structure("ar1", 3).psi([2.0, 0.0]), 4 * np.eye(3))


def test_har1_closed_form():
    psi = make_structure("har1", 3).psi([1.0, 2.0, 3.0, np.arctanh(-0.5)])
    assert_allclose(psi, [[1, -1, 0.75], [-1, 4, -3], [0.75, -3, 9]])


def test_prop_cor_fixed_closed_form():
    fix = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert_allclose(make_structure("prop", 2, fix).psi([3.0]), 9 * fix)
    corr = np.array([[1.0, 0.5], [0.5, 1.0]])
    assert_allclose(make_structure("cor", 2, corr).psi([2.0, -3.0]),
                    [[4, 3], [3, 9]])
    fixed = make_structure("fixed", 2, fix)
    assert_allclose(fixed.psi([]), fix)
    assert fixed.jacobian([]).shape == (0, 2, 2)
    assert fixed.start(np.eye(2)).shape == (0,)


def test_fixed_scalar_zero_for_one_effect():
    structure = make_structure("fixed", 1, 0)
    assert structure.n_params == 0
    assert_allclose(structure.psi(np.zeros(0)), [[0.0]])
    assert structure.jacobian(np.zeros(0)).shape == (0, 1, 1)


def test_sign_of_sd_is_irrelevant():
    structure = make_structure("hcs", 3)
    theta = np.array([1.0, 2.0, 3.0, 0.4])
    flipped = theta * np.array([-1.0, 1.0, -1.0, 1.0])
    assert_allclose(structure.psi(flipped), structure.psi(theta))


def test_zero_sd_jacobian_uses_right_derivative():
    jacobian = make_structure("hcs", 2).jacobian([0.0, 2.0, 0.0])
    assert_allclose(jacobian[0], [[0, 0], [0, 0]], atol=1e-15)
    jacobian = make_structure("cor", 2, [[1, 0.5], [0.5, 1]]).jacobian(
        [0.0, 2.0])
    assert_allclose(jacobian[0], [[0, 1], [1, 0]])


# --- start values -----------------------------------------------------------

def test_unstr_start_singular_psd():
    psi = np.array([[1.0, 1.0], [1.0, 1.0]])
    structure = make_structure("unstr", 2)
    assert_allclose(structure.psi(structure.start(psi)), psi, atol=1e-6)
    assert_allclose(structure.psi(structure.start(np.zeros((2, 2)))),
                    np.zeros((2, 2)), atol=1e-8)


def test_start_clips_correlation_inside_range():
    psi = np.ones((3, 3))  # correlation 1
    for name, limit in (("ar1", 0.99), ("har1", 0.99)):
        structure = make_structure(name, 3)
        assert_allclose(np.tanh(structure.start(psi)[-1]), limit)
    for name in ("cs", "hcs"):
        structure = make_structure(name, 3)
        rho = structure.psi(structure.start(psi))[0, 1]
        assert -0.5 < rho < 1.0
        assert np.linalg.eigvalsh(structure.psi(structure.start(psi)))[0] > 0


def test_start_from_unstructured_matrix():
    psi = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.2], [0.0, 0.2, 9.0]])
    assert_allclose(make_structure("diag", 3).start(psi), [2, 1, 3])
    assert_allclose(make_structure("id", 3).start(psi), [np.sqrt(14 / 3)])
    prop = make_structure("prop", 3, np.diag([1.0, 1.0, 4.0]))
    assert_allclose(prop.start(psi), [np.sqrt((4 + 1 + 9 / 4) / 3)])
    ar1 = make_structure("ar1", 3).start(psi)
    assert_allclose(np.tanh(ar1[1]), (0.5 + 0.2 / 3) / 2)
    cs = make_structure("cs", 3)
    assert_allclose(cs.psi(cs.start(psi))[0, 1] / cs.psi(cs.start(psi))[0, 0],
                    (0.5 + 0.0 + 0.2 / 3) / 3)


def test_start_ignores_zero_variance_in_correlations():
    psi = np.diag([0.0, 1.0, 1.0])
    psi[1, 2] = psi[2, 1] = 0.5
    theta = make_structure("hcs", 3).start(psi)
    assert np.all(np.isfinite(theta))
    assert_allclose(make_structure("hcs", 3).psi(theta)[1, 2], 0.5)


def test_start_scalar_for_one_effect():
    assert_allclose(make_structure("diag", 1).start(4.0), [2.0])


# --- errors -----------------------------------------------------------------

def test_unknown_name():
    with pytest.raises(ValueError,
                       match=r"unknown bscov='ar2'; valid names are 'unstr'"):
        make_structure("ar2", 2)


@pytest.mark.parametrize("dim", [0, -1, 1.5, "2", True])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        make_structure("diag", dim)


@pytest.mark.parametrize("name", sorted(NEEDS_TWO))
def test_needs_two_effects(name):
    with pytest.raises(ValueError, match=(
            f"bscov='{name}' needs at least 2 random effects; got a 1×1 Ψ")):
        make_structure(name, 1)


@pytest.mark.parametrize("name", ["prop", "cor", "fixed"])
def test_missing_psi_fix(name):
    with pytest.raises(ValueError, match=f"bscov='{name}' needs psi_fix"):
        make_structure(name, 2)


def test_psi_fix_not_used():
    with pytest.raises(ValueError, match="bscov='diag' does not use psi_fix"):
        make_structure("diag", 2, np.eye(2))


@pytest.mark.parametrize("name", ["prop", "cor", "fixed"])
def test_psi_fix_wrong_shape(name):
    with pytest.raises(ValueError, match=r"psi_fix must be a 3x3 matrix "
                                         r"\(dim x dim\); got shape \(2, 2\)"):
        make_structure(name, 3, np.eye(2))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        make_structure(name, 2, 1.0)


@pytest.mark.parametrize("name", ["prop", "cor", "fixed"])
def test_psi_fix_not_symmetric(name):
    with pytest.raises(ValueError, match="psi_fix is not symmetric"):
        make_structure(name, 2, [[1.0, 0.5], [0.2, 1.0]])


def test_psi_fix_non_finite():
    with pytest.raises(ValueError, match="psi_fix contains non-finite"):
        make_structure("prop", 2, [[1.0, np.nan], [np.nan, 1.0]])


@pytest.mark.parametrize("name", ["prop", "cor"])
def test_psi_fix_not_positive_definite(name):
    singular = [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match="psi_fix must be positive definite; "
                                         "its smallest eigenvalue is"):
        make_structure(name, 2, singular)


def test_fixed_psi_fix_not_psd():
    with pytest.raises(ValueError, match=r"psi_fix must be positive "
                                         r"semi-definite; its smallest "
                                         r"eigenvalue is -1"):
        make_structure("fixed", 2, [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="semi-definite"):
        make_structure("fixed", 1, -1.0)


def test_fixed_psi_fix_singular_is_allowed():
    psi = make_structure("fixed", 2, np.zeros((2, 2))).psi([])
    assert_allclose(psi, np.zeros((2, 2)))


def test_cor_psi_fix_not_unit_diagonal():
    with pytest.raises(ValueError, match="correlation matrix with unit "
                                         "diagonal; got diagonal"):
        make_structure("cor", 2, [[2.0, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize("method", ["psi", "jacobian"])
def test_wrong_theta_length(method):
    structure = make_structure("unstr", 3)
    message = r"bscov='unstr' with dim 3 needs theta of length 6; got shape"
    with pytest.raises(ValueError, match=message + r" \(5,\)"):
        getattr(structure, method)(np.ones(5))
    with pytest.raises(ValueError, match="needs theta of length 0"):
        getattr(make_structure("fixed", 1, 0.0), method)([1.0])


def test_non_finite_theta():
    with pytest.raises(ValueError, match="theta contains non-finite"):
        make_structure("diag", 2).psi([1.0, np.inf])


def test_start_rejects_bad_psi():
    structure = make_structure("unstr", 2)
    with pytest.raises(ValueError, match=r"psi must be a 2x2 matrix"):
        structure.start(np.eye(3))
    with pytest.raises(ValueError, match="psi is not symmetric"):
        structure.start([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="psi must be positive semi-definite"):
        structure.start([[1.0, 2.0], [2.0, 1.0]])


def test_abstract_base_cannot_be_instantiated():
    with pytest.raises(TypeError):
        PsiStructure(2)
