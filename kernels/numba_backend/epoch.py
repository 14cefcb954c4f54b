"""The fused epoch: a whole epoch of mini-batch training in one compiled call.

:func:`fused_epoch` computes what the composed epoch (``fastfnn.kernels.composed``) computes, up
to rounding (summation order, FMA), for any depth, softmax or sigmoid outputs with labels or
indicators, SGD with or without (Nesterov's) momentum, Adam and L2 decay. It works on the padded
flat copies of :mod:`.layout`; each step runs its rows through the network in blocks (forward
layer by layer, the loss, backward layer by layer: :func:`train_rows`), then the optimizer once.

* Sparse inputs: the first layer visits only the nonzero inputs of a row, from the CSR copy of
  :mod:`.sparse_input`. Dense inputs are gathered block by block into the compute dtype.
* Plain SGD on sparse inputs with steps of at most ``lazy_max_rows`` rows updates only the
  first-layer rows the step's inputs touch; the other rows' zero-gradient steps (weight decay,
  momentum) are applied later in closed form (:mod:`.optimizer`), when a row is next read or at
  the end of the epoch. With one row per step no gradient is stored at all: each layer's rows
  step directly from their inputs and deltas. So do dense inputs one row per step (SGD and
  Adam): the step never writes a gradient as large as the weights only to read it back.
* Steps of at least 2 x ``rows_per_chunk`` rows split into up to ``max_chunks`` row chunks run in
  parallel, each with its own gradient; the split depends on the step's rows only, so results
  are bitwise reproducible whatever the thread count. With a wide sparse first layer, each chunk
  files its rows' nonzeros by input, and the optimizer step sums that layer's gradient by rows of
  W, in parallel over ranges of rows (no per-chunk copy of the largest gradient to reduce).

Scalars and buffers travel in named tuples: :data:`EpochData` (the inputs and targets),
:data:`Hyperparameters`, :data:`Tuning` (the backend's knobs), ``layout.Layout``,
``layout.ChunkWork``, :data:`StepShared`, ``optimizer.OptimizerStep`` and ``FlatParams``. Typed,
not literal, constants go to compiled callees, so that each compiles once per dtype and input
kind.

Assumes: the 64-byte vectors of :mod:`.vectors`; parameters and optimizer state in C-contiguous
arrays of one float dtype, which the caller keeps alive during the call (they are read and
written through their addresses, see ``layout.pack``); at most 65,536 inputs for uint16 CSR
indices (int32 beyond).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .blocks import (back_dense, bias_act_row, fwd_dense, fwd_rows, grad_col, grad_dense,
                     grad_sparse, grad_sparse_block)
from .jit import JIT, JIT_INLINE, JIT_PARALLEL, cast_like, chunk_bounds, compiled, input_value, prange
from .blocks import Inputs
from .layout import (BLOCK_ROWS, ChunkWork, buckets_of, chunk_of, column_sort_of, layer_of,
                     make_layout, pack, update_items)
from .fp_mode import enter_fp_mode, leave_fp_mode, read_fp_mode
from .noise import drop_units, shifted_row
from .optimizer import (CatchUp, FlatParams, catch_up_read_rows, catch_up_rows, step_and_clear,
                        step_dense_rows, step_read_rows, step_rows, sum_chunks_and_step,
                        zero_grad_powers)
from .steps import add_step_stats, optimizer_step, row_loss, weight_sum_and_rate
from .vectors import lanes, vadd, vld, vst

#: The epoch's inputs and targets. X: (n, d) uint8 or float C array; sparse: whether the first
#: layer reads the CSR copy of X (indptr int64 (n + 1,), indices uint16 or int32, values of X's
#: dtype; one-element dummies otherwise); lut, x_scale: how an input value becomes the compute
#: dtype (jit.input_value), also for dense X; labels: (n,) int64, indicators: (n, k) compute
#: dtype (one of them a dummy, see loss.output_loss); order: (n_epoch,) int64 rows of X in the
#: epoch's order. Flat, not nested: numba's parallel loops take no tuples within tuples.
EpochData = namedtuple("EpochData", ["X", "sparse", "indptr", "indices", "values", "lut",
                                     "x_scale", "labels", "indicators", "order"])


@compiled(**JIT_INLINE)
def _inputs_of(data):
    """The CSR copy of data's X, as blocks.Inputs."""
    return Inputs(data.indptr, data.indices, data.values, data.lut, data.x_scale)

