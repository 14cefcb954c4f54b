"""The floating-point mode the fused epoch computes in: x86's flush-to-zero and denormals-are-zero.

An x86 core takes a microcode assist (on the order of 100 cycles) for each operation that reads
or produces a subnormal number, and training that converges produces them: deltas and gradient
products below float32's smallest normal number (1.2e-38) once the softmax is nearly sure. Per-
example Adam on 1,000 dense features ran its epochs 2-5x slower as training went on (the matrix's
dense1000/b1/f32/adam: 1.38 s against 0.30 s in this mode, benchmarks/RESULTS.md). So the fused
epoch runs with MXCSR's FTZ (a subnormal result becomes 0) and DAZ (a subnormal operand reads as
0) bits set, as TensorFlow and XLA run their CPU kernels: on the calling thread
(:func:`flushing_subnormals`) and on every thread its parallel loops run on
(:func:`enter_fp_mode` / :func:`leave_fp_mode`, which take the caller's mode to the worker and
give the worker its own back), so that results do not depend on which thread ran a chunk. A new
thread starts in the mode of the thread that creates it, so the parallel loops' threads are
started before the calling thread's mode changes (:func:`start_threads`): a thread pool born
inside the block would flush for good, in every later parallel loop and MKL call it runs.

Only values below the smallest normal number change (to 0); the NumPy reference keeps them. On
other CPUs there is no MXCSR: the mode reads as 0 and nothing changes.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading

import numpy as np

from .jit import JIT_INLINE, JIT_PARALLEL, compiled, numba, prange, types

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
FLUSH_BITS = 0x8040
#: Whether this process runs on an x86 CPU (the only kind with an MXCSR).
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")

if numba is not None:
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic

    def _mxcsr_call(builder, name, ptr):
        """Call ``llvm.x86.sse.stmxcsr`` or ``ldmxcsr`` (``name``) on the i32 at ``ptr``."""
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]), name)
        builder.call(fn, [builder.bitcast(ptr, ir.IntType(8).as_pointer())])

    @intrinsic
    def read_fp_mode(typingctx):
        """The calling thread's MXCSR (int64); 0 on other CPUs."""
        def codegen(context, builder, sig, args):
            if not IS_X86:
                return ir.Constant(ir.IntType(64), 0)
            ptr = cgutils.alloca_once(builder, ir.IntType(32))
            _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
            return builder.zext(builder.load(ptr), ir.IntType(64))
        return types.int64(), codegen

    @intrinsic
    def write_fp_mode(typingctx, mode):
        """Set the calling thread's MXCSR to ``mode`` (int64, as read_fp_mode gives it); nothing
        on other CPUs."""
        if not isinstance(mode, types.Integer):
            return None

        def codegen(context, builder, sig, args):
            if IS_X86:
                value = context.cast(builder, args[0], sig.args[0], types.int64)
                ptr = cgutils.alloca_once_value(builder, builder.trunc(value, ir.IntType(32)))
                _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
            return context.get_dummy_value()
        return types.none(mode), codegen
else:  # pragma: no cover - without numba nothing here is called
    def read_fp_mode():
        return 0

    def write_fp_mode(mode):
        return None


@compiled(**JIT_INLINE)
def enter_fp_mode(mode):
    """Give the calling thread the flush bits of ``mode`` (read_fp_mode on the thread that
    started the work); returns the thread's own mode, for :func:`leave_fp_mode`."""
    own = read_fp_mode()
    write_fp_mode((own & ~FLUSH_BITS) | (mode & FLUSH_BITS))
    return own


@compiled(**JIT_INLINE)
def leave_fp_mode(own):
    """Give the calling thread back the flush bits of ``own`` (what enter_fp_mode returned); the
    exception flags raised meanwhile stay raised."""
    write_fp_mode((read_fp_mode() & ~FLUSH_BITS) | (own & FLUSH_BITS))


@compiled(cache=True)
def thread_fp_mode():
    """The calling thread's MXCSR (int64; 0 on other CPUs), from Python."""
    return read_fp_mode()


@compiled(**JIT_PARALLEL)
def _thread_modes(modes):
    """A parallel loop of len(modes) iterations, each storing its thread's MXCSR in modes."""
    for i in prange(modes.shape[0]):
        modes[i] = read_fp_mode()


#: Per Python thread (each has its own OpenMP thread pool): (process id, the most threads a
#: parallel loop of it has run on).
_STARTED = threading.local()


def start_threads():
    """Make sure the threads of the calling thread's parallel loops exist (Numba's thread count
    of them): run one parallel loop over them unless one this large has run in this process."""
    threads = numba.get_num_threads()
    pid, started = getattr(_STARTED, "team", (None, 0))
    if pid != os.getpid() or started < threads:
        _thread_modes(np.empty(threads, np.int64))
        _STARTED.team = (os.getpid(), threads)


@contextlib.contextmanager
def flushing_subnormals(on=True):
    """A block whose compiled code on the calling thread flushes subnormal results to 0 and reads
    subnormal operands as 0 (``on``; else, or on other CPUs, the mode as it is); the thread's
    own flush bits come back at the end, however the block ends. Its parallel loops' threads
    are started first (:func:`start_threads`)."""
    if not (on and IS_X86):
        yield
        return
    start_threads()
    own = enter_fp_mode(FLUSH_BITS)
    try:
        yield
    finally:
        leave_fp_mode(own)
