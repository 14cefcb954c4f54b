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

A step of enough rows runs in two parallel phases on numba's threads, each thread calling BLAS
on one thread (the backend limits BLAS to one thread during such an epoch, so no BLAS thread pool
waits on another): first the step's rows in row chunks (gather, forward, loss, the deltas of every
layer), then its parameters in parts, each part a range of rows of every layer's weights and of
columns of its biases: their gradients, then the optimizer step on them. A layer's weight gradient
is formed one of two ways (:func:`plan_step`): where the layer has more inputs than the step has
rows, a part forms its rows of the gradient in one GEMM over all the step's rows (no chunk writes a
gradient of its own to be summed); else each chunk forms the whole gradient of its rows in phase
one and a part sums the chunks' gradients over its range (no part packs all the step's deltas
again). With plain SGD (no momentum) and a CBLAS gemm the first way forms no gradient at all: the
GEMM adds -lr times it to the weights' rows (beta 1 - lr * weight_decay), which saves the passes
that write, zero and read it back. Where the caller asks (few rows a chunk, many inputs a part:
the backend's rule), the parts also form the next step's first-layer product, each its range of
the inputs times the rows of the weights it has just updated, and the chunks sum the parts: a
chunk's GEMM of few rows would pack all the weights again. The split is the caller's ``chunks``
(the backend passes its thread count), so results are bitwise reproducible for a given thread
count. Where the caller asks (``whole_rows``: the backend's rule, for MKL on wide layers, whose
threaded products of a whole step beat its single-threaded ones of few rows), a step's rows run
in one chunk instead, every GEMM on BLAS's threads (the parts' weight gradients too, in one GEMM
a layer), and only the optimizer step (:func:`update_whole`) and the passes between the GEMMs
(StepPlan.pass_parts) in parts on numba's threads. A first layer whose gradient is formed by
parts leaves out of that GEMM the input columns that are zero in every row of the step (MNIST's
border pixels), where that pays (:func:`_nonzero_inputs`).

It computes what the composed epoch computes, up to the summation order inside BLAS: every
output kind, label smoothing, sample weights, a step size per step, dropout of hidden layers
(ReLU and identity, as the fused epoch: the stored activations are the dropped ones) and shifted
images (``epoch.Extras``). Parameters and optimizer state are the caller's arrays, read and
written in place through their addresses (no copies).

The GEMMs go through :func:`.cblas.matmul`: a CBLAS gemm found by address (MKL's where its wheel is
installed, else NumPy's BLAS: both faster than SciPy's on some machines), else numba's ``np.dot``
(SciPy's BLAS; a part's weight gradient then copies its columns of the layer input first).

Assumes: C-contiguous parameters and optimizer state of one float dtype that the caller keeps
alive during the call; with one chunk the BLAS thread pool does the parallel work (a step's
parts, if several, call no BLAS), with more chunks it must run single-threaded.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .contract import (act_grad_parallel, act_grad_rows, bias_act_parallel, bias_act_rows,
                       col_sum_cols, col_sum_parallel)
from .jit import (JIT, JIT_INLINE, JIT_PARALLEL, IDENTITY, cast_like, chunk_bounds, compiled,
                  input_value, numba, prange)
from .noise import drop_units, shifted_row
from .cblas import gemm_into, matmul
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


@compiled(**JIT_INLINE)
def _input_rows(work, at, l, lo, m, n_in):
    """Rows lo..lo + m of layer l's input in a step's buffers (see BlasWork, StepPlan.at), an
    (m, n_in) C array: the gathered rows for the first layer, layer l - 1's activations after."""
    if l == 0:
        return _rows_of(work.x, lo * n_in, m, n_in)
    return _rows_of(work.acts, at[0, l - 1] + lo * n_in, m, n_in)