#: What the job asks for, named as the estimator's parameters: activation (jit.ACT_CODES),
#: loss_kind (loss.output_loss), solver (0 SGD, 1 Adam), batch_size (rows per step, <= rows of
#: the epoch), and learning_rate, momentum, nesterovs_momentum, beta_1, beta_2, epsilon, alpha,
#: label_smoothing (float64 but the flag).
Hyperparameters = namedtuple("Hyperparameters", [
    "activation", "loss_kind", "solver", "batch_size", "learning_rate", "momentum",
    "nesterovs_momentum", "beta_1", "beta_2", "epsilon", "alpha", "label_smoothing"])

#: The backend's knobs (int64): max_chunks, rows_per_chunk (a step of m rows runs in
#: min(max_chunks, m // rows_per_chunk) parallel chunks), lazy_max_rows (lazy SGD up to this many
#: rows per step), parts (work items of a parallel update: the thread count),
#: block_grad_min_rows (blocks of at least this many rows sum a wide sparse first layer's
#: gradient column by column), adam_rows_min_part (per-example Adam on dense inputs steps a
#: layer's rows in up to ``parts`` parts in parallel, each of at least this many parameters).
Tuning = namedtuple("Tuning", ["max_chunks", "rows_per_chunk", "lazy_max_rows", "parts",
                               "block_grad_min_rows", "adam_rows_min_part"])

#: What an epoch asks beyond a classifier's plain steps (fused_epoch's ``extras``, None without):
#: row_weight (n,) compute dtype, each row of X's sample weight (ones without weights);
#: dropout (L,) float64, the rate of each layer input (0: none; index 0, the features, is 0
#: here) and dropout_base (L,) uint64 the noise stream of each; learning_rates (steps,) float64,
#: each step's size; shift (int64), the most pixels an image row moves per axis (0: none; dense
#: inputs only), shift_base (2,) uint64 the streams of its row and column shifts, image_width;
#: row0 (int64), the epoch position of the job's first row (its noise is that of those positions).
Extras = namedtuple("Extras", ["row_weight", "dropout", "dropout_base", "learning_rates", "shift",
                               "shift_base", "image_width", "row0"])

#: What a step's chunks share: results (chunks, 2) float64 (loss sum, correct rows per chunk);
#: first_deltas: a parallel step's first-layer deltas, row i of the step at i * P0 (one element
#: when the step does not sum that layer by rows of W); iota: an arange as long as the widest
#: layer input and a block; block_grad_min_rows as in Tuning; fp_mode (int64): the floating-point
#: mode of the thread that runs the epoch, which the chunks' threads take on (fp_mode.py).
StepShared = namedtuple("StepShared", ["results", "first_deltas", "iota", "block_grad_min_rows",
                                       "fp_mode"])


@compiled(**JIT_INLINE)
def _dense_input(layout, l, x_block, acts):
    """Layer l's dense input in train_rows as (array, offset of row 0, row stride): the gathered
    block for the first layer, else the previous layer's activations."""
    if l == 0:
        return x_block, np.int64(0), layout.n_in[0]
    return acts, layout.act_at[l - 1], layout.width[l - 1]


