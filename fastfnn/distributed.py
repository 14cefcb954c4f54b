"""FastFNN on clusters: workers that start with a warm compile cache (Dask and Ray), and a Ray Tune
trainable that early-stopping schedulers (ASHA) can stop between epochs.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile

import numpy as np

try:
    from distributed import WorkerPlugin
except ImportError:  # Ray without Dask: the Ray hook below needs nothing from Dask
    WorkerPlugin = object

from fastfnn.model import FastFNN
from fastfnn.precompile import warmup

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
