"""The one training algorithm, parameterized by backend.

Epochs, seeded shuffling, batches from 1 row to the full set, sample weights, forward, backward,
update, scikit-learn's learning-rate schedules and those of :mod:`fastfnn.schedules`, dropout,
label smoothing and image shifts (the kernels draw the noise; one seed per epoch from the fit's
random state), validation, early stopping with best-weight restore,
history. Everything array-shaped goes through the Backend; data and buffers are put on the backend
once per fit, and the host reads the device once per epoch. (Full-batch L-BFGS is
:mod:`fastfnn.lbfgs`.)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from fastfnn.kernels import Backend, EpochJob
from fastfnn.kernels.composed import (Workspace, forward, layer_sizes_of, output_loss,
                                      step_weight_sums)
from fastfnn.schedules import SCHEDULES, epoch_rates

#: Progress callbacks per epoch, when progress is reported (each one is a host synchronisation).
PROGRESS_UPDATES = 20

#: Rows per forward pass when evaluating or predicting (bounds the buffer size, not the result).
EVAL_CHUNK = 4096

#: The adaptive schedule stops training instead of dividing a step size at or below this
#: (scikit-learn's SGDOptimizer).
ADAPTIVE_MIN_LEARNING_RATE = 1e-6

#: What the adaptive schedule divides the step size by after n_iter_no_change epochs without
#: improvement.
ADAPTIVE_DIVISOR = 5.0


class TrainingDivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or weight. The estimator whose fit raised it is left as
    it was before that fit (unfitted after a first fit), as after any failed fit.

    A FloatingPointError (what it is), and a ValueError as what scikit-learn's MLPs raise for
    non-finite weights, so ``except ValueError`` written for them catches it."""


@dataclass
class TrainConfig:
    """Resolved hyper-parameters of one fit (validated by the estimator before it gets here)."""

    activation: str
    output: str
    solver: str
    learning_rate_init: float
    batch_size: int | None  # None: full batch
    alpha: float = 0.0
    learning_rate: str = "constant"  # scikit-learn's (sgd) or one of fastfnn.schedules'
    power_t: float = 0.5
    lr_warmup: float = 0.0
    lr_step_size: int = 10
    lr_gamma: float = 0.1
    lr_interval: str = "step"
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    shuffle: bool = True
    max_iter: int = 200
    tol: float = 1e-4
    n_iter_no_change: int = 10
    early_stopping: bool = False
    label_smoothing: float = 0.0
    #: one inverted-dropout rate per layer input (EpochJob.dropout), or None
    dropout: tuple | None = None
    augment_shift: int = 0
    image_shape: tuple | None = None  # (h, w), set when augment_shift is

    @property
    def noisy(self) -> bool:
        """Whether epochs draw noise (dropout or shifts), hence a seed each from the fit's rng."""
        return self.dropout is not None or self.augment_shift > 0


@dataclass
class TrainState:
    """What a fit carries from epoch to epoch, on the backend (weights, optimizer state, counters).

    t: Adam's step count; learning_rate: sgd's current step size (its schedule moves it; None:
    learning_rate_init); samples_seen: training rows seen over every epoch (scikit-learn's ``t_``,
    which invscaling reads); validation_scores: the validation score (accuracy, or R^2 for a
    regressor) after each epoch of early stopping; fit_start: the history's length when this fit
    call began (a warm start continues the model's history, and trains max_iter epochs of its own).
    """

    coefs: list
    intercepts: list
    opt_state: list
    t: int = 0
    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    best_loss: float = math.inf
    best_score: float = -math.inf
    no_improvement: int = 0
    best_params: tuple | None = None
    finished: bool = False  # the stopping rule fired: nothing is left to train
    learning_rate: float | None = None
    samples_seen: int = 0
    validation_scores: list = field(default_factory=list)
    fit_start: int = 0  # epochs in the history before this fit call (warm start, partial_fit)


HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def new_opt_state(backend: Backend, solver, coefs, intercepts):
    """Zeroed optimizer state: sgd [vel_W, vel_b]; adam [m_W, m_b, v_W, v_b] (lists of arrays)."""
    copies = 1 if solver == "sgd" else 2
    state = []
    for _ in range(copies):
        state.append([backend.zeros(w.shape, w.dtype) for w in coefs])
        state.append([backend.zeros(b.shape, b.dtype) for b in intercepts])
    return state


def input_chunks(backend: Backend, X, x_scale, dtype, rows):
    """(start, x) for X's rows in chunks of ``rows``, in order, x (m, n_in) as the layers read
    them: X's rows themselves where X already is that (C-contiguous, of ``dtype``, x_scale 1; the
    layers never write their input), else gathered into one buffer (cast, times x_scale), which
    each chunk reuses."""
    n = X.shape[0]
    if X.dtype == dtype and x_scale == 1 and X.flags.c_contiguous:
        for start in range(0, n, rows):
            yield start, X[start:start + rows]
        return
    buf = backend.empty((rows, X.shape[1]), dtype)
    order = backend.asarray(np.arange(n, dtype=np.int64))
    for start in range(0, n, rows):
        idx = order[start:start + rows]
        yield start, backend.gather(X, idx, buf[:idx.shape[0]], x_scale)


def loss_and_correct(backend: Backend, coefs, intercepts, X, targets, activation, output,
                     x_scale, sample_weight=None):
    """Summed loss and correct-row count of the whole set (X, targets), in chunks on the backend.

    sample_weight: (n,) backend array of the parameters' dtype, or None: the loss sum is then
    weighted (the correct-row count is not). Returns a float64 backend array (2,) (loss sum, correct
    rows); no host synchronisation.
    """
    rows = min(EVAL_CHUNK, X.shape[0])
    ws = Workspace.for_layers(backend, coefs, rows, targets, gathered=False)
    stats = backend.zeros((2,), np.float64)
    for start, x in input_chunks(backend, X, x_scale, coefs[0].dtype, rows):
        m = x.shape[0]
        logits = forward(backend, coefs, intercepts, x, ws.acts, activation)
        output_loss(backend, output, logits, targets[start:start + m], stats, 0.0,
                    None if sample_weight is None else sample_weight[start:start + m])
    return stats


def output_scores(backend: Backend, coefs, intercepts, X, activation, output, x_scale):
    """The output layer's predictions for every row of X as a NumPy array (n, n_out).

    softmax output: row-wise softmax; sigmoid output: element-wise logistic; squared_error: the
    linear output; poisson: its exponential.
    """
    n = X.shape[0]
    sizes = layer_sizes_of(coefs)
    rows = min(EVAL_CHUNK, n)
    dtype = coefs[0].dtype
    acts = [backend.empty((rows, k), dtype) for k in sizes[1:]]
    result = np.empty((n, sizes[-1]), dtype=dtype)
    no_bias = backend.zeros((sizes[-1],), dtype)
    for start, x in input_chunks(backend, X, x_scale, dtype, rows):
        logits = forward(backend, coefs, intercepts, x, acts, activation)
        if output == "softmax":
            backend.softmax(logits)
        elif output == "sigmoid":
            backend.bias_act(logits, no_bias, "sigmoid")
        elif output == "poisson":
            backend.xp.exp(logits, out=logits)
        result[start:start + x.shape[0]] = backend.to_numpy(logits)
    return result


def copy_params(backend: Backend, arrays):
    """Device-side copies of a list of arrays."""
    return [backend.xp.array(a, copy=True) for a in arrays]


