"""Ahead-of-time warm-up: run every kernel signature that fits, predictions and evaluations reach.

A backend that compiles its kernels (Numba on first call, CuPy on first launch) pays that cost the
first time a signature runs; both cache the result on disk. :func:`warm_up` runs the whole contract on
tiny data for each parameter dtype and input kind a user can bring, so that a Docker image build or a
cluster worker's start-up pays it once, ahead of time, instead of the first real fit. It goes through
the public contract only (``run_epoch`` and the kernels), so whatever a backend compiles for a real fit
it compiles here. Signatures depend on dtypes, not on sizes: tiny arrays reach the same code.
"""

from __future__ import annotations

import numpy as np

from .base import EpochJob
from .composed import Workspace, forward

#: Parameter dtypes users can choose (the estimator's ``dtype``).
DTYPES = ("float32", "float64")
#: Input kinds: 8-bit intensities kept as uint8 (read as x / 255), or floats of the parameters' dtype.
INPUTS = ("uint8", "float")

_ROWS, _FEATURES, _HIDDEN, _CLASSES = 96, 40, (24, 16), 5


def warm_up(backend, dtypes=DTYPES, inputs=INPUTS) -> list[str]:
    """Run every epoch path and kernel of ``backend`` once per dtype x input kind; return what ran.

    dtypes: subset of :data:`DTYPES`; inputs: subset of :data:`INPUTS`. Covers sparse and dense inputs,
    class labels and multi-label indicators (float targets: the regression outputs take the same
    code), softmax and sigmoid outputs, SGD and Adam, batches of 1 row, small batches and the whole
    set, shuffled and in order, sample-weighted and regression epochs, the loss kernels with sample
    weights, and the prediction kernels. Returns
    one line per combination, e.g. ``"float32 weights, uint8 inputs"``. Raises ValueError for a dtype
    or input kind outside those lists (before running anything).
    """
    check_choices(dtypes, inputs)
    done = []
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for kind in inputs:
            for density in (0.15, 1.0):  # a sparse first layer and a dense one
                X = _inputs(rng, kind, np.dtype(dtype), density)
                for targets, output in ((rng.integers(0, _CLASSES, _ROWS), "softmax"),
                                        (rng.integers(0, _CLASSES, _ROWS), "sigmoid"),
                                        ((rng.random((_ROWS, _CLASSES)) < 0.3), "sigmoid")):
                    targets = targets.astype(np.int64 if targets.ndim == 1 else dtype)
                    for solver in ("sgd", "adam"):
                        # Batch sizes a backend may run by different paths (one row, small
                        # and large shuffled batches, the whole set in order).
                        for batch_size, order in ((1, rng.permutation(_ROWS)),
                                                  (16, rng.permutation(_ROWS)),
                                                  (48, rng.permutation(_ROWS)),
                                                  (80, rng.permutation(_ROWS)),
                                                  (_ROWS, None)):
                            _epoch(backend, X, targets, np.dtype(dtype), output, solver,
                                   batch_size, order)
                    _evaluate(backend, X, targets, np.dtype(dtype))
                    _losses(backend, targets, np.dtype(dtype))
                # Sample weights and the regression outputs: a compiled epoch compiles them apart
                # (one signature serves both, whatever the targets), in small and large batches.
                for batch_size in (16, 80):
                    _epoch(backend, X, rng.random((_ROWS, _CLASSES)).astype(dtype),
                           np.dtype(dtype), "squared_error", "adam", batch_size,
                           rng.permutation(_ROWS),
                           sample_weight=rng.uniform(0.5, 2.0, _ROWS).astype(dtype))
            done.append(f"{dtype} weights, {kind} inputs")
    backend.synchronize()
    return done


