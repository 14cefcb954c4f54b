"""The compiled epochs' callees by address (kernels/numba_backend/callees.py): the compiled
callers reach train_rows, parallel_update, train_chunk and first_layer_part only through their
arguments, and the signatures written by hand are those the epochs pass (each callee compiles for
exactly them)."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import NB, assert_same_epoch, make_job, requires_numba, run_both

pytestmark = requires_numba


def _callee_module():
    from fastfnn.kernels.numba_backend import callees, epoch
    return callees, epoch


@pytest.mark.parametrize("module, caller, callees", [
    ("epoch", "fused_epoch", ("train_rows", "parallel_update", "train_rows_parallel")),
    ("epoch", "train_rows_parallel", ("train_rows",)),
    ("blas_epoch", "blas_epoch", ("train_chunk", "first_layer_part")),
    ("blas_epoch", "train_chunks", ("train_chunk",)),
    ("blas_epoch", "update_parts", ("first_layer_part",))])
def test_callers_do_not_link_the_callees(module, caller, callees):
    # A call by the global name links a copy of the callee's body into the caller, whose LLVM
    # optimizes and emits it again: what passing them by address avoids (about 4 s of a cold
    # fit, 2 s of a BLAS epoch's)
    import importlib
    mod = importlib.import_module(f"fastfnn.kernels.numba_backend.{module}")
    names = getattr(mod, caller).py_func.__code__.co_names
    assert not set(callees) & set(names)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_callees_are_memoised_per_argument_types(dtype):
    callees, _ = _callee_module()
    job = make_job(dtype=dtype, batch=40, weighted=False)
    data, _, _, _, extras = NB._compiled_epoch_args(job, sparse=None)
    first = callees.epoch_callees(data, extras)
    assert callees.epoch_callees(data, extras) is first  # each process asks for them once
    weighted = make_job(dtype=dtype, batch=40, weighted=True)
    wdata, _, _, _, wextras = NB._compiled_epoch_args(weighted, sparse=None)
    assert callees.epoch_callees(wdata, wextras) is not first  # Extras: another signature
    for fn in first:
        assert fn.__wrapper_address__() != 0


def test_a_fused_epoch_runs_through_the_callees():
    # the hand-written signatures are the ones fused_epoch passes, or it would not compile
    callees, epoch = _callee_module()
    job = make_job(dtype=np.float32, batch=40)
    fused, composed = run_both(job)
    assert_same_epoch(fused, composed, np.float32)
    data, _, _, _, extras = NB._compiled_epoch_args(job, sparse=None)
    train_rows_fn, update_fn, parallel_fn = callees.epoch_callees(data, extras)
    assert train_rows_fn.signature().args in epoch.train_rows.overloads
    assert update_fn.signature().args in epoch.parallel_update.overloads
    assert parallel_fn.signature().args in epoch.train_rows_parallel.overloads


def test_a_blas_epoch_runs_through_its_callee():
    callees, _ = _callee_module()
    from fastfnn.kernels.numba_backend import blas_epoch
    job = make_job(dtype=np.float64, batch=64, inputs="float")
    backend = NB.__class__()
    assert backend.epoch_path(job) == "blas"
    backend.blas_epoch(job)
    data, hyper, _, _, extras = backend._compiled_epoch_args(job, sparse=None)
    from fastfnn.kernels.numba_backend.cblas import find_gemm
    gemm = find_gemm(np.float64)
    fn, first = callees.blas_epoch_callees(data, hyper, extras, gemm)
    assert callees.blas_epoch_callees(data, hyper, extras, gemm) == (fn, first)
    assert fn.signature().args in blas_epoch.train_chunk.overloads
    assert first.signature().args in blas_epoch.first_layer_part.overloads


_HELPER_SCRIPT = r"""
import json, sys
from numba import types
from numba.core import event
from fastfnn.kernels.numba_backend import callees
from tests.numba_backend import tiny_kernel

mode = sys.argv[1]
if mode == "failing":
    callees._HELPER = "raise SystemExit(3)"
sig = types.float64(types.Array(types.float64, 1, "C"), types.float64)
callee = callees.ByAddress(tiny_kernel.scaled_sum, sig)
out = {"cached_before": callee.is_cached(),
       "index_before": callees.has_disk_cache_index(tiny_kernel.scaled_sum)}
early = [callees.start_helper(), callees.start_helper()] if mode == "started" else []
callees.compile_callees([callee], 0 if mode == "none" else 1, early)
out["helper_started"] = callee.helper is not None
out["took_the_early_helper"] = bool(early) and callee.helper is early[0]
if early:  # the second had nothing to compile: let go, it ends by itself
    out["idle_helper_exit"] = early[1].wait(timeout=60)
