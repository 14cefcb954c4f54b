"""numpy_blas: NumPy's CBLAS gemm found by address, and matmul by it or by np.dot."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import requires_numba

pytestmark = requires_numba


def _matmul_kernel():
    from fastfnn.kernels.numba_backend.jit import numba
    from fastfnn.kernels.numba_backend.numpy_blas import matmul

    @numba.njit
    def run(gemm, a, b, c, trans_a, trans_b):
        matmul(gemm, a, b, c, trans_a, trans_b)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("use_numpy_blas", [True, False])
def test_matmul_matches_numpy(dtype, trans_a, trans_b, use_numpy_blas):
    """c = op(a) @ op(b), overwriting c, for each transpose the BLAS epoch uses, by NumPy's BLAS
    and by np.dot (gemm None); non-square shapes, so a swapped dimension or leading dimension
    would fail."""
    from fastfnn.kernels.numba_backend.numpy_blas import find_gemm
    gemm = find_gemm(dtype) if use_numpy_blas else None
    if use_numpy_blas and gemm is None:
        pytest.skip("no BLAS with a 64-bit CBLAS gemm is loaded here")
    rng = np.random.default_rng(3)
    m, k, n = 7, 13, 5
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)  # overwritten, never read
    _matmul_kernel()(gemm, a, b, c, trans_a, trans_b)
    expected = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


def _column_range_kernel():
    from fastfnn.kernels.numba_backend.jit import numba
    from fastfnn.kernels.numba_backend.numpy_blas import matmul

    @numba.njit
    def run(gemm, a, r0, r1, b, c):
        matmul(gemm, a[:, r0:r1], b, c, True, False)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_numpy_blas", [True, False])
def test_matmul_of_a_column_range(dtype, use_numpy_blas):
    """c = a[:, r0:r1].T @ b for columns r0..r1 of a C array (a part's rows of a weight gradient
    in the BLAS epoch): the row stride of a is the leading dimension, by NumPy's BLAS and by
    np.dot (which takes a copy)."""
    from fastfnn.kernels.numba_backend.numpy_blas import find_gemm
    gemm = find_gemm(dtype) if use_numpy_blas else None
    if use_numpy_blas and gemm is None:
        pytest.skip("no BLAS with a 64-bit CBLAS gemm is loaded here")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((9, 11)).astype(dtype)
    b = rng.standard_normal((9, 6)).astype(dtype)
    c = np.full((4, 6), np.nan, dtype)
    _column_range_kernel()(gemm, a, 3, 7, b, c)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, a[:, 3:7].T.astype(np.float64) @ b, rtol=tol, atol=tol)


def _gemm_into_kernel():
    from fastfnn.kernels.numba_backend.jit import numba
    from fastfnn.kernels.numba_backend.numpy_blas import gemm_into

    @numba.njit
    def run(gemm, a, r0, r1, b, c, q0, q1, alpha, beta):
        gemm_into(gemm, a[:, r0:r1], b, c[q0:q1], True, False, alpha, beta)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_into_adds_to_a_row_range(dtype):
    """c[q0:q1] = alpha * a[:, r0:r1].T @ b + beta * c[q0:q1] (a plain SGD step in the GEMM:
    the BLAS epoch's weights rows), the rows of c outside the range untouched."""
    from fastfnn.kernels.numba_backend.numpy_blas import find_gemm
    gemm = find_gemm(dtype)
    if gemm is None:
        pytest.skip("no BLAS with a 64-bit CBLAS gemm is loaded here")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((9, 11)).astype(dtype)
    b = rng.standard_normal((9, 6)).astype(dtype)
    c = rng.standard_normal((10, 6)).astype(dtype)
    alpha, beta = dtype(-0.1), dtype(0.99)
    expected = c.astype(np.float64)
    expected[2:6] = alpha * (a[:, 3:7].T.astype(np.float64) @ b) + beta * expected[2:6]
    _gemm_into_kernel()(gemm, a, 3, 7, b, c, 2, 6, alpha, beta)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


def test_find_gemm_prefers_numpy_s_blas():
    """With NumPy's own OpenBLAS wheel (scipy_openblas64_), its gemm is the one found, typed
    for the dtype; memoised."""
    from fastfnn.kernels.numba_backend.jit import numba, types
    from fastfnn.kernels.numba_backend.numpy_blas import find_gemm
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if config.get("name") != "scipy-openblas":
        pytest.skip(f"NumPy is built with {config.get('name')!r}, not its OpenBLAS wheel")
    for dtype, ft in ((np.float32, types.float32), (np.float64, types.float64)):
        gemm = find_gemm(dtype)
        assert gemm is find_gemm(dtype)
        assert "numpy" in gemm.library and "openblas64_" in gemm.library
        assert numba.typeof(gemm).signature.args[6] == ft
