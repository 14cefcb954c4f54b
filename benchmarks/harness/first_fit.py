"""First-fit overhead (JIT compile or cache load), measured in fresh processes with their own Numba cache.

A fresh process fits the seed network twice, once with an empty Numba cache (cold: everything
compiles) and once more, in another process, on the cache that run left behind (warm: cached code is
loaded); the overhead is each process's first fit time minus its second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from fastfnn.bench.data import load_data
from fastfnn.bench.workloads import SEED

#: The fit whose first-call overhead ``--compile`` measures: the seed network, batch 128, one epoch.
FIRST_FIT = dict(hidden_layer_sizes=(128, 64), solver="sgd", batch_size=128, learning_rate_init=0.1,
                 momentum=0.0, max_iter=1, random_state=SEED, dtype="float32")
FIRST_FIT_NETWORK = "-".join(map(str, (784, *FIRST_FIT["hidden_layer_sizes"], 10)))


def first_fit_child(options_json):
    """Child process of :func:`first_fit_times`: import, load, fit twice; print the times as JSON."""
    import warnings

    started = time.perf_counter()
    options = json.loads(options_json)
    from fastfnn import FastFNN
    data = load_data(options["rows"], options["data"], options["synthetic"])
    loaded = time.perf_counter()
    fits = []
    for _ in range(2):
        model = FastFNN(backend=options["backend"], **FIRST_FIT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=1 does not converge, on purpose
            begin = time.perf_counter()
            model.fit(data.X, data.y)
            fits.append(time.perf_counter() - begin)
    print(json.dumps({"import_and_load_s": loaded - started, "first_fit_s": fits[0],
                      "second_fit_s": fits[1]}))


def first_fit_times(backend, cache_dir, rows, data_dir=None, synthetic=False):
    """Times of one fresh process (see :func:`first_fit_child`) with Numba's cache in ``cache_dir``.

    Returns a dict of seconds: import_and_load_s, first_fit_s, second_fit_s. Raises RuntimeError
    with the child's error output when it fails.
    """
    options = json.dumps({"backend": backend, "rows": rows, "data": data_dir, "synthetic": synthetic})
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, "-c", "import sys; from fastfnn.bench.first_fit import "
                           "first_fit_child; first_fit_child(sys.argv[1])", options],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the first-fit process failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_fit_overhead(backend, rows, data_dir=None, synthetic=False):
    """Cold and warm first-fit overhead of ``backend`` (seconds over a warm fit in the same process).

    Cold: a process whose Numba cache directory starts empty, so every kernel it runs compiles.
    Warm: a second process on the cache the first one wrote. Returns a record with both overheads
    and the raw times of both processes.
    """
    with tempfile.TemporaryDirectory(prefix="fastfnn-bench-cache-") as cache_dir:
        cold = first_fit_times(backend, cache_dir, rows, data_dir, synthetic)
        warm = first_fit_times(backend, cache_dir, rows, data_dir, synthetic)
    return {"backend": backend, "rows": rows,
            "cold_extra_s": max(0.0, cold["first_fit_s"] - cold["second_fit_s"]),
            "warm_extra_s": max(0.0, warm["first_fit_s"] - warm["second_fit_s"]),
            "cold": cold, "warm": warm}
