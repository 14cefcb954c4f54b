"""pytest-benchmark suite of FastFNN: kernels (bench_kernels.py) and whole epochs (bench_training.py).

Run from the repository root:

    pytest benchmarks                              # measure (a few minutes)
    pytest benchmarks --benchmark-disable          # smoke: each runs once (~20 s; ~1 min cold Numba)
    pytest benchmarks -k epoch --benchmark-group-by=group,param:workload
    pytest benchmarks/bench_kernels.py --benchmark-group-by=group,param:layer,param:m

Files are named ``bench_*.py`` (not ``test_*.py``, so the plain ``pytest`` run of ``tests/`` never
picks them up); the hook below collects them when pytest is pointed at this folder.

Environment:
    FASTFNN_DATA        the epoch benchmarks use the real MNIST training rows wherever
                        ``fastfnn.load_mnist()`` finds them without downloading ($FASTFNN_DATA/mnist,
                        then the user cache that ``fastfnn train`` fills), else random MNIST-shaped
                        uint8 data with ~80% zeros (never downloaded here).
    FASTFNN_BENCH_ROWS  rows per epoch benchmark (default 6000, the first tenth of MNIST; 2000 with
                        --benchmark-disable, where each benchmark runs once as a smoke test); for
                        bench_matrix.py, the rows of every matrix workload (default: each
                        workload's own, 4,000 to 40,000; with --benchmark-disable 256, 64 at batch 1).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from fastfnn.backends import available_backends, get_backend
from fastfnn.bench.measure import SETTLE_S

#: Registered backend name -> "" when it can run here, else why not (evaluated at collection).
BACKEND_REPORT = available_backends()

#: Rows per epoch benchmark (FASTFNN_BENCH_ROWS overrides); with --benchmark-disable, where each
#: benchmark runs once as a smoke test, SMOKE_ROWS.
EPOCH_ROWS = 6000
SMOKE_ROWS = 2000


#: Rows per epoch of a matrix workload in the smoke run (--benchmark-disable), and at batch 1.
MATRIX_SMOKE_ROWS = 256
MATRIX_SMOKE_ROWS_BATCH1 = 64


def epoch_rows(config):
    if os.environ.get("FASTFNN_BENCH_ROWS"):
        return int(os.environ["FASTFNN_BENCH_ROWS"])
    return SMOKE_ROWS if config.getoption("benchmark_disable", False) else EPOCH_ROWS


def matrix_rows(config, workload):
    """Rows per epoch of a matrix workload: FASTFNN_BENCH_ROWS, else the smoke run's few, else its own."""
    if os.environ.get("FASTFNN_BENCH_ROWS"):
        return int(os.environ["FASTFNN_BENCH_ROWS"])
    if config.getoption("benchmark_disable", False):
        return MATRIX_SMOKE_ROWS_BATCH1 if workload.batch_size == 1 else MATRIX_SMOKE_ROWS
    return workload.rows


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` in this folder as test modules (test functions inside are ``test_*``)."""
    # A file named on the command line is collected by pytest itself already.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


#: The backends benchmarked: every registered one that can run here, at collection time.
BACKENDS = [name for name, reason in BACKEND_REPORT.items() if not reason]


def pytest_report_header(config):
    if os.environ.get("FASTFNN_BENCH_ROWS"):
        matrix = os.environ["FASTFNN_BENCH_ROWS"]
    elif config.getoption("benchmark_disable", False):
        matrix = f"{MATRIX_SMOKE_ROWS} ({MATRIX_SMOKE_ROWS_BATCH1} at batch 1)"
    else:
        matrix = "each workload's own"
    lines = [f"fastfnn benchmarks: backends {', '.join(BACKENDS)}; epoch rows {epoch_rows(config)}; "
             f"matrix rows {matrix}"]
    lines += [f"  backend {name} not benchmarked: {reason}"
              for name, reason in BACKEND_REPORT.items() if reason]
    return lines


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every registered backend that can run here (the others are named in the report header)."""
    return get_backend(request.param)


@pytest.fixture(scope="session")
def matrix_rows_of(pytestconfig):
    """``matrix_rows_of(workload)``: the rows per epoch of a matrix benchmark (see matrix_rows)."""
    return lambda workload: matrix_rows(pytestconfig, workload)


@pytest.fixture(scope="session")
def epoch_data(pytestconfig):
    """The epoch benchmarks' data: the first MNIST training rows (uint8), else synthetic ones."""
    from fastfnn.bench.data import load_data
    return load_data(epoch_rows(pytestconfig))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def timed(benchmark, backend):
    """``timed(fn)`` benchmarks ``fn`` (a kernel call) followed by the backend's synchronize.

    One explicit call first, outside the timed rounds: JIT compilation, first touches of the buffers;
    then a short sleep, so that no other thread pool is still spinning on the cores.
    """
    def run(fn):
        def call():
            fn()
            backend.synchronize()

        call()
        if not benchmark.disabled:
            # Let the previous benchmark's busy-waiting thread pools (OpenBLAS, OpenMP) go idle.
            time.sleep(SETTLE_S)
        benchmark(call)

    return run