#: A step's buffers, C arrays of the compute dtype; x, acts and deltas (1-D) hold the step's rows
#: in order, a chunk filling its own rows: x the gathered rows (m, d), acts and deltas each layer's
#: activations and their gradients (layer l's (m, n_out) at at[0, l]); weight_grads and bias_grads
#: (2-D) the gradients, layer l at at[1, l] and at[2, l] of a row: row c chunk c's (the bias
#: gradients of every layer, the weight gradients of the layers formed by chunks), row 0 also the
#: step's once summed; first_parts (2-D) row p part p's share of the first layer's product, an
#: (m, n_out) C array at its start (StepPlan.first_by_parts; else no rows). Where the first
#: layer's weight gradient is formed by parts, for its rows r0..r1 (_nonzero_inputs): x_compact
#: (1-D) at r0 * m the columns r0..r1 of x that are not all zero, an (m, k) C array; first_rows,
#: int64 (2, d): [0, j] the row of the layer's gradient that holds weight row j's gradient (-1:
#: zero), [1, r0 + c] the column of x that compact column c is; zero_row (1-D) n_out zeros.
BlasWork = namedtuple("BlasWork", ["x", "acts", "deltas", "weight_grads", "bias_grads",
                                   "first_parts", "x_compact", "first_rows", "zero_row"])

#: An epoch's plan of its steps: at, int64 (3, L + 1), the offsets in BlasWork's buffers;
#: by_chunks, bool (L,), whether layer l's weight gradient is formed by chunks (else by parts;
#: see the module docstring); s1_group, the optimizer state group a step reads as the second
#: state (Adam's second moment; SGD's one state group again); first_by_parts, whether the parts
#: form the first layer's product (first_layer_part), the chunks only summing it; pass_parts,
#: int64, the parts a chunk's passes between its GEMMs (gather, bias and activation, their
#: derivative, the bias gradients) run in, in parallel: over 1 only where a step runs whole
#: (whole_rows), whose one chunk would otherwise run them on one thread, the others waiting.
StepPlan = namedtuple("StepPlan", ["at", "by_chunks", "s1_group", "first_by_parts",
                                   "pass_parts"])

#: Rows a chunk has at least unless the caller says fewer (blas_epoch's chunk_rows): a step of m
#: rows runs in min(chunks, m // chunk_rows) chunks. 4, so that steps from 8 rows on may split
#: (which do: NumbaBackend.blas_split); 16 rows made a step of 8-31 rows run in one chunk, its
#: optimizer step on one thread, the parts' work unshared (1000-256-128-5, float32 Adam at 8
#: rows: split / one chunk 0.56 on 2 cores).
MIN_CHUNK_ROWS = 4
#: Parameters a part sums over the chunks and steps at a time (while they are in cache).
SUM_PIECE = 16384
#: The first layer's weight gradient skips the columns of its input that are zero in every row of
#: a step (MNIST's border pixels: 30% of the columns of 200 rows) where the float64 multiply-adds
#: that saves are at least this many times the values it copies to compact the others (twice as
#: many float32 ones, which cost half). Measured on 2 cores: the scan and copy 0.8 ns a copied
#: value, MKL's product 0.01 ns a multiply-add; 784-1024-1024-10 at 200 rows skips 457 a copied
#: value and gains 4%, 784-(256 x 6)-10 skips 114 and gained nothing.
COMPACT_MACS_PER_COPY = 128


@compiled(**JIT_INLINE)
def _gather_columns(data, start, x, j0, j1):
    """Columns j0..j1 of x (m, d): those of the rows data.order[start:start + m] of data.X, as
    the compute dtype (jit.input_value)."""
    X, lut, sc = data.X, data.lut, data.x_scale
    for i in range(x.shape[0]):
        r = data.order[start + i]
        for j in range(j0, j1):
            x[i, j] = input_value(X[r, j], lut, sc)


@compiled(**JIT_INLINE)
def _sum_first_parts(work, z, lo):
    """z (m, n_out) = the sum over the parts of rows lo..lo + m of their first-layer products
    (work.first_parts, see first_layer_part), in part order."""
    m, n_out = z.shape
    nparts = work.first_parts.shape[0]
    for i in range(m):
        for j in range(n_out):
            total = work.first_parts[0, (lo + i) * n_out + j]
            for p in range(1, nparts):
                total += work.first_parts[p, (lo + i) * n_out + j]
            z[i, j] = total


