"""Loss / accuracy curves and the confusion matrix as PNG files (needs the ``plot`` extra)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from fastfnn.io.atomic import atomic_write


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'fastfnn[plot]'") from None
    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    """Write the figure as a PNG at ``path`` atomically, creating its folder; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    return path


@contextlib.contextmanager
def removed_on_failure(written: list[Path]):
    """A block that appends the files it writes to ``written``: should it fail, they are
    removed (no partial set of plots is left behind)."""
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def curves(history) -> list[str]:
    """The metrics of ``history`` that :func:`plot_history` draws: ``loss``, and ``accuracy``
    unless it is all None (a regressor's)."""
    return ["loss"] + (["accuracy"] if any(v is not None for v in history.get("accuracy", []))
                       else [])


def plot_history(history, folder, source=None) -> list[Path]:
    """Write ``loss.png`` and, for a classifier, ``accuracy.png`` (train and, when present,
    validation, per epoch) to ``folder``; each titled with its metric and ``source`` when given
    (e.g. the model file).

    history: a mapping with lists ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (entries
    may be None), e.g. ``FastFNN.history_``. Returns the paths written; a failure removes them.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    written = []
    with removed_on_failure(written):
        for metric in curves(history):
            train = [np.nan if v is None else v for v in history.get(metric, [])]
            if not train:
                raise ValueError(f"history has no {metric!r} values to plot")
            val = [np.nan if v is None else v for v in history.get(f"val_{metric}", [])]
            epochs = np.arange(1, len(train) + 1)
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot(epochs, train, marker="o", markersize=3, label=f"train {metric}")
            if val and not np.all(np.isnan(val)):
                ax.plot(epochs[:len(val)], val, marker="s", markersize=3,
                        label=f"validation {metric}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.set_title(metric if source is None else f"{metric}: {source}")
            ax.grid(alpha=0.3)
            ax.legend()
            try:
                written.append(_save(fig, Path(folder) / f"{metric}.png"))
            finally:
                plt.close(fig)
    return written


def plot_confusion_matrix(matrix, labels, path, title="confusion matrix") -> Path:
    """Write the confusion matrix (true rows, predicted columns) as a labelled heat map PNG with
    ``title``."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(labels):
        raise ValueError(f"confusion matrix must be square with one row per label, got shape "
                         f"{matrix.shape} for {len(labels)} labels")
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), [str(v) for v in labels])
    ax.set_yticks(range(k), [str(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > threshold else "black")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
