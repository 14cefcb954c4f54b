"""Classification metrics on integer class indices."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes) int64: row = true class index, column = predicted index.

    y_true, y_pred: (n,) integer class indices in [0, n_classes).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and "
                         f"{y_pred.shape}")
    for name, v in (("y_true", y_true), ("y_pred", y_pred)):
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"{name} holds class indices outside [0, {n_classes})")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def format_confusion_matrix(matrix, labels) -> str:
    """A fixed-width text table of ``matrix`` (true rows, predicted columns) headed by ``labels``."""
    labels = [str(label) for label in labels]
    width = max(max(len(s) for s in labels), len(str(int(np.max(matrix, initial=0))))) + 1
    head = " " * (width + 1) + "".join(s.rjust(width) for s in labels)
    rows = [labels[i].rjust(width) + " " + "".join(str(int(c)).rjust(width) for c in row)
            for i, row in enumerate(matrix)]
    return "\n".join(["true \\ predicted", head, *rows])
