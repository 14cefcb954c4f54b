"""A CBLAS matrix product (``?gemm``) found by address, as a first-class function for compiled code.

Numba's ``np.dot`` calls SciPy's BLAS. Other builds can be faster: NumPy's wheels bring their own
OpenBLAS (on a 2-core AMD EPYC (Zen 3) VM NumPy's OpenBLAS 0.3.31 ran single-threaded float32
products of 32 x 1000 by 1000 x 256 1.48x as fast as SciPy's 0.3.30), and Intel's MKL (the ``mkl``
wheel, ``pip install fastfnn[mkl]``) ran a training step's GEMMs of 1000-256-128-5 in 0.66x-0.82x
OpenBLAS's time (float64; float32 0.72x-0.89x) on a 2-core Xeon with AVX-512, though not every
shape gains (RESULTS.md). On AMD's CPUs MKL's float64 code is the slower: on a 2-core AMD EPYC
(Zen 4, AVX-512) VM the BLAS epoch's float64 rows took 0.72x-0.90x their MKL time on NumPy's
OpenBLAS, while float32's 32-row steps took 1.19x-1.33x (RESULTS.md); so off Intel's CPUs
float64 products default to OpenBLAS (:func:`mkl_suits_cpu`).
:func:`find_gemm` returns the CBLAS ``?gemm`` with 64-bit integers (the
``64_``/``_64`` symbol suffixes of ILP64 builds, so the integer width is known) of the library
that :func:`blas_choice` names, as a ``WrapperAddressProtocol`` object: compiled code receives it
as an argument (numba's ``FunctionType``), so its address is not baked into the disk cache. None
where no such symbol exists; callers then use ``np.dot``.

Assumes: row-major CBLAS (``CblasRowMajor`` 101, ``CblasNoTrans`` 111, ``CblasTrans`` 112), C
enums as 32-bit ints; a library stays loaded for the life of the process.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import os
import platform

import numpy as np

from .jit import FLOATS, JIT_INLINE, compiled, numba, types
from .vectors import pointer_to

if numba is not None:
    from numba.experimental.function_type import WrapperAddressProtocol
else:  # pragma: no cover - without numba nothing here is called
    WrapperAddressProtocol = object

ROW_MAJOR, NO_TRANS, TRANS = np.int32(101), np.int32(111), np.int32(112)

#: CBLAS gemm symbols with 64-bit integers, by prefix letter (s: float32, d: float64): NumPy's and
#: SciPy's OpenBLAS wheels, other ILP64 OpenBLAS builds, MKL.
_SYMBOLS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_", "cblas_{}gemm_64")

#: Values of FASTFNN_BLAS, the library find_gemm takes its gemm from: ``auto`` MKL where its
#: wheel is installed and suits the CPU and dtype (:func:`mkl_suits_cpu`), else the loaded BLAS
#: (NumPy's first); ``mkl`` MKL (an error where it is not installed); ``loaded`` the BLAS
#: libraries this process has loaded, NumPy's first.
BLAS_CHOICES = ("auto", "mkl", "loaded")

# MKL's settings (mkl_service.h): GNU OpenMP threading, the CNR branch "auto".
_MKL_THREADING_GNU = 3
_MKL_CBWR_AUTO = 2


class CblasGemm(WrapperAddressProtocol):
    """``cblas_?gemm`` of one library at ``address`` for float dtype ``dtype``: (order, trans_a,
    trans_b: int32; m, n, k: int64; alpha: float; a: pointer, lda: int64; b, ldb; beta; c,
    ldc) -> None. ``library`` is the path of the library that exports it, ``is_mkl`` whether
    that is MKL."""

    def __init__(self, address, dtype, library, is_mkl=False):
        ft = numba.from_dtype(np.dtype(dtype))
        i32, i64, ptr = types.int32, types.int64, types.CPointer(ft)
        self._address = address
        self._signature = types.void(i32, i32, i32, i64, i64, i64, ft, ptr, i64, ptr, i64, ft,
                                     ptr, i64)
        self.dtype = np.dtype(dtype)
        self.library = library
        self.is_mkl = is_mkl
        scalar = ctypes.c_float if self.dtype == np.float32 else ctypes.c_double
        i32c, i64c, ptrc = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
        self._from_python = ctypes.CFUNCTYPE(None, i32c, i32c, i32c, i64c, i64c, i64c, scalar,
                                             ptrc, i64c, ptrc, i64c, scalar, ptrc, i64c)(address)

    def __wrapper_address__(self):
        return self._address

    def signature(self):
        return self._signature

    def matmul(self, a, b, out, trans_a=False, trans_b=False):
        """out = op(a) @ op(b) from Python (op a transpose where trans_* is True), for C arrays
        ``a``, ``b`` and ``out`` of this gemm's dtype: the benchmarks' GEMM floor."""
        m, k = a.shape[::-1] if trans_a else a.shape
        k_b, n = b.shape[::-1] if trans_b else b.shape
        if not all(x.dtype == self.dtype and x.flags.c_contiguous for x in (a, b, out)) or \
                k_b != k or out.shape != (m, n):
            raise ValueError(f"gemm.matmul wants C arrays of {self.dtype} with op(a) (m, k), op(b) "
                             f"(k, n), out (m, n); got {a.shape} {a.dtype}, {b.shape} {b.dtype}, "
                             f"{out.shape} {out.dtype} (trans_a={trans_a}, trans_b={trans_b})")
        self._from_python(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS,
                          m, n, k, 1.0, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], 0.0,
                          out.ctypes.data, n)
        return out


def blas_choice() -> str:
    """The library :func:`find_gemm` takes its gemm from: the environment variable FASTFNN_BLAS,
    one of :data:`BLAS_CHOICES` (default ``auto``). Raises ValueError for any other value."""
    choice = os.environ.get("FASTFNN_BLAS", "auto").strip().lower() or "auto"
    if choice not in BLAS_CHOICES:
        raise ValueError(f"FASTFNN_BLAS={os.environ['FASTFNN_BLAS']!r} is not a BLAS choice; "
                         f"expected one of {', '.join(BLAS_CHOICES)}")
    return choice


@functools.lru_cache(maxsize=None)
def cpu_vendor(cpuinfo="/proc/cpuinfo"):
    """The CPU's vendor as CPUID names it ('GenuineIntel', 'AuthenticAMD', ...): the ``vendor_id``
    of Linux's ``cpuinfo`` file, else the word after the last comma of platform.processor()
    (Windows: 'Intel64 Family 6 Model 85 Stepping 7, GenuineIntel'); '' where neither says."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip()
    except OSError:
        pass
    processor = platform.processor()
    return processor.rpartition(",")[2].strip() if "," in processor else ""


