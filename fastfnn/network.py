"""Dense layers over a Backend: parameter initialisation, buffers, forward and backward passes."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from fastfnn.kernels import Backend

INITS = ("he", "xavier")


def init_params(layer_sizes, init, activation, dtype, rng):
    """Draw fresh weights for the layer chain ``layer_sizes`` (n_in, h1, ..., n_out).

    init: ``"he"`` (normal, std sqrt(2 / n_in)), ``"xavier"`` (Glorot uniform, bound
    sqrt(6 / (n_in + n_out))), ``"auto"`` (He for ReLU, Xavier otherwise) or a positive number used
    as the std of a zero-mean normal. Biases start at zero.
    Returns (coefs, intercepts): lists of NumPy arrays (n_in, n_out) and (n_out,) of ``dtype``.
    """
    if init == "auto":
        init = "he" if activation == "relu" else "xavier"
    coefs, intercepts = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        if init == "he":
            w = rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)
        elif init == "xavier":
            bound = math.sqrt(6.0 / (n_in + n_out))
            w = rng.uniform(-bound, bound, (n_in, n_out))
        elif isinstance(init, Real):
            w = rng.standard_normal((n_in, n_out)) * float(init)
        else:
            raise ValueError(f"init must be 'he', 'xavier', 'auto' or a positive std, got {init!r}")
        coefs.append(np.ascontiguousarray(w, dtype=dtype))
        intercepts.append(np.zeros(n_out, dtype=dtype))
    return coefs, intercepts


class Workspace:
    """Per-fit buffers for batches of up to ``rows`` rows, allocated once on the backend.

    x: (rows, n_in) input batch; targets: (rows,) int64 labels or (rows, k) float indicators
    (both None when ``gathered`` is False: batches are then slices of data already in place);
    acts[l]: (rows, layer_sizes[l+1]) activations (the last one holds logits, then their gradient);
    deltas[l]: (rows, layer_sizes[l+1]) gradient w.r.t. hidden pre-activations;
    coef_grads / intercept_grads: shaped like the parameters.
    """

    def __init__(self, backend: Backend, layer_sizes, rows, dtype, targets_shape_tail=(),
                 targets_dtype=np.int64, gathered=True):
        self.x = backend.empty((rows, layer_sizes[0]), dtype) if gathered else None
        self.targets = backend.empty((rows, *targets_shape_tail), targets_dtype) \
            if gathered else None
        self.acts = [backend.empty((rows, n), dtype) for n in layer_sizes[1:]]
        self.deltas = [backend.empty((rows, n), dtype) for n in layer_sizes[1:-1]]
        self.coef_grads = [backend.empty((a, b), dtype)
                           for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
        self.intercept_grads = [backend.empty((n,), dtype) for n in layer_sizes[1:]]
        self.stats = backend.zeros((2,), np.float64)


def forward(backend: Backend, coefs, intercepts, x, acts, activation):
    """Run ``x`` (m, n_in) through the layers into ``acts`` (each buffer's first m rows).

    Hidden layers apply ``activation``; the output layer stays linear (logits).
    Returns the logits view (m, n_out).
    """
    m = x.shape[0]
    a = x
    last = len(coefs) - 1
    for layer, (w, b) in enumerate(zip(coefs, intercepts)):
        z = acts[layer][:m]
        backend.matmul(a, w, z)
        backend.bias_act(z, b, "identity" if layer == last else activation)
        a = z
    return a


def backward(backend: Backend, coefs, x, acts, deltas, coef_grads, intercept_grads, activation):
    """Back-propagate the logits gradient held in ``acts[-1][:m]`` into the parameter gradients.

    x: (m, n_in) the batch the forward pass saw. Fills coef_grads[l] (n_in, n_out) and
    intercept_grads[l] (n_out,) with the data gradient (no weight decay).
    """
    m = x.shape[0]
    dz = acts[-1][:m]
    for layer in range(len(coefs) - 1, -1, -1):
        a_prev = x if layer == 0 else acts[layer - 1][:m]
        backend.matmul(a_prev, dz, coef_grads[layer], trans_a=True)
        backend.col_sum(dz, intercept_grads[layer])
        if layer > 0:
            d_prev = deltas[layer - 1][:m]
            backend.matmul(dz, coefs[layer], d_prev, trans_b=True)
            backend.act_grad(d_prev, a_prev, activation)
            dz = d_prev


def output_loss(backend: Backend, output, logits, targets, stats, scale):
    """Apply the output loss kernel in place on ``logits`` (it becomes the scaled logits gradient)."""
    if output == "softmax":
        return backend.softmax_xent(logits, targets, logits, stats, scale)
    return backend.sigmoid_bce(logits, targets, logits, stats, scale)
