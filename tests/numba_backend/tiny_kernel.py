"""A tiny cached kernel for test_callees: compiles in a fraction of a second, importable by
helper processes (tests is a package)."""

from numba import njit


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
