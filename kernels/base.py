"""The kernel contract every FastFNN backend implements.

Conventions (all backends):
- Batch-major, C-contiguous float arrays. A batch ``X`` is (m, n_in); a layer's weights ``W`` are
  (n_in, n_out); a layer computes ``z = X @ W + b``.
- Floating dtype is float32 or float64; a kernel computes in the dtype of its operands.
- Labels stay integer class indices (int32/int64, shape (m,)); no one-hot matrix is materialised.
- Kernels that produce an array write into an ``out`` (or operate in place) so that a trainer
  allocates its buffers once per fit.
- ``stats`` is a float64 device array of shape (2,): loss kernels *add* their summed loss to
  ``stats[0]`` and their count of correctly classified rows to ``stats[1]``, so a whole epoch runs
  without a host synchronisation.

Activation names: ``"identity"``, ``"relu"``, ``"sigmoid"``, ``"tanh"``.

Every kernel has a working default here, written on ``self.xp`` (thinc's ``Ops`` pattern): with
``xp = numpy`` the base class *is* the NumPy reference, and a backend overrides only the kernels it
runs better. :meth:`Backend.run_epoch` defaults to the composed epoch (:mod:`.composed`), the
definition every fused epoch must match.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .composed import OUTPUTS, composed_epoch

ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh")


class Backend(abc.ABC):
    """A compute backend: array plumbing plus the training kernels, NumPy-style on ``self.xp``."""

    #: Registry name, e.g. ``"numpy"``.
    name: ClassVar[str]
    #: The array module of the backend's arrays (``numpy`` or ``cupy``).
    xp: Any = np

    # ------------------------------------------------------------------ plumbing
    @classmethod
    @abc.abstractmethod
    def availability(cls) -> tuple[bool, str]:
        """Return ``(True, "")`` when the backend can run here, else ``(False, reason)``."""

    def asarray(self, a, dtype=None):
        """A new C-contiguous backend array holding ``a`` (host or device data) as ``dtype``.

        Always a copy, so kernels updating it in place never write through to the caller's data.
        """
        return self.xp.array(a, dtype=dtype, order="C", copy=True)

    def readonly_array(self, a):
        """``a`` as a backend array for kernels that only read it: a host backend takes a NumPy
        array as it is (no copy: predicting on a 10,000 x 1,000 float64 X copied 80 MB, 20 ms
        of the Numba backend's 100), a device backend copies it to the device."""
        return self.xp.asarray(a)

    def to_numpy(self, a) -> np.ndarray:
        """Return backend array ``a`` as a NumPy array on the host."""
        return np.asarray(a)

    def empty(self, shape, dtype):
        """Uninitialised C-contiguous backend array."""
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        """Zero-filled C-contiguous backend array."""
        return self.xp.zeros(shape, dtype=dtype)

    def synchronize(self) -> None:
        """Block until queued device work is done (no-op on CPU backends)."""

    def thread_limit(self, n_threads: int | None):
        """Context manager: the enclosed kernels use at most ``n_threads`` CPU threads.

        None keeps the backend's default. The base class runs no CPU threads of its own.
        """
        return contextlib.nullcontext()

    def describe(self) -> dict:
        """Facts for ``fastfnn info``: versions, threads, device. Keys and values are strings."""
        return {}

    # ------------------------------------------------------------------ kernels
    def matmul(self, a, b, out, trans_a: bool = False, trans_b: bool = False):
        """``out[...] = op(a) @ op(b)``, op = transpose when the flag is set (no copy made).

        a: (m, k) or (k, m) when ``trans_a``; b: (k, n) or (n, k) when ``trans_b``;
        out: (m, n) C-contiguous, same float dtype. Returns ``out``.
        """
        xp = self.xp
        # .T is a view: BLAS reads the transposed operand in place.
        a, b = (a.T if trans_a else a), (b.T if trans_b else b)
        if a.shape[1] == 1:
            # An outer product (batch of 1): dot hands it to BLAS, matmul loops (4x slower).
            return xp.dot(a, b, out=out)
        return xp.matmul(a, b, out=out)

    def bias_act(self, z, b, act: str):
        """In place ``z[...] = act(z + b)``. z: (m, n) float; b: (n,) float. Returns ``z``."""
        z += b
        if act == "relu":
            self.xp.maximum(z, 0, out=z)
        elif act == "sigmoid":
            self._sigmoid_inplace(z)
        elif act == "tanh":
            self.xp.tanh(z, out=z)
        elif act != "identity":
            raise ValueError(f"unknown activation {act!r}")
        return z

    def act_grad(self, da, a, act: str):
        """In place ``da *= act'(.)`` expressed through the stored activation ``a = act(z)``.

        da, a: (m, n) float, same shape. Returns ``da``.
        """
        if act == "relu":
            da *= a > 0
        elif act == "sigmoid":
            da *= a * (1 - a)
        elif act == "tanh":
            da *= 1 - a * a
        elif act != "identity":
            raise ValueError(f"unknown activation {act!r}")
        return da

    def softmax_xent(self, logits, y, dlogits, stats, scale: float, row_weight=None,
                     label_smoothing: float = 0.0):
        """Softmax + cross-entropy, fused with its gradient.

        logits: (m, k) float; y: (m,) integer class indices in [0, k); dlogits: (m, k) float output,
        may be ``logits`` itself; row_weight: (m,) float in the logits' dtype, or None (all ones);
        label_smoothing: eps in [0, 1), the target row t = (1 - eps) onehot(y) + eps / k.
        Writes ``dlogits[i] = (softmax(logits[i]) - t[i]) * scale * row_weight[i]``, adds the
        cross-entropy against t summed with the row weights to ``stats[0]`` and the number of rows
        whose first argmax equals ``y`` (unweighted) to ``stats[1]``. Returns ``dlogits``.
        """
        xp = self.xp
        # Few, whole-array calls: at small batches the per-call overhead is the cost.
        rows = xp.arange(y.shape[0])
        k = logits.shape[1]
        stats[1] += xp.count_nonzero(logits.argmax(axis=1) == y)
        xp.subtract(logits, logits.max(axis=1, keepdims=True), out=dlogits)
        label_logit = dlogits[rows, y]
        if label_smoothing:  # -sum_j t_j (z_j - max) needs every shifted logit, before the exp
            label_logit = (1 - label_smoothing) * label_logit + \
                (label_smoothing / k) * xp.add.reduce(dlogits, axis=1)
        xp.exp(dlogits, out=dlogits)
        total = xp.add.reduce(dlogits, axis=1, keepdims=True)
        row_loss = xp.log(total[:, 0]) - label_logit
        if row_weight is None:
            stats[0] += xp.add.reduce(row_loss, dtype=np.float64)
            dlogits *= scale / total
            if label_smoothing:
                dlogits[rows, y] -= (1 - label_smoothing) * scale
                dlogits -= (label_smoothing / k) * scale
            else:
                dlogits[rows, y] -= scale
            return dlogits
        stats[0] += xp.add.reduce(row_loss * row_weight, dtype=np.float64)
        row_scale = scale * row_weight
        dlogits *= row_scale[:, None] / total
        dlogits[rows, y] -= (1 - label_smoothing) * row_scale
        if label_smoothing:
            dlogits -= (label_smoothing / k) * row_scale[:, None]
        return dlogits

    def sigmoid_bce(self, logits, targets, dlogits, stats, scale: float, row_weight=None):
        """Sigmoid + binary cross-entropy summed over outputs, fused with its gradient.

        logits: (m, k) float. targets: either (m,) integer class indices (read as an implicit one-hot
        row; a row is correct when its first argmax equals the label) or (m, k) float 0/1 indicators
        (multi-label; a row is correct when every ``logit > 0`` matches its indicator). row_weight:
        (m,) float or None, as in :meth:`softmax_xent`. Writes
        ``dlogits[i] = (sigmoid(logits[i]) - target[i]) * scale * row_weight[i]`` (may alias
        ``logits``), adds the weighted loss sum to ``stats[0]`` and the correct-row count to
        ``stats[1]``. Returns ``dlogits``.
        """
        xp = self.xp
        onehot, correct = self._bce_targets(logits, targets)
        # softplus(z) - t z, written so that neither branch overflows for |z| large.
        loss = xp.maximum(logits, 0) - onehot * logits + xp.log1p(xp.exp(-xp.abs(logits)))
        if row_weight is not None:
            loss *= row_weight[:, None]
        stats[0] += xp.sum(loss, dtype=np.float64)
        stats[1] += xp.count_nonzero(correct)
        dlogits[...] = logits
        self._sigmoid_inplace(dlogits)
        dlogits -= onehot
        dlogits *= scale
        if row_weight is not None:
            dlogits *= row_weight[:, None]
        return dlogits

    def squared_error(self, out, targets, dout, stats, scale: float, row_weight=None):
        """Identity output + half squared error (scikit-learn's ``squared_loss``), with its gradient.

        out: (m, k) float, the network's linear output; targets: (m, k) float of out's dtype;
        dout: (m, k) float output, may be ``out`` itself; row_weight: (m,) float or None.
        Writes ``dout[i] = (out[i] - targets[i]) * scale * row_weight[i]`` and adds
        ``sum_i row_weight[i] * 0.5 * sum_j (out[i, j] - targets[i, j])**2 / k`` (the mean over
        outputs, as scikit-learn) to ``stats[0]``; ``stats[1]`` is left as it is. Returns ``dout``.
        """
        xp = self.xp
        xp.subtract(out, targets, out=dout)
        row_loss = xp.add.reduce(dout * dout, axis=1) * (0.5 / out.shape[1])
        if row_weight is not None:
            row_loss *= row_weight
        stats[0] += xp.add.reduce(row_loss, dtype=np.float64)
        dout *= scale
        if row_weight is not None:
            dout *= row_weight[:, None]
        return dout

    def poisson(self, raw, targets, dout, stats, scale: float, row_weight=None):
        """Exponential output + Poisson deviance (scikit-learn's ``poisson_loss``), with its gradient.

        raw: (m, k) float, the network's linear output (the prediction is ``exp(raw)``); targets:
        (m, k) float >= 0 of raw's dtype; dout: (m, k) float output, may alias ``raw``; row_weight:
        (m,) float or None. Writes ``dout[i] = (exp(raw[i]) - targets[i]) * scale * row_weight[i]``
        and adds ``sum_i row_weight[i] * sum_j (xlogy(t, t / p) - t + p)`` with p = exp(raw) to
        ``stats[0]``; ``stats[1]`` is left as it is. Returns ``dout``.
        """
        xp = self.xp
        xp.exp(raw, out=dout)
        positive = targets > 0
        # xlogy(t, t / p): 0 where t == 0 (the log's argument is made 1 there, never 0 / p)
        ratio = xp.where(positive, targets, 1) / dout
        element = xp.where(positive, targets * xp.log(ratio), 0) - targets + dout
        row_loss = xp.add.reduce(element, axis=1)
        if row_weight is not None:
            row_loss *= row_weight
        stats[0] += xp.add.reduce(row_loss, dtype=np.float64)
        dout -= targets
        dout *= scale
        if row_weight is not None:
            dout *= row_weight[:, None]
        return dout

    def softmax(self, z):
        """In place row-wise, numerically stable softmax of z: (m, k) float. Returns ``z``."""
        z -= z.max(axis=1, keepdims=True)
        self.xp.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def col_sum(self, dz, out):
        """``out[j] = sum_i dz[i, j]`` (the bias gradient). dz: (m, n); out: (n,). Returns ``out``."""
        return self.xp.sum(dz, axis=0, out=out)

    def sgd_step(self, param, grad, velocity, lr: float, momentum: float, nesterov: bool,
                 weight_decay: float):
        """In place SGD with (Nesterov) momentum, scikit-learn's formulation.

        g = grad + weight_decay * param; velocity = momentum * velocity - lr * g;
        param += velocity, or with ``nesterov`` param += momentum * velocity - lr * g.
        All arrays share one shape and dtype; ``velocity`` is updated in place (ignored when
        momentum is 0). Returns ``param``.
        """
        g = grad + weight_decay * param if weight_decay else grad
        if momentum == 0:
            param -= lr * g
            return param
        velocity *= momentum
        velocity -= lr * g
        if nesterov:
            param += momentum * velocity - lr * g
        else:
            param += velocity
        return param

    def adam_step(self, param, grad, m, v, lr_t: float, beta1: float, beta2: float, eps: float,
                  weight_decay: float):
        """In place Adam update with the bias correction folded into ``lr_t``.

        g = grad + weight_decay * param; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
        a moment that comes out subnormal (nonzero, |moment| below its dtype's smallest normal
        number) is stored as 0; param -= lr_t * m / (sqrt(v) + eps). Returns ``param``.

        Why the flush: a parameter whose gradient stays 0 (a dead ReLU unit, an input that is
        always 0) has its moments decay by beta1 and beta2 each step through the subnormal range,
        and x86 CPUs take a slow path (tens to hundreds of cycles) on every operation that yields
        a subnormal: per-example Adam on dense data ran 3-7x slower per epoch once training had
        converged (benchmarks/RESULTS.md). The step does not change: a subnormal m moves param by
        about lr_t * tiny / eps at most (1.2e-30 in float32 for lr_t <= 1 and eps = 1e-8), less
        than half an ulp of any |param| above 4e-23 (4e-284 in float64); a subnormal v adds at
        most sqrt(tiny) (1.1e-19; 1.5e-154) to eps, less than half an ulp of any eps above 4e-12
        (3e-138). Within those bounds the parameters are bit for bit those of the unflushed
        update.
        """
        xp = self.xp
        g = grad + weight_decay * param if weight_decay else grad
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        tiny = xp.finfo(m.dtype).tiny
        for moment in (m, v):
            moment[(xp.abs(moment) < tiny) & (moment != 0)] = 0
        param -= lr_t * m / (xp.sqrt(v) + eps)
        return param

    def gather(self, X, idx, out, scale: float):
        """Mini-batch assembly: ``out[i, :] = X[idx[i], :] * scale`` cast to ``out.dtype``.

        X: (n, d) uint8 or float; idx: (m,) integer row indices; out: (m, d) float. Returns ``out``.
        """
        if X.dtype == out.dtype and scale == 1:
            return self.xp.take(X, idx, axis=0, out=out)
        # One pass: the cast and the scaling in the dtype of out (float32(x) * float32(scale)).
        return self.xp.multiply(X[idx], out.dtype.type(scale), out=out)

    def take(self, y, idx, out):
        """``out[i] = y[idx[i]]`` for label vectors (m,) or label matrices (m, k). Returns ``out``."""
        return self.xp.take(y, idx, axis=0, out=out)

    def argmax_rows(self, z, out):
        """``out[i] = first argmax of z[i, :]``. z: (m, k) float; out: (m,) int64. Returns ``out``."""
        return self.xp.argmax(z, axis=1, out=out)

    # ------------------------------------------------------------------ shared pieces of kernels
    def _sigmoid_inplace(self, z):
        """Overflow-free logistic function, in place: exp is only taken of -|z|. Returns ``z``."""
        xp = self.xp
        e = xp.exp(-xp.abs(z))
        positive = z >= 0
        xp.divide(1, 1 + e, out=z, where=positive)
        xp.divide(e, 1 + e, out=z, where=~positive)
        return z

    def _bce_targets(self, logits, targets):
        """(onehot, correct) for :meth:`sigmoid_bce`: the (m, k) target matrix in the logits' dtype
        and the (m,) bool row correctness (first argmax = label, or every indicator matched)."""
        xp = self.xp
        if targets.ndim == 1:
            onehot = xp.zeros(logits.shape, dtype=logits.dtype)
            onehot[xp.arange(targets.shape[0]), targets] = 1
            return onehot, xp.argmax(logits, axis=1) == targets
        onehot = targets.astype(logits.dtype, copy=False)
        return onehot, xp.all((logits > 0) == (onehot > 0.5), axis=1)

    # ------------------------------------------------------------------ epochs
    def splits_exactly(self, job: "EpochJob") -> bool:
        """Whether running ``job``'s epoch as consecutive parts of its steps (each part a job of
        its rows, ``noise_row0`` its first) computes bitwise what one call computes: the
        trainer splits an epoch for progress reports only then. True here: the composed epoch
        keeps nothing between steps but the parameters and optimizer state."""
        return True

    def run_epoch(self, job: "EpochJob") -> str:
        """Run one whole epoch of ``job`` in place; return how it ran (``"composed"`` here).

        The composed epoch (:func:`.composed.composed_epoch`) calls the kernels above step by step:
        the definition of an epoch. A backend may override this with a fused path for the jobs it
        covers (returning ``"fused"``), which must compute the same (tests say so), and hand the
        others to this one.
        """
        composed_epoch(self, job)
        return "composed"


@dataclass
class EpochJob:
    """Everything one epoch of training needs, as plain arrays and scalars (no model objects).

    Attributes:
        X: (n, d) uint8 or float backend array; rows are scaled by ``x_scale`` when gathered.
        targets: (n,) integer class indices, or (n, k) float: 0/1 indicators (sigmoid output) or
            regression targets (squared_error and poisson outputs).
        order: (n,) int64 row order of this epoch, or None: rows in their stored order, and X is
            then already in the parameters' dtype with ``x_scale`` 1, so batches are slices of X.
        batch_size: rows per step (the last step takes what is left).
        coefs, intercepts: lists of (n_in, n_out) and (n_out,) float arrays, updated in place.
        activation: hidden activation name; output: the output layer and its loss,
            ``"softmax"``, ``"sigmoid"``, ``"squared_error"`` or ``"poisson"`` (see :data:`OUTPUTS`).
        solver: ``"sgd"`` or ``"adam"``; opt_state: per-parameter lists as the trainer keeps them
            (sgd: ``[velocities_W, velocities_b]``; adam: ``[m_W, m_b, v_W, v_b]``).
        learning_rate: the step size of this epoch; momentum, nesterovs_momentum, beta_1, beta_2,
            epsilon: optimizer scalars, named as the estimator's parameters; alpha: L2 strength, applied
            as ``weight_decay = alpha / rows_in_step`` to weights only (scikit-learn's scaling).
        t: Adam step count before this epoch (the fused path advances it and stores it back).
        x_scale: multiplier applied to gathered X rows (1/255 for uint8 data).
        stats: float64 (2,) accumulator (loss sum, correct rows).
        workspace: a :class:`.composed.Workspace` the composed epoch may reuse (None: its own).
        sample_weight: (n,) float of the parameters' dtype, or None (every row weighs 1). A step over
            rows with weights w (m rows, S = sum(w)) then follows scikit-learn: the output
            gradient of row i is scaled by w_i / S (not 1 / m), ``weight_decay = alpha / S``, and
            the loss stat adds ``sum_i w_i loss_i * m / S``.
        step_learning_rates: (steps,) float64 host array, the step size of each step of this
            epoch (a schedule within the epoch; Adam's bias correction still applies), or None:
            ``learning_rate`` for every step.
        label_smoothing: eps of the softmax output's smoothed targets (see Backend.softmax_xent).
        dropout: None, or one inverted-dropout rate per layer input (index 0 the features, l the
            output of hidden layer l; len = layers), each in [0, 1). Masks come from
            :mod:`.noise` (seed ``noise_seed``, rows numbered by position in the epoch).
        noise_seed: seed of this epoch's dropout masks and shifts (the trainer draws one per epoch).
        noise_row0: the epoch position of the job's first row, when the job is a part of an epoch
            (a progress report's, a replay's): its rows draw the noise of those positions.
        augment_shift: at most this many pixels of random shift per row and axis (0: none), the
            rows being images of ``image_shape`` (h, w), h * w features.
    """

    X: Any
    targets: Any
    order: Any
    batch_size: int
    coefs: list
    intercepts: list
    activation: str
    output: str
    solver: str
    opt_state: list
    learning_rate: float
    momentum: float
    nesterovs_momentum: bool
    beta_1: float
    beta_2: float
    epsilon: float
    alpha: float
    t: int
    x_scale: float
    stats: Any
    workspace: Any = None
    sample_weight: Any = None
    step_learning_rates: Any = None
    label_smoothing: float = 0.0
    dropout: Any = None
    noise_seed: int = 0
    noise_row0: int = 0
    augment_shift: int = 0
    image_shape: Any = None
