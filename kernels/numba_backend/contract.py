"""The contract kernels (see ``fastfnn.kernels.base.Backend``) as compiled loops.

Each kernel is a loop nest in the operand dtype (float32 or float64) over a range of rows (columns
for the column sum), called once for the whole array or, for large arrays, from a ``prange`` over
a fixed split into chunks (:func:`.jit.chunk_bounds`), so results do not depend on the thread
count. Element-wise kernels and the optimizer steps round exactly as the NumPy reference does;
reductions differ from it only in summation order. ``matmul`` is ``np.dot`` inside compiled code
(SciPy's BLAS). The loss math is :mod:`.loss`'s, the optimizer steps :mod:`.optimizer`'s, shared
with the fused epoch.

Assumes: scalar code (no explicit vectors), ``fastmath=False``; rows of any strides.
"""

from __future__ import annotations

import numpy as np

from .elementary import activation
from .jit import (JIT, JIT_INLINE, JIT_PARALLEL, cast_like, chunk_bounds, compiled, input_value,
                  overload, prange)
from .loss import (POISSON, SOFTMAX_LABELS, SQUARED_ERROR, bce_indicators, bce_labels, exp_sum,
                   logit_max, poisson, softmax_xent, squared_error)
from .optimizer import step_range
from .vectors import lanes, vadd, vld, vst, vzero


@compiled(**JIT)
def matmul(a, b, out):
    """out = a @ b by BLAS (2-D C or F operands of one float dtype)."""
    np.dot(a, b, out)


# ----------------------------------------------------------------------------- activations
@compiled(**JIT)
def bias_act_rows(z, b, act, r0, r1):
    """z[i] = act(z[i] + b) for rows r0 <= i < r1 (act: an activation code, as
    elementary.activation computes it): whole vectors where z and b are C-contiguous, then each
    row's tail element by element (the same values either way)."""
    n = z.shape[1]
    V = lanes(z)
    nv = n - n % V if z.flags.c_contiguous and b.flags.c_contiguous else 0
    for i in range(r0, r1):
        for j in range(0, nv, V):
            o = i * n + j
            vst(z, o, activation(vadd(vld(z, o), vld(b, j)), act))
        for j in range(nv, n):
            z[i, j] = activation(z[i, j] + b[j], act)


@compiled(**JIT_PARALLEL)
def bias_act_parallel(z, b, act, nchunks):
    """bias_act_rows over all rows, in nchunks parallel row chunks."""
    for c in prange(nchunks):
        lo, hi = chunk_bounds(z.shape[0], nchunks, c)
        bias_act_rows(z, b, act, lo, hi)


@compiled(**JIT)
def act_grad_rows(da, a, act, r0, r1):
    """da[i] *= act'(z) through the stored activation a[i] = act(z), rows r0 <= i < r1
    (act 1, 2 or 3; identity needs no call)."""
    n = da.shape[1]
    one = cast_like(da, 1.0)
    zero = cast_like(da, 0.0)
    if act == 1:
        for i in range(r0, r1):
            for j in range(n):
                da[i, j] = da[i, j] * (one if a[i, j] > zero else zero)
    elif act == 2:
        for i in range(r0, r1):
            for j in range(n):
                v = a[i, j]
                da[i, j] = da[i, j] * (v * (one - v))
    elif act == 3:
        for i in range(r0, r1):
            for j in range(n):
                v = a[i, j]
                da[i, j] = da[i, j] * (one - v * v)


@compiled(**JIT_PARALLEL)
def act_grad_parallel(da, a, act, nchunks):
    """act_grad_rows over all rows, in nchunks parallel row chunks."""
    for c in prange(nchunks):
        lo, hi = chunk_bounds(da.shape[0], nchunks, c)
        act_grad_rows(da, a, act, lo, hi)