@compiled(**JIT_PARALLEL)
def _gather_parts(data, start, x, nparts):
    """_gather_columns of every column of x (m, d), in nparts ranges of columns in parallel."""
    for p in prange(nparts):
        j0, j1 = chunk_bounds(x.shape[1], nparts, p)
        _gather_columns(data, start, x, j0, j1)


@compiled(**JIT_INLINE)
def _gather_rows(plan, data, start, x):
    """x (m, d) = the rows data.order[start:start + m] of data.X (_gather_columns), in
    plan.pass_parts parts."""
    if plan.pass_parts > 1:
        _gather_parts(data, start, x, plan.pass_parts)
    else:
        _gather_columns(data, start, x, 0, x.shape[1])


@compiled(**JIT_INLINE)
def _bias_act(plan, z, b, act):
    """contract.bias_act_rows on every row of z, in plan.pass_parts parts."""
    if plan.pass_parts > 1:
        bias_act_parallel(z, b, act, plan.pass_parts)
    else:
        bias_act_rows(z, b, act, 0, z.shape[0])


@compiled(**JIT_INLINE)
def _act_grad(plan, da, a, act):
    """contract.act_grad_rows on every row of da, in plan.pass_parts parts."""
    if plan.pass_parts > 1:
        act_grad_parallel(da, a, act, plan.pass_parts)
    else:
        act_grad_rows(da, a, act, 0, da.shape[0])


@compiled(**JIT_INLINE)
def _col_sum(plan, dz, out):
    """contract.col_sum_cols of every column of dz, in plan.pass_parts parts."""
    if plan.pass_parts > 1:
        col_sum_parallel(dz, out, plan.pass_parts)
    else:
        col_sum_cols(dz, out, 0, dz.shape[1])


@compiled(**JIT)
def first_layer_part(data, addresses, shapes, work, start, m, p, nparts, gemm):
    """Part p of nparts of the first layer's product of a step of m rows (data.order[start:]):
    its range of the inputs (chunk_bounds of d, as update_part's rows of the weights) of those
    rows gathered into work.x, times the same range of rows of the weights, into
    work.first_parts[p] as an (m, n_out) C array. Each chunk's GEMM would pack all the weights;
    a part packs its own rows once, right after its update of them (update_parts)."""
    like = data.lut
    d, n_out = shapes[0, 0], shapes[0, 1]
    r0, r1 = chunk_bounds(d, nparts, p)
    x = _rows_of(work.x, 0, m, d)
    _gather_columns(data, start, x, r0, r1)
    out = _rows_of(work.first_parts[p], 0, m, n_out)
    w = _matrix(addresses, 0, 0, shapes, like)[r0:r1]
    if gemm is None:  # numba's np.dot wants the range of columns as a C array
        matmul(gemm, np.ascontiguousarray(x[:, r0:r1]), w, out, False, False)
    else:  # (not matmul: numba would type its np.dot branch on the range too)
        gemm_into(gemm, x[:, r0:r1], w, out, False, False, cast_like(like, 1.0),
                  cast_like(like, 0.0))


