"""Time one training epoch of the seed workloads on every backend, beside PyTorch (``fastfnn bench``).

The command: its options, their checks, the run over workloads and the printed report (text or
Markdown, and JSON). ``fastfnn bench`` and ``python -m fastfnn.bench`` both come here.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from dataclasses import dataclass

from fastfnn.bench import gpu_budget
from fastfnn.bench.data import DataSource
from fastfnn.bench.first_fit import FIRST_FIT, FIRST_FIT_NETWORK, first_fit_overhead
from fastfnn.bench.goals import goal_lines, tally
from fastfnn.bench.isolation import LocalVariants, WorkerPool
from fastfnn.bench.measure import SETTLE_S, measure_workload, summarize
from fastfnn.bench.report import format_table, machine_info, warmup_overhead
from fastfnn.bench.variants import COMPARISONS, variant_names
from fastfnn.bench.workloads import (ACTIVATION_WORKLOADS, EXTRA_WORKLOADS, MATRIX, WORKLOADS,
                                     WORKLOADS_BY_KEY)
from fastfnn.io.atomic import atomic_write, check_target

#: Rows per epoch of the seed workloads by default (MNIST's training set) and with ``--quick``
#: (the matrix workloads have their own).
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
                        help="FastFNN backends to time (default: every available one; 'auto' "
                             "picks one as fastfnn train does); an unknown name exits with "
                             "status 2, a known one that cannot run here with 1")
    parser.add_argument("--compare", metavar="A,B", default="torch,loop",
                        help="comparisons: 'torch' (PyTorch eager CPU), 'torch-cuda' (PyTorch eager "
                             "on the GPU), 'loop' (hand-written NumPy), or 'none' (default: "
                             "torch,loop; the GEMM floor and bound are always timed)")
    parser.add_argument("--workloads", metavar="K,K",
                        help=f"workloads to run, keys or patterns like 'dense100/b200/*' (default: "
                             f"{', '.join(w.key for w in WORKLOADS)}; also "
                             f"{', '.join(w.key for w in EXTRA_WORKLOADS)}, the --matrix keys and "
                             f"{', '.join(w.key for w in ACTIVATION_WORKLOADS)})")
    parser.add_argument("--matrix", action="store_true",
                        help="run issue 11's matrix instead of the seed workloads: dense tabular "
                             "100 and 1000 features (dense<F>/b<batch>/<f32|f64>/<sgd|adam>, batch "
                             "1, 32, 200, 1024), wide/... and deep/... nets on MNIST pixels (Adam), "
                             "each with its own rows; each variant in its own process unless "
                             "--no-isolate")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="run each variant in a worker process of its own, kept for the whole "
                             "run (default: on for the matrix and the other dense workloads, off "
                             "for the seed ones)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table (and the notes) as Markdown, for RESULTS.md")
    parser.add_argument("--rows", type=int, metavar="N",
                        help=f"training rows per epoch of every workload (default: {DEFAULT_ROWS} "
                             f"for the seed workloads, --quick {QUICK_ROWS}; the matrix workloads' "
                             f"own)")
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


def _select_workloads(args):
    """The workloads asked for: --workloads keys or patterns, --matrix, else the seed workloads."""
    if args.matrix and args.workloads:
        raise ValueError("--matrix and --workloads both choose workloads: name the matrix rows in "
                         "--workloads instead (e.g. --workloads 'dense100/*')")
    if args.matrix:
        return list(MATRIX)
    if not args.workloads:
        return list(WORKLOADS)
    chosen = []
    for pattern in _split(args.workloads):
        keys = [key for key in WORKLOADS_BY_KEY if fnmatch.fnmatchcase(key, pattern)]
        if not keys:
            raise ValueError(f"unknown workload {pattern!r}; expected keys or patterns (e.g. "
                             f"'dense100/*') of {', '.join(WORKLOADS_BY_KEY)}")
        chosen += [WORKLOADS_BY_KEY[key] for key in keys if WORKLOADS_BY_KEY[key] not in chosen]
    return chosen


class Unavailable(Exception):
    """A backend asked for by --backends is known but cannot run here: exit status 1, not 2."""


@dataclass
class Plan:
    """What a run does, from the validated options."""

    names: list  # variant names in timing order (variants.variant_names)
    backends: list  # FastFNN backends timed
    comparisons: list  # --compare keys
    workloads: list
    source: DataSource  # each workload's data and rows
    reps: int
    isolate: bool  # each variant in a worker process of its own
    unavailable: dict  # registered backend -> why it cannot run here


def _resolve_options(args):
    """Validate the options; return the run's :class:`Plan` or raise ValueError."""
    from fastfnn.backends import available_backends, resolve_backend_name

    report = available_backends()
    if args.backends:
        backends = []
        for name in _split(args.backends):
            try:
                backends.append(resolve_backend_name(name))
            except ValueError as exc:  # the words of fastfnn train --backend
                if name in report:
                    raise Unavailable(str(exc)) from None
                raise ValueError(f"argument --backends: {exc}") from None
        backends = list(dict.fromkeys(backends))  # 'auto' may repeat one
    else:
        backends = [name for name, reason in report.items() if not reason]
    comparisons = [] if (args.compare or "").strip().lower() in ("", "none") else _split(args.compare)
    for name in comparisons:
        if name not in COMPARISONS:
            raise ValueError(f"unknown comparison {name!r}; expected some of {', '.join(COMPARISONS)} "
                             "or 'none'")
    workloads = _select_workloads(args)
    rows = QUICK_ROWS if args.quick else DEFAULT_ROWS
    reps = args.reps if args.reps is not None else (QUICK_REPS if args.quick else DEFAULT_REPS)
    if args.rows is not None and args.rows < 1:
        raise ValueError(f"--rows must be at least 1, got {args.rows}")
    if reps < 1:
        raise ValueError(f"--reps must be at least 1, got {reps}")
    if not args.settle >= 0:
        raise ValueError(f"--settle must be >= 0, got {args.settle}")
    if args.torch_threads is not None and args.torch_threads < 1:
        raise ValueError(f"--torch-threads must be at least 1, got {args.torch_threads}")
    isolate = args.isolate
    if isolate is None:
        isolate = any(w.inputs == "dense" or w in MATRIX for w in workloads)
    source = DataSource(rows, args.data, args.synthetic, rows_override=args.rows)
    unavailable = {name: reason for name, reason in report.items() if reason}
    return Plan(variant_names(backends, comparisons), backends, comparisons, workloads, source, reps,
                isolate, unavailable)