@compiled(**JIT)
def train_rows(data, layout, w, work, shared, start, r0, r1, scale, c, grads, extras):
    """Forward, loss and backward of rows r0..r1 of the step starting at ``start`` (rows
    data.order[start + r0 : start + r1]) with parameters w, in one chunk's buffers ``work``.
    Gradients accumulate in work.grad (laid out like w) when ``grads``; else the caller steps
    from the activations and deltas. Loss and correct rows add to shared.results[c]. Each row's
    output gradient is scaled by ``scale`` (1 / rows, or 1 / the step's weight sum with sample
    weights). extras: None (a classifier's plain rows, no label smoothing: numba prunes the rest
    before typing, so the common fit does not compile it), or an Extras: every output kind, label
    smoothing, each row's gradient and loss weighted by its weight, dropout of hidden layers
    (after the activation; the deltas through it take the same factors, exact for ReLU and
    identity, whose derivatives the dropped activations still give) and shifted dense image rows.

    With a sparse first layer and shared.first_deltas of more than one element (a parallel
    step), the rows' first-layer deltas are stored there instead of accumulating that layer's
    weight gradient, and the rows' nonzeros are filed by input j into buckets of cap =
    bucket_value.shape[0] // d entries: the k-th nonzero of input j goes to bucket_row[j*cap + k]
    (its row of the step) and bucket_value[j*cap + k] (its value), bucket_count[j] = k + 1 (rows
    ascending). A block of at least block_grad_min_rows rows sums a wide sparse first layer's
    gradient column by column (when the column-sort scratch has room: blocks.grad_sparse_block)."""
    V = lanes(w)
    L, P, woff, aoff = layout.n_layers, layout.width, layout.weight_at, layout.act_at
    g, a, dz, xb = work.grad, work.acts, work.deltas, work.x_block
    bcnt, bi, bx = work.bucket_count, work.bucket_row, work.bucket_value
    keep, res, iota = shared.first_deltas, shared.results, shared.iota
    X, sparse, order, inp = data.X, data.sparse, data.order, _inputs_of(data)
    ptr, ind, val, lut, sc = inp.indptr, inp.indices, inp.values, inp.lut, inp.x_scale
    d = layout.n_in[0]
    blocked = grads and work.col_start.shape[0] > 1  # fused_epoch sized the scratch for it
    by_rows = keep.shape[0] > 1
    cap = bx.shape[0] // d
    if by_rows:
        for j in range(d):
            bcnt[j] = 0
    for b0 in range(r0, r1, BLOCK_ROWS):
        bs = min(BLOCK_ROWS, r1 - b0)
        if not sparse:
            for i in range(bs):
                r = order[start + b0 + i]
                if extras is not None:
                    if extras.shift > 0:
                        shifted_row(X, r, extras, extras.row0 + start + b0 + i, xb, i * d,
                                     lut, sc)
                        continue
                for k in range(d):
                    xb[i * d + k] = input_value(X[r, k], lut, sc)
        for l in range(L):
            layer = layer_of(layout, l)
            if l == 0 and sparse:
                Pl = layer.width
                for i in range(bs):
                    oo = layer.act_at + i * Pl
                    r = order[start + b0 + i]
                    fwd_rows(inp, ptr[r], ptr[r + 1], 0, w, layer.weight_at, Pl, a, oo)
                    bias_act_row(a, oo, w, layer.bias_at, Pl, layer.n_out, layer.activation)
            else:
                src, so, sp = _dense_input(layout, l, xb, a)
                fwd_dense(layer, src, so, sp, w, a, bs, iota, lut)
            if extras is not None:
                if l < L - 1:  # dropout of this layer's output, the next layer's input
                    drop_units(extras, l + 1, a, layer.act_at, layer.width, layer.n_out,
                          extras.row0 + start + b0, bs)
        Pl = P[L - 1]
        ao = aoff[L - 1]
        total = 0.0
        hits = 0
        for i in range(bs):
            r = order[start + b0 + i]
            lo, ok = row_loss(layout.loss_kind, data, r, a, ao + i * Pl, layout.n_out[L - 1],
                              dz, ao + i * Pl, scale, extras, layout.label_smoothing)
            total += lo
            hits += ok
        res[c, 0] += total
        res[c, 1] += hits
        for l in range(L - 1, -1, -1):
            Pl = P[l]
            do = aoff[l]
            gbo = layout.bias_at[l]
            if grads:
                for i in range(bs):
                    for c0 in range(0, Pl, V):
                        vst(g, gbo + c0, vadd(vld(g, gbo + c0), vld(dz, do + i * Pl + c0)))
            if grads and (l > 0 or not sparse):
                src, so, sp = _dense_input(layout, l, xb, a)
                grad_dense(layer_of(layout, l), src, so, sp, dz, bs, g, iota)
            if l > 0:
                below = layer_of(layout, l - 1)
                back_dense(layer_of(layout, l), below, w, dz, a, bs)
                if extras is not None:  # the deltas through layer input l's dropout
                    drop_units(extras, l, dz, below.act_at, below.width, below.n_out,
                          extras.row0 + start + b0, bs)
            elif not (grads and sparse):
                pass  # dense inputs: done above; no grads: the caller steps from dz
            elif by_rows:  # parallel step: layer 0 is done later, by rows of W0
                for i in range(bs):
                    for c0 in range(0, Pl, V):
                        vst(keep, (b0 + i) * Pl + c0, vld(dz, do + i * Pl + c0))
                    r = order[start + b0 + i]
                    for p in range(ptr[r], ptr[r + 1]):
                        j = np.int64(ind[p])
                        k = bcnt[j]
                        bi[j * cap + k] = b0 + i
                        bx[j * cap + k] = input_value(val[p], lut, sc)
                        bcnt[j] = k + 1
            elif blocked and bs >= shared.block_grad_min_rows:
                grad_sparse_block(inp, order, start + b0, bs, dz, do, Pl, g, woff[0],
                                  column_sort_of(work))
            else:
                for i in range(bs):
                    r = order[start + b0 + i]
                    grad_sparse(inp, ptr[r], ptr[r + 1], dz, do + i * Pl, Pl, g, woff[0])


