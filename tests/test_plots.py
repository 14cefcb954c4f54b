"""PNG curves and confusion matrices."""

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need the 'plot' extra (matplotlib)")

from fastfnn.plots import curves, plot_confusion_matrix, plot_history  # noqa: E402

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


def drawn(monkeypatch):
    """The axes of every figure plots saves, in order, for a test to look at."""
    from fastfnn import plots

    axes, save = [], plots._save
    monkeypatch.setattr(plots, "_save",
                        lambda fig, path: axes.append(fig.axes[0]) or save(fig, path))
    return axes


@pytest.mark.parametrize("epochs", [1, 2, 7])
def test_epoch_ticks_are_whole_and_each_figure_has_a_title(epochs, tmp_path, monkeypatch):
    axes = drawn(monkeypatch)
    history = {"loss": [1.0 / (e + 1) for e in range(epochs)], "accuracy": [0.5] * epochs}
    plot_history(history, tmp_path, "m.npz")
    plot_confusion_matrix(np.eye(2), [0, 1], tmp_path / "cm.png", "confusion matrix: m.npz")
    assert [ax.get_title() for ax in axes] == ["loss: m.npz", "accuracy: m.npz",
                                               "confusion matrix: m.npz"]
    for ax in axes[:2]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_a_regressor_s_history_has_no_accuracy_png(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3], "accuracy": [None] * 3, "val_loss": [None] * 3,
               "val_accuracy": [None] * 3}
    assert curves(history) == ["loss"]
    assert [p.name for p in plot_history(history, tmp_path)] == ["loss.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_a_failed_png_leaves_none_of_the_curves(tmp_path):
    (tmp_path / "accuracy.png").mkdir()
    with pytest.raises(OSError, match="accuracy.png"):
        plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.6]}, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["accuracy.png"]
