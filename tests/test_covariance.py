"""Tests for statsmodels_mixmeta.design.covariance: vech, inputcov, S forms, checks."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from statsmodels_mixmeta.design.covariance import (
    _smallest_observed_eigenvalues,
    check_within_cov,
    inputcov,
    unvech,
    vech,
    within_cov_from_input,
)


def random_covariances(n_rows, k, seed=0):
    """Stack of n random positive definite k x k matrices."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_rows, k, k))
    return factors @ np.swapaxes(factors, 1, 2) + 0.1 * np.eye(k)


# ---------------------------------------------------------------------------
# vech / unvech
# ---------------------------------------------------------------------------

def test_vech_order_k2_and_k3():
    matrix2 = np.array([[11.0, 12.0], [21.0, 22.0]])
    assert_array_equal(vech(matrix2), [11.0, 21.0, 22.0])
    matrix3 = np.array([[11.0, 12, 13], [21, 22, 23], [31, 32, 33]])
    assert_array_equal(vech(matrix3), [11, 21, 31, 22, 32, 33])


def test_vech_stacked():
    stack = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    assert_array_equal(vech(stack), [[0, 3, 6, 4, 7, 8], [9, 12, 15, 13, 16, 17]])


def test_unvech_k2():
    assert_array_equal(unvech([1.0, 2.0, 3.0]), [[1.0, 2.0], [2.0, 3.0]])


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_vech_unvech_round_trip(k):
    matrices = random_covariances(5, k, seed=k)
    vectors = vech(matrices)
    assert vectors.shape == (5, k * (k + 1) // 2)
    assert_allclose(unvech(vectors), matrices, rtol=0, atol=0)
    assert_allclose(unvech(vectors, k=k), matrices, rtol=0, atol=0)
    single = np.arange(1.0, k * (k + 1) // 2 + 1)
    assert_array_equal(vech(unvech(single)), single)
    assert unvech(single).shape == (k, k)


def test_unvech_not_triangular():
    with pytest.raises(ValueError, match=r"k\(k\+1\)/2 values per matrix .* got 4"):
        unvech(np.ones(4))


def test_unvech_wrong_k():
    with pytest.raises(ValueError, match="k=3 needs 6 values per matrix; got 3"):
        unvech(np.ones(3), k=3)


def test_vech_not_square():
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):
        vech(np.ones((2, 3)))


# ---------------------------------------------------------------------------
# inputcov
# ---------------------------------------------------------------------------

def test_inputcov_scalar_correlation():
    expected = np.array([[1.0, 1.0, 1.5], [1.0, 4.0, 3.0], [1.5, 3.0, 9.0]])
    assert_allclose(inputcov([1.0, 2.0, 3.0], 0.5), expected, rtol=1e-15)


def test_inputcov_default_correlation_is_zero():
    assert_allclose(inputcov([[1.0, 2.0, 3.0]]), np.diag([1.0, 4.0, 9.0])[None])


def test_inputcov_pair_order():
    # pairs (2,1), (3,1), (3,2) get 0.1, 0.2, 0.3
    expected = np.array([
        [1.0, 0.1 * 2, 0.2 * 3],
        [0.1 * 2, 4.0, 0.3 * 6],
        [0.2 * 3, 0.3 * 6, 9.0],
    ])
    result = inputcov([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [0.1, 0.2, 0.3])
    assert result.shape == (2, 3, 3)
    assert_allclose(result, np.stack([expected, expected]), rtol=1e-15)


def test_inputcov_correlation_row_per_study():
    sds = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 0.5]])
    cor = np.array([[0.5, 0.0, -0.5], [0.1, 0.2, 0.4]])
    expected = np.array([
        [[1.0, 1.0, 0.0], [1.0, 4.0, -3.0], [0.0, -3.0, 9.0]],
        [[4.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 0.25]],
    ])
    assert_allclose(inputcov(sds, cor), expected, rtol=1e-15)


def test_inputcov_vector_of_one_correlation_per_study_k2():
    sds = np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 2.0]])
    result = inputcov(sds, [0.5, -0.5, 0.25])
    assert_allclose(result[:, 1, 0], [1.0, -1.5, 1.0], rtol=1e-15)
    assert_allclose(result[:, 0, 1], [1.0, -1.5, 1.0], rtol=1e-15)


