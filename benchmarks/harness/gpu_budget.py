"""The CuPy backend's launch budget on the seed workloads (``fastfnn bench --gpu-budget``).

Per workload: kernel launches and device allocations per training step, and host synchronisations
per epoch, of FastFNN's trainer epoch on the CuPy backend. The counts do not depend on the device,
so they are taken on the CUDA emulation (:mod:`fastfnn.kernels.cupy_emulation` counts them) in a
child process started with ``FASTFNN_CUDA_EMULATE=1``: after a warm-up epoch, two epochs over data
of ``s`` and ``s + 1`` steps; per step is their difference. A full-batch workload has one step per
epoch, so its figures are per epoch (one step and the epoch's own work).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from fastfnn.bench.data import synthetic_mnist
from fastfnn.bench.workloads import SEED, WORKLOADS_BY_KEY

#: Steps of the shorter counted epoch (the longer one has one more).
STEPS = 2


def _epoch_counts(workload, rows):
    """(launches, allocations, syncs, path) of the second epoch of a fresh trainer on ``rows`` rows."""
    from fastfnn.bench.variants import FastFNNVariant
    from fastfnn.kernels import cupy_emulation

    variant = FastFNNVariant("cupy", workload, synthetic_mnist(rows, seed=SEED))
    rng = np.random.default_rng(SEED)
    variant.runner.run(rng)  # the first epoch allocates the per-fit buffers
    cupy_emulation.counters.reset()
    variant.runner.run(rng)
    return (*cupy_emulation.counters.snapshot(), variant.path)


def count(workload) -> dict:
    """The budget record of ``workload``; needs this process to run on the CUDA emulation."""
    from fastfnn.kernels import cupy_backend

    if not cupy_backend.EMULATED:
        raise RuntimeError("counting needs the CUDA emulation (FASTFNN_CUDA_EMULATE=1)")
    if workload.batch_size is None:
        launches, allocations, syncs, path = _epoch_counts(workload, 64)
        return {"workload": workload.key, "path": path, "per": "epoch (1 step)",
                "launches": launches, "allocations": allocations, "syncs_per_epoch": syncs}
    short = _epoch_counts(workload, STEPS * workload.batch_size)
    long = _epoch_counts(workload, (STEPS + 1) * workload.batch_size)
    return {"workload": workload.key, "path": long[3], "per": "step",
            "launches": long[0] - short[0], "allocations": long[1] - short[1],
            "syncs_per_epoch": max(short[2], long[2])}


def measure(keys) -> list[dict]:
    """Budget records of the workloads named ``keys``, counted in a child process on the emulation."""
    env = {**os.environ, "FASTFNN_CUDA_EMULATE": "1"}
    result = subprocess.run([sys.executable, "-m", "fastfnn.bench.gpu_budget", ",".join(keys)],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"counting the GPU budget failed:\n{result.stderr}")
    return json.loads(result.stdout)


def format_budget(records) -> str:
    """The records as an aligned table: launches and allocations per step, syncs per epoch."""
    header = ("workload", "path", "launches/step", "allocations/step", "syncs/epoch")
    rows = [(r["workload"], r["path"],
             f"{r['launches']}" + ("" if r["per"] == "step" else " (per epoch)"),
             f"{r['allocations']}" + ("" if r["per"] == "step" else " (per epoch)"),
             f"{r['syncs_per_epoch']}") for r in records]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m fastfnn.bench.gpu_budget KEY,KEY``: print the records as JSON (the child side)."""
    keys = (argv if argv is not None else sys.argv[1:])[0].split(",")
    print(json.dumps([count(WORKLOADS_BY_KEY[key]) for key in keys]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
