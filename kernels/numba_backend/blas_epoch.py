"""The BLAS epoch: a whole epoch of mini-batch training on dense inputs in one compiled call, its
GEMMs done by BLAS.

For batches large enough that a tuned GEMM beats the fused epoch's register blocks, each step runs
what the composed epoch (``fastfnn.kernels.composed``) runs, kernel for kernel: the batch gathered
into the compute dtype; per layer ``z = a @ W`` by BLAS, then bias and activation in one pass; the
loss rows (:mod:`.loss`); back-propagation with the weight and input gradients by BLAS, the bias
gradients as column sums and the activation derivative in one pass; the optimizer
(:mod:`.optimizer`) on each parameter array. Unlike the composed epoch nothing returns to Python
between kernels, and no step allocates: the kernels' launch cost, not their work, is what the
composed epoch loses to this one (about 30 calls per step).

It computes what the composed epoch computes, up to the summation order inside BLAS: every
output kind, label smoothing, sample weights and a step size per step (``epoch.Extras``; dropout
and shifted images are not covered: the backend runs those composed). Parameters and optimizer
state are the caller's arrays, read and written in place through their addresses (no copies).

Assumes: C-contiguous parameters and optimizer state of one float dtype that the caller keeps
alive during the call; numba's ``np.dot`` (SciPy's BLAS, whose thread pool does the parallel work:
the rest of a step is serial, so no second pool competes with it).
"""

from __future__ import annotations

import math

import numpy as np

from .contract import act_grad_rows, bias_act_rows, col_sum_cols
from .jit import JIT, JIT_INLINE, IDENTITY, cast_like, compiled, input_value, numba
from .loss import any_output_loss, output_loss
from .optimizer import FlatParams, OptimizerStep, step_range
from .vectors import pointer_to


@compiled(**JIT_INLINE)
def _matrix(addresses, group, l, shapes, like):
    """The caller's (n_in, n_out) array of layer l in ``group`` (0 the weights, 1 and 2 the
    optimizer state; see layout.pack for the addresses)."""
    L = shapes.shape[0]
    return numba.carray(pointer_to(addresses[0, group * L + l], like), (shapes[l, 0], shapes[l, 1]))


@compiled(**JIT_INLINE)
def _flat(addresses, kind, group, l, shapes, like):
    """The caller's array of layer l in ``group`` as a flat 1-D array: its weights (kind 0) or its
    bias (kind 1)."""
    L = shapes.shape[0]
    size = shapes[l, 1] * (shapes[l, 0] if kind == 0 else 1)
    return numba.carray(pointer_to(addresses[kind, group * L + l], like), size)


@compiled(**JIT_INLINE)
def _rows_of(buf, at, m, width):
    """The (m, width) C array at buf[at:]."""
    return buf[at:at + m * width].reshape((m, width))