@compiled(**JIT_PARALLEL)
def train_rows_parallel(train_rows_fn, data, layout, w, work, shared, start, m, scale, nchunks,
                        extras):
    """train_rows (as ``train_rows_fn``, see fused_epoch) over a fixed split of the step's m rows
    into nchunks chunks, chunk c in its own buffers chunk_of(work, c) (so the summation order
    never depends on the thread count), in the floating-point mode shared.fp_mode. Both
    train_rows calls (here and in fused_epoch) pass the same non-literal types: one
    compilation."""
    for c in prange(nchunks):
        own = enter_fp_mode(shared.fp_mode)
        lo, hi = chunk_bounds(m, nchunks, c)
        train_rows_fn(data, layout, w, chunk_of(work, c), shared, start, lo, hi, scale,
                      np.int64(c), bool(True), extras)
        leave_fp_mode(own)


@compiled(**JIT_PARALLEL)
def parallel_update(step, decay, params, grads, buckets, first_deltas, P0, d, nparts, items,
                    nch, fp_mode):
    """The optimizer step of a parallel step of nch chunks, whose gradients are grads[c]
    (layout.Buckets: every chunk's buckets, first_deltas: see StepShared; P0: the first layer's
    width). Work items 0..nparts-1 each own a
    range of first-layer rows j < d: they sum x_ij * first_deltas[i] over the step's rows i in
    order, from the buckets of input j that the chunks filed (see train_rows; chunk c's rows
    precede chunk c + 1's), and update those rows, so that layer needs no reduction and its sums
    do not depend on the thread count (d = 0: no such layer, the chunk sums cover every
    parameter). Every other parameter is in ``items`` (optimizer.sum_chunks_and_step: chunk
    gradients summed in chunk order); part q takes items q, q + nparts, ... (prange hands each
    thread one contiguous range of iterations, so a first-layer part per iteration keeps the
    threads evenly loaded). Every part runs in floating-point mode fp_mode (int64, see
    fp_mode.py)."""
    g = grads
    g0 = g[0]
    bcnt = buckets.count
    bi = buckets.row
    bx = buckets.value
    keep = first_deltas
    cap = bx.shape[1] // max(d, 1)
    for q in prange(nparts):
        own = enter_fp_mode(fp_mode)
        ja, jb = chunk_bounds(d, nparts, q)
        for j in range(ja, jb):
            for c in range(nch):
                if bcnt[c, j] > 0:
                    grad_col(g0, j * P0, P0, keep, 0, bx[c], 0, 1, bi[c], j * cap,
                             j * cap + bcnt[c, j])
        step_and_clear(step, decay, params, g0, np.uint64(ja * P0), np.uint64((jb - ja) * P0))
        for it in range(q, items.shape[0], nparts):
            sum_chunks_and_step(step, decay, params, g, nch, items, it)
        leave_fp_mode(own)


@compiled(**JIT_PARALLEL)
def step_dense_rows_parallel(step, decay, params, x, xo, nin, dz, do, wo, P, nparts, fp_mode):
    """optimizer.step_dense_rows of a layer's nin rows in nparts ranges of rows in parallel, in
    floating-point mode fp_mode: the same values as one call (no row's step reads another's)."""
    for q in prange(nparts):
        own = enter_fp_mode(fp_mode)
        k0, k1 = chunk_bounds(nin, nparts, q)
        step_dense_rows(step, decay, params, x, xo + k0, k1 - k0, dz, do, wo + k0 * P, P)
        leave_fp_mode(own)


