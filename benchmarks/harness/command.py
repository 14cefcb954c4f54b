"""Time one training epoch of the seed workloads on every backend, beside PyTorch (``fastfnn bench``).

The command: its options, their checks, the run over workloads and the printed report (and JSON).
``fastfnn bench`` and ``python -m fastfnn.bench`` both come here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from fastfnn.bench import gpu_budget
from fastfnn.bench.data import load_data
from fastfnn.bench.first_fit import FIRST_FIT, FIRST_FIT_NETWORK, first_fit_overhead
from fastfnn.bench.measure import SETTLE_S, measure_workload, summarize
from fastfnn.bench.report import format_table, machine_info, warmup_overhead
from fastfnn.bench.variants import COMPARISONS, build_variants
from fastfnn.bench.workloads import EXTRA_WORKLOADS, WORKLOADS, WORKLOADS_BY_KEY
from fastfnn.io.atomic import atomic_write

#: Rows per epoch by default (MNIST's training set) and with ``--quick``.
DEFAULT_ROWS = 60000
QUICK_ROWS = 3000
#: Timed epochs per variant by default and with ``--quick``.
DEFAULT_REPS = 5
QUICK_REPS = 5


def add_arguments(parser):
    """Add the ``bench`` options to an argparse parser (the ``fastfnn bench`` subcommand's)."""
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer rows ({QUICK_ROWS}) and reps ({QUICK_REPS}): well under a minute")
    parser.add_argument("--json", metavar="PATH", help="write the raw numbers (every timing) as JSON")
    parser.add_argument("--backends", metavar="A,B",
                        help="FastFNN backends to time (default: every available one)")
    parser.add_argument("--compare", metavar="A,B", default="torch,loop",
                        help="comparisons: 'torch' (PyTorch eager CPU), 'torch-cuda' (PyTorch eager "
                             "on the GPU), 'loop' (hand-written NumPy), or 'none' (default: "
                             "torch,loop; the GEMM floor is always timed)")
    parser.add_argument("--workloads", metavar="K,K",
                        help=f"workloads to run (default: {', '.join(w.key for w in WORKLOADS)}; "
                             f"also {', '.join(w.key for w in EXTRA_WORKLOADS)})")
    parser.add_argument("--rows", type=int, metavar="N",
                        help=f"training rows per epoch (default {DEFAULT_ROWS}, --quick {QUICK_ROWS})")
    parser.add_argument("--reps", type=int, metavar="N",
                        help=f"timed epochs per variant (default {DEFAULT_REPS}, --quick {QUICK_REPS})")
    parser.add_argument("--data", metavar="DIR",
                        help="folder with the MNIST IDX files (or DIR/mnist); default: "
                             "$FASTFNN_DATA/mnist or the cache, else synthetic data")
    parser.add_argument("--synthetic", action="store_true",
                        help="use random MNIST-shaped data, read no files")
    parser.add_argument("--settle", type=float, default=SETTLE_S, metavar="S",
                        help="seconds of sleep before each epoch, for the previous variant's "
                             f"spinning threads to go idle (default {SETTLE_S})")
    parser.add_argument("--torch-threads", type=int, metavar="N",
                        help="PyTorch intra-op threads (default: the usable CPU cores)")
    parser.add_argument("--gpu-budget", action="store_true",
                        help="instead of timing: print, per workload, the CuPy backend's kernel "
                             "launches and allocations per training step, launches per epoch as a "
                             "CUDA graph and host syncs per epoch, counted on the CUDA emulation "
                             "(no GPU needed)")
    parser.add_argument("--compile", action="store_true",
                        help="also measure each backend's first-fit overhead (JIT compile) with a "
                             "cold and a warm Numba cache, in fresh processes")
    return parser


def _split(text):
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def _resolve_options(args):
    """Validate the options; return (backends, comparisons, workloads, rows, reps) or raise ValueError."""
    from fastfnn.backends import available_backends

    report = available_backends()
    if args.backends:
        backends = _split(args.backends)
        for name in backends:
            if name not in report:
                raise ValueError(f"unknown backend {name!r}; registered: {', '.join(report)}")
            if report[name]:
                raise ValueError(f"backend {name!r} is not available: {report[name]}")
    else:
        backends = [name for name, reason in report.items() if not reason]
    comparisons = [] if (args.compare or "").strip().lower() in ("", "none") else _split(args.compare)
    for name in comparisons:
        if name not in COMPARISONS:
            raise ValueError(f"unknown comparison {name!r}; expected some of {', '.join(COMPARISONS)} "
                             "or 'none'")
    if args.workloads:
        keys = _split(args.workloads)
        for key in keys:
            if key not in WORKLOADS_BY_KEY:
                raise ValueError(f"unknown workload {key!r}; expected some of "
                                 f"{', '.join(WORKLOADS_BY_KEY)}")
        workloads = [WORKLOADS_BY_KEY[k] for k in keys]
    else:
        workloads = list(WORKLOADS)
    rows = args.rows if args.rows is not None else (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    reps = args.reps if args.reps is not None else (QUICK_REPS if args.quick else DEFAULT_REPS)
    if rows < 1:
        raise ValueError(f"--rows must be at least 1, got {rows}")
    if reps < 1:
        raise ValueError(f"--reps must be at least 1, got {reps}")
    if not args.settle >= 0:
        raise ValueError(f"--settle must be >= 0, got {args.settle}")
    unavailable = {name: reason for name, reason in report.items() if reason}
    return backends, comparisons, workloads, rows, reps, unavailable


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(args) -> int:
    """Run the benchmark described by parsed ``args``; print the table. Returns the exit status."""
    if args.gpu_budget:
        return _gpu_budget(args)
    try:
        backends, comparisons, workloads, rows, reps, unavailable = _resolve_options(args)
        data = load_data(rows, args.data, args.synthetic)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 2
    torch_threads = args.torch_threads or _usable_cpus()

    def progress(text):
        print(text, file=sys.stderr, flush=True)

    progress(f"data: {data.source}; {rows} rows, {reps} timed epochs per variant")
    started = time.perf_counter()
    skipped = {}
    results = []
    for workload in workloads:
        variants = build_variants(workload, data, backends, comparisons, torch_threads, skipped)
        records = measure_workload(workload, variants, reps, progress, args.settle, skipped)
        results.extend(summarize(workload, rows, records))
        del variants
    overheads = []
    if args.compile:
        for name in backends:
            progress(f"  first-fit overhead of fastfnn[{name}] (two fresh processes)")
            try:
                overheads.append(first_fit_overhead(name, min(rows, 10000), args.data,
                                                    args.synthetic))
            except RuntimeError as exc:
                skipped[f"first-fit overhead of fastfnn[{name}]"] = str(exc)
    elapsed = time.perf_counter() - started

    info = machine_info()
    print(f"fastfnn bench: {rows} rows ({data.source}), float32, SGD; median of {reps} interleaved "
          f"epochs per variant")
    print(f"machine: {info.get('cpu', '?')}, {info.get('cpus_usable', info['cpus'])} usable cores; "
          f"BLAS: {info['blas']}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}")
    extras = [f"{label} {info[key]}" for key, label in
              (("numba", "numba"), ("numba_threads", "numba threads"), ("torch", "torch"),
               ("torch_threads", "torch threads"), ("torch_blas", "torch BLAS")) if key in info]
    print(f"versions: python {info['python']}, numpy {info['numpy']}"
          + "".join(f", {e}" for e in extras))
    print()
    print(format_table(results))
    print()
    print("s/epoch: median seconds per epoch; 1st epoch: the untimed warm-up epoch (JIT compile or "
          "cache load, first touches);")
    print("/ torch, / floor: median time over PyTorch's and over the floor's; GFLOP/s: the epoch's "
          "GEMM flops / median time;")
    print("floor: the epoch's GEMMs alone, NumPy BLAS into preallocated buffers. GFLOP/s counts dense "
          "GEMM flops, so a")
    print("backend that skips work (zero inputs, say) can show more than the floor's.")
    extra = warmup_overhead(results)
    if extra:
        print("warm-up beyond a timed epoch, all workloads (JIT compile or cache load, first touches): "
              + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in extra.items()))
    for record in overheads:
        print(f"first fit over a warm one, fastfnn[{record['backend']}] ({FIRST_FIT_NETWORK}, batch "
              f"{FIRST_FIT['batch_size']}, one epoch of {record['rows']} rows): cold cache "
              f"+{record['cold_extra_s']:.2f} s, warm cache +{record['warm_extra_s']:.2f} s")
    for name, reason in {**{f"fastfnn[{k}]": v for k, v in unavailable.items()}, **skipped}.items():
        print(f"not run: {name}: {reason}")
    print(f"total {elapsed:.1f} s")
    if args.json:
        payload = {"command": " ".join(sys.argv), "rows": rows, "reps": reps, "settle_s": args.settle,
                   "data": data.source, "dtype": "float32", "machine": info,
                   "backends": backends, "comparisons": comparisons,
                   "not_run": {**{f"fastfnn[{k}]": v for k, v in unavailable.items()}, **skipped},
                   "elapsed_s": elapsed, "results": results, "first_fit_overhead": overheads}
        with atomic_write(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"raw numbers written to {args.json}")
    return 0


def _gpu_budget(args) -> int:
    """``--gpu-budget``: the launch budget table of the chosen workloads."""
    keys = _split(args.workloads) if args.workloads else [w.key for w in WORKLOADS]
    unknown = [key for key in keys if key not in WORKLOADS_BY_KEY]
    if unknown:
        print(f"fastfnn bench: error: unknown workload {unknown[0]!r}; expected some of "
              f"{', '.join(WORKLOADS_BY_KEY)}", file=sys.stderr)
        return 2
    try:
        records = gpu_budget.measure(keys)
    except RuntimeError as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 1
    print("fastfnn bench --gpu-budget: the CuPy backend's training epoch, counted on the CUDA "
          "emulation (float32, SGD)")
    print(gpu_budget.format_budget(records))
    print("launches/step, allocations/step: an epoch run launch by launch (a fit's first); "
          "launches/epoch (graph): a replayed CUDA graph\n(from the third epoch: the graph, and "
          "the copies of parameters and optimizer state in and out); syncs/epoch: device-to-host "
          "reads, the trainer's included")
    return 0


def main(argv=None) -> int:
    """``python -m fastfnn.bench [options]``."""
    parser = argparse.ArgumentParser(prog="python -m fastfnn.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))

