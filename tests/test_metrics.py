"""Confusion matrix and its text form."""

import numpy as np
import pytest

from fastfnn.metrics import confusion_matrix, format_confusion_matrix


def test_confusion_matrix_counts_true_rows_predicted_columns():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert matrix.dtype == np.int64


def test_confusion_matrix_rejects_bad_indices():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="1-D of one length"):
        confusion_matrix([0, 1], [0], 3)


def test_format_lines_up_columns():
    text = format_confusion_matrix(np.array([[10, 0], [2, 123]]), ["a", "bb"])
    lines = text.splitlines()
    assert lines[0] == "true \\ predicted"
    assert len({len(line) for line in lines[1:]}) == 1
    assert lines[3].split() == ["bb", "2", "123"]