def test_inputcov_length_n_wins_when_equal_to_pairs():
    # n = 3 studies and k = 3 outcomes: R reads a length-3 vector per study
    sds = np.ones((3, 3))
    result = inputcov(sds, [0.1, 0.2, 0.3])
    assert_allclose(vech(result)[:, [1, 2, 4]], [[0.1] * 3, [0.2] * 3, [0.3] * 3])


def test_inputcov_correlation_matrix_single_study():
    correlation = np.array([[1.0, 0.1, 0.2], [0.1, 1.0, 0.3], [0.2, 0.3, 1.0]])
    result = inputcov([[1.0, 2.0, 3.0]], correlation)
    assert_allclose(result[0], correlation * np.outer([1, 2, 3], [1, 2, 3]))


def test_inputcov_hyp_example():
    result = inputcov([0.72, 0.27], 0.78)
    assert_allclose(result, [[0.5184, 0.151632], [0.151632, 0.0729]], rtol=1e-12)


def test_inputcov_k1_squares():
    assert_allclose(inputcov([[2.0], [3.0]]), [[[4.0]], [[9.0]]])


def test_inputcov_missing_sd_propagates():
    result = inputcov([[1.0, np.nan, 2.0]], 0.5)[0]
    assert np.all(np.isnan(result[1, :])) and np.all(np.isnan(result[:, 1]))
    assert_allclose(result[[0, 2]][:, [0, 2]], [[1.0, 1.0], [1.0, 4.0]])


def test_inputcov_negative_sd():
    message = "negative standard deviations in sds at row 1"
    with pytest.raises(ValueError, match=message):
        inputcov([[1.0, 2.0], [1.0, -2.0]])


def test_inputcov_correlation_out_of_range():
    with pytest.raises(ValueError, match="cor must lie between -1 and 1; got 1.2"):
        inputcov([1.0, 2.0], 1.2)


def test_inputcov_correlation_wrong_length():
    with pytest.raises(ValueError, match=r"cor has shape \(2,\); .* vector of length 3 "
                       r"\(one correlation per pair of outcomes, in the order "
                       r"\(2,1\), \(3,1\), \(3,2\)\)"):
        inputcov([[1.0, 2.0, 3.0]] * 4, [0.1, 0.2])