def train(backend: Backend, config: TrainConfig, X, targets, state: TrainState, rng,
          x_scale=1.0, validate: Callable | None = None, epochs=None, on_epoch=None,
          on_progress=None, sample_weight=None) -> TrainState:
    """Train ``state`` in place for up to ``epochs`` (default config.max_iter) epochs.

    X: (n, d) backend array (uint8 read as ``x * x_scale``, or float of the parameters' dtype);
    targets: (n,) int64 class indices or (n, k) float indicators or regression targets;
    sample_weight: (n,) host float64 array or None (every row weighs 1), weighting each step as
    scikit-learn does (see EpochJob). validate: called as ``validate(coefs, intercepts)`` after every
    epoch, it returns the held-out rows' (loss, accuracy or None, score), the score being what
    early stopping watches (higher is better); the first two go to the history.
    ``on_epoch(epoch_index, record)`` is called after each epoch with that epoch's history record.
    ``on_progress(rows_done, n, loss_sum, correct)``, when given, is called about
    :data:`PROGRESS_UPDATES` times per epoch (each call reads the device once).
    Raises TrainingDivergedError on a non-finite loss or weight (the state's weights are then
    those before the failing epoch). Returns ``state``.
    """
    runner = EpochRunner(backend, config, X, targets, state, x_scale, sample_weight)
    n = X.shape[0]
    if state.learning_rate is None:
        state.learning_rate = config.learning_rate_init
    epochs = config.max_iter if epochs is None else epochs
    for _ in range(epochs):
        started = time.perf_counter()
        last_good = (copy_params(backend, state.coefs), copy_params(backend, state.intercepts),
                     [copy_params(backend, s) for s in state.opt_state], state.t)
        rng_before = copy.deepcopy(rng.bit_generator.state)
        # Overflow is caught below as a non-finite loss or weight, with a better message.
        with np.errstate(over="ignore", invalid="ignore"):
            loss_sum, correct = runner.run(rng, on_progress)
        sumsq = _sum_of_squares(backend, state.coefs)
        # scikit-learn adds 0.5 alpha |W|^2 * m / S per step (m rows weighing S); the epoch's last
        # weights stand in for each step's.
        loss = loss_sum / n + 0.5 * config.alpha * sumsq * runner.l2_steps / n
        if not (math.isfinite(loss) and math.isfinite(sumsq)):
            # Replay the epoch step by step (same order) to name the first step that went wrong;
            # this costs time only when training has already failed.
            def restore():
                (state.coefs[:], state.intercepts[:], state.opt_state[:], state.t) = (
                    copy_params(backend, last_good[0]), copy_params(backend, last_good[1]),
                    [copy_params(backend, g) for g in last_good[2]], last_good[3])
            restore()
            rng.bit_generator.state = rng_before
            step = _first_bad_step(runner, rng, backend, state)
            restore()
            raise TrainingDivergedError(
                f"training diverged in epoch {len(state.history['loss']) + 1}, step {step}: the "
                f"loss or a weight became non-finite (learning rate "
                f"{config.learning_rate_init:g}). Try a smaller learning rate or standardised "
                f"inputs.")
        classifying = config.output in ("softmax", "sigmoid")
        record = {"loss": loss, "accuracy": correct / n if classifying else None,
                  "val_loss": None, "val_accuracy": None}
        score = None
        if validate is not None:
            record["val_loss"], record["val_accuracy"], score = validate(state.coefs,
                                                                         state.intercepts)
            state.validation_scores.append(score)
        record["seconds"] = time.perf_counter() - started
        for key in HISTORY_KEYS:
            state.history[key].append(record[key])
        state.samples_seen += n
        if config.solver == "sgd" and config.learning_rate == "invscaling":
            state.learning_rate = (config.learning_rate_init
                                   / (state.samples_seen + 1) ** config.power_t)
        state.finished = _should_stop(backend, config, state, loss, score)
        if on_epoch is not None:
            on_epoch(len(state.history["loss"]) - 1, record)
        if state.finished:
            break
    if config.early_stopping and state.best_params is not None:
        state.coefs[:], state.intercepts[:] = state.best_params
    return state


