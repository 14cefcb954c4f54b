"""Input and hyper-parameter checks: every error says what was wrong and what was expected.

All checks run before any state changes, so a rejected call leaves a model exactly as it was.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np

from fastfnn.kernels import ACTIVATIONS

#: scikit-learn's activation names map onto the kernel names.
ACTIVATION_ALIASES = {"logistic": "sigmoid", "sigmoid": "sigmoid", "relu": "relu",
                      "tanh": "tanh", "identity": "identity"}
SOLVERS = ("sgd", "adam")
OUTPUTS = ("auto", "softmax", "sigmoid")
DTYPES = {"float32": np.float32, "float64": np.float64}


def _number(name, value, *, low=None, high=None, low_open=False, high_open=False, integer=False):
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an integer" if integer else "a real number"
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return int(value) if integer else float(value)


def _choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def check_hyperparameters(est) -> dict:
    """Validate an estimator's constructor arguments; return them resolved (kernel names, numbers).

    Raises TypeError for a wrong type and ValueError for a wrong value, naming the parameter.
    """
    hidden = est.hidden_layer_sizes
    if isinstance(hidden, Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError("hidden_layer_sizes must be a tuple of positive integers, "
                        f"got {est.hidden_layer_sizes!r}") from None
    hidden = tuple(_number("hidden_layer_sizes[i]", h, low=1, integer=True) for h in hidden)
    activation = ACTIVATION_ALIASES.get(est.activation) if isinstance(est.activation, str) else None
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_ALIASES)}, "
                         f"got {est.activation!r}")
    batch_size = est.batch_size
    if not (batch_size is None or batch_size == "auto"):
        batch_size = _number("batch_size", batch_size, low=1, integer=True)
    dtype_name = np.dtype(est.dtype).name if _is_dtype_like(est.dtype) else None
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {est.dtype!r}")
    init = est.init
    if not (isinstance(init, str) and init in ("auto", "he", "xavier")):
        init = _number("init (a normal std)", init, low=0, low_open=True)
    return {
        "hidden": hidden,
        "activation": activation,
        "solver": _choice("solver", est.solver, SOLVERS),
        "alpha": _number("alpha", est.alpha, low=0),
        "batch_size": batch_size,
        "lr": _number("learning_rate_init", est.learning_rate_init, low=0, low_open=True),
        "max_iter": _number("max_iter", est.max_iter, low=1, integer=True),
        "shuffle": bool(est.shuffle),
        "tol": _number("tol", est.tol, low=0),
        "momentum": _number("momentum", est.momentum, low=0, high=1),
        "nesterov": bool(est.nesterovs_momentum),
        "early_stopping": bool(est.early_stopping),
        "validation_fraction": _number("validation_fraction", est.validation_fraction, low=0,
                                       high=1, low_open=True, high_open=True),
        "beta1": _number("beta_1", est.beta_1, low=0, high=1, high_open=True),
        "beta2": _number("beta_2", est.beta_2, low=0, high=1, high_open=True),
        "eps": _number("epsilon", est.epsilon, low=0, low_open=True),
        "n_iter_no_change": _number("n_iter_no_change", est.n_iter_no_change, low=1,
                                    integer=True),
        "dtype": DTYPES[dtype_name],
        "init": init,
        "output": _choice("output", est.output, OUTPUTS),
        "n_jobs": _n_jobs(est.n_jobs),
    }


def _n_jobs(value):
    """None, a positive thread count, or -1 for every core (scikit-learn's convention)."""
    if value is None:
        return None
    n = _number("n_jobs", value, integer=True)
    if n == -1:
        return os.cpu_count() or 1
    if n < 1:
        raise ValueError(f"n_jobs must be None, -1 or a positive number of threads, got {value!r}")
    return n


def _is_dtype_like(value) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


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