# ----------------------------------------------------------------------------- output losses
def _loss_row(kind, logits, targets, i, dlogits, scale, eps):
    """Loss of row i of the logits against row i of the targets, gradient into row i of dlogits
    (kind: a loss.output_loss kind; eps: the softmax's label smoothing; compiled code only).
    Integer label vectors serve the softmax and sigmoid outputs; (m, k) float targets the sigmoid
    (indicators) and regression ones."""
    raise NotImplementedError


@overload(_loss_row, inline="always")
def _ol_loss_row(kind, logits, targets, i, dlogits, scale, eps):
    if targets.ndim == 1:
        def impl(kind, logits, targets, i, dlogits, scale, eps):
            k = logits.shape[1]
            if kind == SOFTMAX_LABELS:
                return softmax_xent(logits[i], 0, k, targets[i], dlogits[i], 0, scale, False, eps)
            return bce_labels(logits[i], 0, k, targets[i], dlogits[i], 0, scale)
        return impl

    def impl2(kind, logits, targets, i, dlogits, scale, eps):
        k = logits.shape[1]
        if kind == SQUARED_ERROR:
            return squared_error(logits[i], 0, k, targets, i, dlogits[i], 0, scale)
        if kind == POISSON:
            return poisson(logits[i], 0, k, targets, i, dlogits[i], 0, scale)
        return bce_indicators(logits[i], 0, k, targets, i, dlogits[i], 0, scale)
    return impl2


@compiled(**JIT_INLINE)
def _weighted_loss_row(kind, logits, targets, i, dlogits, scale, row_weight, eps):
    """_loss_row with row i's gradient scaled by row_weight[i] and its loss weighted by it too
    (row_weight None: unweighted, pruned before typing). One call site of the inlined _loss_row."""
    row_scale = scale
    if row_weight is not None:
        row_scale = scale * row_weight[i]
    lo, ok = _loss_row(kind, logits, targets, i, dlogits, row_scale, eps)
    if row_weight is not None:
        lo *= np.float64(row_weight[i])
    return lo, ok


@compiled(**JIT)
def first_bad_label(y, k):
    """The first row whose label is outside [0, k), or -1."""
    for i in range(y.shape[0]):
        if y[i] < 0 or y[i] >= k:
            return i
    return -1


@compiled(**JIT)
def _loss_rows(kind, logits, targets, dlogits, scale, row_weight, eps, loss, correct, r0, r1):
    for i in range(r0, r1):
        loss[i], correct[i] = _weighted_loss_row(kind, logits, targets, i, dlogits, scale,
                                                 row_weight, eps)


@compiled(**JIT_PARALLEL)
def loss_parallel(kind, logits, targets, dlogits, scale, row_weight, eps, stats, nchunks):
    """The output loss and gradient of every row (kind: a loss.output_loss kind; row_weight: (m,)
    or None; eps: the softmax's label smoothing, float64) in nchunks parallel row chunks;
    stats += (loss sum, correct rows), summed in row order."""
    m = logits.shape[0]
    loss = np.empty(m, np.float64)
    correct = np.empty(m, np.int64)
    for c in prange(nchunks):
        lo, hi = chunk_bounds(m, nchunks, c)
        _loss_rows(kind, logits, targets, dlogits, scale, row_weight, eps, loss, correct, lo, hi)
    total = 0.0
    hits = 0
    for i in range(m):
        total += loss[i]
        hits += correct[i]
    stats[0] += total
    stats[1] += hits


@compiled(**JIT)
def loss_serial(kind, logits, targets, dlogits, scale, row_weight, eps, stats):
    """loss_parallel on one thread."""
    total = 0.0
    hits = 0
    for i in range(logits.shape[0]):
        lo, ok = _weighted_loss_row(kind, logits, targets, i, dlogits, scale, row_weight, eps)
        total += lo
        hits += ok
    stats[0] += total
    stats[1] += hits


