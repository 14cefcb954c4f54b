"""The compiled epochs' large callees passed to them by address, so that each compiles once.

Numba links a compiled callee into every caller's code library and runs LLVM's optimizer and code
emission over the linked copy again there: ``epoch.train_rows`` was optimized and emitted four
times in a cold fit (its own library, the parallel loop's, ``train_rows_parallel``'s and
``fused_epoch``'s), about 4 of the seed fit's 19 s of compiling; ``blas_epoch.train_chunk`` the
same way (and ``train_rows_parallel``, whose gufunc handles every array of the epoch's tuples,
inside ``fused_epoch``); ``blas_epoch.first_layer_part`` too (in ``blas_epoch``, ``update_parts``
and its parallel loop: a cold BLAS fit of 1000-256-128-5 on a 2-core VM took 23.6-25.1 s linked,
15.9-20.4 s by address). Passed as a first-class function (numba's ``FunctionType``, built here
from a ``WrapperAddressProtocol`` object) a callee is instead compiled once, for the signature
given here, and called through its C wrapper's address: no copy of its body enters the caller.
The address comes at call time, so the callers' disk cache stays valid across processes; a cached
callee loads from that cache like any other kernel.

Being separate compiles with known signatures, the callees can compile elsewhere: on a cold
cache :func:`compile_callees` starts the largest in helper processes, which leave them in the disk
cache while this process compiles their callers (a cold seed fit on 2 cores: see RESULTS.md).

The price is one indirect call per use (per step or chunk; per row in per-example epochs, where
it was not measurable: MNIST, 784-128-64-10, batch 1, 0.047-0.053 s per 10,000 rows against
0.047-0.056 s with the linked call, alternating processes).

Assumes: the argument types written here are exactly those ``fused_epoch`` passes; a mismatch is
a typing error at the first fused epoch, which every fused-epoch test runs.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np

from .blas_epoch import BlasWork, StepPlan, first_layer_part, train_chunk
from .epoch import StepShared, parallel_update, train_rows, train_rows_parallel
from .jit import numba, types
from .layout import Buckets, ChunkWork, Layout
from .optimizer import FlatParams, OptimizerStep

try:  # Numba's own (private): where it is gone, _type_key types every value
    from numba._dispatcher import compute_fingerprint
except ImportError:
    compute_fingerprint = None

if numba is not None:
    from numba.experimental.function_type import WrapperAddressProtocol
else:  # pragma: no cover - without numba nothing here is called
    WrapperAddressProtocol = object


class ByAddress(WrapperAddressProtocol):
    """A compiled dispatcher as a first-class function of signature ``signature``: compiled (or
    loaded from the disk cache) when its address is first asked for; if a helper process is
    compiling it into the disk cache (:func:`compile_callees`), after that process ends."""

    def __init__(self, dispatcher, signature):
        self._dispatcher = dispatcher
        self._signature = signature
        self._address = None
        self.helper = None  # a subprocess.Popen compiling this callee into the disk cache

    def is_cached(self):
        """Whether the callee is compiled here or in the disk cache; None when that cannot be
        told (no disk cache, or a numba whose cache internals differ)."""
        if self._signature.args in self._dispatcher.overloads:
            return True
        try:
            cache = self._dispatcher._cache
            key = cache._index_key(self._signature, self._dispatcher.targetctx.codegen())
            return key in cache._cache_file._load_index()
        except (AttributeError, TypeError):  # NullCache (nowhere to cache) or other internals
            return None

    def wait_for_helper(self):
        """Wait until the helper process compiling this callee (if any) has ended."""
        if self.helper is not None:
            self.helper.wait()
            self.helper = None

    def __wrapper_address__(self):
        if self._address is None:
            self.wait_for_helper()  # then the compile below loads what it left in the cache
            # a callee that calls parallel kernels links to the threading layer's symbols, which
            # a library loaded from the disk cache need not load: starting the layer does (else
            # the process crashes, or LLVM aborts: "Symbol not found: allocate_sched")
            numba.get_num_threads()
            self._dispatcher.compile(self._signature)
            cres = self._dispatcher.overloads[self._signature.args]
            self._address = cres.library.get_pointer_to_function(
                cres.fndesc.llvm_cfunc_wrapper_name)
        return self._address

    def signature(self):
        return self._signature


#: What a helper process runs: import the kernels (while the process that started it goes on),
#: then compile the (module, function, signature) read from stdin, which leaves it in the disk
#: cache; nothing when stdin closes empty.
_HELPER = ("import importlib, pickle, sys\n"
           f"import {__name__}\n"
           "try:\n"
           "    module, name, signature = pickle.load(sys.stdin.buffer)\n"
           "except EOFError:\n"
           "    sys.exit(0)\n"
           "getattr(importlib.import_module(module), name).compile(signature)\n")

#: Helpers started early (start_helper) that got nothing to compile, until they have ended.
_ENDING: list = []


def start_helper():
    """A helper process (subprocess.Popen) that imports the kernels now and compiles the callee
    :func:`compile_callees` sends it later; None when no Python can be started (an embedded
    interpreter)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        return subprocess.Popen([sys.executable, "-c", _HELPER], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None


def compile_callees(callees, helpers, started=()):
    """Compile (or load) ``callees`` (ByAddress, largest first) before their callers compile:
    the first ``helpers`` (int) of those in no cache yet compile in helper processes of their own,
    which leave them in the disk cache while this process compiles its callers (their address,
    asked for when the caller runs, then loads from there); the others compile here, now.
    ``started``: helpers started earlier (:func:`start_helper`, not None) that have not been sent
    anything; they are used first, and let go (they end) when nothing is left for them.

    A cold first fit thus compiles on several cores at once: the fused epoch's train_rows
    compiles beside the epoch itself. Nothing starts when the disk cache cannot be used. A
    helper that fails leaves nothing in the cache, and the callee then compiles here."""
    started = list(started)
    pending = [c for c in callees if c.helper is None and c.is_cached() is False]
    for callee in pending[:max(0, helpers)]:
        helper = started.pop(0) if started else start_helper()
        if helper is None:
            break
        fn = callee._dispatcher.py_func
        try:
            with helper.stdin:
                pickle.dump((fn.__module__, fn.__name__, callee._signature), helper.stdin)
        except OSError:  # it ended at once; the callee then compiles here, after it
            pass
        callee.helper = helper
    let_go(started)
    for callee in callees:
        if callee.helper is None:
            callee.__wrapper_address__()


def let_go(started):
    """Let helpers started early (:func:`start_helper`) that got nothing to compile end."""
    _ENDING[:] = [h for h in _ENDING if h.poll() is None]
    for helper in started:
        helper.stdin.close()
        _ENDING.append(helper)


def has_disk_cache_index(dispatcher):
    """Whether numba's disk cache holds an index of ``dispatcher``'s compiled signatures (False
    too where there is no disk cache, or its internals differ)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:
        return False


def _named(cls, *fields):
    """The numba type of namedtuple class ``cls`` with fields of these numba types."""
    return types.BaseTuple.from_types(fields, cls)


def _arrays(dtype, ndim):
    """The numba type of a C-contiguous array of numpy ``dtype`` with ``ndim`` dimensions."""
    return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C")


def _chunk_work(ft, ndim):
    """ChunkWork of ``ndim``-dimensional arrays (2: every chunk's, 1: one chunk's) for float
    type ``ft``."""
    f, i64, i32 = (types.Array(ft, ndim, "C"), _arrays(np.int64, ndim),
                   _arrays(np.int32, ndim))
    return _named(ChunkWork, f, f, f, f, i64, i32, f, i64, i64, i32, f)


def _blas_work(ft):
    """blas_epoch.BlasWork for float type ``ft``."""
    f1, f2 = types.Array(ft, 1, "C"), types.Array(ft, 2, "C")
    return _named(BlasWork, f1, f1, f1, f2, f2, f2, f1, _arrays(np.int64, 2), f1)


_CALLEES: dict = {}


def _type_key(value):
    """A key as telling as ``numba.typeof(value)`` at a fraction of its cost: the fingerprint
    Numba's dispatcher keys its own type cache by (0.6 us for an EpochData, which typeof takes
    55 us to type: paid at every epoch and partial_fit call), else the type itself."""
    if compute_fingerprint is not None:
        try:
            return compute_fingerprint(value)
        except (NotImplementedError, ValueError, TypeError):  # a kind it does not fingerprint
            pass
    return numba.typeof(value)


def epoch_callees(data, extras):
    """(train_rows_fn, parallel_update_fn, train_rows_parallel_fn): :func:`.epoch.train_rows`,
    :func:`.epoch.parallel_update` and :func:`.epoch.train_rows_parallel` by address, largest
    first, as fused_epoch takes them, for EpochData ``data`` (its ``lut`` has the compute dtype)
    and ``extras`` (an Extras or None). Memoised by signature: each process compiles or loads
    each callee once."""
    key = ("fused", _type_key(data), _type_key(extras))
    callees = _CALLEES.get(key)
    if callees is None:
        data_type, extras_type = numba.typeof(data), numba.typeof(extras)
        ft = numba.from_dtype(data.lut.dtype)
        i64, f1 = types.int64, types.Array(ft, 1, "C")
        i1 = _arrays(np.int64, 1)
        layout = _named(Layout, i64, i1, i1, i1, i1, i1, i1, i64, i64, types.float64)
        shared = _named(StepShared, _arrays(np.float64, 2), f1, i1, i64, i64)
        rows_sig = types.void(data_type, layout, f1, _chunk_work(ft, 1), shared, i64, i64, i64,
                              ft, i64, types.boolean, extras_type)
        step = _named(OptimizerStep, i64, ft, ft, types.boolean, types.boolean,
                      *([ft] * 7))
        buckets = _named(Buckets, _arrays(np.int64, 2), _arrays(np.int32, 2),
                         types.Array(ft, 2, "C"))
        update_sig = types.void(step, types.boolean, _named(FlatParams, f1, f1, f1),
                                types.Array(ft, 2, "C"), buckets, f1, i64, i64, i64,
                                _arrays(np.int64, 2), i64, i64)
        rows = ByAddress(train_rows, rows_sig)
        parallel_sig = types.void(numba.typeof(rows), data_type, layout, f1, _chunk_work(ft, 2),
                                  shared, i64, i64, ft, i64, extras_type)
        callees = (rows, ByAddress(parallel_update, update_sig),
                   ByAddress(train_rows_parallel, parallel_sig))
        _CALLEES[key] = callees
    return callees


def blas_epoch_callees(data, hyper, extras, gemm):
    """(train_chunk_fn, first_part_fn): :func:`.blas_epoch.train_chunk` and
    :func:`.blas_epoch.first_layer_part` by address, as blas_epoch takes them, for EpochData
    ``data`` (its ``lut`` has the compute dtype), Hyperparameters ``hyper``, ``extras`` (an
    Extras or None) and ``gemm`` (cblas.find_gemm's). Memoised by signature (_type_key)."""
    key = ("blas", *map(_type_key, (data, hyper, extras, gemm)))
    callees = _CALLEES.get(key)
    if callees is None:
        data_type, hyper_type, extras_type, gemm_type = (numba.typeof(v)
                                                         for v in (data, hyper, extras, gemm))
        ft = numba.from_dtype(data.lut.dtype)
        i2, i64 = _arrays(np.int64, 2), types.int64
        plan = _named(StepPlan, i2, _arrays(np.bool_, 1), i64, types.boolean, i64)
        chunk_sig = types.void(data_type, hyper_type, i2, i2, plan, _blas_work(ft), i64, i64, i64,
                               i64, ft, extras_type, _arrays(np.float64, 2), gemm_type)
        first_sig = types.void(data_type, i2, i2, _blas_work(ft), i64, i64, i64, i64, gemm_type)
        callees = _CALLEES[key] = (ByAddress(train_chunk, chunk_sig),
                                   ByAddress(first_layer_part, first_sig))
    return callees
