"""The one projection onto the positive definite matrices, and its callers."""
import inspect

import numpy as np
import pytest
from numpy.testing import assert_allclose

from statsmodels_mixmeta.fitting import optimizer
from statsmodels_mixmeta.kernels import moments
from statsmodels_mixmeta.structures.psd import PSD_FLOOR, project_psd


def test_floor_is_r_set_negeigen():
    assert PSD_FLOOR == np.sqrt(np.finfo(float).eps)
    assert moments.PSD_FLOOR is PSD_FLOOR


def test_indefinite_matrix_by_hand():
    # eigenvalues 3 and -1 along (1, 1)/sqrt2 and (1, -1)/sqrt2
    matrix = np.array([[1.0, 2.0], [2.0, 1.0]])
    plus = np.array([[0.5, 0.5], [0.5, 0.5]])
    minus = np.array([[0.5, -0.5], [-0.5, 0.5]])
    assert_allclose(project_psd(matrix), 3 * plus + PSD_FLOOR * minus,
                    rtol=1e-14, atol=1e-15)
    # a relative floor scales with the largest eigenvalue
    assert_allclose(project_psd(matrix, 1e-8, relative=True),
                    3 * plus + 3e-8 * minus, rtol=1e-14, atol=1e-15)
    assert_allclose(project_psd(1e-6 * matrix, 1e-8, relative=True),
                    1e-6 * (3 * plus) + 1e-8 * minus, rtol=1e-12, atol=1e-20)


def test_asymmetric_input_is_symmetrised_and_kept_when_definite():
    matrix = np.array([[2.0, 0.3], [0.1, 1.0]])
    out = project_psd(matrix)
    # already positive definite: the symmetric part itself, bit for bit
    assert np.array_equal(out, (matrix + matrix.T) / 2)


def test_eigenvalues_reach_the_floor_and_no_lower():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(size=(4, 4))
        out = project_psd(a)
        assert np.array_equal(out, out.T) or np.allclose(out, out.T,
                                                         atol=1e-15)
        # recomputed eigenvalues carry rounding of order eps * |A|
        assert np.linalg.eigvalsh(out).min() >= PSD_FLOOR - 1e-14
        # nearest in Frobenius norm: the positive eigen-part is unchanged
        values = np.linalg.eigvalsh((a + a.T) / 2)
        assert_allclose(np.sort(np.linalg.eigvalsh(out))[values > PSD_FLOOR],
                        values[values > PSD_FLOOR], rtol=1e-10)


@pytest.mark.parametrize("module", [optimizer, moments])
def test_callers_have_no_projection_of_their_own(module):
    source = inspect.getsource(module)
    assert "project_psd" in source
    assert "np.maximum(values" not in source and "nearest_psd" not in source
