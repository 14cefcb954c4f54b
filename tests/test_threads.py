"""kernels/threads.py: the process's thread share; limits that reach the BLAS from the first fit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from threadpoolctl import threadpool_info

from fastfnn.kernels import threads
from fastfnn.kernels.threads import limit_threads, process_share

numba = pytest.importorskip("numba")


@pytest.fixture
def share_env(monkeypatch):
    """No thread-count variables, and a CPU affinity of 8 (set it with share_env(n))."""
    for name in threads.SHARE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)

    def affinity(n):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
    return affinity


@pytest.mark.parametrize("env,expected", [
    ({}, 8),
    ({"OMP_NUM_THREADS": "1"}, 1),            # Dask's nanny, Ray's default task
    ({"NUMBA_NUM_THREADS": "3"}, 3),          # joblib's loky workers
    ({"OMP_NUM_THREADS": "2,1", "NUMBA_NUM_THREADS": "5"}, 2),   # OpenMP's nested form
    ({"OMP_NUM_THREADS": "", "NUMBA_NUM_THREADS": "0"}, 8),      # not counts: ignored
    ({"OMP_NUM_THREADS": "many"}, 8),
    ({"OMP_NUM_THREADS": "16"}, 8),           # never more than the affinity
])
def test_share_is_the_smallest_stated_count(share_env, monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert process_share() == expected


def test_share_follows_the_affinity_and_numbas_pool(share_env):
    share_env(3)
    assert process_share() == 3
    assert process_share(numba) == min(3, numba.config.NUMBA_NUM_THREADS)


def test_share_follows_joblibs_limit_for_nested_work(share_env):
    joblib = pytest.importorskip("joblib")
    with joblib.parallel_config(backend="loky", inner_max_num_threads=2):
        assert process_share() == 2
    assert process_share() == 8


def test_default_limit_reaches_numba_and_the_blas(share_env, monkeypatch):
    """n_jobs=None under OMP_NUM_THREADS=1 (a Dask worker): one Numba thread, one BLAS thread."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = numba.get_num_threads()
    with limit_threads(None, numba):
        assert numba.get_num_threads() == 1
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)
        assert any("scipy" in lib["filepath"] for lib in blas)  # the one Numba's np.dot calls
    assert numba.get_num_threads() == before


FIRST_FIT_SCRIPT = textwrap.dedent("""
    import numpy as np
    from fastfnn import FastFNN
    rng = np.random.default_rng(0)
    X = rng.random((256, 784), dtype=np.float32)   # dense: mini-batches go through BLAS GEMMs
    y = rng.integers(0, 10, 256)
    def fit():
        return FastFNN(hidden_layer_sizes=(128,), batch_size=128, max_iter=1, random_state=0,
                       backend="numba", n_jobs={n_jobs}).fit(X, y)
    first, second = fit(), fit()
    print(max(float(np.abs(a - b).max()) for a, b in zip(first.coefs_, second.coefs_)))
""")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else
                    (os.cpu_count() or 1) < 2,
                    reason="one CPU: BLAS runs one thread whatever the limit, so the first fit "
                           "cannot differ")
@pytest.mark.parametrize("n_jobs,env", [(1, {}), (None, {"NUMBA_NUM_THREADS": "1"})])
def test_first_fit_in_a_fresh_process_equals_the_next_bitwise(n_jobs, env):
    """Before SciPy's BLAS was loaded ahead of the limit, the first fit ran it on every core and
    differed from the second by ~5e-7 (issue 14)."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    environ.update(env, FASTFNN_COMPILE_NOTICE="0")
    done = subprocess.run([sys.executable, "-c", FIRST_FIT_SCRIPT.format(n_jobs=n_jobs)],
                          env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == 0.0


def test_the_blas_libraries_are_scanned_again_only_when_libraries_load(monkeypatch):
    """threadpoolctl's scan (0.5 ms) ran at every fit and partial_fit call."""
    counts = iter([100, 100, 101])
    monkeypatch.setattr(threads, "_loaded_library_count", lambda: next(counts))
    monkeypatch.setattr(threads, "_SCANNED", [])
    first = threads._blas_controller()
    assert threads._blas_controller() is first
    assert threads._blas_controller() is not first


def test_the_loaded_library_count_grows_with_a_load():
    code = textwrap.dedent("""
        import importlib
        from fastfnn.kernels.threads import _loaded_library_count
        before = _loaded_library_count()
        for name in ("_sqlite3", "_ssl", "_lzma", "_bz2", "_ctypes_test"):
            try:
                importlib.import_module(name)
            except ImportError:
                continue
            print(before, _loaded_library_count())
            break
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    if not out:
        pytest.skip("no extension module to load here")
    if out[0] == "None":
        pytest.skip("this platform cannot count loaded libraries: the scan runs every time")
    assert int(out[1]) > int(out[0])