@compiled(**JIT)
def train_chunk(data, hyper, addresses, shapes, plan, work, c, start, lo, m, scale, extras,
                results, gemm):
    """Forward, loss and back-propagation of the m rows data.order[start:start + m], rows
    lo..lo + m of the step's buffers (see BlasWork and StepPlan): the deltas of every layer, each
    output gradient row scaled by ``scale`` (times its sample weight with extras); the rows' bias
    gradients into work.bias_grads[c], and their weight gradients into work.weight_grads[c] for
    the layers formed by chunks; loss sum and correct rows added to results[c]. extras: None (a
    classifier's plain rows: numba prunes the rest before typing) or an epoch.Extras (weights,
    smoothing, dropout, shifts). gemm: a CBLAS product (cblas.find_gemm's) or None, as
    cblas.matmul takes it."""
    like = data.lut  # an array of the compute dtype
    at = plan.at
    L = shapes.shape[0]
    order = data.order
    X, lut, sc = data.X, data.lut, data.x_scale
    d = shapes[0, 0]
    k = shapes[L - 1, 1]
    acts, deltas = work.acts, work.deltas
    x = _rows_of(work.x, lo * d, m, d)
    if plan.first_by_parts:  # the parts formed the first layer's product: sum their rows
        _sum_first_parts(work, _rows_of(acts, lo * shapes[0, 1], m, shapes[0, 1]), lo)
    else:
        shifted = False
        if extras is not None:  # (a bare test, which numba prunes when extras is None)
            if extras.shift > 0:
                shifted = True
                for i in range(m):
                    shifted_row(X, order[start + i], extras, extras.row0 + start + i, work.x,
                                (lo + i) * d, lut, sc)
        if not shifted:
            _gather_rows(plan, data, start, x)
    a = x
    for l in range(L):
        at_l = at[0, l] + lo * shapes[l, 1]
        z = _rows_of(acts, at_l, m, shapes[l, 1])
        if l > 0 or not plan.first_by_parts:
            matmul(gemm, a, _matrix(addresses, 0, l, shapes, like), z, False, False)
        _bias_act(plan, z, _flat(addresses, 1, 0, l, shapes, like),
                  hyper.activation if l < L - 1 else IDENTITY)
        if extras is not None:
            if l < L - 1:  # dropout of this layer's output, the next layer's input
                drop_units(extras, l + 1, acts, at_l, shapes[l, 1], shapes[l, 1],
                           extras.row0 + start, m)
        a = z
    # the loss, and the logits' gradient into the last layer's deltas
    at_top = at[0, L - 1] + lo * k
    logits = acts[at_top:at_top + m * k]
    dlogits = deltas[at_top:at_top + m * k]
    total = 0.0
    hits = 0
    for i in range(m):
        r = order[start + i]
        loss_i, ok = row_loss(hyper.loss_kind, data, r, logits, i * k, k, dlogits, i * k, scale,
                              extras, hyper.label_smoothing)
        total += loss_i
        hits += ok
    results[c, 0] += total
    results[c, 1] += hits
    for l in range(L - 1, -1, -1):
        dz = _rows_of(deltas, at[0, l] + lo * shapes[l, 1], m, shapes[l, 1])
        at_prev = at[0, l - 1] + lo * shapes[l, 0] if l > 0 else 0
        a_prev = _input_rows(work, at, l, lo, m, shapes[l, 0])
        if plan.by_chunks[l]:
            matmul(gemm, a_prev, dz, work.weight_grads[c, at[1, l]:at[1, l + 1]].reshape(
                (shapes[l, 0], shapes[l, 1])), True, False)
        _col_sum(plan, dz, work.bias_grads[c, at[2, l]:at[2, l + 1]])
        if l > 0:
            d_prev = _rows_of(deltas, at_prev, m, shapes[l, 0])
            matmul(gemm, dz, _matrix(addresses, 0, l, shapes, like), d_prev, False, True)
            if hyper.activation != IDENTITY:
                _act_grad(plan, d_prev, a_prev, hyper.activation)
            if extras is not None:  # the deltas through layer input l's dropout
                drop_units(extras, l, deltas, at_prev, shapes[l, 0], shapes[l, 0],
                           extras.row0 + start, m)


@compiled(**JIT_PARALLEL)
def train_chunks(train_chunk_fn, data, hyper, addresses, shapes, plan, work, start, m, nch,
                 scale, extras, results, gemm):
    """train_chunk (as ``train_chunk_fn``, see blas_epoch) on a split of the step's m rows
    (from data.order[start]) into nch chunks, in parallel."""
    for c in prange(nch):
        lo, hi = chunk_bounds(m, nch, c)
        train_chunk_fn(data, hyper, addresses, shapes, plan, work, np.int64(c), start + lo, lo,
                       hi - lo, scale, extras, results, gemm)


