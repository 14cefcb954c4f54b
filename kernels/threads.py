"""CPU thread limits for the host backends: how many threads Numba's parallel kernels and the BLAS
may use while a fit or a prediction runs.

One place for the policy, so the NumPy and Numba backends cannot drift apart.
"""

from __future__ import annotations

import contextlib

from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def limit_threads(n_threads: int | None, numba=None):
    """Context manager: BLAS (and, given the ``numba`` module, Numba's parallel kernels) run at most
    ``n_threads`` threads inside; None keeps the process's defaults."""
    if n_threads is None:
        yield
        return
    previous = numba.get_num_threads() if numba is not None else None
    if numba is not None:
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n_threads, user_api="blas"):  # np.dot's BLAS too
            yield
    finally:
        if previous is not None:
            numba.set_num_threads(previous)
