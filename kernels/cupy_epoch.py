"""The CuPy backend's fused epoch: a step in 11 launches (3 layers), an epoch in one CUDA graph.

What the composed epoch does in ~25 launches per step (cuBLAS GEMMs, then bias, activation,
loss, bias-gradient and one optimizer kernel per parameter array), this does with the kernels of
``cuda/epoch.cu``: per step one gather of the batch (none when batches are slices), one GEMM per
layer whose epilogue adds the bias and applies the activation, one loss kernel writing per-row loss
and correctness into epoch-long buffers, per layer one GEMM for the weight and bias gradients (an
implicit row of ones gives the bias gradient) and, below the top layer, one GEMM whose epilogue
multiplies by the activation's slope, and one optimizer kernel over a flat vector holding every
parameter. The host reads nothing; ``stats`` gets the epoch's sums from one reduction at its end.

Because every launch is a raw kernel (no cuBLAS, which CuPy refuses to capture), a whole epoch can
be captured as a CUDA graph: the second epoch of a fit is captured and every later epoch of the same
shape replays it in one launch. What changes between epochs lives in per-fit buffers the graph
points at: the row order (copied in), the step sizes (a table uploaded per epoch, Adam's bias
correction included) and the parameters. Assumes CuPy's default stream is the legacy one (the
epoch's stream is a blocking stream, ordered after and before the trainer's own work).

Parameters and optimizer state live in flat per-fit buffers (weights of every layer first, then
biases, so weight decay is a prefix); an epoch copies them in from the job's arrays and back out
(a few launches per epoch, none per step). Covers softmax outputs with integer labels and sigmoid
outputs with integer labels or 0/1 indicators, SGD and Adam, no sample weights (:func:`covers`);
the backend runs the composed epoch for everything else (the regression outputs, sample weights).
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from .composed import Workspace, layer_sizes_of

GEMM_THREADS = 16  # cuda/epoch.cu's threads per side of a GEMM block
#: A GEMM takes the largest tile that still makes at least this many blocks (a GPU has ~100 SMs,
#: each running several blocks at once); else the smallest tile. Chosen by estimate, not measured.
GEMM_MIN_BLOCKS = 128
#: GEMM kinds: (transposed A, transposed B, epilogue) as cuda/epoch.cu's template arguments.
_FORWARD, _BACK_DELTA, _BACK_WEIGHT = ("false", "false", "1"), ("false", "true", "2"), \
    ("true", "false", "0")


def gemm_per(m, n):
    """Outputs per thread and dimension (1, 2 or 4) for an (m, n) GEMM result: the largest whose
    tiles still make :data:`GEMM_MIN_BLOCKS` blocks, else 1."""
    for per in (4, 2):
        tile = GEMM_THREADS * per
        if -(-m // tile) * -(-n // tile) >= GEMM_MIN_BLOCKS:
            return per
    return 1


def covers(job) -> bool:
    """Whether the fused epoch runs ``job`` (else the composed epoch does)."""
    dtype = job.coefs[0].dtype
    arrays = [*job.coefs, *job.intercepts, *(a for group in job.opt_state for a in group)]
    labels = job.targets.ndim == 1 and job.targets.dtype in (np.int32, np.int64)
    indicators = (job.output == "sigmoid" and job.targets.ndim == 2
                  and job.targets.dtype == dtype and job.targets.flags.c_contiguous)
    return (job.output in ("softmax", "sigmoid") and (labels or indicators)
            and job.sample_weight is None and job.solver in ("sgd", "adam")
            and not (job.dropout and any(job.dropout)) and not job.augment_shift
            and job.step_learning_rates is None and not job.label_smoothing
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
    with views ``opt_views``; row_loss, row_correct: (capacity,) float64 per-row stats; order:
    (capacity,) int64, the epoch's row order where graphs find it; lr_table: per-step step sizes;
    stream: where the epochs run; graphs: captured epochs by :func:`_graph_key`, each with the
    arrays of the job it reads.
    """

    #: Captured epochs kept per fit (one per distinct epoch shape; progress parts add a few).
    MAX_GRAPHS = 4

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
        self.capacity = self.table_capacity = 0
        self.stream = backend.xp.cuda.Stream()
        self.graphs, self.seen = {}, set()
        #: Why capturing a graph failed, once it has (epochs then run launch by launch).
        self.capture_error = None

    def fits(self, job) -> bool:
        """Whether these buffers serve ``job``'s layers, dtype and solver."""
        return (layer_sizes_of(job.coefs) == self.sizes and job.coefs[0].dtype == self.dtype
                and job.solver == self.solver)

    def reserve(self, backend, n, steps) -> None:
        """Make the per-row buffers hold ``n`` rows and the table ``steps`` steps (allocating only
        to grow, which forgets the captured graphs: they point at the old buffers)."""
        if n > self.capacity:
            self.row_loss = backend.empty((n,), np.float64)
            self.row_correct = backend.empty((n,), np.float64)
            self.order = backend.empty((n,), np.int64)
            self.capacity = n
            self.graphs.clear()
        if steps > self.table_capacity:
            self.lr_table = backend.empty((steps,), self.dtype)
            self.table_capacity = steps
            self.graphs.clear()

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