if mode != "failing":
    callee.wait_for_helper()
    out["cached_after_helper"] = callee.is_cached()
with event.install_recorder("numba:compile") as compiles:
    out["address"] = callee.__wrapper_address__()
out["compiled_here_after"] = len(compiles.buffer) // 2
out["index_after"] = callees.has_disk_cache_index(tiny_kernel.scaled_sum)
out["result"] = tiny_kernel.scaled_sum.overloads[sig.args].entry_point(
    __import__("numpy").arange(4.0), 2.0)
print(json.dumps(out))
"""


def _run_helper_script(tmp_path, mode):
    """The script's JSON, run in a fresh process on an empty NUMBA_CACHE_DIR."""
    import json
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _HELPER_SCRIPT, mode], env=env,
                          capture_output=True, text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cached_before"] is False and out["address"] != 0 and out["result"] == 12.0
    assert not out["index_before"] and out["index_after"]
    return out


def test_a_callee_compiles_in_a_helper_process_on_a_cold_cache(tmp_path):
    out = _run_helper_script(tmp_path, "helper")
    # the helper left it in the disk cache: this process only loads it
    assert out["helper_started"] and out["cached_after_helper"]
    assert out["compiled_here_after"] == 0


def test_a_helper_started_early_takes_the_callee_and_an_idle_one_ends(tmp_path):
    out = _run_helper_script(tmp_path, "started")
    assert out["took_the_early_helper"] and out["cached_after_helper"]
    assert out["compiled_here_after"] == 0
    assert out["idle_helper_exit"] == 0


def test_without_helpers_a_callee_compiles_here_at_once(tmp_path):
    out = _run_helper_script(tmp_path, "none")
    assert not out["helper_started"] and out["cached_after_helper"]
    assert out["compiled_here_after"] == 0


def test_a_failed_helper_leaves_the_compile_here(tmp_path):
    out = _run_helper_script(tmp_path, "failing")
    assert out["helper_started"]
    assert out["compiled_here_after"] == 1  # after waiting for the helper, it compiled here


_CALLS_PARALLEL_SCRIPT = r"""
import sys
import numpy as np
from numba import types
from fastfnn.kernels.numba_backend import callees
from tests.numba_backend import tiny_kernel

x = np.arange(4.0)
if sys.argv[1] == "parallel":
    tiny_kernel.parallel_doubled(x)
    print(x.sum())
else:
    sig = types.float64(types.Array(types.float64, 1, "C"))
    callees.ByAddress(tiny_kernel.doubled_sum, sig).__wrapper_address__()
    print(tiny_kernel.doubled_sum.overloads[sig.args].entry_point(x))
"""


def test_a_callee_that_calls_a_parallel_kernel_loads_from_the_disk_cache(tmp_path):
    """A serial callee that calls a parallel kernel runs when loaded from the disk cache: the
    parallel kernel cached by one process, the callee compiled by the next (linking the cached
    kernel), loaded by a third (it crashed there, the threading layer's symbols missing, before
    ByAddress started the layer)."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    for step in ("parallel", "callee", "callee"):
        proc = subprocess.run([sys.executable, "-c", _CALLS_PARALLEL_SCRIPT, step], env=env,
                              capture_output=True, text=True, timeout=120, cwd=root)
        assert proc.returncode == 0, (step, proc.returncode, proc.stderr[-2000:])
        assert proc.stdout.split()[-1] == "12.0"


def test_no_helper_without_a_disk_cache():
    from numba import types

    from fastfnn.kernels.numba_backend.callees import (ByAddress, compile_callees,
                                                       has_disk_cache_index)

    from . import tiny_kernel
    callee = ByAddress(tiny_kernel.uncached_sum, types.float64(types.Array(types.float64, 1, "C")))
    assert callee.is_cached() is None  # nowhere a helper could leave it
    assert not has_disk_cache_index(tiny_kernel.uncached_sum)
    compile_callees([callee], 2)
    assert callee.helper is None
    assert (types.Array(types.float64, 1, "C"),) in tiny_kernel.uncached_sum.overloads


def test_callees_are_found_by_numbas_fingerprint_and_kept_apart_by_type():
    """Typing the EpochData for the memo's key took 55 us at every epoch and partial_fit call."""
    callees, _ = _callee_module()
    job = make_job(dtype=np.float64, batch=64, inputs="float")
    data, hyper, _, _, extras = NB.__class__()._compiled_epoch_args(job, sparse=None)
    assert callees._type_key(data) == callees._type_key(data._replace(order=data.order.copy()))
    other = data._replace(lut=data.lut.astype(np.float32))  # another compute dtype
    assert callees._type_key(other) != callees._type_key(data)
    assert callees._type_key(None) == callees._type_key(None)
