"""The CuPy backend's launch budget on the workloads (``fastfnn bench --gpu-budget``).

Per workload, FastFNN's trainer epoch on the CuPy backend: kernel launches and device allocations
per training step when the epoch runs launch by launch (its first epoch), and launches and host
synchronisations per epoch once it replays a captured CUDA graph (from its third). The counts do
not depend on the device, so they are taken on the CUDA emulation
(:mod:`fastfnn.kernels.cupy_emulation` counts them) in a child process started with
``FASTFNN_CUDA_EMULATE=1``: per step is the difference between epochs of ``s`` and ``s + 1`` steps.
A full-batch workload has one step per epoch, so its per-step figures are its first epoch's
(per-fit buffers allocated included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from fastfnn.bench.data import DataSource
from fastfnn.bench.workloads import SEED, WORKLOADS_BY_KEY

#: Steps of the shorter counted epoch (the longer one has one more).
STEPS = 2


def _epoch_counts(workload, rows):
    """[(launches, allocations, syncs)] of the first three epochs of a fresh trainer on ``rows``
    rows (launch by launch, captured, replayed), and the path it reported."""
    from fastfnn.bench.variants import FastFNNVariant
    from fastfnn.kernels import cupy_emulation

    data = DataSource(rows, synthetic=True, rows_override=rows).for_workload(workload)
    variant = FastFNNVariant("cupy", workload, data)
    rng = np.random.default_rng(SEED)
    counts = []
    for _ in range(3):
        cupy_emulation.counters.reset()
        variant.runner.run(rng)
        counts.append(cupy_emulation.counters.snapshot())
    return counts, variant.path


def count(workload) -> dict:
    """The budget record of ``workload``; needs this process to run on the CUDA emulation."""
    from fastfnn.kernels import cupy_backend

    if not cupy_backend.EMULATED:
        raise RuntimeError("counting needs the CUDA emulation (FASTFNN_CUDA_EMULATE=1)")
    if workload.batch_size is None:
        short, path = _epoch_counts(workload, 64)
        per_step = short[0][:2]
        per = "epoch (1 step)"
    else:
        short, path = _epoch_counts(workload, STEPS * workload.batch_size)
        long, _ = _epoch_counts(workload, (STEPS + 1) * workload.batch_size)
        per_step = (long[0][0] - short[0][0], long[0][1] - short[0][1])
        per = "step"
    return {"workload": workload.key, "path": path, "per": per, "launches": per_step[0],
            "allocations": per_step[1], "graph_launches_per_epoch": short[2][0],
            "syncs_per_epoch": max(c[2] for c in short)}


def measure(keys) -> list[dict]:
    """Budget records of the workloads named ``keys``, counted in a child process (emulated)."""
    env = {**os.environ, "FASTFNN_CUDA_EMULATE": "1"}
    result = subprocess.run([sys.executable, "-m", "fastfnn.bench.gpu_budget", ",".join(keys)],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"counting the GPU budget failed:\n{result.stderr}")
    return json.loads(result.stdout)


def format_budget(records) -> str:
    """The records as an aligned table."""
    header = ("workload", "path", "launches/step", "allocations/step", "launches/epoch (graph)",
              "syncs/epoch")
    rows = []
    for r in records:
        per = "" if r["per"] == "step" else " (1st epoch)"
        rows.append((r["workload"], r["path"], f"{r['launches']}{per}", f"{r['allocations']}{per}",
                     f"{r['graph_launches_per_epoch']}", f"{r['syncs_per_epoch']}"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m fastfnn.bench.gpu_budget KEY,KEY``: print the records as JSON (child side)."""
    keys = (argv if argv is not None else sys.argv[1:])[0].split(",")
    print(json.dumps([count(WORKLOADS_BY_KEY[key]) for key in keys]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