@compiled(**JIT_INLINE)
def _sum_chunks(grads, at, lo, hi, nch):
    """grads[0, at + lo:at + hi] += the same elements of rows 1..nch - 1, in row order."""
    for c in range(1, nch):
        for i in range(at + lo, at + hi):
            grads[0, i] += grads[c, i]


@compiled(**JIT_INLINE)
def _layer_params(addresses, kind, shapes, plan, l, like):
    """FlatParams of layer l's weights (kind 0) or bias (kind 1) and their optimizer state."""
    return FlatParams(_flat(addresses, kind, 0, l, shapes, like),
                      _flat(addresses, kind, 1, l, shapes, like),
                      _flat(addresses, kind, plan.s1_group, l, shapes, like))


@compiled(**JIT_INLINE)
def _steps_in_gemm(step, gemm):
    """Whether the GEMM that forms a weight gradient by parts also steps the weights: plain SGD
    (no momentum) with a CBLAS ``gemm``."""
    return gemm is not None and step.solver == 0 and not step.use_momentum


@compiled(**JIT_INLINE)
def _nonzero_inputs(work, x, r0, r1, n_out):
    """(a, k): the input of rows r0..r1 of the first layer's weight gradient, a (m, k) array: the
    columns r0..r1 of x (m, d) but those that are zero in every row (their rows of the gradient
    are zero), copied into work.x_compact, where COMPACT_MACS_PER_COPY says that pays; else
    x[:, r0:r1] itself. work.first_rows[0, r0:r1] maps each weight row to its gradient's row
    (row r0 + c for compact column c; -1 for a zero column)."""
    m = x.shape[0]
    rows = work.first_rows
    k = 0
    for j in range(r0, r1):
        rows[0, j] = -1
        for i in range(m):  # a column of dense data ends at its first row
            if x[i, j] != 0:
                rows[0, j] = r0 + k
                rows[1, r0 + k] = j
                k += 1
                break
    if (r1 - r0 - k) * n_out * x.itemsize < COMPACT_MACS_PER_COPY * 8 * k:
        for j in range(r0, r1):
            rows[0, j] = j
        return x[:, r0:r1], r1 - r0
    compact = _rows_of(work.x_compact, r0 * m, m, k)
    for i in range(m):
        for c in range(k):
            compact[i, c] = x[i, rows[1, r0 + c]]
    return compact[:, 0:k], k


@compiled(**JIT_INLINE)
def _weight_rows_by_gemm(step, decay, addresses, shapes, plan, work, m, l, r0, r1, gemm):
    """Rows r0..r1 of layer l's weight gradient (a layer formed by parts) by one GEMM over the
    step's m rows, into work.weight_grads[0] (the first layer's rows of nonzero inputs only,
    _nonzero_inputs); where _steps_in_gemm, instead the step on those rows of the weights, in
    the GEMM."""
    like = work.x
    n_in, n_out = shapes[l, 0], shapes[l, 1]
    inputs = _input_rows(work, plan.at, l, 0, m, n_in)
    dz = _rows_of(work.deltas, plan.at[0, l], m, n_out)
    if gemm is not None:  # (a bare test, which numba prunes for np.dot before typing)
        if _steps_in_gemm(step, gemm):
            # plain SGD: w = (1 - lr * weight_decay) * w - lr * gradient, in the GEMM
            keep = cast_like(like, 1.0)
            if decay:
                keep -= step.learning_rate * step.weight_decay
            gemm_into(gemm, inputs[:, r0:r1], dz, _matrix(addresses, 0, l, shapes, like)[r0:r1],
                      True, False, -step.learning_rate, keep)
            return
    if l == 0:
        a_prev, k = _nonzero_inputs(work, inputs, r0, r1, n_out)
    else:
        a_prev, k = inputs[:, r0:r1], r1 - r0
    g = work.weight_grads[0, plan.at[1, l]:plan.at[1, l + 1]]
    if k > 0:
        matmul(gemm, a_prev, dz, g[r0 * n_out:(r0 + k) * n_out].reshape((k, n_out)), True, False)