class EpochRunner:
    """The per-fit half of training: data on the backend in the form batches read it, the
    workspace; :meth:`run` trains ``state`` for one epoch with them.

    When batches are plain slices (full batch, or no shuffling) uint8 data is converted to the
    compute dtype once here rather than once per step.
    """

    def __init__(self, backend: Backend, config: TrainConfig, X, targets, state: TrainState,
                 x_scale=1.0, sample_weight=None):
        self.backend, self.config, self.state = backend, config, state
        self.n = n = X.shape[0]
        self.rows = n if config.batch_size is None else min(config.batch_size, n)
        #: host float64 (n,) weights, or None; on the backend in the parameters' dtype below
        self.sample_weight = sample_weight
        #: sum over the last epoch's steps of rows / weight sum (the steps' count unweighted)
        self.l2_steps = math.ceil(n / self.rows)
        # Full-batch descent sums over every row whatever the order, so it is never shuffled.
        self.in_order = self.rows == n or not config.shuffle
        dtype = state.coefs[0].dtype
        if self.in_order and (X.dtype != dtype or x_scale != 1):
            X = backend.gather(X, backend.asarray(np.arange(n, dtype=np.int64)),
                               backend.empty(X.shape, dtype), x_scale)
            x_scale = 1.0
        self.X, self.targets, self.x_scale = X, targets, x_scale
        weighted = sample_weight is not None
        self.device_weight = backend.asarray(sample_weight, dtype) if weighted else None
        self.ws = Workspace.for_layers(backend, state.coefs, self.rows, targets,
                                       gathered=not self.in_order, weighted=weighted,
                                       dropout=config.dropout, shifted=config.augment_shift > 0)
        #: "fused" or "composed": how the last epoch ran.
        self.path = None

    def run(self, rng, on_progress=None, steps_per_part=None):
        """One epoch (shuffled with ``rng`` unless in order); returns (loss sum, correct rows).

        ``on_progress(rows_done, n, loss_sum, correct)``, when given, is called after every
        ``steps_per_part`` steps (default: about :data:`PROGRESS_UPDATES` times per epoch).
        """
        backend, config, state, ws = self.backend, self.config, self.state, self.ws
        host_order = None if self.in_order else rng.permutation(self.n).astype(np.int64)
        noise_seed = int(rng.integers(2**63)) if config.noisy else 0
        step_rates = None
        if config.learning_rate in SCHEDULES:
            step_rates = epoch_rates(
                config.learning_rate, len(state.history["loss"]) - state.fit_start,
                math.ceil(self.n / self.rows), config.max_iter, config.learning_rate_init,
                interval=config.lr_interval, warmup=config.lr_warmup,
                step_size=config.lr_step_size, gamma=config.lr_gamma)
        order = None if host_order is None else backend.asarray(host_order)
        if self.sample_weight is not None:
            weights = self.sample_weight if host_order is None else self.sample_weight[host_order]
            sums = step_weight_sums(weights, self.rows)
            if not sums.all():  # its gradient would be 0 / 0: scikit-learn divides by zero too
                first = self.rows * int(np.argmin(sums != 0))
                last = min(first + self.rows, self.n) - 1
                raise ValueError(
                    f"sample_weight: every row of a training step (rows {first}..{last} of the "
                    f"epoch's {'order' if host_order is None else 'shuffled order'}, batch_size="
                    f"{self.rows}) weighs zero, and a step averages its gradient over its weight; "
                    "leave out the rows that weigh zero or use a larger batch_size")
            sizes = np.minimum(self.rows, self.n - self.rows * np.arange(len(sums)))
            self.l2_steps = float(np.sum(sizes / sums))
        ws.stats[...] = 0
        job = EpochJob(
            X=self.X, targets=self.targets, order=order, batch_size=self.rows,
            coefs=state.coefs, intercepts=state.intercepts, activation=config.activation,
            output=config.output, solver=config.solver, opt_state=state.opt_state,
            learning_rate=(config.learning_rate_init if state.learning_rate is None
                           else state.learning_rate),
            momentum=config.momentum, nesterovs_momentum=config.nesterovs_momentum,
            beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon,
            alpha=config.alpha, t=state.t, x_scale=self.x_scale, stats=ws.stats, workspace=ws,
            sample_weight=self.device_weight, step_learning_rates=step_rates,
            label_smoothing=config.label_smoothing, dropout=config.dropout, noise_seed=noise_seed,
            augment_shift=config.augment_shift, image_shape=config.image_shape)
        part_rows = self.n
        # parts draw their rows' noise (noise_row0): the same model, where the backend's epoch
        # splits exactly; else progress comes once, at the epoch's end
        if on_progress is not None and backend.splits_exactly(job):
            part_rows = self.rows * (steps_per_part or
                                     max(1, math.ceil(self.n / PROGRESS_UPDATES / self.rows)))
        for start in range(0, self.n, part_rows):
            stop = min(start + part_rows, self.n)
            if part_rows >= self.n:
                part = job
            elif order is None:
                part = replace(job, X=self.X[start:stop], targets=self.targets[start:stop],
                               sample_weight=None if self.device_weight is None
                               else self.device_weight[start:stop])
            else:
                part = replace(job, order=order[start:stop])
            if part is not job:
                part = replace(part, noise_row0=start)
            if step_rates is not None and part is not job:
                part = replace(part, step_learning_rates=step_rates[start // self.rows:
                                                                    -(-stop // self.rows)])
            self.path = backend.run_epoch(part)
            job.t = part.t
            if on_progress is not None:
                loss_sum, correct = backend.to_numpy(ws.stats)
                on_progress(stop, self.n, float(loss_sum), float(correct))
        state.t = job.t
        loss_sum, correct = backend.to_numpy(ws.stats)
        return float(loss_sum), float(correct)


def _sum_of_squares(backend: Backend, coefs) -> float:
    return sum(float(backend.xp.vdot(w, w)) for w in coefs)


class _StepFailed(Exception):
    """Raised inside a diagnostic replay at the first step with a non-finite loss or weight."""


def _first_bad_step(runner: EpochRunner, rng, backend: Backend, state: TrainState) -> int:
    """1-based index of the first step of the epoch whose loss or weights are not finite."""
    steps = []

    def check(rows_done, n, loss_sum, correct):
        steps.append(rows_done)
        if not (math.isfinite(loss_sum) and math.isfinite(_sum_of_squares(backend, state.coefs))):
            raise _StepFailed

    with np.errstate(over="ignore", invalid="ignore"):
        try:
            runner.run(rng, check, steps_per_part=1)
        except _StepFailed:
            pass
    return len(steps)


def _should_stop(backend: Backend, config: TrainConfig, state: TrainState, loss, score) -> bool:
    """scikit-learn's stopping rule: n_iter_no_change epochs without a tol improvement of the
    training ``loss`` (or, with early stopping, of the validation ``score``) stop training, except
    that sgd's adaptive schedule first divides its step size by 5 while it is above 1e-6."""
    if config.early_stopping:
        if score < state.best_score + config.tol:
            state.no_improvement += 1
        else:
            state.no_improvement = 0
        if score > state.best_score:
            state.best_score = score
            state.best_params = (copy_params(backend, state.coefs),
                                 copy_params(backend, state.intercepts))
    else:
        if loss > state.best_loss - config.tol:
            state.no_improvement += 1
        else:
            state.no_improvement = 0
        state.best_loss = min(state.best_loss, loss)
    if state.no_improvement <= config.n_iter_no_change:
        return False
    if (config.solver == "sgd" and config.learning_rate == "adaptive"
            and state.learning_rate > ADAPTIVE_MIN_LEARNING_RATE):
        state.learning_rate /= ADAPTIVE_DIVISOR
        state.no_improvement = 0
        return False
    return True
