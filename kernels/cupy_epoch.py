"""The CuPy backend's fused epoch: a training step in 11 launches (3 layers), nothing allocated.

What the composed epoch does in ~25 launches per step (cuBLAS GEMMs, then bias, activation,
loss, bias-gradient and one optimizer kernel per parameter array), this does with the kernels of
``cuda/epoch.cu``: per step one gather of the batch (none when batches are slices), one GEMM per
layer whose epilogue adds the bias and applies the activation, one loss kernel writing per-row loss
and correctness into epoch-long buffers, per layer one GEMM for the weight and bias gradients (an
implicit row of ones gives the bias gradient) and, below the top layer, one GEMM whose epilogue
multiplies by the activation's slope, and one optimizer kernel over a flat vector holding every
parameter. The host reads nothing; ``stats`` gets the epoch's sums from one reduction at its end.

Parameters and optimizer state live in flat per-fit buffers (weights of every layer first, then
biases, so weight decay is a prefix); an epoch copies them in from the job's arrays and back out
(a few launches per epoch, none per step). Covers softmax outputs with integer labels, SGD and Adam,
no sample weights (:func:`covers`); the backend runs the composed epoch for everything else.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from .composed import Workspace, layer_sizes_of

GEMM_TILE = 16  # cuda/epoch.cu's GEMM_TILE
_EPI_STORE, _EPI_BIAS_ACT, _EPI_ACT_GRAD = 0, 1, 2


def covers(job) -> bool:
    """Whether the fused epoch runs ``job`` (else the composed epoch does)."""
    dtype = job.coefs[0].dtype
    arrays = [*job.coefs, *job.intercepts, *(a for group in job.opt_state for a in group)]
    return (job.output == "softmax" and job.sample_weight is None and job.solver in ("sgd", "adam")
            and job.targets.ndim == 1 and job.targets.dtype in (np.int32, np.int64)
            and dtype in (np.float32, np.float64)
            and all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)
            and job.stats.dtype == np.float64 and job.stats.flags.c_contiguous
            and job.X.flags.c_contiguous
            and (job.X.dtype == dtype and job.x_scale == 1 if job.order is None
                 else job.X.dtype in (np.uint8, dtype) and job.order.dtype == np.int64))


class FusedBuffers:
    """Per-fit device buffers of the fused epoch, allocated once (see the module docstring).

    params, grads: (P,) flat, weights of every layer then biases; w[l], b[l], gw[l], gb[l]: views
    of them shaped like the job's arrays; opt: flat optimizer state (sgd: [velocity]; adam: [m, v])
    with views opt_w[i][l], opt_b[i][l]; row_loss, row_correct: (capacity,) float64 per-row stats.
    """

    def __init__(self, backend, job):
        self.sizes = layer_sizes_of(job.coefs)
        self.dtype = job.coefs[0].dtype
        self.solver = job.solver
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.n_weights = sum(a * b for a, b in shapes)
        total = self.n_weights + sum(self.sizes[1:])
        self.params = backend.empty((total,), self.dtype)
        self.grads = backend.empty((total,), self.dtype)
        self.opt = [backend.empty((total,), self.dtype)
                    for _ in range(1 if self.solver == "sgd" else 2)]
        self.w, self.b = _views(self.params, shapes, self.n_weights)
        self.gw, self.gb = _views(self.grads, shapes, self.n_weights)
        self.opt_views = [_views(flat, shapes, self.n_weights) for flat in self.opt]
        self.row_loss = self.row_correct = None
        self.capacity = 0

    def fits(self, job) -> bool:
        """Whether these buffers serve ``job``'s layers, dtype and solver."""
        return (layer_sizes_of(job.coefs) == self.sizes and job.coefs[0].dtype == self.dtype
                and job.solver == self.solver)

    def reserve_rows(self, backend, n) -> None:
        """Make the per-row stats buffers hold at least ``n`` rows (allocates only to grow)."""
        if n > self.capacity:
            self.row_loss = backend.empty((n,), np.float64)
            self.row_correct = backend.empty((n,), np.float64)
            self.capacity = n

    def load(self, job) -> None:
        """Copy the job's parameters and optimizer state into the flat buffers."""
        for flat_views, arrays in self._pairs(job):
            for view, array in zip(flat_views, arrays):
                view[...] = array

    def store(self, job) -> None:
        """Copy the flat buffers back into the job's parameters and optimizer state."""
        for flat_views, arrays in self._pairs(job):
            for view, array in zip(flat_views, arrays):
                array[...] = view

    def _pairs(self, job):
        pairs = [(self.w, job.coefs), (self.b, job.intercepts)]
        for i, (views_w, views_b) in enumerate(self.opt_views):
            # sgd: [velocity_W, velocity_b]; adam: [m_W, m_b, v_W, v_b]
            pairs += [(views_w, job.opt_state[2 * i]), (views_b, job.opt_state[2 * i + 1])]
        return pairs


def _views(flat, shapes, n_weights):
    """([W_l views (a, b)], [b_l views (b,)]) of a flat vector laid out weights first."""
    weights, biases, w_at, b_at = [], [], 0, n_weights
    for a, b in shapes:
        weights.append(flat[w_at:w_at + a * b].reshape(a, b))
        biases.append(flat[b_at:b_at + b])
        w_at, b_at = w_at + a * b, b_at + b
    return weights, biases


