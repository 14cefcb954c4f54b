"""Input checks for fit, predict and evaluate: every error says what was wrong and what was expected.

All checks run before any state changes, so a rejected call leaves a model exactly as it was. The
hyper-parameters are checked by :mod:`fastfnn.params`.
"""

from __future__ import annotations

import numpy as np


def check_X(X, dtype, n_features=None, name="X") -> np.ndarray:
    """Validate a feature matrix and return it as a C-contiguous NumPy array.

    X: array-like (n_samples, n_features) of real numbers, at least one row and one column, all
    finite. uint8 input is kept as uint8 (read as 8-bit intensities, scaled by 1/255 on the backend);
    anything else is converted to ``dtype`` (float32 or float64).
    """
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} must be a dense array; convert sparse input with .toarray()")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}"
                         + ("; use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one "
                            "sample" if arr.ndim == 1 else ""))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape "
                         f"{arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the model was fitted with "
                         f"{n_features}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s) (or values too large for "
                         f"{np.dtype(dtype).name}); every entry must be finite")
    return arr


def check_y(y, n_samples, name="y") -> np.ndarray:
    """Validate targets: (n,) labels of any hashable kind, or (n, k) 0/1 multi-label indicators."""
    arr = np.asarray(y)
    if arr.dtype == object and arr.ndim == 1 and any(v is None for v in arr):
        raise ValueError(f"{name} contains None; every sample needs a label")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D labels (n_samples,) or a 2-D 0/1 indicator matrix "
                         f"(n_samples, n_labels), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} samples in X, "
                         f"{arr.shape[0]} in {name}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite labels")
    if arr.ndim == 2:
        if arr.dtype == object or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"2-D {name} must be a multi-label indicator matrix of 0s and 1s")
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has no label columns")
    return arr

