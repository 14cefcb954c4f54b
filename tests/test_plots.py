"""PNG curves and confusion matrices."""

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need the 'plot' extra (matplotlib)")

from fastfnn.plots import plot_confusion_matrix, plot_history  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_history_curves_are_written_as_png(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3], "accuracy": [0.6, 0.8, 0.9],
               "val_loss": [1.1, 0.7, 0.6], "val_accuracy": [0.55, 0.75, 0.8]}
    paths = plot_history(history, tmp_path / "plots")
    assert [p.name for p in paths] == ["loss.png", "accuracy.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == ["accuracy.png", "loss.png"]


def test_history_without_validation_and_empty_history(tmp_path):
    plot_history({"loss": [1.0], "accuracy": [0.5], "val_loss": [None],
                  "val_accuracy": [None]}, tmp_path)
    with pytest.raises(ValueError, match="no 'loss' values"):
        plot_history({"loss": []}, tmp_path / "empty")


def test_confusion_matrix_png_and_shape_check(tmp_path):
    matrix = np.arange(100).reshape(10, 10)
    path = plot_confusion_matrix(matrix, list(range(10)), tmp_path / "cm.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), [0, 1], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
