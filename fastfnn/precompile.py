"""Ahead-of-time compilation for users, Docker images and cluster workers: :func:`warmup`.

A backend that compiles (Numba) does it the first time each kernel signature runs and caches the
result on disk; :func:`warmup` runs every signature a fit, a prediction or an evaluation reaches
(:func:`fastfnn.kernels.warmup.warm_up`) so the first real fit finds them all cached.
"""

from __future__ import annotations

import contextlib
import os
import time

from fastfnn.backends import get_backend
from fastfnn.kernels.warmup import DTYPES, INPUTS, check_choices, warm_up


def warmup(backend="auto", dtypes=DTYPES, inputs=INPUTS, on_done=None) -> dict:
    """Compile (or load from the cache) every kernel ``backend`` runs, for each dtype x input kind.

    backend: a backend name or ``"auto"``; dtypes: some of ``("float32", "float64")`` (the estimator's
    ``dtype``); inputs: some of ``("uint8", "float")`` (8-bit intensities, or floats). ``on_done(line,
    seconds)`` is called after each combination. Returns ``{"backend": name, "seconds": total,
    "done": [(line, seconds), ...], "cache": where compiled kernels are kept (or "")}``.
    Raises ValueError for an unknown or unavailable backend, dtype or input kind, before compiling.
    """
    engine = get_backend(backend)
    dtypes, inputs = tuple(dtypes), tuple(inputs)
    check_choices(dtypes, inputs)
    done, started = [], time.perf_counter()
    with _no_compile_notice():  # this reports its own progress
        for dtype in dtypes:
            for kind in inputs:
                begin = time.perf_counter()
                (line,) = warm_up(engine, dtypes=(dtype,), inputs=(kind,))
                done.append((line, time.perf_counter() - begin))
                if on_done is not None:
                    on_done(*done[-1])
    return {"backend": engine.name, "seconds": time.perf_counter() - started, "done": done,
            "cache": engine.describe().get("cache", "")}


@contextlib.contextmanager
def _no_compile_notice():
    """Silence the Numba backend's one-line compile notice (FASTFNN_COMPILE_NOTICE=0) meanwhile."""
    previous = os.environ.get("FASTFNN_COMPILE_NOTICE")
    os.environ["FASTFNN_COMPILE_NOTICE"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["FASTFNN_COMPILE_NOTICE"]
        else:
            os.environ["FASTFNN_COMPILE_NOTICE"] = previous
