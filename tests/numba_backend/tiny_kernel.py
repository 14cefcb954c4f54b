"""A tiny cached kernel for test_callees: compiles in a fraction of a second, importable by
helper processes (tests is a package)."""

from numba import njit, prange


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
