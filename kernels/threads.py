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
import ctypes
import functools
import os
import sys

from threadpoolctl import ThreadpoolController

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
        with _blas_controller().limit(limits=n_threads):  # np.dot's BLAS too
            yield
    finally:
        if previous is not None:
            numba.set_num_threads(previous)


def single_threaded_blas():
    """Context manager: the BLAS libraries (NumPy's and SciPy's) run one thread inside, for
    compiled code that calls BLAS from several threads of its own."""
    import scipy.linalg.cython_blas  # noqa: F401 - loaded before a scan (Numba's np.dot calls it)
    return _blas_controller().limit(limits=1)


#: (loaded shared libraries when scanned, threadpoolctl's selection of the BLAS ones among them)
_SCANNED: list = []


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries this process has loaded. Their scan took
    0.5 ms, paid by every fit and partial_fit call (a loop of small partial_fit calls spent more
    in it than in its epochs); it is made again only when the count of loaded shared libraries
    changed (a library loaded since, e.g. MKL by the Numba backend's gemm lookup), or every time
    where the count is unknown."""
    count = _loaded_library_count()
    if count is None or not _SCANNED or _SCANNED[0][0] != count:
        _SCANNED[:] = [(count, ThreadpoolController().select(user_api="blas"))]
    return _SCANNED[0][1]


def _loaded_library_count() -> int | None:
    """How many shared libraries the process has loaded (dl_iterate_phdr on Linux and the BSDs,
    the dyld image count on macOS), or None where neither exists."""
    return _library_counter()()


@functools.cache
def _library_counter():
    """A function of no arguments returning the loaded shared library count, or None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return lambda: None
    if hasattr(libc, "dl_iterate_phdr"):
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                         ctypes.c_void_p)
        seen = [0]

        def one(info, size, data):  # noqa: ARG001 - dl_iterate_phdr's signature
            seen[0] += 1
            return 0
        callback = callback_type(one)

        def count():
            seen[0] = 0
            libc.dl_iterate_phdr(callback, None)
            return seen[0]
        return count
    if hasattr(libc, "_dyld_image_count"):
        return lambda: int(libc._dyld_image_count())
    return lambda: None


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
