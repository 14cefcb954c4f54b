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

A step of enough rows is split into row chunks run in parallel (numba's threads), each with its
own buffers and gradient, each calling BLAS on one thread (the backend limits BLAS to one thread
during such an epoch): the step's elementwise work is then parallel too, and no BLAS thread pool
waits on another. The chunks' gradients are summed in chunk order and stepped in parallel over
ranges of the parameters. The split is the caller's ``chunks`` (the backend passes its thread
count), so results are bitwise reproducible for a given thread count.

It computes what the composed epoch computes, up to the summation order inside BLAS: every
output kind, label smoothing, sample weights, a step size per step, dropout of hidden layers
(ReLU and identity, as the fused epoch: the stored activations are the dropped ones) and shifted
images (``epoch.Extras``). Parameters and optimizer state are the caller's arrays, read and
written in place through their addresses (no copies).

The GEMMs go through :func:`.numpy_blas.matmul`: NumPy's BLAS where it exports a 64-bit CBLAS
gemm (faster than SciPy's on some machines), else numba's ``np.dot`` (SciPy's BLAS).

Assumes: C-contiguous parameters and optimizer state of one float dtype that the caller keeps
alive during the call; with one chunk the BLAS thread pool does the parallel work, with more it
must run single-threaded.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .contract import act_grad_rows, bias_act_rows, col_sum_cols
from .jit import (JIT, JIT_INLINE, JIT_PARALLEL, IDENTITY, cast_like, chunk_bounds, compiled,
                  input_value, numba, prange)
from .noise import drop_units, shifted_row
from .numpy_blas import matmul
from .optimizer import FlatParams, step_range
from .steps import add_step_stats, optimizer_step, row_loss, weight_sum_and_rate
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


#: Every chunk's buffers, row c for chunk c (2-D C arrays of the compute dtype): x the gathered
#: rows, acts and deltas each layer's activations and their gradients (layer l at at[0, l] of a
#: row), weight_grads and bias_grads the gradients (layer l at at[1, l] and at[2, l]).
BlasWork = namedtuple("BlasWork", ["x", "acts", "deltas", "weight_grads", "bias_grads"])

#: Rows a chunk has at least: a step of m rows runs in min(chunks, m // MIN_CHUNK_ROWS) chunks.
MIN_CHUNK_ROWS = 32
#: Parameters per work item of a parallel update.
UPDATE_PIECE = 16384


@compiled(**JIT)
def train_chunk(data, hyper, addresses, shapes, at, work, c, start, m, scale, extras, results,
                gemm):
    """Forward, loss and backward of the m rows data.order[start:start + m] in chunk c's
    buffers (see BlasWork; at: int64 (3, L + 1) the offsets there): the data gradient of the
    rows, each output gradient row scaled by ``scale`` (times its sample weight with extras), in
    work.weight_grads[c] and work.bias_grads[c]; loss sum and correct rows added to results[c].
    extras: None (a classifier's plain rows: numba prunes the rest before typing) or an
    epoch.Extras (weights, smoothing, dropout, shifts). gemm: NumPy's BLAS product or None, as
    numpy_blas.matmul takes it."""
    like = data.lut  # an array of the compute dtype
    L = shapes.shape[0]
    order = data.order
    X, lut, sc = data.X, data.lut, data.x_scale
    d = shapes[0, 0]
    k = shapes[L - 1, 1]
    acts, deltas = work.acts[c], work.deltas[c]
    weight_grads, bias_grads = work.weight_grads[c], work.bias_grads[c]
    x = _rows_of(work.x[c], 0, m, d)
    for i in range(m):
        r = order[start + i]
        if extras is not None:
            if extras.shift > 0:
                shifted_row(X, r, extras, extras.row0 + start + i, work.x[c], i * d, lut, sc)
                continue
        for j in range(d):
            x[i, j] = input_value(X[r, j], lut, sc)
    a = x
    for l in range(L):
        z = _rows_of(acts, at[0, l], m, shapes[l, 1])
        matmul(gemm, a, _matrix(addresses, 0, l, shapes, like), z, False, False)
        bias_act_rows(z, _flat(addresses, 1, 0, l, shapes, like),
                      hyper.activation if l < L - 1 else IDENTITY, 0, m)
        if extras is not None:
            if l < L - 1:  # dropout of this layer's output, the next layer's input
                drop_units(extras, l + 1, acts, at[0, l], shapes[l, 1], shapes[l, 1],
                           extras.row0 + start, m)
        a = z
    # the loss, and the logits' gradient into the last layer's deltas
    logits = acts[at[0, L - 1]:at[0, L - 1] + m * k]
    dlogits = deltas[at[0, L - 1]:at[0, L - 1] + m * k]
    total = 0.0
    hits = 0
    for i in range(m):
        r = order[start + i]
        lo, ok = row_loss(hyper.loss_kind, data, r, logits, i * k, k, dlogits, i * k, scale,
                          extras, hyper.label_smoothing)
        total += lo
        hits += ok
    results[c, 0] += total
    results[c, 1] += hits
    for l in range(L - 1, -1, -1):
        dz = _rows_of(deltas, at[0, l], m, shapes[l, 1])
        a_prev = x if l == 0 else _rows_of(acts, at[0, l - 1], m, shapes[l, 0])
        matmul(gemm, a_prev, dz, weight_grads[at[1, l]:at[1, l + 1]].reshape((shapes[l, 0],
                                                                            shapes[l, 1])),
               True, False)
        col_sum_cols(dz, bias_grads[at[2, l]:at[2, l + 1]], 0, shapes[l, 1])
        if l > 0:
            d_prev = _rows_of(deltas, at[0, l - 1], m, shapes[l, 0])
            matmul(gemm, dz, _matrix(addresses, 0, l, shapes, like), d_prev, False, True)
            if hyper.activation != IDENTITY:
                act_grad_rows(d_prev, a_prev, hyper.activation, 0, m)
            if extras is not None:  # the deltas through layer input l's dropout
                drop_units(extras, l, deltas, at[0, l - 1], shapes[l, 0], shapes[l, 0],
                           extras.row0 + start, m)


@compiled(**JIT_PARALLEL)
def train_chunks(train_chunk_fn, data, hyper, addresses, shapes, at, work, start, m, nch, scale,
                 extras, results, gemm):
    """train_chunk (as ``train_chunk_fn``, see blas_epoch) on a split of the step's m rows
    (from data.order[start]) into nch chunks, in parallel."""
    for c in prange(nch):
        lo, hi = chunk_bounds(m, nch, c)
        train_chunk_fn(data, hyper, addresses, shapes, at, work, np.int64(c), start + lo,
                       hi - lo, scale, extras, results, gemm)


@compiled(**JIT_INLINE)
def _step_item(step, decay, addresses, shapes, at, work, nch, s1_group, l, kind, lo, hi):
    """Sum the nch chunks' gradients of elements lo..hi of layer l's weights (kind 0) or bias
    (kind 1) into chunk 0's, in chunk order, then the optimizer step on them (weight decay on
    the weights when ``decay``)."""
    like = work.x
    grads = work.weight_grads if kind == 0 else work.bias_grads
    g = grads[0, at[1 + kind, l]:at[1 + kind, l + 1]]
    for c in range(1, nch):
        gc = grads[c, at[1 + kind, l]:at[1 + kind, l + 1]]
        for i in range(lo, hi):
            g[i] += gc[i]
    params = FlatParams(_flat(addresses, kind, 0, l, shapes, like),
                        _flat(addresses, kind, 1, l, shapes, like),
                        _flat(addresses, kind, s1_group, l, shapes, like))
    step_range(step, decay and kind == 0, params, g, np.uint64(lo), np.uint64(hi - lo))


@compiled(**JIT_PARALLEL)
def update_chunks(step, decay, addresses, shapes, at, work, nch, s1_group, items):
    """_step_item on every work item (layer, kind, lo, hi) of ``items``, in parallel."""
    for q in prange(items.shape[0]):
        _step_item(step, decay, addresses, shapes, at, work, nch, s1_group, items[q, 0],
                   items[q, 1], items[q, 2], items[q, 3])


@compiled(**JIT_INLINE)
def _update_items(shapes):
    """int64 (items, 4): (layer, kind, lo, hi), every layer's weights (kind 0) in pieces of at
    most UPDATE_PIECE elements, and its bias (kind 1)."""
    L = shapes.shape[0]
    count = 0
    for l in range(L):
        count += (shapes[l, 0] * shapes[l, 1] + UPDATE_PIECE - 1) // UPDATE_PIECE + 1
    items = np.empty((count, 4), np.int64)
    q = 0
    for l in range(L):
        size = shapes[l, 0] * shapes[l, 1]
        for lo in range(0, size, UPDATE_PIECE):
            items[q, 0], items[q, 1], items[q, 2], items[q, 3] = l, 0, lo, min(lo + UPDATE_PIECE,
                                                                               size)
            q += 1
        items[q, 0], items[q, 1], items[q, 2], items[q, 3] = l, 1, 0, shapes[l, 1]
        q += 1
    return items


@compiled(**JIT_INLINE)
def step_chunks(chunks, m):
    """Row chunks of a step of m rows when at most ``chunks`` are allowed: one per
    MIN_CHUNK_ROWS rows, at least one."""
    return max(1, min(chunks, m // MIN_CHUNK_ROWS))


@compiled(**JIT_INLINE)
def _chunk_rows(m, nch_max):
    """Rows of the largest chunk of a step of m rows (split as blas_epoch splits it)."""
    nch = step_chunks(nch_max, m)
    return (m + nch - 1) // nch


@compiled(**JIT)
def blas_epoch(data, hyper, addresses, shapes, t, stats, extras, chunks, train_chunk_fn, gemm):
    """One epoch (see the module docstring), arguments as epoch.fused_epoch takes them: data an
    EpochData of dense X (data.sparse False), hyper the Hyperparameters, addresses int64
    (2, groups * L) of the caller's weights and biases then each optimizer state's (SGD: the
    velocities; Adam: m, then v), shapes int64 (L, 2) the weights' (n_in, n_out), t the Adam step
    count before the epoch, stats float64 (2,) to which (loss sum, correct rows) are added, extras
    None or an epoch.Extras; chunks: the most row chunks of a step
    (BLAS must run single-threaded when it is over 1); train_chunk_fn: :func:`train_chunk` by
    address (callees.blas_epoch_callee), so that it compiles once; gemm: NumPy's BLAS product
    (numpy_blas.find_gemm) or None (numba's np.dot). Returns the new Adam step count."""
    like = data.lut  # an array of the compute dtype
    dtype = like.dtype
    L = shapes.shape[0]
    rows = hyper.batch_size
    order = data.order
    n = order.shape[0]
    d = shapes[0, 0]
    nch_max = step_chunks(chunks, rows)
    # the largest chunk of any step: a full one, or a short last one in fewer chunks
    rows_max = _chunk_rows(rows, nch_max)
    if n % rows:
        rows_max = max(rows_max, _chunk_rows(n % rows, nch_max))
    at = np.zeros((3, L + 1), np.int64)
    for l in range(L):
        at[0, l + 1] = at[0, l] + rows_max * shapes[l, 1]
        at[1, l + 1] = at[1, l] + shapes[l, 0] * shapes[l, 1]
        at[2, l + 1] = at[2, l] + shapes[l, 1]
    work = BlasWork(np.empty((nch_max, rows_max * d), dtype), np.empty((nch_max, at[0, L]), dtype),
                    np.empty((nch_max, at[0, L]), dtype), np.zeros((nch_max, at[1, L]), dtype),
                    np.zeros((nch_max, at[2, L]), dtype))
    results = np.zeros((nch_max, 2), np.float64)
    items = _update_items(shapes)
    solver = hyper.solver
    s1_group = 2 if solver == 1 else 1  # SGD has one state array per parameter
    zero = np.int64(0)
    one = np.int64(1)
    s = np.int64(0)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        weight_sum, step_lr = weight_sum_and_rate(hyper, extras, order, start, m, s)
        scale = cast_like(like, 1.0 / weight_sum)
        nch = step_chunks(nch_max, m)
        if nch > 1:
            train_chunks(train_chunk_fn, data, hyper, addresses, shapes, at, work, start, m, nch,
                         scale, extras, results, gemm)
        else:
            train_chunk_fn(data, hyper, addresses, shapes, at, work, zero, start, m, scale, extras,
                           results, gemm)
        add_step_stats(results, nch, stats, extras, m, weight_sum)
        step, t = optimizer_step(hyper, t, step_lr, weight_sum, like)
        use_wd = hyper.alpha / weight_sum != 0.0
        if nch > 1:
            update_chunks(step, use_wd, addresses, shapes, at, work, nch, s1_group, items)
        else:
            for q in range(items.shape[0]):
                _step_item(step, use_wd, addresses, shapes, at, work, one, s1_group,
                           items[q, 0], items[q, 1], items[q, 2], items[q, 3])
        s += 1
    return t