# ---------------------------------------------------------------------------
# within_cov_from_input: every form gives the same array
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3, 4])
def test_all_forms_agree(k):
    full = random_covariances(6, k, seed=10 + k)
    variances = np.diagonal(full, axis1=1, axis2=2)
    sds = np.sqrt(variances)
    correlations = vech(full / (sds[:, :, None] * sds[:, None, :]))
    # strict lower triangle by column = vech entries that are not diagonal
    diagonal_positions = np.cumsum([0] + list(range(k, 1, -1)))
    strict = np.setdiff1d(np.arange(k * (k + 1) // 2), diagonal_positions)
    pair_correlations = correlations[:, strict]

    from_variances = within_cov_from_input(variances, k, Scor=pair_correlations)
    from_vech = within_cov_from_input(vech(full), k)
    from_full = within_cov_from_input(full, k)
    from_inputcov = inputcov(sds, pair_correlations)
    for result in (from_variances, from_vech, from_full, from_inputcov):
        assert result.shape == (6, k, k)
        assert_allclose(result, full, rtol=1e-12)


def test_forms_agree_k2_hand_values():
    # var1 = 0.5184, var2 = 0.0729, correlation 0.78 -> cov12 = 0.151632
    expected = np.array([[[0.5184, 0.151632], [0.151632, 0.0729]]] * 2)
    variances = [[0.5184, 0.0729]] * 2
    assert_allclose(within_cov_from_input(variances, 2, Scor=0.78), expected)
    assert_allclose(within_cov_from_input(variances, 2, Scor=[0.78]), expected)
    assert_allclose(within_cov_from_input(variances, 2, Scor=[0.78, 0.78]), expected)
    assert_allclose(
        within_cov_from_input(variances, 2, Scor=[[0.78], [0.78]]), expected
    )
    assert_allclose(
        within_cov_from_input([[0.5184, 0.151632, 0.0729]] * 2, 2), expected
    )
    assert_allclose(within_cov_from_input(expected, 2), expected)


def test_variance_form_default_correlation_zero():
    result = within_cov_from_input([[1.0, 4.0], [2.0, 3.0]], 2)
    assert_array_equal(result, [np.diag([1.0, 4.0]), np.diag([2.0, 3.0])])


@pytest.mark.parametrize("S", [
    [1.0, 2.0, 3.0],
    [[1.0], [2.0], [3.0]],
    [[[1.0]], [[2.0]], [[3.0]]],
])
def test_k1_forms(S):
    assert_array_equal(within_cov_from_input(S, 1), [[[1.0]], [[2.0]], [[3.0]]])


def test_full_form_symmetrised_within_tolerance():
    full = np.array([[[2.0, 1.0], [1.0 + 1e-14, 3.0]]])
    result = within_cov_from_input(full, 2)
    assert_array_equal(result, np.swapaxes(result, 1, 2))
    assert_allclose(result[0, 0, 1], 1.0 + 0.5e-14, rtol=1e-15)


# ---------------------------------------------------------------------------
# within_cov_from_input: missing values
# ---------------------------------------------------------------------------

def test_missing_variance_propagates():
    variances = np.array([[1.0, np.nan, 4.0], [1.0, 2.0, 3.0]])
    result = within_cov_from_input(variances, 3, Scor=0.5)
    assert np.all(np.isnan(result[0, 1, :])) and np.all(np.isnan(result[0, :, 1]))
    assert_allclose(result[0, [0, 2]][:, [0, 2]], [[1.0, 1.0], [1.0, 4.0]])
    assert not np.any(np.isnan(result[1]))


def test_missing_correlation_propagates_into_one_entry():
    result = within_cov_from_input([[1.0, 4.0, 9.0]], 3, Scor=[0.5, np.nan, 0.0])
    nan_entries = np.isnan(result[0])
    assert_array_equal(np.argwhere(nan_entries), [[0, 2], [2, 0]])
    assert_allclose(result[0, 0, 1], 1.0)


def test_missing_vech_entry_kept():
    result = within_cov_from_input([[1.0, np.nan, 2.0]], 2)
    assert np.isnan(result[0, 0, 1]) and np.isnan(result[0, 1, 0])
    assert_array_equal(np.diagonal(result[0]), [1.0, 2.0])


def test_negative_variance_kept_for_the_check():
    result = within_cov_from_input([[-1.0, 4.0]], 2, Scor=0.5)
    assert_array_equal(result[0], [[-1.0, 0.0], [0.0, 4.0]])


# ---------------------------------------------------------------------------
# within_cov_from_input: errors
# ---------------------------------------------------------------------------

def test_width_error_k2():
    message = (
        "S has 4 columns; for k=2 outcomes S must have 2 columns (variances, "
        "with Scor) or 3 columns (var1, cov12, var2 by column of the lower "
        "triangle), or be an (n, 2, 2) array"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        within_cov_from_input(np.ones((5, 4)), 2)


def test_width_error_k3_lists_vech_names():
    with pytest.raises(ValueError, match=re.escape(
        "S has 5 columns; for k=3 outcomes S must have 3 columns (variances, "
        "with Scor) or 6 columns (var1, cov12, cov13, var2, cov23, var3 by "
        "column of the lower triangle)"
    )):
        within_cov_from_input(np.ones((2, 5)), 3)


def test_width_error_k1():
    with pytest.raises(ValueError, match=re.escape(
        "S has 2 columns; for k=1 outcome S must be a vector of variances, "
        "have 1 column (variances)"
    )):
        within_cov_from_input(np.ones((3, 2)), 1)


def test_shape_error_three_dimensional():
    with pytest.raises(ValueError, match=re.escape(
        "S has shape (4, 3, 3); for k=2 outcomes"
    )):
        within_cov_from_input(np.ones((4, 3, 3)), 2)


def test_shape_error_vector_when_k_above_one():
    with pytest.raises(ValueError, match=re.escape("S has shape (4,); for k=2")):
        within_cov_from_input(np.ones(4), 2)


@pytest.mark.parametrize("S", [np.ones((3, 3)), np.tile(np.eye(2), (3, 1, 1))])
def test_scor_with_non_variance_form(S):
    with pytest.raises(ValueError, match=r"Scor is only used when S holds variances"):
        within_cov_from_input(S, 2, Scor=0.5)


def test_scor_wrong_length():
    with pytest.raises(ValueError, match=re.escape(
        "Scor has shape (2,); for n=4 studies and k=3 outcomes it must be a "
        "scalar, a vector of length 3"
    )):
        within_cov_from_input(np.ones((4, 3)), 3, Scor=[0.1, 0.2])


def test_scor_wrong_rows():
    with pytest.raises(ValueError, match=re.escape(
        "or an array of shape (4, 3) (one row per study)"
    )):
        within_cov_from_input(np.ones((4, 3)), 3, Scor=np.zeros((2, 3)))


@pytest.mark.parametrize("Scor", [1.5, [0.2, -1.01, 0.3]])
def test_scor_out_of_range(Scor):
    with pytest.raises(ValueError, match="Scor must lie between -1 and 1; got"):
        within_cov_from_input(np.ones((2, 3)), 3, Scor=Scor)


def test_full_not_symmetric_names_rows():
    full = np.tile(np.eye(2), (4, 1, 1))
    full[1, 0, 1] = 0.3
    full[3, 1, 0] = -0.2
    with pytest.raises(ValueError, match=r"S is not symmetric at rows 1, 3;"):
        within_cov_from_input(full, 2)
    with pytest.raises(ValueError, match=r"S is not symmetric at rows b, d;"):
        within_cov_from_input(full, 2, row_labels=["a", "b", "c", "d"])


def test_row_labels_length():
    with pytest.raises(ValueError, match="row_labels has 2 labels for 3 rows of S"):
        within_cov_from_input(np.ones((3, 2)), 2, row_labels=["a", "b"])


# ---------------------------------------------------------------------------
# check_within_cov
# ---------------------------------------------------------------------------

def test_check_accepts_valid_with_unobserved_missing():
    within_cov = within_cov_from_input(
        [[1.0, np.nan, 4.0], [1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]], 3, Scor=0.3
    )
    observed = np.array([[True, False, True], [True, True, True], [False] * 3])
    check_within_cov(within_cov, observed)


def test_check_only_looks_at_observed_sub_block():
    # the full matrix is indefinite, the observed 1 x 1 block is fine
    within_cov = np.array([[[1.0, 2.0], [2.0, 1.0]]])
    check_within_cov(within_cov, [[True, False]])
    with pytest.raises(ValueError, match="not positive semi-definite"):
        check_within_cov(within_cov, [[True, True]])


def test_check_missing_for_observed():
    within_cov = within_cov_from_input(
        [[1.0, 2.0], [np.nan, 2.0], [1.0, 2.0], [1.0, 2.0]], 2,
        Scor=[0.1, 0.2, np.nan, 0.3],
    )
    observed = np.array([[True, True], [True, True], [True, True], [False, True]])
    message = (
        "S is missing for observed outcomes in rows s2, s3: outcome(s) "
        "y1 (var(y1)) in row s2; y1, y2 (cov(y1, y2)) in row s3"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        check_within_cov(
            within_cov, observed, row_labels=["s1", "s2", "s3", "s4"],
            outcome_labels=["y1", "y2"],
        )


def test_check_missing_variance_names_one_outcome():
    within_cov = within_cov_from_input([[1.0, np.nan, 3.0]], 3)
    with pytest.raises(ValueError, match=re.escape(
        "S is missing for observed outcomes in row 0: outcome(s) 1 (var(1)) in row 0"
    )):
        check_within_cov(within_cov, [[True, True, True]])


def test_check_missing_variance_and_separate_covariance():
    within_cov = np.tile(np.eye(4), (1, 1, 1))
    within_cov[0, 1, 1] = np.nan
    within_cov[0, 1, :] = within_cov[0, :, 1] = np.nan
    within_cov[0, 3, 2] = within_cov[0, 2, 3] = np.nan
    with pytest.raises(ValueError, match=re.escape(
        "outcome(s) b, c, d (var(b), cov(c, d)) in row 0"
    )):
        check_within_cov(within_cov, np.ones((1, 4), bool), outcome_labels="abcd")


def test_check_infinite():
    within_cov = np.array([[[np.inf]]])
    with pytest.raises(ValueError, match=re.escape(
        "S is infinite for observed outcomes in row 0: outcome(s) 0 (var(0)) in row 0"
    )):
        check_within_cov(within_cov, [[True]])


def test_check_negative_variances():
    within_cov = within_cov_from_input(
        [[1.0, 2.0], [-0.5, 2.0], [1.0, -3.0], [-1.0, 1.0]], 2
    )
    observed = np.array([[True, True], [True, True], [True, True], [False, True]])
    with pytest.raises(ValueError, match=re.escape(
        "negative variances in S at rows 1, 2: 0: -0.5 (row 1); 1: -3 (row 2)"
    )):
        check_within_cov(within_cov, observed)


def test_check_not_psd_reports_smallest_eigenvalue():
    # eigenvalues of [[1, 2], [2, 1]] are -1 and 3
    within_cov = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 1.0]], np.eye(2)])
    with pytest.raises(ValueError, match=re.escape(
        "S is not positive semi-definite for the observed outcomes in row B; "
        "smallest eigenvalue -1 (row B)"
    )):
        check_within_cov(within_cov, np.ones((3, 2), bool), row_labels="ABC")