def mkl_suits_cpu(dtype):
    """Whether FASTFNN_BLAS=auto takes MKL's gemm for float ``dtype`` here (where its wheel is
    installed): on Intel's CPUs and where the vendor is unknown; on others in float32 only."""
    return cpu_vendor() in ("GenuineIntel", "") or np.dtype(dtype) == np.float32


def mkl_runtime_path():
    """The path of MKL's single dynamic library (``libmkl_rt``) that the ``mkl`` wheel installed,
    or None where that wheel is not installed."""
    try:
        files = importlib.metadata.distribution("mkl").files or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        name = file.name
        if name.startswith("libmkl_rt.so") or name.startswith("mkl_rt.") and name.endswith(".dll"):
            return str(file.locate())
    return None


_MKL: list = []


def load_mkl():
    """Load MKL's runtime (once) and return its path, or None where it is not installed.

    Before its first call it is told (unless the user's MKL_THREADING_LAYER, MKL_CBWR say
    otherwise) to thread with GNU OpenMP, the runtime of Numba's ``omp`` layer, so that the two
    share one pool (Intel's runtime, a second pool, measured about as fast here), and to take its
    CNR code path (results that do not depend on the arrays' alignment; as fast here), so that a
    fit stays bitwise reproducible for a given thread count. MKL_DYNAMIC stays on: turned off,
    the BLAS epoch ran 1.7x-32x slower here (MKL called from Numba's threads). threadpoolctl finds
    it once loaded.
    """
    if not _MKL:
        path = mkl_runtime_path()
        if path is not None:
            library = ctypes.CDLL(path)
            if "MKL_THREADING_LAYER" not in os.environ:
                library.MKL_Set_Threading_Layer(_MKL_THREADING_GNU)
            if "MKL_CBWR" not in os.environ:
                library.MKL_CBWR_Set(_MKL_CBWR_AUTO)
        _MKL.append(path)
    return _MKL[0]


def _blas_libraries():
    """Paths of the BLAS libraries loaded in this process, NumPy's first."""
    from threadpoolctl import ThreadpoolController

    # a wheel's libraries live in numpy.libs/ (or numpy/.libs) beside the package
    numpy_prefix = os.path.dirname(os.path.abspath(np.__file__))
    paths = [lib.filepath for lib in ThreadpoolController().select(user_api="blas").lib_controllers]
    return sorted(paths, key=lambda p: not os.path.abspath(p).startswith(numpy_prefix))


def _address_of(path, names):
    """The address of the first of ``names`` that the library at ``path`` exports, else None."""
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None
    for name in names:
        symbol = getattr(library, name, None)
        if symbol is not None:
            return ctypes.cast(symbol, ctypes.c_void_p).value
    return None