def _data_sources(source, workloads):
    """Where the workloads' data come from (reading MNIST here, which checks it is there)."""
    sources = []
    mnist = [w for w in workloads if w.inputs == "mnist"]
    if mnist:  # the most rows first: the later, smaller ones are its first rows
        sources.append(source.for_workload(max(mnist, key=source.rows_for)).source)
    sources += sorted({source.describe(w) for w in workloads if w.inputs == "dense"})
    return sources


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
        plan = _resolve_options(args)
        sources = _data_sources(plan.source, plan.workloads)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        try:  # before minutes of timing, not after
            check_target(args.json)
        except OSError as exc:
            print(f"fastfnn bench: error: --json {exc}", file=sys.stderr)
            return 1
    torch_threads = args.torch_threads or _usable_cpus()

    def progress(text):
        print(text, file=sys.stderr, flush=True)

    source, workloads, reps = plan.source, plan.workloads, plan.reps
    where = ("each variant in its own worker process" if plan.isolate
             else "all variants in this process")
    progress(f"data: {'; '.join(sources)}; {reps} timed epochs per variant, {where}")
    started = time.perf_counter()
    skipped = {}
    results = []
    pool = (WorkerPool if plan.isolate else LocalVariants)(plan.names, source, torch_threads)
    with pool:
        for workload in workloads:
            variants = pool.variants_for(workload, skipped)
            records = measure_workload(workload, variants, reps, progress, args.settle, skipped)
            results.extend(summarize(workload, source.rows_for(workload), records))
            del variants
        worker_info = pool.worker_info()
    overheads = []
    if args.compile:
        for name in plan.backends:
            progress(f"  first-fit overhead of fastfnn[{name}] (two fresh processes)")
            try:
                overheads.append(first_fit_overhead(name, min(args.rows or source.rows, 10000),
                                                    args.data, args.synthetic))
            except RuntimeError as exc:
                skipped[f"first-fit overhead of fastfnn[{name}]"] = str(exc)
    elapsed = time.perf_counter() - started

    info = {**machine_info(), **worker_info}
    not_run = {**{f"fastfnn[{k}]": v for k, v in plan.unavailable.items()}, **skipped}
    notes = _header(workloads, source, sources, reps, where, info)
    print("\n".join(f"- {line}" if args.markdown else line for line in notes))
    print()
    print(format_table(results, markdown=args.markdown))
    print()
    notes = _footnotes(results, overheads, not_run)
    goals = tally(results)
    notes += goal_lines(goals)
    notes.append(f"total {elapsed:.1f} s")
    if args.json:
        payload = {"command": " ".join(sys.argv),
                   "rows": _uniform(source.rows_for(w) for w in workloads), "reps": reps,
                   "settle_s": args.settle, "isolated": plan.isolate, "data": "; ".join(sources),
                   "dtype": _uniform(w.dtype for w in workloads), "machine": info,
                   "backends": plan.backends, "comparisons": plan.comparisons, "not_run": not_run,
                   "elapsed_s": elapsed, "results": results, "goals": goals,
                   "first_fit_overhead": overheads}
        with atomic_write(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        notes.append(f"raw numbers written to {args.json}")
    print("\n".join(f"- {line}" if args.markdown else line for line in notes))
    return 0


def _uniform(values):
    """The one value of ``values`` when they are all equal, else "per workload"."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else "per workload"


def _header(workloads, source, sources, reps, where, info):
    """The lines above the table: what ran on what data, how, and on which machine."""
    rows = _uniform(source.rows_for(w) for w in workloads)
    rows = f"{rows} rows" if rows != "per workload" else "rows per workload (the rows column)"
    kinds = {(w.dtype, w.solver) for w in workloads}
    if len(kinds) == 1:
        dtype, solver = kinds.pop()
        kind = f"{dtype}, {solver.upper() if solver == 'sgd' else solver.capitalize()}"
    else:
        kind = ("dtype and solver per workload (in the key: f32/f64, sgd/adam; keys without them: "
                "float32, SGD)")
    lines = [f"fastfnn bench: {rows}; {kind}; median of {reps} interleaved epochs per variant, "
             f"{where}",
             f"data: {'; '.join(sources)}",
             f"machine: {info.get('cpu', '?')}, {info.get('cpus_usable', info['cpus'])} usable cores; "
             f"BLAS: {info['blas']}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}"]
    extras = [f"{label} {info[key]}" for key, label in
              (("numba", "numba"), ("numba_threads", "numba threads"), ("numba_gemm", "gemm"),
               ("torch", "torch"),
               ("torch_threads", "torch threads"), ("torch_blas", "torch BLAS")) if key in info]
    lines.append(f"versions: python {info['python']}, numpy {info['numpy']}"
                 + "".join(f", {e}" for e in extras))
    return lines


def _footnotes(results, overheads, not_run):
    """The lines below the table: what the columns mean, warm-up costs, what did not run."""
    lines = [
        "s/epoch: median seconds per epoch; 1st epoch: the untimed warm-up epoch (JIT compile or "
        "cache load, first touches);",
        "/ numpy, / torch, / floor, / bound: median time over fastfnn[numpy]'s, PyTorch's, the "
        "floor's and the bound's; GFLOP: the epoch's GEMM flops; GFLOP/s: those / median time;",
        "floor: the epoch's GEMMs alone, into preallocated buffers of the workload's dtype, by the "
        "gemm the Numba backend uses (its path column names it: MKL's where installed, float64 "
        "on Intel CPUs only, else NumPy's BLAS), threaded; bound: the same GEMMs on one BLAS "
        "thread, the time divided by the cores (shared out with nothing lost: no epoch of these "
        "products runs faster). GFLOP/s counts dense GEMM flops, so a backend that skips work "
        "(zero inputs, say) or steps per example without a gemm can show more than the floor's "
        "and the bound's.",
    ]
    extra = warmup_overhead(results)
    if extra:
        lines.append("warm-up beyond a timed epoch, all workloads (JIT compile or cache load, first "
                     "touches): " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in extra.items()))
    for record in overheads:
        lines.append(f"first fit over a warm one, fastfnn[{record['backend']}] ({FIRST_FIT_NETWORK}, "
                     f"batch {FIRST_FIT['batch_size']}, one epoch of {record['rows']} rows): cold "
                     f"cache +{record['cold_extra_s']:.2f} s, warm cache +{record['warm_extra_s']:.2f} s")
    # "<variant> on <workload>" entries with one reason become one line per variant and reason
    grouped = {}
    for name, reason in not_run.items():
        variant, _, workload = name.partition(" on ")
        grouped.setdefault((variant, reason), []).append(workload)
    for (variant, reason), where in grouped.items():
        on = [w for w in where if w]
        lines.append(f"not run: {variant}{' on ' + ', '.join(on) if on else ''}: {reason}")
    return lines


def _gpu_budget(args) -> int:
    """``--gpu-budget``: the launch budget table of the chosen workloads."""
    try:
        keys = [w.key for w in _select_workloads(args)]
    except ValueError as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 2
    try:
        records = gpu_budget.measure(keys)
    except RuntimeError as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 1
    print("fastfnn bench --gpu-budget: the CuPy backend's training epoch, counted on the CUDA "
          "emulation (each workload in its dtype, with its solver)")
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

