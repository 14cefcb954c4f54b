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
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh")


class Backend(abc.ABC):
    """Abstract compute backend: array plumbing plus the training kernels."""

    #: Registry name, e.g. ``"numpy"``.
    name: ClassVar[str]
    #: The array module of the backend's arrays (``numpy`` or ``cupy``).
    xp: Any

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
    @abc.abstractmethod
    def matmul(self, a, b, out, trans_a: bool = False, trans_b: bool = False):
        """``out[...] = op(a) @ op(b)``, op = transpose when the flag is set (no copy made).

        a: (m, k) or (k, m) when ``trans_a``; b: (k, n) or (n, k) when ``trans_b``;
        out: (m, n) C-contiguous, same float dtype. Returns ``out``.
        """

    @abc.abstractmethod
    def bias_act(self, z, b, act: str):
        """In place ``z[...] = act(z + b)``. z: (m, n) float; b: (n,) float. Returns ``z``."""

    @abc.abstractmethod
    def act_grad(self, da, a, act: str):
        """In place ``da *= act'(.)`` expressed through the stored activation ``a = act(z)``.

        da, a: (m, n) float, same shape. Returns ``da``.
        """

    @abc.abstractmethod
    def softmax_xent(self, logits, y, dlogits, stats, scale: float):
        """Softmax + cross-entropy, fused with its gradient.

        logits: (m, k) float; y: (m,) integer class indices in [0, k); dlogits: (m, k) float output,
        may be ``logits`` itself. Writes ``dlogits = (softmax(logits) - onehot(y)) * scale``, adds the
        summed cross-entropy to ``stats[0]`` and the number of rows whose first argmax equals ``y``
        to ``stats[1]``. Returns ``dlogits``.
        """

    @abc.abstractmethod
    def sigmoid_bce(self, logits, targets, dlogits, stats, scale: float):
        """Sigmoid + binary cross-entropy summed over outputs, fused with its gradient.

        logits: (m, k) float. targets: either (m,) integer class indices (read as an implicit one-hot
        row; a row is correct when its first argmax equals the label) or (m, k) float 0/1 indicators
        (multi-label; a row is correct when every ``logit > 0`` matches its indicator). Writes
        ``dlogits = (sigmoid(logits) - target) * scale`` (may alias ``logits``), adds the loss sum to
        ``stats[0]`` and the correct-row count to ``stats[1]``. Returns ``dlogits``.
        """

    @abc.abstractmethod
    def softmax(self, z):
        """In place row-wise, numerically stable softmax of z: (m, k) float. Returns ``z``."""

    @abc.abstractmethod
    def col_sum(self, dz, out):
        """``out[j] = sum_i dz[i, j]`` (the bias gradient). dz: (m, n); out: (n,). Returns ``out``."""

    @abc.abstractmethod
    def sgd_step(self, param, grad, velocity, lr: float, momentum: float, nesterov: bool,
                 weight_decay: float):
        """In place SGD with (Nesterov) momentum, scikit-learn's formulation.

        g = grad + weight_decay * param; velocity = momentum * velocity - lr * g;
        param += velocity, or with ``nesterov`` param += momentum * velocity - lr * g.
        All arrays share one shape and dtype; ``velocity`` is updated in place (ignored when
        momentum is 0). Returns ``param``.
        """

    @abc.abstractmethod
    def adam_step(self, param, grad, m, v, lr_t: float, beta1: float, beta2: float, eps: float,
                  weight_decay: float):
        """In place Adam update with the bias correction folded into ``lr_t``.

        g = grad + weight_decay * param; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
        param -= lr_t * m / (sqrt(v) + eps). Returns ``param``.
        """

    @abc.abstractmethod
    def gather(self, X, idx, out, scale: float):
        """Mini-batch assembly: ``out[i, :] = X[idx[i], :] * scale`` cast to ``out.dtype``.

        X: (n, d) uint8 or float; idx: (m,) integer row indices; out: (m, d) float. Returns ``out``.
        """

    @abc.abstractmethod
    def take(self, y, idx, out):
        """``out[i] = y[idx[i]]`` for label vectors (m,) or label matrices (m, k). Returns ``out``."""

    @abc.abstractmethod
    def argmax_rows(self, z, out):
        """``out[i] = first argmax of z[i, :]``. z: (m, k) float; out: (m,) int64. Returns ``out``."""

    # ------------------------------------------------------------------ optional fused paths
    def fused_epoch_supported(self, job: "EpochJob") -> bool:  # noqa: ARG002 - contract
        """Whether :meth:`fused_epoch` can run ``job``. The base class has no fused path."""
        return False

    def fused_epoch(self, job: "EpochJob") -> None:
        """Run one whole epoch of mini-batch training in one call.

        Must compute exactly what the trainer computes with the composed kernels (see
        :class:`EpochJob`). Only called when :meth:`fused_epoch_supported` returned True.
        """
        raise NotImplementedError(f"backend {self.name!r} has no fused epoch path")


@dataclass
class EpochJob:
    """Everything one epoch of training needs, as plain arrays and scalars (no model objects).

    Attributes:
        X: (n, d) uint8 or float backend array; rows are scaled by ``x_scale`` when gathered.
        targets: (n,) integer class indices, or (n, k) float 0/1 indicators (sigmoid output only).
        order: (n,) int64 row order of this epoch, or None: rows in their stored order, and X is
            then already in the parameters' dtype with ``x_scale`` 1, so batches are slices of X.
        batch_size: rows per step (the last step takes what is left).
        coefs, intercepts: lists of (n_in, n_out) and (n_out,) float arrays, updated in place.
        activation: hidden activation name; output: ``"softmax"`` or ``"sigmoid"``.
        solver: ``"sgd"`` or ``"adam"``; opt_state: per-parameter lists as the trainer keeps them
            (sgd: ``[velocities_W, velocities_b]``; adam: ``[m_W, m_b, v_W, v_b]``).
        learning_rate: the step size of this epoch; momentum, nesterovs_momentum, beta_1, beta_2,
            epsilon: optimizer scalars, named as the estimator's parameters; alpha: L2 strength, applied
            as ``weight_decay = alpha / rows_in_step`` to weights only (scikit-learn's scaling).
        t: Adam step count before this epoch (the fused path advances it and stores it back).
        x_scale: multiplier applied to gathered X rows (1/255 for uint8 data).
        stats: float64 (2,) accumulator (loss sum, correct rows).
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