def _graph_key(job, n, rows):
    """What a captured epoch bakes in besides the per-fit buffers: the arrays it reads (by
    identity; the graph keeps them alive) and the scalars passed as kernel arguments."""
    return (n, rows, job.order is None, id(job.X), id(job.targets), id(job.stats), job.output,
            job.activation, job.momentum, job.nesterovs_momentum, job.alpha, job.beta_1,
            job.beta_2, job.epsilon, job.x_scale)


def _step_sizes(job, steps):
    """The epoch's step sizes (SGD: the learning rate; Adam: lr_t with the bias correction of
    each step's t, advancing ``job.t``), computed on the host in double as the composed epoch."""
    if job.solver == "sgd":
        return [job.learning_rate] * steps
    sizes = []
    for _ in range(steps):
        job.t += 1
        sizes.append(job.learning_rate * math.sqrt(1 - job.beta_2 ** job.t)
                     / (1 - job.beta_1 ** job.t))
    return sizes


def fused_epoch(backend, job, kernel, null) -> str:
    """Run one epoch of ``job`` (which :func:`covers` accepts) with the fused kernels.

    kernel(template, *params) returns the instantiation (params: dtypes or literal C++ template
    arguments); null is the null device-pointer argument. Updates the job's arrays in place,
    advances ``job.t`` (Adam) and adds the epoch's (loss sum, correct rows) to ``job.stats``.
    The first epoch of a shape runs launch by launch; the next is captured as a CUDA graph, which
    later epochs of that shape replay in one launch. Returns ``"graph"`` when the epoch ran as a
    graph, else ``"launches"``.
    """
    n = job.X.shape[0] if job.order is None else job.order.shape[0]
    rows = min(job.batch_size, n)
    starts = range(0, n, rows)
    ws = job.workspace
    if ws is None or (job.order is not None and ws.x is None) or ws.acts[0].shape[0] < rows:
        ws = Workspace.for_layers(backend, job.coefs, rows, job.targets,
                                  gathered=job.order is not None)
    buffers = _buffers.get(ws)
    if buffers is None or not buffers.fits(job):
        buffers = _buffers[ws] = FusedBuffers(backend, job)
    buffers.reserve(backend, n, len(starts))
    key = _graph_key(job, n, rows)
    graph = buffers.graphs.get(key, (None,))[0]
    with buffers.stream:
        buffers.load(job)
        if job.order is not None:
            buffers.order[:n] = job.order
        buffers.lr_table[:len(starts)].set(np.array(_step_sizes(job, len(starts)), buffers.dtype))
        steps = _Steps(job, ws, buffers, kernel, null)
        if graph is None and key in buffers.seen and buffers.capture_error is None:
            graph = _capture(buffers, key, lambda: steps.epoch(starts, n),
                             keep=(job.X, job.targets, job.stats))
        if graph is not None:
            graph.launch(buffers.stream)
        else:
            steps.epoch(starts, n)
        buffers.store(job)
    buffers.seen.add(key)
    return "launches" if graph is None else "graph"


def _capture(buffers, key, epoch, keep):
    """Capture ``epoch()`` (raw kernel launches only) into a graph kept under ``key`` together with
    ``keep``, the job's arrays it reads (a graph holds their addresses, not the arrays); None, with
    the reason in ``buffers.capture_error``, where the runtime refuses."""
    stream = buffers.stream
    stream.begin_capture()
    try:
        epoch()
    except Exception as exc:  # noqa: BLE001 - any refusal: run the epochs launch by launch
        buffers.capture_error = f"{type(exc).__name__}: {exc}"
        try:
            stream.end_capture()
        except Exception:  # noqa: BLE001 - CUDA may report the invalidated capture again here
            pass
        return None
    graph = stream.end_capture()
    if len(buffers.graphs) >= buffers.MAX_GRAPHS:
        buffers.graphs.pop(next(iter(buffers.graphs)))
    buffers.graphs[key] = (graph, keep)
    return graph