@compiled(**JIT_INLINE)
def _step_first_rows(step, decay, work, params, g, n_out, r0, r1):
    """The optimizer step on rows r0..r1 of the first layer's weights (params), weight row j's
    gradient at row work.first_rows[0, j] of g, zero where that is -1 (_nonzero_inputs): a run
    of rows whose gradient rows follow one another at a time."""
    rows = work.first_rows
    j = r0
    while j < r1:
        row = rows[0, j]
        end = j + 1
        if row < 0:
            grad = work.zero_row
        else:
            while end < r1 and rows[0, end] == row + end - j:
                end += 1
            grad = g[row * n_out:(row + end - j) * n_out]
        lo, hi = j * n_out, end * n_out
        step_range(step, decay, FlatParams(params.w[lo:hi], params.s0[lo:hi], params.s1[lo:hi]),
                   grad, np.uint64(0), np.uint64(hi - lo))
        j = end


@compiled(**JIT_INLINE)
def _step_weight_rows(step, decay, addresses, shapes, plan, work, l, r0, r1, nch):
    """The optimizer step on rows r0..r1 of layer l's weights, their gradient in
    work.weight_grads[0] (first summed over the step's nch chunks where the chunks formed it),
    a piece at a time; the first layer's, where parts formed it, as _step_first_rows."""
    n_out = shapes[l, 1]
    at_g = plan.at[1, l]
    g = work.weight_grads[0, at_g:plan.at[1, l + 1]]
    params = _layer_params(addresses, 0, shapes, plan, l, work.x)
    if l == 0 and not plan.by_chunks[0]:
        _step_first_rows(step, decay, work, params, g, n_out, r0, r1)
        return
    for lo in range(r0 * n_out, r1 * n_out, SUM_PIECE):
        hi = min(lo + SUM_PIECE, r1 * n_out)
        if plan.by_chunks[l]:
            _sum_chunks(work.weight_grads, at_g, lo, hi, nch)
        step_range(step, decay, params, g, np.uint64(lo), np.uint64(hi - lo))


@compiled(**JIT_INLINE)
def _step_bias_part(step, addresses, shapes, plan, work, l, nch, p, nparts):
    """Part p of nparts of layer l's bias: its columns' gradient summed over the nch chunks,
    then the optimizer step on them (no weight decay)."""
    c0, c1 = chunk_bounds(shapes[l, 1], nparts, p)
    if c1 > c0:
        _sum_chunks(work.bias_grads, plan.at[2, l], c0, c1, nch)
        gb = work.bias_grads[0, plan.at[2, l]:plan.at[2, l + 1]]
        step_range(step, False, _layer_params(addresses, 1, shapes, plan, l, work.x), gb,
                   np.uint64(c0), np.uint64(c1 - c0))


@compiled(**JIT)
def update_part(step, decay, addresses, shapes, plan, work, m, nch, p, nparts, gemm):
    """Part p of nparts of the gradients and optimizer step of a step of m rows in nch chunks,
    after its chunks' train_chunk: per layer, rows r0..r1 (chunk_bounds of its n_in) of the
    weight gradient, by one GEMM over the step's rows or as the sum of the chunks' gradients
    (plan.by_chunks), and columns c0..c1 (of its n_out) of the bias gradient, the sum of the
    chunks'; then the optimizer step on those weights (weight decay when ``decay``) and biases.
    Plain SGD with ``gemm``: a layer formed by parts steps its weights' rows in that GEMM."""
    in_gemm = _steps_in_gemm(step, gemm)
    for l in range(shapes.shape[0]):
        r0, r1 = chunk_bounds(shapes[l, 0], nparts, p)
        if not plan.by_chunks[l] and r1 > r0:
            _weight_rows_by_gemm(step, decay, addresses, shapes, plan, work, m, l, r0, r1, gemm)
        if plan.by_chunks[l] or not in_gemm:
            _step_weight_rows(step, decay, addresses, shapes, plan, work, l, r0, r1, nch)
        _step_bias_part(step, addresses, shapes, plan, work, l, nch, p, nparts)