def test_check_not_psd_k3_eigenvalue_value():
    correlation = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])
    smallest = np.linalg.eigvalsh(correlation)[0]
    assert smallest < -0.5
    within_cov = np.stack([np.eye(3), correlation * 4.0])
    with pytest.raises(ValueError, match=re.escape(
        f"in row 1; smallest eigenvalue {4.0 * smallest:.6g} (row 1)"
    )):
        check_within_cov(within_cov, np.ones((2, 3), bool))


def test_check_psd_tolerance():
    # a singular matrix with rounding error just below zero passes
    within_cov = np.array([[[1.0, 1.0], [1.0, 1.0 - 1e-12]]])
    assert np.linalg.eigvalsh(within_cov)[0, 0] < 0
    check_within_cov(within_cov, [[True, True]])
    # the tolerance scales with the variances
    check_within_cov(within_cov * 1e6, [[True, True]])
    with pytest.raises(ValueError, match="not positive semi-definite"):
        check_within_cov(np.array([[[1.0, 1.0], [1.0, 1.0 - 1e-8]]]), [[True, True]])


def test_check_names_first_five_rows():
    within_cov = np.tile([[1.0, 2.0], [2.0, 1.0]], (8, 1, 1))
    with pytest.raises(ValueError, match=r"in rows 0, 1, 2, 3, 4 and 3 more; "
                                         r"smallest eigenvalue -1 \(row 0\)"):
        check_within_cov(within_cov, np.ones((8, 2), bool))