@compiled(**JIT)
def softmax_rows(z, r0, r1):
    """In place softmax of rows r0 <= i < r1 of z."""
    k = z.shape[1]
    for i in range(r0, r1):
        row = z[i]
        mx = logit_max(row, 0, k)[0]
        s = exp_sum(row, 0, k, mx, row, 0, True)
        for j in range(k):
            row[j] = row[j] / s


@compiled(**JIT_PARALLEL)
def softmax_parallel(z, nchunks):
    """softmax_rows over all rows, in nchunks parallel row chunks."""
    for c in prange(nchunks):
        lo, hi = chunk_bounds(z.shape[0], nchunks, c)
        softmax_rows(z, lo, hi)


@compiled(**JIT)
def argmax_rows(z, out):
    """out[i] = the first argmax of row i of z (a NaN wins, as with np.argmax)."""
    for i in range(z.shape[0]):
        out[i] = logit_max(z[i], 0, z.shape[1])[1]


# ----------------------------------------------------------------------------- column sum
@compiled(**JIT)
def col_sum_cols(dz, out, c0, c1):
    """out[c0:c1] = sum over rows, row after row (the order NumPy uses for axis 0), for a C array
    dz: whole vectors of columns accumulate in registers, the remaining columns one by one."""
    m, n = dz.shape
    V = lanes(dz)
    c_vec = c0 + (c1 - c0) // V * V
    for j in range(c0, c_vec, V):
        acc = vzero(dz)
        for i in range(m):
            acc = vadd(acc, vld(dz, i * n + j))
        vst(out, j, acc)
    zero = cast_like(out, 0.0)
    for j in range(c_vec, c1):
        out[j] = zero
    for i in range(m):
        for j in range(c_vec, c1):
            out[j] = out[j] + dz[i, j]


@compiled(**JIT_PARALLEL)
def col_sum_parallel(dz, out, nchunks):
    """col_sum_cols over all columns, in nchunks parallel column chunks."""
    for c in prange(nchunks):
        lo, hi = chunk_bounds(dz.shape[1], nchunks, c)
        col_sum_cols(dz, out, lo, hi)


# ----------------------------------------------------------------------------- optimizer steps
@compiled(**JIT_PARALLEL)
def step_parallel(step, decay, params, g, nchunks):
    """optimizer.step_range over all of params.w (gradient g), in nchunks parallel chunks."""
    for c in prange(nchunks):
        lo, hi = chunk_bounds(params.w.shape[0], nchunks, c)
        step_range(step, decay, params, g, np.uint64(lo), np.uint64(hi - lo))


# ----------------------------------------------------------------------------- gather / take
@compiled(**JIT)
def first_bad_index(idx, n):
    """Position of the first index outside [-n, n) (NumPy's valid range), or -1."""
    for i in range(idx.shape[0]):
        j = idx[i]
        if j < -n or j >= n:
            return i
    return -1


@compiled(**JIT)
def gather_rows(X, idx, out, lut, sc, r0, r1):
    """out[i] = X[idx[i]] as the compute dtype (jit.input_value) for r0 <= i < r1."""
    n = X.shape[0]
    d = X.shape[1]
    for i in range(r0, r1):
        r = idx[i]
        if r < 0:
            r += n
        for j in range(d):
            out[i, j] = input_value(X[r, j], lut, sc)


@compiled(**JIT_PARALLEL)
def gather_parallel(X, idx, out, lut, sc, nchunks):
    """gather_rows over all of idx, in nchunks parallel chunks."""
    for c in prange(nchunks):
        lo, hi = chunk_bounds(idx.shape[0], nchunks, c)
        gather_rows(X, idx, out, lut, sc, lo, hi)


@compiled(**JIT)
def take_rows(y, idx, out):
    """out[i] = y[idx[i]] for the rows of a 2-D y (a label vector: its (n, 1) view)."""
    n = y.shape[0]
    for i in range(idx.shape[0]):
        r = idx[i]
        if r < 0:
            r += n
        for j in range(y.shape[1]):
            out[i, j] = y[r, j]
