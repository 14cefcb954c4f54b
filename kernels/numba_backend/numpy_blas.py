"""NumPy's BLAS matrix product (CBLAS ``?gemm``) as a first-class function for compiled code.

Numba's ``np.dot`` calls SciPy's BLAS. NumPy's wheels bring their own OpenBLAS build, which can be
faster: on a 2-core AMD EPYC (Zen 3) VM NumPy's OpenBLAS 0.3.31 ran single-threaded float32
products of 32 x 1000 by 1000 x 256 1.48x as fast as SciPy's 0.3.30 (RESULTS.md). :func:`find_gemm`
finds the CBLAS ``?gemm`` with 64-bit integers (the ``64_`` symbol suffix of ILP64 builds, so the
integer width is known) in the BLAS libraries loaded in this process, NumPy's first, and returns it
as a ``WrapperAddressProtocol`` object: compiled code receives it as an argument (numba's
``FunctionType``), so its address is not baked into the disk cache. None where no such symbol
exists; callers then use ``np.dot``.

Assumes: row-major CBLAS (``CblasRowMajor`` 101, ``CblasNoTrans`` 111, ``CblasTrans`` 112), C
enums as 32-bit ints; the library stays loaded for the life of the process (NumPy's does).
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from .jit import JIT_INLINE, compiled, numba, types
from .vectors import pointer_to

if numba is not None:
    from numba.experimental.function_type import WrapperAddressProtocol
else:  # pragma: no cover - without numba nothing here is called
    WrapperAddressProtocol = object

ROW_MAJOR, NO_TRANS, TRANS = np.int32(101), np.int32(111), np.int32(112)

#: CBLAS gemm symbols with 64-bit integers, by prefix letter (s: float32, d: float64).
_SYMBOLS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_")


class CblasGemm(WrapperAddressProtocol):
    """``cblas_?gemm`` of one library at ``address`` for float dtype ``dtype``: (order, trans_a,
    trans_b: int32; m, n, k: int64; alpha: float; a: pointer, lda: int64; b, ldb; beta; c,
    ldc) -> None."""

    def __init__(self, address, dtype, library):
        ft = numba.from_dtype(np.dtype(dtype))
        i32, i64, ptr = types.int32, types.int64, types.CPointer(ft)
        self._address = address
        self._signature = types.void(i32, i32, i32, i64, i64, i64, ft, ptr, i64, ptr, i64, ft,
                                     ptr, i64)
        self.library = library

    def __wrapper_address__(self):
        return self._address

    def signature(self):
        return self._signature


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


def find_gemm(dtype):
    """A :class:`CblasGemm` for float32 or float64 ``dtype`` from the first loaded BLAS library
    (NumPy's first) that exports a 64-bit-integer CBLAS gemm, else None. Memoised."""
    dtype = np.dtype(dtype)
    if dtype not in _FOUND:
        names = [pattern.format("s" if dtype == np.float32 else "d") for pattern in _SYMBOLS]
        found = ((path, _address_of(path, names)) for path in _blas_libraries())
        _FOUND[dtype] = next((CblasGemm(address, dtype, path) for path, address in found
                              if address is not None), None)
    return _FOUND[dtype]


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