_FOUND: dict = {}


def find_gemm(dtype, choice=None):
    """A :class:`CblasGemm` for float32 or float64 ``dtype`` from the library ``choice`` names
    (one of :data:`BLAS_CHOICES`; None: :func:`blas_choice`): MKL's, or the first loaded BLAS
    library (NumPy's first) that exports a 64-bit-integer CBLAS gemm; None where there is none.
    Raises ValueError for ``mkl`` where MKL's wheel is not installed. Memoised."""
    dtype = np.dtype(dtype)
    choice = blas_choice() if choice is None else choice
    if choice not in BLAS_CHOICES:
        raise ValueError(f"BLAS choice {choice!r}: expected one of {', '.join(BLAS_CHOICES)}")
    wants_mkl = choice == "mkl" or choice == "auto" and mkl_suits_cpu(dtype)
    mkl = load_mkl() if wants_mkl else None
    if choice == "mkl" and mkl is None:
        raise ValueError("FASTFNN_BLAS=mkl, but MKL is not installed: pip install "
                         "'fastfnn[mkl]' (or FASTFNN_BLAS=auto to use the loaded BLAS)")
    key = (dtype, mkl)  # one gemm a library: auto and mkl share MKL's, auto and loaded the rest
    if key not in _FOUND:
        names = [pattern.format("s" if dtype == np.float32 else "d") for pattern in _SYMBOLS]
        found = ((path, _address_of(path, names)) for path in ([mkl] if mkl else _blas_libraries()))
        _FOUND[key] = next((CblasGemm(address, dtype, path, is_mkl=path == mkl)
                            for path, address in found
                            if address is not None), None)
    return _FOUND[key]


def describe_gemm(choice=None):
    """One line on the gemms :func:`find_gemm` returns for ``choice``: library, version, file,
    each dtype's where float32's and float64's differ; or why there is none."""
    try:
        described = {dtype.name: _describe(find_gemm(dtype, choice)) for dtype in FLOATS}
    except ValueError as exc:
        return str(exc)
    if described["float32"] == described["float64"]:
        return described["float64"]
    return ", ".join(f"{text} for {name}" for name, text in described.items())


def _describe(gemm):
    """Library, version and file of the CblasGemm ``gemm``, or what runs where it is None."""
    if gemm is None:
        return "none found: numba's np.dot (SciPy's BLAS)"
    from threadpoolctl import threadpool_info

    info = next((lib for lib in threadpool_info()
                 if os.path.realpath(lib["filepath"]) == os.path.realpath(gemm.library)), {})
    name = {"mkl": "MKL", "openblas": "OpenBLAS"}.get(info.get("internal_api"), "BLAS")
    version = f" {info['version']}" if info.get("version") else ""
    return f"{name}{version} ({os.path.basename(gemm.library)})"


@compiled(**JIT_INLINE)
def _at(a):
    """A pointer to the first element of array a."""
    return pointer_to(np.int64(a.ctypes.data), a)


@compiled(**JIT_INLINE)
def _leading(a):
    """The leading dimension of 2-D array a, whose rows are strided and columns contiguous."""
    return np.int64(a.strides[0] // a.itemsize)


@compiled(**JIT_INLINE)
def gemm_into(gemm, a, b, c, trans_a, trans_b, alpha, beta):
    """c = alpha * op(a) @ op(b) + beta * c by ``gemm`` (a CblasGemm, not None), arrays as
    :func:`matmul` takes them (c may also be a range of a C array's rows); alpha and beta scalars
    of c's dtype. With beta 1, BLAS adds to c in its own pass over it: a plain SGD step applied
    to the weights inside the GEMM that forms their gradient."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    gemm(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, m, n, k,
         alpha, _at(a), _leading(a), _at(b), _leading(b), beta, _at(c), _leading(c))


@compiled(**JIT_INLINE)
def matmul(gemm, a, b, c, trans_a, trans_b):
    """c = op(a) @ op(b) (op a transpose where trans_* is True; c (m, n) written, not added to)
    for 2-D arrays of one float dtype whose columns are contiguous: c and b C arrays, a a C
    array or a range of a C array's columns (its row stride is the leading dimension). By
    ``gemm`` (a CblasGemm) or, when it is None, by numba's np.dot (SciPy's BLAS), which takes a
    copy of such a range."""
    if gemm is None:
        if trans_a:
            np.dot(np.ascontiguousarray(a).T, b, c)
        elif trans_b:
            np.dot(a, b.T, c)
        else:
            np.dot(a, b, c)
    else:
        gemm_into(gemm, a, b, c, trans_a, trans_b, c.dtype.type(1.0), c.dtype.type(0.0))