class _Steps:
    """The launches of an epoch's steps, with everything that stays fixed over the epoch."""

    def __init__(self, job, ws, buffers, kernel, null):
        self.job, self.ws, self.buffers, self.null = job, ws, buffers, null
        dtype = buffers.dtype
        self.t = dtype.type
        self.gemms = {(kind, per): kernel("gemm", dtype, *kind, str(per))
                      for kind in (_FORWARD, _BACK_DELTA, _BACK_WEIGHT) for per in (1, 2, 4)}
        if job.output == "softmax":
            self.loss = kernel("softmax_xent_rows", dtype, job.targets.dtype)
        elif job.targets.ndim == 1:
            self.loss = kernel("sigmoid_bce_label_rows", dtype, job.targets.dtype)
        else:
            self.loss = kernel("sigmoid_bce_indicator_rows", dtype)
        self.update = kernel(f"{job.solver}_step", dtype)
        self.gather = kernel("gather_rows", dtype, job.X.dtype, np.int64)
        self.add_stats = kernel("add_epoch_stats")
        self.act = np.int32({"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}[job.activation])

    def epoch(self, starts, n):
        """Every step, then the epoch's stats into ``job.stats``."""
        for step, start in enumerate(starts):
            self.run(step, start, min(starts.step, n - start))
        buf = self.buffers
        self.add_stats((1,), (256,), (buf.row_loss, buf.row_correct, np.int64(n), self.job.stats))

    def _gemm(self, kind, a, b, c, m, n, k, ones_row=-1, row_out=None, bias=None, aux=None,
              act=0):
        """Launch a GEMM of ``kind``: c (m x n) from a and b (strides are their row lengths)."""
        null = self.null
        per = gemm_per(m, n)
        tile = GEMM_THREADS * per
        self.gemms[kind, per]((-(-n // tile), -(-m // tile)), (GEMM_THREADS, GEMM_THREADS),
               (a, np.int32(a.shape[1]), b, np.int32(b.shape[1]), c, np.int32(c.shape[1]),
                np.int32(m), np.int32(n), np.int32(k), np.int32(ones_row),
                null if row_out is None else row_out, null if bias is None else bias,
                null if aux is None else aux, np.int32(0 if aux is None else aux.shape[1]),
                np.int32(act)))

    def run(self, step, start, m):
        """Step number ``step``, over the rows ``start:start + m`` of the epoch's order."""
        job, ws, buf, t = self.job, self.ws, self.buffers, self.t
        if job.order is None:
            x, idx = job.X[start:start + m], self.null
        else:
            idx = buf.order[start:start + m]
            x = ws.x[:m]
            d = job.X.shape[1]
            self.gather((max(1, min(4096, -(-m * d // 256))),), (256,),
                        (job.X, idx, x, t(job.x_scale), np.int64(m * d), np.int32(d)))
        layers = len(buf.w)
        a = x
        for layer in range(layers):
            z = ws.acts[layer][:m]
            self._gemm(_FORWARD, a, buf.w[layer], z, m, z.shape[1], a.shape[1],
                       bias=buf.b[layer], act=0 if layer == layers - 1 else self.act)
            a = z
        self.loss((-(-m // 256),), (256,),
                  (a, job.targets, idx, np.int64(start), t(1.0 / m),
                   buf.row_loss[start:start + m], buf.row_correct[start:start + m],
                   np.int32(m), np.int32(a.shape[1])))
        dz = a
        for layer in range(layers - 1, -1, -1):
            a_prev = x if layer == 0 else ws.acts[layer - 1][:m]
            n_in, n_out = buf.w[layer].shape
            self._gemm(_BACK_WEIGHT, a_prev, dz, buf.gw[layer], n_in + 1, n_out, m,
                       ones_row=n_in, row_out=buf.gb[layer])
            if layer > 0:
                d_prev = ws.deltas[layer - 1][:m]
                self._gemm(_BACK_DELTA, dz, buf.w[layer], d_prev, m, n_in, n_out,
                           aux=a_prev, act=self.act)
                dz = d_prev
        self._update(step, m)

    def _update(self, step, m):
        job, buf, t = self.job, self.buffers, self.t
        total = buf.params.shape[0]
        grid = (max(1, min(4096, -(-total // 256))),)
        # the step size comes from lr_table[step] (the scalar before it is then unused)
        head = (buf.params, buf.grads, *buf.opt, np.int64(total), np.int64(buf.n_weights), t(0),
                buf.lr_table, np.int32(step))
        if job.solver == "sgd":
            self.update(grid, (256,), (*head, t(job.momentum),
                                       np.int32(bool(job.nesterovs_momentum)), t(job.alpha / m)))
        else:
            self.update(grid, (256,), (*head, t(job.beta_1), t(1 - job.beta_1), t(job.beta_2),
                                       t(1 - job.beta_2), t(job.epsilon), t(job.alpha / m)))