@compiled(**JIT_INLINE)
def _chunk_work(layout, wsize, asize, nch, d, sparse, rows, last_rows, rows_per_chunk, dtype_of):
    """(work, first_deltas, by_rows) for steps of ``rows`` rows (the last one of ``last_rows``)
    in up to nch chunks: every chunk's ChunkWork (see train_rows), the first-layer deltas a
    parallel step keeps, and whether such a step sums the first layer by rows of W."""
    V = lanes(dtype_of)
    dtype = dtype_of.dtype
    P0 = layout.width[0]
    by_rows = sparse and d * P0 > 8 * rows  # else: the chunk sums are cheaper to reduce
    keep = np.zeros(rows * P0 if (by_rows and nch > 1) else 1, dtype)
    # per chunk, the first-layer nonzeros of its rows filed by input: room for every row of the
    # largest chunk of any step
    cap = 0
    if by_rows and nch > 1:
        for m_step in (rows, last_rows):
            nch_step = max(1, min(nch, m_step // rows_per_chunk))
            if nch_step > 1:
                cap = max(cap, (m_step + nch_step - 1) // nch_step)
    sort = sparse and P0 >= 4 * V  # a wide sparse first layer: its gradient by columns
    work = ChunkWork(
        np.zeros((nch, wsize), dtype), np.zeros((nch, asize), dtype),
        np.zeros((nch, asize), dtype), np.zeros((nch, 1 if sparse else BLOCK_ROWS * d), dtype),
        np.zeros((nch, d), np.int64), np.empty((nch, max(1, cap * d)), np.int32),
        np.empty((nch, max(1, cap * d)), dtype),
        np.empty((nch, d + 1 if sort else 1), np.int64), np.empty((nch, d if sort else 1), np.int64),
        np.empty((nch, BLOCK_ROWS * d if sort else 1), np.int32),
        np.empty((nch, BLOCK_ROWS * d if sort else 1), dtype))
    return work, keep, by_rows


def is_lazy_sgd(sparse, solver, batch_size, lazy_max_rows, weighted=False):
    """fused_epoch's ``lazy_sgd`` argument (Python): True when an epoch of ``solver`` (0 SGD,
    1 Adam) with steps of batch_size rows (int) on sparse (bool) inputs updates the first layer
    lazily, else None. Never with sample weights (``weighted``): the closed-form catch-up assumes
    the same weight decay at every step, which weights make alpha / (the step's weight sum)."""
    lazy = sparse and solver == 0 and batch_size <= lazy_max_rows and not weighted
    return True if lazy else None


def is_dense_rows(sparse, batch_size):
    """fused_epoch's ``dense_rows`` argument (Python): True on dense inputs with one row per
    step, else None."""
    return True if not sparse and batch_size == 1 else None


@compiled(**JIT)
def fused_epoch(data, hyper, tuning, addresses, shapes, t, stats, lazy_sgd, dense_rows, extras,
                train_rows_fn, parallel_update_fn, train_rows_parallel_fn):
    """One epoch (see the module docstring). addresses: the caller's weights and biases, then each
    optimizer state's (SGD: velocities; Adam: m, then v), updated in place (see layout.pack);
    shapes: int64 (L, 2), the weights' (n_in, n_out); t: the Adam step count before the epoch;
    stats: float64 (2,), (loss sum, correct rows) added; lazy_sgd: True when the epoch is plain SGD
    on sparse inputs with steps of at most tuning.lazy_max_rows rows, else None
    (:func:`is_lazy_sgd`): numba prunes the lazy per-row code before typing when it is None, so a
    mini-batch fit does not compile it. dense_rows: True when the epoch runs dense inputs one row
    per step, else None (:func:`is_dense_rows`): each layer's rows then step from their inputs and
    deltas, no gradient stored (pruned like lazy_sgd). extras: None, or an Extras (see train_rows;
    unit weights, no dropout, no shift and every step at hyper.learning_rate compute exactly the
    plain steps). train_rows_fn, parallel_update_fn, train_rows_parallel_fn: :func:`train_rows`,
    :func:`parallel_update` and :func:`train_rows_parallel` by address (callees.epoch_callees), so
    that each compiles once. Returns the new Adam step count."""
    solver = hyper.solver
    rows = hyper.batch_size
    alpha = hyper.alpha
    sparse = data.sparse
    order = data.order
    ptr = data.indptr
    W0 = data.lut  # an array of the compute dtype
    L = shapes.shape[0]
    d = shapes[0, 0]
    layout, wsize, asize = make_layout(shapes, hyper.activation, hyper.loss_kind,
                                       hyper.label_smoothing, W0)
    P = layout.width
    woff = layout.weight_at
    wboff = layout.bias_at
    aoff = layout.act_at
    P0 = P[0]
    bufs = np.zeros((3, wsize), W0.dtype)
    pack(addresses, layout, bufs, bool(False))
    params = FlatParams(bufs[0], bufs[1], bufs[2])
    w = params.w
    n = order.shape[0]
    nch_max = max(1, min(tuning.max_chunks, rows // tuning.rows_per_chunk))
    work, keep, by_rows = _chunk_work(layout, wsize, asize, nch_max, d, sparse, rows, n % rows,
                                      tuning.rows_per_chunk, W0)
    items, first_item = update_items(layout)
    rest = items[first_item:]  # first-layer bias, then the other layers
    # The parts of a parallel step's update: one per thread, each a range of at least 16
    # first-layer rows when that layer is summed by rows (the sums do not depend on the split).
    w0_parts = max(1, min(tuning.parts, d // 16))
    widest = BLOCK_ROWS  # iota: the inputs k of any layer and the rows of a block
    for l in range(L):
        widest = max(widest, layout.n_in[l])
    iota = np.arange(widest)
    res = np.zeros((nch_max, 2), np.float64)
    fp_mode = read_fp_mode()  # the chunks' and parts' threads compute in this thread's mode
    shared = StepShared(res, keep, iota, tuning.block_grad_min_rows, fp_mode)
    serial = StepShared(res, np.zeros(1, W0.dtype), iota, tuning.block_grad_min_rows, fp_mode)
    work0 = chunk_of(work, np.int64(0))
    buckets = buckets_of(work)
    inputs = _inputs_of(data)
    lr = cast_like(W0, hyper.learning_rate)
    mom = cast_like(W0, hyper.momentum)
    nesterov = hyper.nesterovs_momentum
    use_mom = hyper.momentum != 0.0
    nsteps = (n + rows - 1) // rows
    # Every use of the lazy helpers sits under ``lazy_sgd is not None``, the form numba prunes.
    lazy = False
    catch = False
    last = np.zeros(d, np.int64)
    flag = np.zeros(d, np.int64)  # int64: one allocation signature fewer to compile
    touched = np.empty(d, np.int64)
    pw = np.zeros((1, 4), np.float64)
    if lazy_sgd is not None:
        lazy = sparse and solver == 0 and rows <= tuning.lazy_max_rows
        catch = lazy and (use_mom or alpha != 0.0)  # else untouched rows do not change at all
        if catch:
            pw = zero_grad_powers(nsteps, lr, mom, cast_like(W0, alpha / rows), nesterov, use_mom)
    catch_up = CatchUp(last, pw, use_mom)
    # typed (not literal) constant arguments: a literal would compile the callee once more
    zero_i = np.int64(0)  # parallel_update: no first-layer parts; step_dense_rows: offset 0
    one_i = np.int64(1)
    all_rows = np.int64(-1)
    no_decay = bool(False)
    one = np.zeros(1, W0.dtype)  # the input of a bias: 1 (np.ones would compile once more)
    one[0] = 1.0
    s = np.int64(0)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        weight_sum, step_lr = weight_sum_and_rate(hyper, extras, order, start, m, s)
        scale = cast_like(W0, 1.0 / weight_sum)
        use_wd = alpha / weight_sum != 0.0
        lazy_step = lazy and m == rows
        one_row = lazy_step and rows == 1
        nt = np.int64(0)
        r_one = order[start]
        if lazy_sgd is not None:
            if one_row:  # bring the rows of W0 this input reads up to date
                if catch:
                    catch_up_read_rows(catch_up, params, data.indices, ptr[r_one],
                                       ptr[r_one + 1], woff[0], P0, s)
            elif lazy_step:  # the rows of W0 this step reads: list them, bring them up to date
                for i in range(m):
                    r = order[start + i]
                    for p in range(ptr[r], ptr[r + 1]):
                        j = np.int64(data.indices[p])
                        if flag[j] == 0:
                            flag[j] = 1
                            touched[nt] = j
                            nt += 1
                for q in range(nt):
                    flag[touched[q]] = 0
                if catch:
                    catch_up_rows(catch_up, params, woff[0], P0, touched, nt, s)
            elif catch:  # a shorter last step: bring every row up to date first
                catch_up_rows(catch_up, params, woff[0], P0, touched, -d, s)
        nch = max(1, min(nch_max, m // tuning.rows_per_chunk))
        if nch > 1:
            train_rows_parallel_fn(train_rows_fn, data, layout, w, work, shared, start, m, scale,
                                   nch, extras)
        else:
            from_rows = one_row
            if dense_rows is not None:
                from_rows = True
            train_rows_fn(data, layout, w, work0, serial, start, np.int64(0), m, scale,
                          np.int64(0), not from_rows, extras)
        add_step_stats(res, nch, stats, extras, m, weight_sum)
        step, t = optimizer_step(hyper, t, step_lr, weight_sum, W0)
        if nch > 1 and by_rows:  # first layer by rows of W0, the rest summed over chunks
            parallel_update_fn(step, use_wd, params, work.grad, buckets, keep, P0, d, w0_parts,
                               rest, nch, fp_mode)
        elif nch > 1:  # the chunks' gradients are summed inside the parallel update
            parallel_update_fn(step, use_wd, params, work.grad, buckets, keep, P0, zero_i,
                               tuning.parts, items, nch, fp_mode)
        elif one_row:  # per-example SGD: every layer steps from its inputs and deltas
            if lazy_sgd is not None:
                step_read_rows(step, use_wd, params, inputs, layer_of(layout, 0), ptr[r_one],
                               ptr[r_one + 1], work0.deltas, last, s)
                for l in range(L):
                    if l > 0:
                        step_dense_rows(step, use_wd, params, work0.acts, aoff[l - 1],
                                        layout.n_in[l], work0.deltas, aoff[l], woff[l], P[l])
                    step_dense_rows(step, no_decay, params, one, zero_i, one_i, work0.deltas,
                                    aoff[l], wboff[l], P[l])
        elif dense_rows is not None:  # per-example steps: every layer from inputs and deltas
            for l in range(L):
                src, so, sp = _dense_input(layout, l, work0.x_block, work0.acts)
                nparts = 1  # SGD in parts measured slower (RESULTS.md); Adam's wide layers gain
                if solver == 1:
                    nparts = min(tuning.parts, layout.n_in[l] * P[l] // tuning.adam_rows_min_part)
                if nparts > 1:
                    step_dense_rows_parallel(step, use_wd, params, src, so, layout.n_in[l],
                                             work0.deltas, aoff[l], woff[l], P[l], nparts, fp_mode)
                else:
                    step_dense_rows(step, use_wd, params, src, so, layout.n_in[l], work0.deltas,
                                    aoff[l], woff[l], P[l])
                step_dense_rows(step, no_decay, params, one, zero_i, one_i, work0.deltas,
                                aoff[l], wboff[l], P[l])
        else:
            for l in range(L):
                if l == 0 and lazy_step:
                    step_rows(step, use_wd, params, work0.grad, woff[0], P0, touched, nt)
                    if catch:
                        for q in range(nt):
                            last[touched[q]] = s + 1
                else:
                    step_rows(step, use_wd, params, work0.grad, woff[l], wboff[l], touched,
                              all_rows)
                    if l == 0 and catch:
                        for j in range(d):
                            last[j] = s + 1
                step_rows(step, no_decay, params, work0.grad, wboff[l], wboff[l] + P[l],
                          touched, all_rows)
        s += 1
    if lazy_sgd is not None:
        if catch:
            catch_up_rows(catch_up, params, woff[0], P0, touched, -d, nsteps)
    pack(addresses, layout, bufs, bool(True))
    return t
