"""FastFNN on clusters: workers that start with a warm compile cache (Dask and Ray), a Ray Tune
trainable that early-stopping schedulers (ASHA) can stop between epochs, and data-parallel training
of one model over the shards Dask workers hold (local SGD: :func:`fit_data_parallel`).

A Numba worker compiles the kernels of its first fit (about 20 s per weight dtype x input kind)
unless they are in its compile cache; a worker that finds them there loads them in under a second.
So every worker should warm the cache when it starts, and all the workers of a machine (or of a
shared file system) should share one cache, so that only the first one compiles:

- Dask: ``client.register_plugin(WarmupPlugin(dtypes=..., inputs=...))`` warms every worker, now and
  as it joins; give the workers one cache with ``LocalCluster(env={"NUMBA_CACHE_DIR": path})`` (or
  the variable in ``dask worker``'s environment).
- Ray: ``ray.init(runtime_env=ray_runtime_env(cache_dir=path, dtypes=..., inputs=...))`` warms every
  worker process before it runs a task and gives it that cache.

Without NUMBA_CACHE_DIR the cache is the ``__pycache__`` folder beside the installed package:
already shared by the workers of one machine when it is writable. Warming takes a lock file in the
temporary folder, so the workers of one machine warm one after the other: the first compiles, the
others load.

Data-parallel training assumes every shard fits in its worker's memory and the model in the
driver's; each round moves the parameters and optimizer state to every worker and back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import os
import tempfile

import numpy as np

try:
    from distributed import WorkerPlugin
except ImportError:  # Ray without Dask: the Ray hook below needs nothing from Dask
    WorkerPlugin = object

from fastfnn.model import FastFNN, _seed_of
from fastfnn.precompile import warmup
from fastfnn.streaming import STOCHASTIC_SOLVERS, label_options, positive_int
from fastfnn.validation import feature_names

#: The file whose lock serialises warm-ups on one machine.
WARMUP_LOCK = os.path.join(tempfile.gettempdir(), "fastfnn-warmup.lock")


def warm_worker(backend="auto", dtypes=("float32",), inputs=("uint8", "float")) -> dict:
    """Compile (or load from the cache) the kernels a worker's fits will run: :func:`fastfnn.warmup`
    for ``dtypes`` x ``inputs`` (see there), one worker of this machine at a time.

    Returns warmup's report. ValueError for an unknown or unavailable backend, dtype or input kind.
    """
    with _machine_lock():
        return warmup(backend, dtypes=dtypes, inputs=inputs)


class WarmupPlugin(WorkerPlugin):
    """Dask worker plugin: each worker runs :func:`warm_worker` with these arguments when it starts
    (or when the plugin is registered), in a thread so that the worker keeps answering meanwhile.

    ``client.register_plugin(WarmupPlugin(dtypes=("float32",), inputs=("uint8",)))``.
    """

    name = "fastfnn-warmup"

    def __init__(self, backend="auto", dtypes=("float32",), inputs=("uint8", "float")):
        self.options = {"backend": backend, "dtypes": tuple(dtypes), "inputs": tuple(inputs)}

    async def setup(self, worker):  # noqa: ARG002 - Dask's signature
        await asyncio.to_thread(warm_worker, **self.options)


def ray_runtime_env(cache_dir=None, backend="auto", dtypes=("float32",),
                    inputs=("uint8", "float")) -> dict:
    """A ``runtime_env`` for ``ray.init`` (or a task's or an actor's options): every worker process
    runs :func:`warm_worker` with these arguments before its first task, with NUMBA_CACHE_DIR set to
    ``cache_dir`` (a folder all workers can write) when given.
    """
    hook = functools.partial(warm_worker, backend=backend, dtypes=tuple(dtypes),
                             inputs=tuple(inputs))
    # Ray names the hook by its __name__, which a bare partial lacks.
    runtime_env = {"worker_process_setup_hook": functools.update_wrapper(hook, warm_worker)}
    if cache_dir is not None:
        runtime_env["env_vars"] = {"NUMBA_CACHE_DIR": os.fspath(cache_dir)}
    return runtime_env


def epochs_trainable(config, *, X, y, X_val, y_val, epochs):
    """Ray Tune function trainable: ``FastFNN(**config)`` trained one ``partial_fit`` epoch at a
    time over (X, y), reporting ``{"epoch": k, "accuracy": score on (X_val, y_val), "loss": the
    epoch's training loss}`` after each of at most ``epochs``, so that a scheduler such as ASHA can
    stop it between epochs. Pass the data with ``tune.with_parameters(epochs_trainable, X=...,
    y=..., X_val=..., y_val=..., epochs=...)`` (Ray's object store then holds one copy).
    """
    from ray import tune  # only Tune calls this

    model = FastFNN(**config)
    classes = np.unique(y)
    for epoch in range(1, epochs + 1):
        model.partial_fit(X, y, classes=classes)
        tune.report({"epoch": epoch, "accuracy": model.score(X_val, y_val), "loss": model.loss_})


def fit_data_parallel(model, client, X, y, *, epochs=None, sync_every=None, classes=None,
                      on_round=None):
    """Train one FastFNN (or FastFNNRegressor) over shards of (X, y) held by Dask workers,
    averaging every round.

    Each of the client's workers holds one shard (a contiguous block of rows): a dask array's blocks
    are computed where they are, NumPy arrays are split and scattered. In each round every worker
    continues the model from the round's start with ``partial_fit`` over its next rows
    (``sync_every`` mini-batches of ``model.batch_size`` rows, or its whole shard when None: once
    per epoch); the driver then averages the weights, biases and optimizer state (velocities, Adam's
    moments) over the workers, weighted by the rows each trained (local SGD). Each epoch visits
    every shard's rows in a fresh order drawn from ``model.random_state`` (an int; a RandomState
    or Generator: a seed drawn from it, as ``fit`` does; None: drawn).

    model: an unfitted estimator whose parameters are used (it is not changed).
    X: (n, n_features) dask array or array; y: (n,) labels or targets, the same kind.
    epochs: None: ``model.max_iter``.
    classes: a classifier's every label; None: those of y
        (:func:`fastfnn.streaming.label_options`).
    on_round: called as ``on_round(epoch, round_index, fitted)`` after each averaging, ``fitted``
        the averaged model.
    Returns a new fitted estimator of the model's kind; its ``history_`` has one entry per round
    (the workers' losses averaged), its ``feature_names_in_`` a data frame X's column names.
    ValueError for a solver without partial_fit (lbfgs), mismatched lengths, bad epochs or
    sync_every, a model whose batch_size is not a number (sync_every needs it), or fewer rows
    than workers.
    """
    if model.solver not in STOCHASTIC_SOLVERS:
        raise ValueError(f"data-parallel training averages partial_fit rounds, which need a "
                         f"stochastic solver {STOCHASTIC_SOLVERS}; the model has "
                         f"solver={model.solver!r}")
    epochs = positive_int("epochs", model.max_iter if epochs is None else epochs)
    if sync_every is not None:
        sync_every = positive_int("sync_every", sync_every)
    if sync_every is not None and not isinstance(model.batch_size, (int, np.integer)):
        raise ValueError(f"sync_every counts mini-batches: it needs an int batch_size, got "
                         f"{model.batch_size!r}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; expected one label per sample")
    workers = sorted(client.scheduler_info()["workers"])
    if len(X) < len(workers):
        raise ValueError(f"{len(X)} rows cannot make a shard for each of {len(workers)} workers")
    names = feature_names(X)  # a data frame's, before the shards make arrays of it
    params = model.get_params()
    # the workers and the shard orders need one int seed: drawn from a RandomState or Generator
    # (as fit does), or fresh for None
    params["random_state"] = _seed_of(params["random_state"])
    labelled = label_options(model, y, classes)
    shards = _place_shards(client, X, y, workers)
    rows_per_round = None if sync_every is None else sync_every * params["batch_size"]
    longest = max(size for _, _, size in shards)
    rounds = 1 if rows_per_round is None else math.ceil(longest / rows_per_round)
    seeds = np.random.SeedSequence(params["random_state"])
    state = None  # first round: every worker starts from the same seeded initial weights
    for epoch in range(epochs):
        orders = [np.random.default_rng(seed).permutation(size)
                  for seed, (_, _, size) in zip(seeds.spawn(len(shards)), shards)]
        for index in range(rounds):
            parts = [order if rows_per_round is None else
                     order[index * rows_per_round:(index + 1) * rows_per_round]
                     for order in orders]
            tasks = [client.submit(_train_shard, type(model), params, state, X_part, y_part,
                                   rows, labelled, workers=[worker], pure=False)
                     for (X_part, y_part, _), rows, worker in zip(shards, parts, workers)
                     if len(rows)]
            state = average_states(client.gather(tasks),
                                   [len(rows) for rows in parts if len(rows)],
                                   0 if state is None else state.t)
            if on_round is not None:
                on_round(epoch, index, type(model).from_fitted_state(state))
    return type(model).from_fitted_state(dataclasses.replace(state, feature_names=names))


def average_states(states, weights, start_t=0):
    """The FittedState whose weights, biases and optimizer arrays are the ``weights``-weighted
    means of ``states``' (same layers, solver and dtype); everything else is the first state's,
    except the last history entry's numbers, averaged too (each state's last one is its round),
    and ``t``, the samples seen: ``start_t`` (where every state started from) plus each state's
    rows since then."""
    weights = np.asarray(weights, dtype=np.float64)

    def mean(arrays):
        return np.tensordot(weights / weights.sum(), np.stack(arrays), axes=1).astype(
            arrays[0].dtype)

    def mean_each(lists):
        return [mean(list(layer)) for layer in zip(*lists)]

    first = states[0]
    optimizer = first.optimizer
    if optimizer is not None:
        groups = zip(*(s.optimizer.groups for s in states))  # per group, every state's lists
        optimizer = dataclasses.replace(optimizer, groups=[mean_each(g) for g in groups])
    history = {key: list(values) for key, values in first.history.items()}
    for key, values in history.items():
        last = [s.history[key][-1] for s in states]
        if values and all(isinstance(v, (int, float)) for v in last):
            values[-1] = float(np.average(last, weights=weights))
    return dataclasses.replace(first, coefs=mean_each([s.coefs for s in states]),
                               intercepts=mean_each([s.intercepts for s in states]),
                               optimizer=optimizer, history=history,
                               t=start_t + sum(s.t - start_t for s in states))


def _place_shards(client, X, y, workers):
    """One (X part, y part, rows) per worker, each part a future held by that worker."""
    bounds = np.linspace(0, len(X), len(workers) + 1).astype(int)
    shards = []
    for worker, start, stop in zip(workers, bounds[:-1], bounds[1:]):
        parts = []
        for array in (X, y):
            part = array[start:stop]
            if hasattr(part, "dask"):  # a dask array: computed on the worker that keeps it
                parts.append(client.submit(np.asarray, part, workers=[worker], pure=False))
            else:
                # hash=False: a new key per fit, else a second fit on the same data would share
                # the first one's keys while the scheduler releases them (lost dependencies).
                parts.append(client.scatter(np.asarray(part), workers=[worker], hash=False))
        shards.append((*parts, int(stop - start)))
    return shards


def _train_shard(kind, params, state, X, y, rows, labelled):
    """One round on one worker: the ``kind`` estimator at ``state`` (None: fresh from ``params``)
    after one partial_fit over ``X[rows]`` (told ``labelled``); returns its FittedState."""
    model = kind(**params) if state is None else kind.from_fitted_state(state)
    model.partial_fit(X[rows], y[rows], **labelled)
    return model.fitted_state_


@contextlib.contextmanager
def _machine_lock():
    """Hold an exclusive lock on :data:`WARMUP_LOCK` (no lock where fcntl is missing: Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(WARMUP_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