def check_choices(dtypes, inputs) -> None:
    """Raise ValueError naming the first dtype not in :data:`DTYPES` or input kind not in
    :data:`INPUTS`."""
    for name, given, allowed in (("dtype", dtypes, DTYPES), ("input kind", inputs, INPUTS)):
        unknown = [g for g in given if g not in allowed]
        if unknown:
            raise ValueError(f"unknown {name} {unknown[0]!r}; expected some of {list(allowed)}")


def _inputs(rng, kind, dtype, density):
    """(_ROWS, _FEATURES) inputs with about ``density`` nonzeros, as uint8 or ``dtype``."""
    values = rng.integers(1, 256, (_ROWS, _FEATURES)) * (rng.random((_ROWS, _FEATURES)) < density)
    return values.astype(np.uint8) if kind == "uint8" else (values / 255.0).astype(dtype)


def _params(backend, dtype):
    rng = np.random.default_rng(1)
    sizes = (_FEATURES, *_HIDDEN, _CLASSES)
    coefs = [backend.asarray(rng.standard_normal((a, b)) * 0.1, dtype)
             for a, b in zip(sizes[:-1], sizes[1:])]
    intercepts = [backend.zeros((b,), dtype) for b in sizes[1:]]
    return coefs, intercepts


def _epoch(backend, X, targets, dtype, output, solver, batch_size, order, sample_weight=None):
    coefs, intercepts = _params(backend, dtype)
    groups = 2 if solver == "sgd" else 4
    opt_state = [[backend.zeros(p.shape, dtype) for p in (coefs if g % 2 == 0 else intercepts)]
                 for g in range(groups)]
    X_dev = backend.asarray(X)
    x_scale = 1 / 255 if X.dtype == np.uint8 else 1.0
    if order is None and X.dtype != dtype:  # in-order batches are slices of X in the weights' dtype
        X_dev = backend.gather(X_dev, backend.asarray(np.arange(_ROWS, dtype=np.int64)),
                               backend.empty(X.shape, dtype), x_scale)
        x_scale = 1.0
    job = EpochJob(X=X_dev, targets=backend.asarray(targets),
                   order=None if order is None else backend.asarray(order), batch_size=batch_size,
                   coefs=coefs, intercepts=intercepts, activation="relu", output=output,
                   solver=solver, opt_state=opt_state, learning_rate=0.01, momentum=0.9,
                   nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=1e-4,
                   t=0, x_scale=x_scale, stats=backend.zeros((2,), np.float64),
                   sample_weight=None if sample_weight is None else backend.asarray(sample_weight))
    backend.run_epoch(job)


def _losses(backend, targets, dtype):
    """The loss kernel of ``targets``' kind without and with row weights (what evaluations and
    composed epochs call): softmax for labels, squared error for float targets (the sigmoid's
    signature too)."""
    logits = backend.zeros((_ROWS, _CLASSES), dtype)
    kernel = backend.softmax_xent if targets.ndim == 1 else backend.squared_error
    for row_weight in (None, backend.asarray(np.ones(_ROWS), dtype)):
        kernel(logits, backend.asarray(targets), logits, backend.zeros((2,), np.float64), 1.0,
               row_weight=row_weight)


def _evaluate(backend, X, targets, dtype):
    """The kernels of predictions and evaluations: gather, take, forward, softmax, sigmoid, argmax."""
    coefs, intercepts = _params(backend, dtype)
    ws = Workspace.for_layers(backend, coefs, _ROWS, targets)
    rows = backend.asarray(np.arange(_ROWS, dtype=np.int64))
    x = backend.gather(backend.asarray(X), rows, ws.x, 1 / 255 if X.dtype == np.uint8 else 1.0)
    backend.take(backend.asarray(targets), rows, ws.targets)
    logits = forward(backend, coefs, intercepts, x, ws.acts, "relu")
    backend.argmax_rows(logits, backend.empty((_ROWS,), np.int64))
    backend.bias_act(backend.xp.array(logits, copy=True), backend.zeros((_CLASSES,), dtype),
                     "sigmoid")
    backend.softmax(logits)
