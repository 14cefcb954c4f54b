"""CPU thread limits for the host backends: how many threads Numba's parallel kernels and the BLAS
may use while a fit or a prediction runs.

One place for the policy, so the NumPy and Numba backends cannot drift apart. Asked for no count
(``n_jobs=None``), a fit takes the process's share of the machine (:func:`process_share`): the
operating system states it as the CPU affinity, and cluster engines state it to their worker
processes through environment variables, which Numba does not read but this module does:

- joblib's loky workers get NUMBA_NUM_THREADS and OMP_NUM_THREADS (among others) set to
  ``parallel_config(inner_max_num_threads=...)``, else to cores // n_jobs;
- Dask's nanny starts its workers with OMP_NUM_THREADS=1 (``distributed.nanny.pre-spawn-environ``);
- Ray sets OMP_NUM_THREADS in a worker to the CPUs its task or actor holds (1 by default).

The variables are read when each fit starts, not at import: Ray sets them in a worker that is
already running. Assumes threadpoolctl can see the BLAS libraries once they are loaded.
"""

from __future__ import annotations

import contextlib
import os
import sys

from threadpoolctl import ThreadpoolController, threadpool_limits

#: Environment variables that state how many threads this process should run, smallest wins.
SHARE_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")


def process_share(numba=None) -> int:
    """The threads this process may run: the smallest of its CPU affinity, NUMBA_NUM_THREADS,
    OMP_NUM_THREADS (each when set to a positive count; OpenMP's nested form "4,2" counts its first
    level), the ``inner_max_num_threads`` of an active ``joblib.parallel_config`` and, given the
    ``numba`` module, the size of Numba's thread pool. Returns an int >= 1."""
    counts = [_affinity()]
    counts += [n for n in map(_first_count, map(os.environ.get, SHARE_VARIABLES)) if n]
    inner = _joblib_inner_limit()
    if inner:
        counts.append(inner)
    if numba is not None:
        counts.append(numba.config.NUMBA_NUM_THREADS)
    return max(1, min(counts))


@contextlib.contextmanager
def limit_threads(n_threads: int | None, numba=None):
    """Context manager: BLAS (and, given the ``numba`` module, Numba's parallel kernels) run at most
    ``n_threads`` threads inside; None: the process's share (:func:`process_share`).

    With ``numba`` it first loads SciPy's BLAS, which Numba's ``np.dot`` calls but loads only at
    its first call: a limit set before that would miss it, and the first fit in a fresh process
    would sum in another order than the next ones (not bitwise the same).
    """
    if numba is not None:
        import scipy.linalg.cython_blas  # noqa: F401 - loads the library; see the docstring
    if n_threads is None:
        n_threads = process_share(numba)
    previous = numba.get_num_threads() if numba is not None else None
    if numba is not None:
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n_threads, user_api="blas"):  # np.dot's BLAS too
            yield
    finally:
        if previous is not None:
            numba.set_num_threads(previous)


_CONTROLLER: list = []


def single_threaded_blas():
    """Context manager: the BLAS libraries (NumPy's and SciPy's) run one thread inside, for
    compiled code that calls BLAS from several threads of its own. The libraries are found once
    (SciPy's loaded first: Numba's ``np.dot`` calls it), the limit costs a call per library."""
    if not _CONTROLLER:
        import scipy.linalg.cython_blas  # noqa: F401 - loads the library before the scan
        _CONTROLLER.append(ThreadpoolController().select(user_api="blas"))
    return _CONTROLLER[0].limit(limits=1)


def forget_blas_libraries():
    """Have :func:`single_threaded_blas` look for the BLAS libraries again: one was loaded since
    (MKL, by the Numba backend's gemm lookup)."""
    _CONTROLLER.clear()


def _affinity() -> int:
    """CPUs this process may run on (the whole machine where the OS cannot say)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _first_count(value: str | None) -> int | None:
    """A thread-count variable's value as a positive int, or None when unset or not a count."""
    try:
        count = int((value or "").split(",")[0])
    except ValueError:
        return None
    return count if count > 0 else None


def _joblib_inner_limit() -> int | None:
    """``inner_max_num_threads`` of the joblib backend active in this thread, or None.

    A fit under ``parallel_config(inner_max_num_threads=k)`` is taken to be the nested work that
    limit is for. A process that never imported joblib is under no joblib context: no import here.
    """
    parallel = sys.modules.get("joblib.parallel")
    if parallel is None:
        return None
    backend, _ = parallel.get_active_backend()
    return getattr(backend, "inner_max_num_threads", None)
