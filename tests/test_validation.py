"""Input checks: what passes through unchanged, what is converted, what is refused and how."""

import numpy as np
import pytest
import scipy.sparse

from fastfnn.validation import (check_feature_names, check_labels, check_X, check_y,
                                feature_names)


def test_uint8_stays_uint8_and_other_input_takes_the_model_dtype():
    X8 = np.zeros((3, 4), np.uint8)
    assert check_X(X8, np.float32).dtype == np.uint8
    assert check_X([[1, 2], [3, 4]], np.float64).dtype == np.float64
    assert check_X(np.ones((2, 2), np.float64), np.float32).dtype == np.float32
    assert check_X(np.ones((5, 4))[:, ::2], np.float64).flags.c_contiguous


def test_values_too_large_for_float32_are_refused():
    with pytest.raises(ValueError, match="too large for float32"):
        check_X(np.array([[1e300]]), np.float32)


def test_one_d_x_gets_a_reshape_hint():
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        check_X(np.ones(3), np.float32)


def test_y_column_vector_is_flattened_and_indicators_checked():
    with pytest.warns(UserWarning, match="column-vector y was passed when a 1d array"):
        assert check_y(np.array([[1], [0]]), 2).shape == (2,)
    with pytest.raises(ValueError, match="indicator matrix of 0s and 1s"):
        check_labels(np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="different lengths"):
        check_y([0, 1, 0], 2)


def test_feature_names_are_a_frames_string_column_names():
    pd = pytest.importorskip("pandas")
    names = feature_names(pd.DataFrame(np.zeros((2, 2)), columns=["a", "b"]))
    assert names.dtype == object and list(names) == ["a", "b"]
    assert feature_names(pd.DataFrame(np.zeros((2, 2)))) is None  # integer column names
    assert feature_names(np.zeros((2, 2))) is None
    with pytest.raises(TypeError, match="only supported if all input features have string names"):
        feature_names(pd.DataFrame(np.zeros((2, 2)), columns=["a", 1]))


def test_feature_names_are_checked_with_scikit_learns_messages():
    fitted = np.array(["a", "b", "c"], dtype=object)
    check_feature_names(fitted, fitted.copy())
    check_feature_names(None, None)
    with pytest.raises(ValueError, match="^The feature names should match those that were passed "
                       "during fit.\nFeature names must be in the same order as they were in fit"):
        check_feature_names(fitted, fitted[::-1])
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- d\nFeature names "
                       "seen at fit time, yet now missing:\n- c\n$"):
        check_feature_names(fitted, np.array(["a", "b", "d"], dtype=object))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but FastFNN was "
                      "fitted with feature names"):
        check_feature_names(fitted, None)
    with pytest.warns(UserWarning, match="X has feature names, but FastFNN was fitted without"):
        check_feature_names(None, fitted)


def test_y_of_pandas_nullable_dtypes_is_read_as_float64_as_scikit_learn_reads_it():
    pd = pytest.importorskip("pandas")
    assert check_y(pd.Series([1, 0], dtype="Int64"), 2).dtype == np.float64
    assert check_y(pd.Series([True, False], dtype="boolean"), 2).dtype == np.float64
    assert check_y(pd.DataFrame({"a": [1, 0], "b": [0, 1]}, dtype="UInt8"), 2).dtype == np.float64
    assert check_y(pd.Series([True, False]), 2).dtype == np.bool_  # NumPy-backed: as it is
    with pytest.raises(ValueError, match="y contains NaN"):
        check_y(pd.Series([1, None], dtype="Int64"), 2)


def test_string_labels_held_as_objects_become_unicode():
    assert check_labels(np.array(["a", "bb"], dtype=object)).dtype == "<U2"
    assert check_labels(np.array(["a", 1], dtype=object)).dtype == object  # mixed: left as given


SPARSE_FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "csc_array", "coo_array"]


@pytest.mark.parametrize("kind", SPARSE_FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_x_is_made_dense_in_the_model_dtype(kind, dtype):
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]])
    X = check_X(getattr(scipy.sparse, kind)(dense), dtype)
    assert isinstance(X, np.ndarray) and X.dtype == dtype and X.flags.c_contiguous
    np.testing.assert_array_equal(X, dense)
    pixels = np.array([[0, 7], [255, 0]], np.uint8)  # intensities stay uint8, as dense ones do
    X8 = check_X(getattr(scipy.sparse, kind)(pixels), dtype)
    assert X8.dtype == np.uint8
    np.testing.assert_array_equal(X8, pixels)


@pytest.mark.parametrize("bad,message", [(np.nan, "contains 1 NaN or infinite"),
                                         (1e300, "too large for float32")])
def test_sparse_x_is_refused_as_its_dense_copy_is(bad, message):
    dense = np.array([[0.0, bad], [2.0, 0.0]])
    errors = []
    for X in (dense, scipy.sparse.csr_matrix(dense)):
        with pytest.raises(ValueError, match=message) as info:
            check_X(X, np.float32)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_finite_entries_pass_though_their_sum_overflows():
    """The finiteness check looks at the sum first, then entry by entry where that overflows."""
    X = np.full((2, 3), 3e38, np.float32)
    np.testing.assert_array_equal(check_X(X, np.float32), X)
    for bad in (np.inf, -np.inf, np.nan):
        with_bad = X.copy()
        with_bad[1, 2] = bad
        with pytest.raises(ValueError, match="contains 1 NaN or infinite"):
            check_X(with_bad, np.float32)
