"""One training epoch of each of issue 11's matrix workloads, and of the dense net with tanh and
logistic hidden layers, each variant in a worker process of its own.

Workloads (``fastfnn.bench.workloads.MATRIX``, the rows of ``fastfnn bench --matrix``): dense
tabular 100-256-128-5 and 1000-256-128-5 at batch 1, 32, 200 and 1024, float32 and float64, plain
SGD and Adam; the wide 784-1024-1024-10 and the deep 784-256x6-10 on MNIST pixels at batch 32 and
200, float32 and float64, Adam; then ``ACTIVATION_WORKLOADS``, the dense 100-feature net with
tanh (batch 32 and 200) and logistic (batch 200) hidden layers, Adam. Rows per epoch: each
workload's own (4,000 to 40,000), or FASTFNN_BENCH_ROWS; with --benchmark-disable (the CI smoke
run) 256, 64 at batch 1.

Variants (one benchmark group per workload): ``fastfnn[<backend>]`` per available backend,
``pytorch`` (CPU, torch.set_num_threads(2); 1 in the smoke run), ``numpy loop`` (float32 SGD
ReLU rows only: it covers nothing else, so no benchmark is generated for the others) and ``floor`` (the epoch's GEMMs alone,
in the workload's dtype).

Isolation: every variant lives in its own worker process (:class:`fastfnn.bench.isolation.
WorkerPool`), one per variant for the whole module (so process start and imports are paid once, in
the smoke run too), set up workload after workload. pytest-benchmark times the call into the worker
(``benchmark.pedantic``): an epoch plus the pipe's round trip, about 0.1 ms, negligible beside the
tens of milliseconds an epoch of these rows takes at least. The worker's own ``perf_counter`` times
are kept in ``extra_info["worker_times_s"]`` for whoever wants the figures without the pipe. Each
benchmark runs one untimed warm-up epoch (JIT compile or cache load, first touches) and sleeps
``fastfnn.bench.measure.SETTLE_S`` before every epoch, so the previous benchmark's spinning thread
pools in other processes are idle; then ROUNDS timed epochs. With --benchmark-disable each runs one
epoch, no warm-up, no sleep.

    pytest benchmarks/bench_matrix.py --benchmark-group-by=group         # measure (~10 minutes)
    pytest benchmarks/bench_matrix.py -k "dense100 and b200"             # some rows
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from fastfnn.backends import available_backends
from fastfnn.bench.data import DataSource
from fastfnn.bench.isolation import WorkerPool
from fastfnn.bench.measure import SETTLE_S
from fastfnn.bench.variants import FLOOR, LOOP, TORCH, unsupported
from fastfnn.bench.workloads import ACTIVATION_WORKLOADS, MATRIX, epoch_flops

#: Timed epochs per benchmark (after one warm-up epoch).
ROUNDS = 5
#: PyTorch intra-op threads: the machine's two cores; one in the smoke run, where a per-example
#: epoch with two threads on a busy 2-core machine stalls in PyTorch's per-op thread barrier
#: (seconds for 64 rows instead of 0.05 s).
TORCH_THREADS = 2
SMOKE_TORCH_THREADS = 1

BACKENDS = [name for name, reason in available_backends().items() if not reason]
VARIANTS = [*(f"fastfnn[{name}]" for name in BACKENDS), TORCH, LOOP, FLOOR]
#: (workload key, variant) of every benchmark: the variants that run each workload.
CASES = [(w.key, name) for w in MATRIX + ACTIVATION_WORKLOADS for name in VARIANTS
         if not unsupported(name, w)]


@pytest.fixture(scope="module")
def worker_pool(pytestconfig):
    """One worker process per variant for the whole module; closed (no orphans) at its end."""
    smoke = pytestconfig.getoption("benchmark_disable", False)
    # rows come with each workload (matrix_rows_of), so the source's own default is never used
    with WorkerPool(VARIANTS, DataSource(rows=None),
                    SMOKE_TORCH_THREADS if smoke else TORCH_THREADS) as pool:
        yield pool


@pytest.mark.parametrize("workload, variant", CASES, ids=[f"{w}-{v}" for w, v in CASES])
def test_matrix_epoch(benchmark, worker_pool, matrix_rows_of, workload, variant):
    wl = next(w for w in MATRIX + ACTIVATION_WORKLOADS if w.key == workload)
    wl = dataclasses.replace(wl, rows=matrix_rows_of(wl))
    try:
        remote = worker_pool.setup(variant, wl)
    except ImportError as exc:
        pytest.skip(f"PyTorch is not importable ({exc}); pip install 'fastfnn[bench]'")
    benchmark.group = f"matrix {workload} ({wl.description})"
    benchmark.extra_info.update(rows=wl.rows, dtype=wl.dtype, solver=wl.solver, inputs=wl.inputs,
                                activation=wl.activation, gemm_flops=epoch_flops(wl.sizes, wl.rows, wl.batch_size))
    worker_times = []

    def epoch():
        seconds, loss = remote.timed_epoch()
        worker_times.append(seconds)
        return loss

    def settle():
        time.sleep(SETTLE_S)  # other processes' spinning thread pools go idle

    if benchmark.disabled:
        loss = benchmark.pedantic(epoch, rounds=1, iterations=1)
    else:
        remote.timed_epoch()  # warm-up: JIT compile or cache load, first touches
        loss = benchmark.pedantic(epoch, setup=settle, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(path=remote.path, worker_times_s=worker_times)
    assert loss == loss  # noqa: PLR0124 - not NaN (the floor returns 0.0)
