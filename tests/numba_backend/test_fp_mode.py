"""The floating-point mode of compiled code (numba_backend.fp_mode): flush-to-zero and
denormals-are-zero on the calling thread, for a block, and carried to a parallel loop's threads."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

from fastfnn.kernels.numba_backend.fp_mode import (FLUSH_BITS, IS_X86, flushing_subnormals,
                                                   thread_fp_mode)

from .helpers import requires_numba
from .tiny_kernel import flush_bits_in_loop

pytestmark = [requires_numba,
              pytest.mark.skipif(not IS_X86, reason="the flush modes are x86's (MXCSR)")]

TINY32 = np.float32(np.finfo(np.float32).tiny)


@njit
def _halve(x):
    """x / 2 (float32), computed in the calling thread's mode."""
    return x / np.float32(2.0)


def test_a_block_flushes_and_gives_the_mode_back():
    before = thread_fp_mode()
    assert before & FLUSH_BITS == 0  # Python's threads start without the flush
    assert _halve(TINY32) > 0  # a subnormal result
    with flushing_subnormals():
        assert thread_fp_mode() & FLUSH_BITS == FLUSH_BITS
        assert _halve(TINY32) == 0
    assert thread_fp_mode() & FLUSH_BITS == before & FLUSH_BITS
    assert _halve(TINY32) > 0


def test_the_mode_comes_back_when_the_block_raises():
    before = thread_fp_mode()
    with pytest.raises(KeyError):
        with flushing_subnormals():
            raise KeyError("out")
    assert thread_fp_mode() & FLUSH_BITS == before & FLUSH_BITS


def test_off_changes_nothing():
    before = thread_fp_mode()
    with flushing_subnormals(False):
        assert thread_fp_mode() & FLUSH_BITS == before & FLUSH_BITS
        assert _halve(TINY32) > 0


def test_a_parallel_loop_takes_the_callers_mode_to_every_thread():
    seen = np.full(64 * numba.get_num_threads(), -1, np.int64)
    with flushing_subnormals():
        flush_bits_in_loop(thread_fp_mode(), seen)
    assert (seen == FLUSH_BITS).all()


_FRESH_PROCESS = """
import numpy as np
from fastfnn.kernels.numba_backend.fp_mode import (FLUSH_BITS, _thread_modes, flushing_subnormals,
                                                   thread_fp_mode)
from tests.numba_backend.tiny_kernel import flush_bits_in_loop

seen = np.empty(64, np.int64)
with flushing_subnormals():
    flush_bits_in_loop(thread_fp_mode(), seen)  # the process's first parallel loop
after = np.empty(64, np.int64)
_thread_modes(after)
print((seen == FLUSH_BITS).all(), (after & FLUSH_BITS == 0).all())
"""


def test_threads_first_started_in_a_block_do_not_keep_its_mode(tmp_path):
    """A thread starts in the mode of the thread that creates it: a process whose first parallel
    loop runs inside the block still has its loops' threads without the flush after it (they
    kept it, in every later loop and MKL call on them, before start_threads)."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMBA_NUM_THREADS="4",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], env=env, capture_output=True,
                          text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "True"]
