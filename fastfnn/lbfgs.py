"""Full-batch training with L-BFGS, as scikit-learn's ``solver='lbfgs'``.

The loss and its gradient over every row are computed on the backend with the composed epoch's
pieces (:mod:`fastfnn.kernels.composed`: forward, output loss, backward), in chunks of rows so the
buffers stay bounded; SciPy's L-BFGS-B (``scipy.optimize.minimize``, the optimizer scikit-learn
uses, with its options ``maxfun``, ``maxiter`` and ``gtol``) moves the parameters, packed on the host
as one float64 vector (every layer's weights, then every layer's biases, as scikit-learn packs them).

The objective is scikit-learn's: with row weights w (S = sum(w); all ones without weights),
``sum_i w_i loss_i / S + 0.5 alpha |W|^2 / S``.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import scipy.optimize

from fastfnn.kernels import Backend
from fastfnn.kernels.composed import Workspace, backward, forward, output_loss
from fastfnn.trainer import EVAL_CHUNK, HISTORY_KEYS, TrainConfig, TrainingDivergedError


class FullBatchObjective:
    """The loss and gradient of a network over a whole training set, on a backend.

    X: (n, d) backend array in the parameters' dtype (already scaled); targets: (n,) int64 labels
    or (n, k) float targets; sample_weight: (n,) host float64 or None. ``shapes`` are the layers'
    (n_in, n_out); :meth:`__call__` takes the packed float64 parameters and returns
    (loss, packed float64 gradient).
    """

    def __init__(self, backend: Backend, config: TrainConfig, X, targets, shapes, dtype,
                 sample_weight=None):
        self.backend, self.config, self.X, self.targets = backend, config, X, targets
        self.shapes, self.dtype = shapes, np.dtype(dtype)
        n = X.shape[0]
        self.weight_sum = float(n if sample_weight is None else np.sum(sample_weight))
        self.row_weight = None if sample_weight is None else backend.asarray(sample_weight, dtype)
        self.rows = min(EVAL_CHUNK, n)
        coefs = [backend.empty(shape, dtype) for shape in shapes]
        self.ws = Workspace.for_layers(backend, coefs, self.rows, targets, gathered=False)
        self.coef_totals = [backend.empty(shape, dtype) for shape in shapes]
        self.intercept_totals = [backend.empty((shape[1],), dtype) for shape in shapes]
        #: the loss and the correctly classified rows (0 for a regressor) at the most recent
        #: evaluation (what an L-BFGS iteration ends on)
        self.last_loss, self.last_correct = math.nan, 0.0

    def unpack(self, packed):
        """The packed vector as backend (coefs, intercepts) lists in the parameters' dtype."""
        coefs, intercepts, start = [], [], 0
        for n_in, n_out in self.shapes:
            coefs.append(self.backend.asarray(
                packed[start:start + n_in * n_out].reshape(n_in, n_out), self.dtype))
            start += n_in * n_out
        for _, n_out in self.shapes:
            intercepts.append(self.backend.asarray(packed[start:start + n_out], self.dtype))
            start += n_out
        return coefs, intercepts

    def __call__(self, packed):
        backend, config, ws = self.backend, self.config, self.ws
        coefs, intercepts = self.unpack(packed)
        scale = 1.0 / self.weight_sum
        ws.stats[...] = 0
        n = self.X.shape[0]
        for start in range(0, n, self.rows):
            x = self.X[start:start + self.rows]
            m = x.shape[0]
            logits = forward(backend, coefs, intercepts, x, ws.acts, config.activation)
            output_loss(backend, config.output, logits, self.targets[start:start + m], ws.stats,
                        scale, None if self.row_weight is None
                        else self.row_weight[start:start + m])
            backward(backend, coefs, x, ws.acts, ws.deltas, ws.coef_grads, ws.intercept_grads,
                     config.activation)
            first = start == 0
            for total, grad in zip((*self.coef_totals, *self.intercept_totals),
                                   (*ws.coef_grads, *ws.intercept_grads)):
                if first:
                    total[...] = grad
                else:
                    total += grad
        sumsq = 0.0
        for total, w in zip(self.coef_totals, coefs):
            total += (config.alpha * scale) * w
            sumsq += float(backend.xp.vdot(w, w))
        loss_sum, self.last_correct = (float(v) for v in backend.to_numpy(ws.stats))
        self.last_loss = loss_sum * scale + 0.5 * config.alpha * sumsq * scale
        grad = np.concatenate([np.asarray(backend.to_numpy(g), dtype=np.float64).ravel()
                               for g in (*self.coef_totals, *self.intercept_totals)])
        return self.last_loss, grad


def pack(coefs, intercepts) -> np.ndarray:
    """Host float64 vector of every layer's weights, then every layer's biases (scikit-learn's)."""
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel()
                           for a in (*coefs, *intercepts)])


def fit_lbfgs(backend: Backend, config: TrainConfig, X, targets, coefs, intercepts, max_fun,
              sample_weight=None, on_iteration=None):
    """Minimise the objective from (coefs, intercepts) with L-BFGS-B; return the result.

    X: (n, d) backend array in the parameters' dtype; targets as the trainer takes them; coefs /
    intercepts: host arrays, the starting point; ``max_fun`` / ``config.max_iter`` /
    ``config.tol``: scipy's maxfun / maxiter / gtol. ``on_iteration(index, record)`` is called after
    each iteration with its history record (loss, accuracy for a classifier, seconds; the rest
    None).
    Returns (coefs, intercepts, history, converged): backend arrays, the history as the trainer
    keeps it (one record per iteration), and whether scipy reported success.
    Raises TrainingDivergedError when the loss or the weights stop being finite.
    """
    shapes = [tuple(w.shape) for w in coefs]
    objective = FullBatchObjective(backend, config, X, targets, shapes, coefs[0].dtype,
                                   sample_weight)
    history = {key: [] for key in HISTORY_KEYS}
    clock = [time.perf_counter()]
    classifying = config.output in ("softmax", "sigmoid")

    def after_iteration(_):
        now = time.perf_counter()
        record = {"loss": objective.last_loss,
                  "accuracy": objective.last_correct / X.shape[0] if classifying else None,
                  "val_loss": None,
                  "val_accuracy": None, "seconds": now - clock[0]}
        clock[0] = now
        for key in HISTORY_KEYS:
            history[key].append(record[key])
        if on_iteration is not None:
            on_iteration(len(history["loss"]) - 1, record)

    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        # a non-finite loss is reported below, with the remedy
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy.optimize.minimize(
            objective, pack(coefs, intercepts), method="L-BFGS-B", jac=True,
            callback=after_iteration,
            options={"maxfun": max_fun, "maxiter": config.max_iter, "gtol": config.tol})
    if not (math.isfinite(result.fun) and np.isfinite(result.x).all()):
        raise TrainingDivergedError(
            "L-BFGS produced a non-finite loss or weight; the model is left as it was. Try "
            "standardised inputs or a larger alpha.")
    if not history["loss"]:  # stopped before a first iteration (e.g. a zero gradient at start)
        objective(result.x)
        after_iteration(None)
    new_coefs, new_intercepts = objective.unpack(result.x)
    return new_coefs, new_intercepts, history, bool(result.success)
