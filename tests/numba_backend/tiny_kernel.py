"""Tiny cached kernels for test_callees and test_fp_mode: each compiles in a fraction of a second,
importable by helper processes (tests is a package)."""

from numba import njit, prange

from fastfnn.kernels.numba_backend.fp_mode import (FLUSH_BITS, enter_fp_mode, leave_fp_mode,
                                                   read_fp_mode)


@njit(cache=True)
def scaled_sum(x, factor):
    """sum(x) * factor of a float64 (n,) array."""
    total = 0.0
    for v in x:
        total += v
    return total * factor


@njit(cache=False)
def uncached_sum(x):
    """sum(x) of a float64 (n,) array, never cached on disk."""
    total = 0.0
    for v in x:
        total += v
    return total


@njit(cache=True, parallel=True)
def parallel_doubled(x):
    """x *= 2 of a float64 (n,) array, in a parallel loop."""
    for i in prange(x.shape[0]):
        x[i] *= 2.0


@njit(cache=True)
def doubled_sum(x):
    """sum(x) after parallel_doubled: a serial kernel that calls a parallel one."""
    parallel_doubled(x)
    return scaled_sum(x, 1.0)


@njit(cache=True, parallel=True)
def flush_bits_in_loop(mode, seen):
    """seen[i]: the flush bits iteration i of a parallel loop ran with, the loop entering
    floating-point mode ``mode`` as the fused epoch's loops do (fp_mode.enter_fp_mode)."""
    for i in prange(seen.shape[0]):
        own = enter_fp_mode(mode)
        seen[i] = read_fp_mode() & FLUSH_BITS
        leave_fp_mode(own)