_buffers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def fused_epoch(backend, job, kernel, null) -> None:
    """Run one epoch of ``job`` (which :func:`covers` accepts) with the fused kernels.

    kernel(template, *params) returns the instantiation (params: dtypes or literal C++ template
    arguments); null is the null device-pointer argument. Updates the job's arrays in place,
    advances ``job.t`` (Adam) and adds the epoch's (loss sum, correct rows) to ``job.stats``.
    """
    n = job.X.shape[0] if job.order is None else job.order.shape[0]
    rows = min(job.batch_size, n)
    ws = job.workspace
    if ws is None or (job.order is not None and ws.x is None) or ws.acts[0].shape[0] < rows:
        ws = Workspace.for_layers(backend, job.coefs, rows, job.targets,
                                  gathered=job.order is not None)
    buffers = _buffers.get(ws)
    if buffers is None or not buffers.fits(job):
        buffers = _buffers[ws] = FusedBuffers(backend, job)
    buffers.reserve_rows(backend, n)
    buffers.load(job)
    steps = _Steps(backend, job, ws, buffers, kernel, null)
    for start in range(0, n, rows):
        steps.run(start, min(rows, n - start))
    kernel("add_epoch_stats")((1,), (256,), (buffers.row_loss, buffers.row_correct, np.int64(n),
                                             job.stats))
    buffers.store(job)


class _Steps:
    """The launches of one training step, with everything that stays fixed over the epoch."""

    def __init__(self, backend, job, ws, buffers, kernel, null):
        self.backend, self.job, self.ws, self.buffers, self.null = backend, job, ws, buffers, null
        dtype = buffers.dtype
        self.t = dtype.type
        self.forward = kernel("gemm", dtype, "false", "false", str(_EPI_BIAS_ACT))
        self.back_delta = kernel("gemm", dtype, "false", "true", str(_EPI_ACT_GRAD))
        self.back_weight = kernel("gemm", dtype, "true", "false", str(_EPI_STORE))
        self.loss = kernel("softmax_xent_rows", dtype, job.targets.dtype)
        self.update = kernel(f"{job.solver}_step", dtype)
        self.act = np.int32({"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}[job.activation])

    def _gemm(self, kernel, a, b, c, m, n, k, ones_row=-1, row_out=None, bias=None, aux=None,
              act=0):
        """Launch GEMM ``kernel``: c (m x n) from a and b (strides are their row lengths)."""
        null = self.null
        grid = (-(-n // GEMM_TILE), -(-m // GEMM_TILE))
        kernel(grid, (GEMM_TILE, GEMM_TILE),
               (a, np.int32(a.shape[1]), b, np.int32(b.shape[1]), c, np.int32(c.shape[1]),
                np.int32(m), np.int32(n), np.int32(k), np.int32(ones_row),
                null if row_out is None else row_out, null if bias is None else bias,
                null if aux is None else aux, np.int32(0 if aux is None else aux.shape[1]),
                np.int32(act)))

    def run(self, start, m):
        """One step over the rows ``start:start + m`` of the epoch's order."""
        job, ws, buf, t = self.job, self.ws, self.buffers, self.t
        if job.order is None:
            x, idx = job.X[start:start + m], self.null
        else:
            idx = job.order[start:start + m]
            x = self.backend.gather(job.X, idx, ws.x[:m], job.x_scale)
        layers = len(buf.w)
        a = x
        for layer in range(layers):
            z = ws.acts[layer][:m]
            self._gemm(self.forward, a, buf.w[layer], z, m, z.shape[1], a.shape[1],
                       bias=buf.b[layer], act=0 if layer == layers - 1 else self.act)
            a = z
        k = a.shape[1]
        self.loss((-(-m // 256),), (256,),
                  (a, job.targets, idx, np.int64(start), t(1.0 / m),
                   buf.row_loss[start:start + m], buf.row_correct[start:start + m],
                   np.int32(m), np.int32(k)))
        dz = a
        for layer in range(layers - 1, -1, -1):
            a_prev = x if layer == 0 else ws.acts[layer - 1][:m]
            n_in, n_out = buf.w[layer].shape
            self._gemm(self.back_weight, a_prev, dz, buf.gw[layer], n_in + 1, n_out, m,
                       ones_row=n_in, row_out=buf.gb[layer])
            if layer > 0:
                d_prev = ws.deltas[layer - 1][:m]
                self._gemm(self.back_delta, dz, buf.w[layer], d_prev, m, n_in, n_out,
                           aux=a_prev, act=self.act)
                dz = d_prev
        self._update(m)

    def _update(self, m):
        job, buf, t = self.job, self.buffers, self.t
        total = buf.params.shape[0]
        grid = (max(1, min(4096, -(-total // 256))),)
        decay = t(job.alpha / m)
        if job.solver == "sgd":
            self.update(grid, (256,), (buf.params, buf.grads, buf.opt[0], np.int64(total),
                                       np.int64(buf.n_weights), t(job.learning_rate),
                                       t(job.momentum), np.int32(bool(job.nesterovs_momentum)),
                                       decay))
            return
        job.t += 1
        lr_t = job.learning_rate * math.sqrt(1 - job.beta_2 ** job.t) / (1 - job.beta_1 ** job.t)
        self.update(grid, (256,), (buf.params, buf.grads, buf.opt[0], buf.opt[1], np.int64(total),
                                   np.int64(buf.n_weights), t(lr_t), t(job.beta_1),
                                   t(1 - job.beta_1), t(job.beta_2), t(1 - job.beta_2),
                                   t(job.epsilon), decay))
