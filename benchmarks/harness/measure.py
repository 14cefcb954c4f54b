"""Timing: each variant's first epoch apart, then interleaved rounds of one epoch per variant.

Variants take turns (the starting one rotates) so that drifts of the machine hit them alike; each
epoch starts after a short sleep (``SETTLE_S``) so that the previous variant's busy-waiting thread
pools are idle. Each epoch is timed where it runs (:meth:`Variant.timed_epoch`: ``time.perf_counter``
around the epoch, in this process or in the variant's worker process); a variant's epoch
synchronizes its device itself.
"""

from __future__ import annotations

import statistics
import time

from fastfnn.bench.variants import BOUND, FLOOR, TORCH, TORCH_CUDA
from fastfnn.bench.workloads import batch_sizes, epoch_flops

#: The variant the "/ numpy" ratio divides by.
NUMPY = "fastfnn[numpy]"

#: Seconds of idle time before each timed epoch. The variants' thread pools busy-wait after use
#: (OpenBLAS's workers for about 0.1 s): without a pause, an epoch right after another variant's
#: shares the cores with those spinning threads (PyTorch ran 7x slower after a NumPy epoch here).
SETTLE_S = 0.15


def _settled_epoch(variant, settle):
    """Sleep ``settle`` seconds, then one timed epoch of ``variant``: (seconds, mean loss)."""
    if settle:
        time.sleep(settle)
    return variant.timed_epoch()


def measure_workload(workload, variants, reps, progress=None, settle=SETTLE_S, skipped=None):
    """First epoch of each variant (untimed rounds), then ``reps`` interleaved rounds of one epoch each.

    Every epoch is preceded by ``settle`` seconds of sleep, so that the previous variant's thread
    pools have stopped spinning.

    A variant whose epoch raises is dropped, its timings too (noted in ``skipped``, when given);
    the others go on. Returns one record per variant that ran every epoch: name, kind, path,
    first-epoch seconds, the timed seconds and the last epoch's mean loss.
    """
    first, loss = {}, {}
    active = []

    def failed(variant, which, exc):
        if skipped is not None:
            skipped[f"{variant.name} on {workload.key}"] = f"{which} failed: {exc!r}"

    for variant in variants:
        try:
            first[variant.name], loss[variant.name] = _settled_epoch(variant, settle)
        except Exception as exc:  # noqa: BLE001 - report a broken variant, time the others
            failed(variant, "first epoch", exc)
            continue
        active.append(variant)
        if progress:
            progress(f"  {workload.key:<24} {variant.name:<16} first epoch {first[variant.name]:.3f} s")
    times = {variant.name: [] for variant in active}
    for rep in range(reps):
        if not active:
            break
        shift = rep % len(active)
        for variant in active[shift:] + active[:shift]:
            try:
                seconds, loss[variant.name] = _settled_epoch(variant, settle)
            except Exception as exc:  # noqa: BLE001 - as above
                failed(variant, f"timed epoch {rep + 1}", exc)
                active.remove(variant)
                continue
            times[variant.name].append(seconds)
    return [{"name": v.name, "kind": v.kind, "path": v.path, "first_epoch_s": first[v.name],
             "times_s": times[v.name], "loss": loss[v.name]} for v in active]


def summarize(workload, rows, records):
    """Add medians, ratios to PyTorch (CPU and CUDA), to FastFNN's NumPy backend, to the floor and
    to the bound, flops and GFLOP/s to a workload's records (``rows``: its rows per epoch)."""
    flops = epoch_flops(workload.sizes, rows, workload.batch_size)
    medians = {r["name"]: statistics.median(r["times_s"]) for r in records}
    numpy_s = medians.get(NUMPY)
    torch_s = medians.get(TORCH)
    torch_cuda_s = medians.get(TORCH_CUDA)
    floor_s = medians.get(FLOOR)
    bound_s = medians.get(BOUND)
    out = []
    for r in records:
        median = medians[r["name"]]
        out.append({
            "workload": workload.key, "description": workload.description,
            "sizes": list(workload.sizes), "batch_size": workload.batch_size, "lr": workload.lr,
            "dtype": workload.dtype, "solver": workload.solver, "inputs": workload.inputs,
            "rows": rows, "steps": len(batch_sizes(rows, workload.batch_size)),
            "variant": r["name"], "kind": r["kind"], "path": r["path"],
            "median_s": median, "min_s": min(r["times_s"]), "times_s": list(r["times_s"]),
            "first_epoch_s": r["first_epoch_s"], "loss": r.get("loss"),
            "ratio_to_numpy": median / numpy_s if numpy_s else None,
            "ratio_to_torch": median / torch_s if torch_s else None,
            "ratio_to_torch_cuda": median / torch_cuda_s if torch_cuda_s else None,
            "ratio_to_floor": median / floor_s if floor_s else None,
            "ratio_to_bound": median / bound_s if bound_s else None,
            "gemm_flops": flops, "gflops": flops / median / 1e9 if median > 0 else None,
        })
    return out