@compiled(**JIT_PARALLEL)
def _step_parts(step, decay, addresses, shapes, plan, work, in_gemm, nparts):
    """The optimizer step of a step run in one chunk, on nparts parts in parallel: each its
    rows of every layer's weights (but those of layers formed by parts where ``in_gemm``: their
    GEMM stepped them) and its columns of every bias."""
    for p in prange(nparts):
        for l in range(shapes.shape[0]):
            if plan.by_chunks[l] or not in_gemm:
                r0, r1 = chunk_bounds(shapes[l, 0], nparts, np.int64(p))
                _step_weight_rows(step, decay, addresses, shapes, plan, work, l, r0, r1, 1)
            _step_bias_part(step, addresses, shapes, plan, work, l, 1, np.int64(p), nparts)


@compiled(**JIT)
def update_whole(step, decay, addresses, shapes, plan, work, m, nparts, gemm):
    """The gradients and optimizer step of a step of m rows run in one chunk (whole_rows, see
    blas_epoch): each weight gradient formed by parts in one GEMM on BLAS's threads (plain SGD:
    the step in it, _steps_in_gemm), then the optimizer on nparts parts in parallel
    (_step_parts)."""
    for l in range(shapes.shape[0]):
        if not plan.by_chunks[l]:
            _weight_rows_by_gemm(step, decay, addresses, shapes, plan, work, m, l, 0,
                                 shapes[l, 0], gemm)
    _step_parts(step, decay, addresses, shapes, plan, work, _steps_in_gemm(step, gemm), nparts)


@compiled(**JIT_PARALLEL)
def update_parts(step, decay, addresses, shapes, plan, work, m, nch, nparts, gemm, data,
                 ahead, first_part_fn):
    """update_part on every part of nparts, in parallel; then, with plan.first_by_parts and a
    next step (ahead: its (start, rows), rows 0 when there is none), each part's
    first_layer_part (as ``first_part_fn``) of that step, with the weights it has just
    updated."""
    for p in prange(nparts):
        update_part(step, decay, addresses, shapes, plan, work, m, nch, np.int64(p), nparts,
                    gemm)
        if plan.first_by_parts and ahead[1] > 0:
            first_part_fn(data, addresses, shapes, work, ahead[0], ahead[1], np.int64(p), nparts,
                          gemm)


@compiled(**JIT_INLINE)
def plan_step(shapes, rows, solver, first_by_parts, pass_parts):
    """The StepPlan of an epoch of steps of at most ``rows`` rows. A layer's weight gradient is
    formed by chunks where it has no more inputs than a step has rows: then the gradient is no
    larger than the step's deltas of the layer, which a part forming rows of the gradient would
    pack again (each part all of them), while a sum over the chunks reads the gradient once per
    chunk. first_by_parts, pass_parts: the caller's choice (see blas_epoch, StepPlan)."""
    L = shapes.shape[0]
    at = np.zeros((3, L + 1), np.int64)
    by_chunks = np.empty(L, np.bool_)
    for l in range(L):
        at[0, l + 1] = at[0, l] + rows * shapes[l, 1]
        at[1, l + 1] = at[1, l] + shapes[l, 0] * shapes[l, 1]
        at[2, l + 1] = at[2, l] + shapes[l, 1]
        by_chunks[l] = shapes[l, 0] <= rows
    return StepPlan(at, by_chunks, np.int64(2 if solver == 1 else 1), first_by_parts,
                    np.int64(pass_parts))


