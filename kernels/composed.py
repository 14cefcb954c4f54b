"""The composed epoch: dense layers written with the contract kernels, one kernel call at a time.

Buffers (:class:`Workspace`), the forward pass, the output loss, back-propagation, the optimizer step
and :func:`composed_epoch`, the definition of one epoch of mini-batch training. A backend's fused
epoch must compute what :func:`composed_epoch` computes (up to summation order); the tests say so.
Everything here calls a ``backend`` (any object with the contract of :class:`fastfnn.kernels.Backend`)
and works on whatever arrays that backend holds, so it serves NumPy, Numba and CuPy alike.
"""

from __future__ import annotations

import math

import numpy as np

from . import noise

#: Output layers with their losses, as :class:`~fastfnn.kernels.base.EpochJob` names them, and the
#: contract's loss kernel of each.
OUTPUTS = {"softmax": "softmax_xent", "sigmoid": "sigmoid_bce",
           "squared_error": "squared_error", "poisson": "poisson"}


class Workspace:
    """Per-fit buffers for batches of up to ``rows`` rows, allocated once on the backend.

    x: (rows, n_in) input batch; targets: (rows,) int64 labels or (rows, k) float indicators
    (both None when ``gathered`` is False: batches are then slices of data already in place);
    acts[l]: (rows, layer_sizes[l+1]) activations (the last one holds logits, then their gradient);
    deltas[l]: (rows, layer_sizes[l+1]) gradient w.r.t. hidden pre-activations;
    coef_grads / intercept_grads: shaped like the parameters; stats: float64 (2,) accumulator;
    row_weight: (rows,) the step's row weights (sample-weighted epochs only, else None);
    masks[l] / dropped[l]: (rows, layer_sizes[l]) the dropout factors of layer input l and that
    input after dropout (None where the layer input has no dropout); shifted: (rows, n_in) the
    augmented batch (None without shifts).
    """

    def __init__(self, backend, layer_sizes, rows, dtype, targets_shape_tail=(),
                 targets_dtype=np.int64, gathered=True, weighted=False, dropout=None,
                 shifted=False):
        self.x = backend.empty((rows, layer_sizes[0]), dtype) if gathered else None
        self.targets = backend.empty((rows, *targets_shape_tail), targets_dtype) \
            if gathered else None
        self.acts = [backend.empty((rows, n), dtype) for n in layer_sizes[1:]]
        self.deltas = [backend.empty((rows, n), dtype) for n in layer_sizes[1:-1]]
        self.coef_grads = [backend.empty((a, b), dtype)
                           for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
        self.intercept_grads = [backend.empty((n,), dtype) for n in layer_sizes[1:]]
        self.stats = backend.zeros((2,), np.float64)
        self.row_weight = backend.empty((rows,), dtype) if weighted else None
        rates = dropout or (0.0,) * (len(layer_sizes) - 1)
        self.masks = [backend.empty((rows, n), dtype) if rate else None
                      for n, rate in zip(layer_sizes, rates)]
        self.dropped = [backend.empty((rows, n), dtype) if rate else None
                        for n, rate in zip(layer_sizes, rates)]
        self.shifted = backend.empty((rows, layer_sizes[0]), dtype) if shifted else None

    @classmethod
    def for_layers(cls, backend, coefs, rows, targets, gathered=True, weighted=False,
                   dropout=None, shifted=False):
        """A Workspace for ``rows``-row batches through ``coefs``, target buffer like ``targets``
        (and the buffers of row weights, dropout and shifts when asked for)."""
        return cls(backend, layer_sizes_of(coefs), rows, coefs[0].dtype, targets.shape[1:],
                   targets.dtype, gathered, weighted, dropout, shifted)

    @classmethod
    def for_job(cls, backend, job, rows):
        """A Workspace with every buffer an epoch of ``job`` (an EpochJob) needs."""
        return cls.for_layers(backend, job.coefs, rows, job.targets, job.order is not None,
                              job.sample_weight is not None, job.dropout, job.augment_shift > 0)

    def fits(self, job) -> bool:
        """Whether this Workspace has the buffers an epoch of ``job`` needs (sizes aside)."""
        rates = job.dropout or (0.0,) * len(self.masks)
        return ((job.sample_weight is None or self.row_weight is not None)
                and (job.augment_shift == 0 or self.shifted is not None)
                and all(not rate or mask is not None for rate, mask in zip(rates, self.masks)))


def layer_sizes_of(coefs):
    """(n_in, h1, ..., n_out) of a list of (n_in, n_out) weight matrices."""
    return (coefs[0].shape[0], *(w.shape[1] for w in coefs))


def forward(backend, coefs, intercepts, x, acts, activation, ws=None):
    """Run ``x`` (m, n_in) through the layers into ``acts`` (each buffer's first m rows).

    Hidden layers apply ``activation``; the output layer stays linear (logits). With a Workspace
    ``ws`` whose ``masks`` hold this step's dropout factors, each layer input that has them is
    multiplied by them into ``ws.dropped`` (acts keep the activations before dropout, which their
    derivatives need). Returns the logits view (m, n_out).
    """
    m = x.shape[0]
    a = x
    last = len(coefs) - 1
    for layer, (w, b) in enumerate(zip(coefs, intercepts)):
        if ws is not None and ws.masks[layer] is not None:
            a = backend.xp.multiply(a, ws.masks[layer][:m], out=ws.dropped[layer][:m])
        z = acts[layer][:m]
        backend.matmul(a, w, z)
        backend.bias_act(z, b, "identity" if layer == last else activation)
        a = z
    return a


def output_loss(backend, output, logits, targets, stats, scale, row_weight=None,
                label_smoothing=0.0):
    """Apply the output loss kernel in place on ``logits`` (it becomes the scaled logits gradient).

    output: a key of :data:`~fastfnn.kernels.base.OUTPUTS` (``"softmax"``, ``"sigmoid"``,
    ``"squared_error"``, ``"poisson"``); row_weight: (m,) float or None, as the loss kernels take it;
    label_smoothing: the softmax output's eps (the other outputs take none).
    """
    try:
        kernel = getattr(backend, OUTPUTS[output])
    except KeyError:
        raise ValueError(f"unknown output {output!r}; expected one of {sorted(OUTPUTS)}") from None
    if label_smoothing:
        if output != "softmax":
            raise ValueError(f"label smoothing applies to the softmax output, not {output!r}")
        return kernel(logits, targets, logits, stats, scale, row_weight=row_weight,
                      label_smoothing=label_smoothing)
    return kernel(logits, targets, logits, stats, scale, row_weight=row_weight)


def backward(backend, coefs, x, acts, deltas, coef_grads, intercept_grads, activation, ws=None):
    """Back-propagate the logits gradient held in ``acts[-1][:m]`` into the parameter gradients.

    x: (m, n_in) the batch the forward pass saw; ws: the Workspace of a forward pass with dropout
    (or None). Fills coef_grads[l] (n_in, n_out) and intercept_grads[l] (n_out,) with the data
    gradient (no weight decay).
    """
    m = x.shape[0]
    dz = acts[-1][:m]
    for layer in range(len(coefs) - 1, -1, -1):
        a_prev = x if layer == 0 else acts[layer - 1][:m]
        masked = ws is not None and ws.masks[layer] is not None
        layer_input = ws.dropped[layer][:m] if masked else a_prev
        backend.matmul(layer_input, dz, coef_grads[layer], trans_a=True)
        backend.col_sum(dz, intercept_grads[layer])
        if layer > 0:
            d_prev = deltas[layer - 1][:m]
            backend.matmul(dz, coefs[layer], d_prev, trans_b=True)
            if masked:
                d_prev *= ws.masks[layer][:m]
            backend.act_grad(d_prev, a_prev, activation)
            dz = d_prev


def apply_update(backend, job, ws: Workspace, weight_decay: float, learning_rate: float) -> None:
    """One optimizer step of ``job``'s solver over every layer (L2 weight decay on weights only)
    with step size ``learning_rate``.

    Adam advances ``job.t`` by one and folds the bias correction into its step size.
    """
    params = (job.coefs, job.intercepts)
    grads = (ws.coef_grads, ws.intercept_grads)
    if job.solver == "sgd":
        for kind in range(2):
            decay = weight_decay if kind == 0 else 0.0
            for p, g, vel in zip(params[kind], grads[kind], job.opt_state[kind]):
                backend.sgd_step(p, g, vel, learning_rate, job.momentum,
                                 job.nesterovs_momentum, decay)
        return
    job.t += 1
    lr_t = learning_rate * math.sqrt(1 - job.beta_2 ** job.t) / (1 - job.beta_1 ** job.t)
    for kind in range(2):
        decay = weight_decay if kind == 0 else 0.0
        for p, g, m1, m2 in zip(params[kind], grads[kind], job.opt_state[kind],
                                job.opt_state[kind + 2]):
            backend.adam_step(p, g, m1, m2, lr_t, job.beta_1, job.beta_2, job.epsilon, decay)


def composed_epoch(backend, job) -> None:
    """Run one epoch of ``job`` (an EpochJob) with ``backend``'s kernels, one step at a time.

    Updates job.coefs / job.intercepts / job.opt_state in place, advances job.t by the number of
    steps (Adam) and adds (loss sum, correct rows) to job.stats. Uses ``job.workspace`` when given
    (it must fit the batch), else allocates one.
    """
    n = job.X.shape[0] if job.order is None else job.order.shape[0]
    rows = min(job.batch_size, n)
    weighted = job.sample_weight is not None
    ws = job.workspace
    if ws is None or not ws.fits(job):
        ws = Workspace.for_job(backend, job, rows)
    step_weights = _step_weight_sums(backend, job, rows) if weighted else None
    xp = backend.xp
    for s, start in enumerate(range(0, n, rows)):
        if job.order is None:
            x, targets = job.X[start:start + rows], job.targets[start:start + rows]
        else:
            idx = job.order[start:start + rows]
            x = backend.gather(job.X, idx, ws.x[:idx.shape[0]], job.x_scale)
            targets = backend.take(job.targets, idx, ws.targets[:idx.shape[0]])
        m = x.shape[0]
        if job.augment_shift:
            dy, dx = noise.shifts(xp, job.noise_seed, job.noise_row0 + start, m,
                                  job.augment_shift)
            x = noise.shift_images(xp, x, dy, dx, job.image_shape, ws.shifted[:m])
        for layer, rate in enumerate(job.dropout or ()):
            if rate:
                noise.dropout_scale(xp, ws.masks[layer][:m], job.noise_seed, layer,
                                    job.noise_row0 + start, rate)
        row_weight, weight_sum = None, m
        if weighted:
            # rows weigh w_i * m / S with the unweighted scale 1 / m: gradients w_i / S and the loss
            # stat sum(w_i loss_i) * m / S, scikit-learn's per-step accounting
            weight_sum = step_weights[s]
            rw = ws.row_weight[:m]
            if job.order is None:
                rw[...] = job.sample_weight[start:start + m]
            else:
                backend.take(job.sample_weight, idx, rw)
            rw *= rw.dtype.type(m / weight_sum)
            row_weight = rw
        logits = forward(backend, job.coefs, job.intercepts, x, ws.acts, job.activation, ws)
        output_loss(backend, job.output, logits, targets, job.stats, 1.0 / m, row_weight,
                    job.label_smoothing)
        backward(backend, job.coefs, x, ws.acts, ws.deltas, ws.coef_grads, ws.intercept_grads,
                 job.activation, ws)
        learning_rate = job.learning_rate if job.step_learning_rates is None else \
            float(job.step_learning_rates[s])
        apply_update(backend, job, ws, job.alpha / weight_sum, learning_rate)


def _step_weight_sums(backend, job, rows):
    """step_weight_sums of ``job``'s sample weights in its epoch's order, read from the device
    once per epoch."""
    weights = np.asarray(backend.to_numpy(job.sample_weight), dtype=np.float64)
    if job.order is not None:
        weights = weights[np.asarray(backend.to_numpy(job.order))]
    return step_weight_sums(weights, rows)


def step_weight_sums(weights, rows):
    """(steps,) float64 on the host: the sum of each step's sample weights, ``weights`` being the
    (n,) host weights in the epoch's order and steps ``rows`` rows long (scikit-learn's S of a
    step, summed as it sums a batch's weights)."""
    weights = np.asarray(weights, dtype=np.float64)
    return np.array([weights[start:start + rows].sum()
                     for start in range(0, weights.shape[0], rows)])