def test_batched_eigenvalues_match_row_by_row():
    rng = np.random.default_rng(3)
    k, n_rows = 4, 60
    within_cov = random_covariances(n_rows, k, seed=4) - 2.0 * np.eye(k)
    observed = rng.random((n_rows, k)) < 0.6
    within_cov[~(observed[:, :, None] & observed[:, None, :])] = np.nan
    smallest, tolerance = _smallest_observed_eigenvalues(within_cov, observed)
    for row in range(n_rows):
        outcomes = np.flatnonzero(observed[row])
        if outcomes.size == 0:
            assert smallest[row] == np.inf
            continue
        block = within_cov[row][np.ix_(outcomes, outcomes)]
        assert_allclose(smallest[row], np.linalg.eigvalsh(block)[0], rtol=1e-10)
        scale = max(1.0, np.abs(np.diag(block)).max())
        assert_allclose(tolerance[row], 1e-10 * scale)


def test_check_shape_errors():
    with pytest.raises(ValueError, match=r"within_cov must have shape \(n, k, k\)"):
        check_within_cov(np.ones((2, 2)), np.ones((2, 2), bool))
    message = r"observed must have shape \(n, k\) = \(2, 2\)"
    with pytest.raises(ValueError, match=message):
        check_within_cov(np.ones((2, 2, 2)), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="row_labels has 1 labels for 2 rows"):
        check_within_cov(
            np.tile(np.eye(2), (2, 1, 1)), np.ones((2, 2), bool), ["a"]
        )