@compiled(**JIT)
def blas_epoch(data, hyper, addresses, shapes, t, stats, extras):
    """One epoch (see the module docstring), arguments as epoch.fused_epoch takes them: data an
    EpochData of dense X (data.sparse False), hyper the Hyperparameters, addresses int64
    (2, groups * L) of the caller's weights and biases then each optimizer state's (SGD: the
    velocities; Adam: m, then v), shapes int64 (L, 2) the weights' (n_in, n_out), t the Adam step
    count before the epoch, stats float64 (2,) to which (loss sum, correct rows) are added, extras
    None or an epoch.Extras without dropout or shifts. Returns the new Adam step count."""
    like = data.lut  # an array of the compute dtype
    dtype = like.dtype
    L = shapes.shape[0]
    rows = hyper.batch_size
    order = data.order
    n = order.shape[0]
    X, lut, sc = data.X, data.lut, data.x_scale
    d = shapes[0, 0]
    k = shapes[L - 1, 1]
    # layer l's activations and deltas at act_at[l] of their buffers; gradients at weight_at[l]
    # and bias_at[l] of theirs
    act_at = np.zeros(L + 1, np.int64)
    weight_at = np.zeros(L + 1, np.int64)
    bias_at = np.zeros(L + 1, np.int64)
    for l in range(L):
        act_at[l + 1] = act_at[l] + rows * shapes[l, 1]
        weight_at[l + 1] = weight_at[l] + shapes[l, 0] * shapes[l, 1]
        bias_at[l + 1] = bias_at[l] + shapes[l, 1]
    x_buf = np.empty(rows * d, dtype)
    acts = np.empty(act_at[L], dtype)
    deltas = np.empty(act_at[L], dtype)
    weight_grads = np.empty(weight_at[L], dtype)
    bias_grads = np.empty(bias_at[L], dtype)
    solver = hyper.solver
    s1_group = 2 if solver == 1 else 1  # SGD has one state array per parameter
    lr = cast_like(like, hyper.learning_rate)
    mom = cast_like(like, hyper.momentum)
    b1 = cast_like(like, hyper.beta_1)
    c1 = cast_like(like, 1.0 - hyper.beta_1)
    b2 = cast_like(like, hyper.beta_2)
    c2 = cast_like(like, 1.0 - hyper.beta_2)
    eps = cast_like(like, hyper.epsilon)
    no_decay = bool(False)
    u0 = np.uint64(0)
    s = np.int64(0)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        weight_sum = float(m)
        step_lr = hyper.learning_rate
        if extras is not None:  # scikit-learn's steps: gradients and decay over the weight sum
            weight_sum = 0.0
            for i in range(m):
                weight_sum += np.float64(extras.row_weight[order[start + i]])
            step_lr = extras.learning_rates[s]
            lr = cast_like(like, step_lr)
        scale = cast_like(like, 1.0 / weight_sum)
        x = _rows_of(x_buf, 0, m, d)
        for i in range(m):
            r = order[start + i]
            for j in range(d):
                x[i, j] = input_value(X[r, j], lut, sc)
        # forward
        a = x
        for l in range(L):
            z = _rows_of(acts, act_at[l], m, shapes[l, 1])
            np.dot(a, _matrix(addresses, 0, l, shapes, like), z)
            bias_act_rows(z, _flat(addresses, 1, 0, l, shapes, like),
                          hyper.activation if l < L - 1 else IDENTITY, 0, m)
            a = z
        # the loss, and the logits' gradient into the last layer's deltas
        logits = acts[act_at[L - 1]:act_at[L]]
        dlogits = deltas[act_at[L - 1]:act_at[L]]
        total = 0.0
        hits = 0
        for i in range(m):
            r = order[start + i]
            if extras is None:
                lo, ok = output_loss(hyper.loss_kind, data, r, logits, i * k, k, dlogits, i * k,
                                     scale, hyper.label_smoothing)
            else:
                lo, ok = any_output_loss(hyper.loss_kind, data, r, logits, i * k, k, dlogits,
                                         i * k, scale * extras.row_weight[r],
                                         hyper.label_smoothing)
                lo *= np.float64(extras.row_weight[r])
            total += lo
            hits += ok
        if extras is not None:  # the loss of the step's weighted mean, times its rows
            total *= m / weight_sum
        stats[0] += total
        stats[1] += hits
        # backward
        for l in range(L - 1, -1, -1):
            dz = _rows_of(deltas, act_at[l], m, shapes[l, 1])
            a_prev = x if l == 0 else _rows_of(acts, act_at[l - 1], m, shapes[l, 0])
            np.dot(a_prev.T, dz, weight_grads[weight_at[l]:weight_at[l + 1]].reshape(
                (shapes[l, 0], shapes[l, 1])))
            col_sum_cols(dz, bias_grads[bias_at[l]:bias_at[l + 1]], 0, shapes[l, 1])
            if l > 0:
                d_prev = _rows_of(deltas, act_at[l - 1], m, shapes[l, 0])
                np.dot(dz, _matrix(addresses, 0, l, shapes, like).T, d_prev)
                if hyper.activation != IDENTITY:
                    act_grad_rows(d_prev, a_prev, hyper.activation, 0, m)
        # the optimizer, layer by layer (weight decay on the weights only)
        if solver == 1:
            t += 1
            lr_t = cast_like(like, step_lr * math.sqrt(1.0 - math.pow(hyper.beta_2, float(t)))
                             / (1.0 - math.pow(hyper.beta_1, float(t))))
        else:
            lr_t = lr
        step = OptimizerStep(solver, lr, mom, hyper.nesterovs_momentum, hyper.momentum != 0.0,
                             cast_like(like, hyper.alpha / weight_sum), lr_t, b1, c1, b2, c2, eps)
        use_wd = hyper.alpha / weight_sum != 0.0
        for l in range(L):
            for kind in range(2):
                params = FlatParams(_flat(addresses, kind, 0, l, shapes, like),
                                    _flat(addresses, kind, 1, l, shapes, like),
                                    _flat(addresses, kind, s1_group, l, shapes, like))
                if kind == 0:
                    grad = weight_grads[weight_at[l]:weight_at[l + 1]]
                else:
                    grad = bias_grads[bias_at[l]:bias_at[l + 1]]
                step_range(step, use_wd if kind == 0 else no_decay, params, grad, u0,
                           np.uint64(grad.shape[0]))
        s += 1
    return t