@compiled(**JIT_INLINE)
def step_chunks(chunks, m, chunk_rows):
    """Row chunks of a step of m rows when at most ``chunks`` are allowed: one per
    ``chunk_rows`` rows, at least one."""
    return max(1, min(chunks, m // chunk_rows))


@compiled(**JIT)
def blas_epoch(data, hyper, addresses, shapes, t, stats, extras, chunks, chunk_rows, whole_rows,
               train_chunk_fn, first_part_fn, gemm, first_by_parts):
    """One epoch (see the module docstring), arguments as epoch.fused_epoch takes them: data an
    EpochData of dense X (data.sparse False), hyper the Hyperparameters, addresses int64
    (2, groups * L) of the caller's weights and biases then each optimizer state's (SGD: the
    velocities; Adam: m, then v), shapes int64 (L, 2) the weights' (n_in, n_out), t the Adam step
    count before the epoch, stats float64 (2,) to which (loss sum, correct rows) are added, extras
    None or an epoch.Extras; chunks: the most row chunks of a step
    (BLAS must run single-threaded when it is over 1), each of at least ``chunk_rows`` rows
    (MIN_CHUNK_ROWS unless the backend says fewer); whole_rows: instead each step's rows run in
    one chunk, every GEMM on BLAS's threads, and only its optimizer step in that many parts
    (update_whole); train_chunk_fn: :func:`train_chunk` by
    address (callees.blas_epoch_callees), so that it compiles once, and first_part_fn
    :func:`first_layer_part` likewise; gemm: a CBLAS product
    (cblas.find_gemm) or None (numba's np.dot); first_by_parts: whether the parts form the
    first layer's products (first_layer_part) where a step runs in more than one chunk: not
    with shifted images, whose rows are gathered whole. Returns the new Adam step count."""
    like = data.lut  # an array of the compute dtype
    dtype = like.dtype
    L = shapes.shape[0]
    rows = hyper.batch_size
    order = data.order
    n = order.shape[0]
    d = shapes[0, 0]
    rows_max = min(rows, n)
    # as the backend counts them: it limits BLAS by them, unless whole_rows
    nparts = step_chunks(chunks, rows_max, chunk_rows)
    nch_max = 1 if whole_rows else nparts
    plan = plan_step(shapes, rows_max, hyper.solver, first_by_parts and nch_max > 1,
                     nparts if whole_rows else 1)
    at = plan.at
    work = BlasWork(np.empty(rows_max * d, dtype), np.empty(at[0, L], dtype),
                    np.empty(at[0, L], dtype), np.zeros((nch_max, at[1, L]), dtype),
                    np.zeros((nch_max, at[2, L]), dtype),
                    np.empty((nch_max if plan.first_by_parts else 0, rows_max * shapes[0, 1]),
                             dtype),
                    np.empty(0 if plan.by_chunks[0] else rows_max * d, dtype),
                    np.empty((2, d), np.int64), np.zeros(shapes[0, 1], dtype))
    results = np.zeros((nch_max, 2), np.float64)
    zero = np.int64(0)
    s = np.int64(0)
    if plan.first_by_parts:  # the first step's, one part after another: a parallel loop
        # for one step an epoch added 2-3 s of compiling; later steps' in update_parts
        for p in range(nch_max):
            first_part_fn(data, addresses, shapes, work, zero, rows_max, np.int64(p), nch_max,
                          gemm)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        weight_sum, step_lr = weight_sum_and_rate(hyper, extras, order, start, m, s)
        scale = cast_like(like, 1.0 / weight_sum)
        nch = step_chunks(nch_max, m, chunk_rows)
        if nch > 1:
            train_chunks(train_chunk_fn, data, hyper, addresses, shapes, plan, work, start, m,
                         nch, scale, extras, results, gemm)
        else:
            train_chunk_fn(data, hyper, addresses, shapes, plan, work, zero, start, zero, m,
                           scale, extras, results, gemm)
        add_step_stats(results, nch, stats, extras, m, weight_sum)
        step, t = optimizer_step(hyper, t, step_lr, weight_sum, like)
        use_wd = hyper.alpha / weight_sum != 0.0
        if whole_rows:
            update_whole(step, use_wd, addresses, shapes, plan, work, m, nparts, gemm)
        elif nch_max > 1:
            ahead = (start + rows, min(rows, max(n - start - rows, 0)))
            update_parts(step, use_wd, addresses, shapes, plan, work, m, nch, nch_max, gemm,
                         data, ahead, first_part_fn)
        else:
            update_part(step, use_wd, addresses, shapes, plan, work, m, nch, zero, np.int64(1),
                        gemm)
        s += 1
    return t
