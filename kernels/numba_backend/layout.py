"""The fused epoch's memory: padded flat copies of the parameters, and per-chunk work buffers.

The epoch works on flat copies of the parameters and optimizer state (copied in at the start, out
at the end) in which every layer's weight rows and bias are padded to whole vectors, so that each
vector access is a plain load and each layer's update one contiguous loop. Rows go through the
network in blocks of :data:`BLOCK_ROWS`; each row chunk of a step (see :mod:`.epoch`) has its own
activations, deltas and gradient. A :data:`Layout` says where things are, a :data:`ChunkWork`
holds one chunk's buffers (or all chunks' as (chunks, n) arrays).

Assumes: the 64-byte vectors of :mod:`.vectors` (a row of P = n_out rounded up to whole vectors).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .jit import JIT, JIT_INLINE, compiled, numba
from .vectors import lanes, pointer_to

#: Rows per block of the forward and backward passes.
BLOCK_ROWS = 16
#: Elements per work item of the parallel optimizer step.
UPDATE_PIECE = 8192

#: The network and its flat layout; int64 (L,) arrays per layer l: n_in, n_out, width (n_out
#: padded to whole vectors, P), weight_at (offset of W_l: n_in rows of P), bias_at (offset of
#: b_l: P), act_at (offset of layer l's block of BLOCK_ROWS rows of P in the activation and
#: delta buffers). n_layers: L; activation: the hidden layers' code (jit.ACT_CODES); loss_kind:
#: a loss.output_loss kind; label_smoothing: the softmax output's eps (float64).
Layout = namedtuple("Layout", ["n_layers", "n_in", "n_out", "width", "weight_at", "bias_at",
                               "act_at", "activation", "loss_kind", "label_smoothing"])

#: One layer's numbers (int64), from a Layout: n_in, n_out, width, weight_at, bias_at, act_at as
#: there, and activation, the layer's activation code (identity for the output layer).
Layer = namedtuple("Layer", ["n_in", "n_out", "width", "weight_at", "bias_at", "act_at",
                             "activation"])

#: A wide sparse first layer's nonzeros of one chunk of a parallel step, filed by input j (see
#: epoch.train_rows): count[j] entries at row[j * cap:] (their rows of the step, ascending) and
#: value[j * cap:] (their values), cap = value.shape[-1] // n_in.
Buckets = namedtuple("Buckets", ["count", "row", "value"])

#: Scratch of blocks.grad_sparse_block, the column sort of a block's first-layer nonzeros: start
#: (n_in + 1,) and fill (n_in,) int64, row (int32) and value of BLOCK_ROWS * n_in entries.
ColumnSort = namedtuple("ColumnSort", ["start", "fill", "row", "value"])

#: The buffers of one row chunk (1-D arrays), or of every chunk (rows of 2-D arrays). grad: laid
#: out like the parameters; acts, deltas: a block of activations and their gradients; x_block: a
#: block of dense inputs in the compute dtype; bucket_*: a Buckets, col_*: a ColumnSort (flat
#: here: numba's parallel loops take no tuples within tuples). Buffers a run does not use hold
#: one element.
ChunkWork = namedtuple("ChunkWork", [
    "grad", "acts", "deltas", "x_block", "bucket_count", "bucket_row", "bucket_value",
    "col_start", "col_fill", "col_row", "col_value"])


@compiled(**JIT_INLINE)
def layer_of(layout, l):
    """Layer l of ``layout`` (its activation: the hidden one, identity for the last layer)."""
    act = layout.activation if l < layout.n_layers - 1 else 0
    return Layer(layout.n_in[l], layout.n_out[l], layout.width[l], layout.weight_at[l],
                 layout.bias_at[l], layout.act_at[l], act)


@compiled(**JIT_INLINE)
def make_layout(shapes, activation, loss_kind, label_smoothing, like):
    """(Layout, parameter buffer size, activation buffer size) of the layers of weight shapes
    shapes[l] = (n_in, n_out) (int64 (L, 2)), in the dtype of array ``like``."""
    n_layers = shapes.shape[0]
    V = lanes(like)
    nin = np.empty(n_layers, np.int64)
    nout = np.empty(n_layers, np.int64)
    P = np.empty(n_layers, np.int64)
    woff = np.empty(n_layers, np.int64)
    wboff = np.empty(n_layers, np.int64)
    aoff = np.empty(n_layers, np.int64)
    wsize = 0
    asize = 0
    for l in range(n_layers):
        nin[l] = shapes[l, 0]
        nout[l] = shapes[l, 1]
        P[l] = (nout[l] + V - 1) // V * V
        woff[l] = wsize
        wsize += nin[l] * P[l]
        wboff[l] = wsize
        wsize += P[l]
        aoff[l] = asize
        asize += BLOCK_ROWS * P[l]
    layout = Layout(n_layers, nin, nout, P, woff, wboff, aoff, activation, loss_kind,
                    label_smoothing)
    return layout, wsize, asize


@compiled(**JIT)
def pack(addresses, layout, bufs, back):
    """Copy parameters (group k = 0) and optimizer state (k = 1, 2) between the caller's arrays
    and the padded flat buffers bufs[k]: to the buffers when back is False, else from them.
    addresses: int64 (2, groups * L), the addresses of the caller's C-contiguous arrays of the
    buffers' dtype (which the caller keeps alive): row 0 the weights W (n_in, n_out), row 1 the
    biases b (n_out,), group k's layer l at column k * L + l. Addresses, not a typed list: one
    compiled epoch serves any depth, and no list code compiles in each process."""
    L = layout.n_layers
    for k in range(addresses.shape[1] // L):
        buf = bufs[k]
        for l in range(L):
            nin = layout.n_in[l]
            no = layout.n_out[l]
            W = numba.carray(pointer_to(addresses[0, k * L + l], bufs), (nin, no))
            b = numba.carray(pointer_to(addresses[1, k * L + l], bufs), no)
            for r in range(nin):
                o = layout.weight_at[l] + r * layout.width[l]
                for c in range(no):
                    if back:
                        W[r, c] = buf[o + c]
                    else:
                        buf[o + c] = W[r, c]
            for c in range(no):
                if back:
                    b[c] = buf[layout.bias_at[l] + c]
                else:
                    buf[layout.bias_at[l] + c] = b[c]


@compiled(**JIT_INLINE)
def update_items(layout):
    """(items, first) : the parameters cut into work items (lo, hi, decays) of a parallel step's
    update, at most UPDATE_PIECE elements each (weights decay, biases do not); items[first:]
    leaves out the first layer's weights (the first items: that layer is at offset 0)."""
    L = layout.n_layers
    nitems = 0
    for l in range(L):
        nitems += (layout.n_in[l] * layout.width[l] + UPDATE_PIECE - 1) // UPDATE_PIECE + 1
    items = np.empty((nitems, 3), np.int64)
    q = 0
    first = 0
    for l in range(L):
        if l == 1:
            first = q - 1
        for lo in range(layout.weight_at[l], layout.bias_at[l], UPDATE_PIECE):
            items[q, 0] = lo
            items[q, 1] = min(lo + UPDATE_PIECE, layout.bias_at[l])
            items[q, 2] = 1
            q += 1
        items[q, 0] = layout.bias_at[l]
        items[q, 1] = layout.bias_at[l] + layout.width[l]
        items[q, 2] = 0
        q += 1
    if L == 1:
        first = q - 1
    return items, first


@compiled(**JIT_INLINE)
def chunk_of(work, c):
    """Chunk c's buffers: row c of each (chunks, n) array of ``work``."""
    return ChunkWork(work.grad[c], work.acts[c], work.deltas[c], work.x_block[c],
                     work.bucket_count[c], work.bucket_row[c], work.bucket_value[c],
                     work.col_start[c], work.col_fill[c], work.col_row[c], work.col_value[c])


@compiled(**JIT_INLINE)
def buckets_of(work):
    """The Buckets of ``work``."""
    return Buckets(work.bucket_count, work.bucket_row, work.bucket_value)


@compiled(**JIT_INLINE)
def column_sort_of(work):
    """The ColumnSort of ``work``."""
    return ColumnSort(work.col_start, work.col_fill, work.col_row, work.col_value)
