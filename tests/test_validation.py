"""Input checks: what passes through unchanged, what is converted, what is refused and how."""

import numpy as np
import pytest

from fastfnn.validation import check_labels, check_X, check_y


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
