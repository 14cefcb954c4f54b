"""cblas: a CBLAS gemm found by address (MKL's, the loaded BLAS's), and matmul by it or by np.dot.

Every product test runs with each source: MKL (where its wheel is installed: CI installs it), the
loaded BLAS (NumPy's OpenBLAS), and np.dot (gemm None)."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import requires_numba, skip_without_mkl

pytestmark = requires_numba

#: Where a test's gemm comes from: a BLAS choice of cblas.find_gemm, or None for np.dot.
SOURCES = ["mkl", "loaded", None]


def gemm_from(source, dtype):
    """find_gemm's gemm from ``source`` (see SOURCES), None for np.dot; skips where that source
    has none here."""
    from fastfnn.kernels.numba_backend.cblas import find_gemm
    if source is None:
        return None
    if source == "mkl":
        skip_without_mkl()
    gemm = find_gemm(dtype, source)
    if gemm is None:
        pytest.skip(f"no 64-bit CBLAS gemm in the {source} BLAS here")
    return gemm


def _matmul_kernel():
    from fastfnn.kernels.numba_backend.jit import numba
    from fastfnn.kernels.numba_backend.cblas import matmul

    @numba.njit
    def run(gemm, a, b, c, trans_a, trans_b):
        matmul(gemm, a, b, c, trans_a, trans_b)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("source", SOURCES)
def test_matmul_matches_numpy(dtype, trans_a, trans_b, source):
    """c = op(a) @ op(b), overwriting c, for each transpose the BLAS epoch uses, by each gemm
    source; non-square shapes, so a swapped dimension or leading dimension would fail."""
    gemm = gemm_from(source, dtype)
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
    from fastfnn.kernels.numba_backend.cblas import matmul

    @numba.njit
    def run(gemm, a, r0, r1, b, c):
        matmul(gemm, a[:, r0:r1], b, c, True, False)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", SOURCES)
def test_matmul_of_a_column_range(dtype, source):
    """c = a[:, r0:r1].T @ b for columns r0..r1 of a C array (a part's rows of a weight gradient
    in the BLAS epoch): the row stride of a is the leading dimension, by each gemm source (np.dot
    takes a copy)."""
    gemm = gemm_from(source, dtype)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((9, 11)).astype(dtype)
    b = rng.standard_normal((9, 6)).astype(dtype)
    c = np.full((4, 6), np.nan, dtype)
    _column_range_kernel()(gemm, a, 3, 7, b, c)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, a[:, 3:7].T.astype(np.float64) @ b, rtol=tol, atol=tol)


def _gemm_into_kernel():
    from fastfnn.kernels.numba_backend.jit import numba
    from fastfnn.kernels.numba_backend.cblas import gemm_into

    @numba.njit
    def run(gemm, a, r0, r1, b, c, q0, q1, alpha, beta):
        gemm_into(gemm, a[:, r0:r1], b, c[q0:q1], True, False, alpha, beta)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", SOURCES[:-1])
def test_gemm_into_adds_to_a_row_range(dtype, source):
    """c[q0:q1] = alpha * a[:, r0:r1].T @ b + beta * c[q0:q1] (a plain SGD step in the GEMM:
    the BLAS epoch's weights rows), the rows of c outside the range untouched."""
    gemm = gemm_from(source, dtype)
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
    """Of the loaded libraries, with NumPy's own OpenBLAS wheel (scipy_openblas64_), its gemm is
    the one found, typed for the dtype; memoised."""
    from fastfnn.kernels.numba_backend.jit import numba, types
    from fastfnn.kernels.numba_backend.cblas import find_gemm
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if config.get("name") != "scipy-openblas":
        pytest.skip(f"NumPy is built with {config.get('name')!r}, not its OpenBLAS wheel")
    for dtype, ft in ((np.float32, types.float32), (np.float64, types.float64)):
        gemm = find_gemm(dtype, "loaded")
        assert gemm is find_gemm(dtype, "loaded")
        assert "numpy" in gemm.library and "openblas64_" in gemm.library
        assert numba.typeof(gemm).signature.args[6] == ft


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", SOURCES[:-1])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_gemm_matmul_from_python(dtype, source, trans_a, trans_b):
    """CblasGemm.matmul (the benchmarks' floor) computes out = op(a) @ op(b) from Python."""
    gemm = gemm_from(source, dtype)
    rng = np.random.default_rng(6)
    m, k, n = 6, 10, 4
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    assert gemm.matmul(a, b, out, trans_a, trans_b) is out
    expected = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_gemm_matmul_refuses_mismatched_arrays():
    """Wrong dtype, shapes that do not chain, a non-C array: a ValueError naming what it got,
    and out untouched."""
    gemm = gemm_from("loaded", np.float64)
    a, b = np.ones((3, 4)), np.ones((4, 2))
    out = np.full((3, 2), 7.0)
    for args in ((a.astype(np.float32), b, out), (a, np.ones((5, 2)), out),
                 (a, b, np.full((2, 3), 7.0)), (np.asfortranarray(a), b, out)):
        with pytest.raises(ValueError, match="gemm.matmul wants C arrays of float64"):
            gemm.matmul(*args)
    assert (out == 7.0).all()


def test_auto_takes_mkl_where_installed_and_it_suits_the_cpu(monkeypatch):
    """FASTFNN_BLAS unset or ``auto``: MKL's gemm where its wheel is installed and suits the CPU
    and dtype, else the loaded BLAS's; ``loaded`` never MKL's (it is not among the libraries
    NumPy or SciPy load)."""
    from fastfnn.kernels.numba_backend.cblas import find_gemm, mkl_runtime_path, mkl_suits_cpu
    monkeypatch.delenv("FASTFNN_BLAS", raising=False)
    for dtype in (np.float32, np.float64):
        gemm = find_gemm(dtype)
        if mkl_runtime_path() is None or not mkl_suits_cpu(dtype):
            assert gemm is find_gemm(dtype, "loaded")
        else:
            assert "mkl_rt" in gemm.library
            assert gemm is find_gemm(dtype, "mkl")
        assert "mkl" not in find_gemm(dtype, "loaded").library
    monkeypatch.setenv("FASTFNN_BLAS", " Loaded ")
    assert find_gemm(np.float64) is find_gemm(np.float64, "loaded")


@pytest.mark.parametrize("vendor,float64_by_mkl", [("GenuineIntel", True), ("", True),
                                                   ("AuthenticAMD", False),
                                                   ("HygonGenuine", False)])
def test_auto_takes_mkl_for_float64_on_intel_cpus_only(vendor, float64_by_mkl, monkeypatch):
    """``auto`` takes MKL's float32 gemm on any CPU, its float64 one on Intel's CPUs and where
    the vendor is unknown, not on AMD's (where MKL's float64 products ran slower than
    OpenBLAS's); ``mkl`` takes MKL's on any CPU."""
    from fastfnn.kernels.numba_backend import cblas
    skip_without_mkl()
    monkeypatch.setattr(cblas, "cpu_vendor", lambda: vendor)
    assert cblas.find_gemm(np.float32, "auto").is_mkl
    assert cblas.find_gemm(np.float64, "auto").is_mkl is float64_by_mkl
    for dtype in (np.float32, np.float64):
        assert cblas.find_gemm(dtype, "mkl").is_mkl


def test_describe_gemm_names_each_dtype_s_library_where_they_differ(monkeypatch):
    """One library named once; MKL for float32 and OpenBLAS for float64 (``auto`` on an AMD CPU)
    each named with its dtype."""
    from fastfnn.kernels.numba_backend import cblas
    skip_without_mkl()
    assert cblas.describe_gemm("mkl").startswith("MKL ")
    assert "for float" not in cblas.describe_gemm("mkl")
    monkeypatch.setattr(cblas, "cpu_vendor", lambda: "AuthenticAMD")
    described = cblas.describe_gemm("auto")
    assert described.startswith("MKL ") and " for float32, " in described
    assert described.endswith(" for float64") and "mkl" not in described.split(", ")[1]


def test_cpu_vendor_from_cpuinfo_or_the_platform(tmp_path, monkeypatch):
    """Linux's cpuinfo file names the vendor; without one, the end of platform.processor()
    (Windows); '' where neither says."""
    from fastfnn.kernels.numba_backend.cblas import cpu_vendor
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\n"
                       "processor\t: 1\nvendor_id\t: AuthenticAMD\n")
    assert cpu_vendor(str(cpuinfo)) == "AuthenticAMD"
    missing = str(tmp_path / "none")
    monkeypatch.setattr("platform.processor",
                        lambda: "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel")
    assert cpu_vendor(missing) == "GenuineIntel"
    monkeypatch.setattr("platform.processor", lambda: "x86_64")
    assert cpu_vendor(missing + "2") == ""  # another path: cpu_vendor memoises by argument


def test_unknown_blas_choice_is_refused(monkeypatch):
    from fastfnn.kernels.numba_backend.cblas import find_gemm
    monkeypatch.setenv("FASTFNN_BLAS", "openblass")
    with pytest.raises(ValueError, match="FASTFNN_BLAS='openblass' is not a BLAS choice; "
                                         "expected one of auto, mkl, loaded"):
        find_gemm(np.float64)


def test_mkl_asked_for_but_not_installed(monkeypatch):
    """``mkl`` without MKL's wheel: a ValueError that says how to install it; ``auto`` then
    takes the loaded BLAS."""
    from fastfnn.kernels.numba_backend import cblas
    monkeypatch.setattr(cblas, "_MKL", [None])  # as where the wheel is missing
    monkeypatch.setattr(cblas, "_FOUND", {})
    with pytest.raises(ValueError, match=r"MKL is not installed: pip install 'fastfnn\[mkl\]'"):
        cblas.find_gemm(np.float64, "mkl")
    assert "mkl" not in cblas.find_gemm(np.float64, "auto").library


def test_mkl_threads_as_the_limits_say():
    """Once loaded, MKL runs on GNU OpenMP (Numba's omp layer's runtime), on its CNR "auto"
    branch, and the thread limits reach it: limit_threads's
    count, one thread under single_threaded_blas (which looks for libraries again once MKL has
    loaded: the count of loaded libraries changed)."""
    import ctypes

    from threadpoolctl import threadpool_info

    from fastfnn.kernels.numba_backend import cblas
    from fastfnn.kernels.threads import limit_threads, single_threaded_blas
    skip_without_mkl()
    path = cblas.load_mkl()
    single_threaded_blas()  # a controller from before a load must not be kept

    def mkl_info():
        return next(lib for lib in threadpool_info() if lib["internal_api"] == "mkl")
    assert mkl_info()["threading_layer"] == "gnu"
    library = ctypes.CDLL(path)
    assert library.MKL_CBWR_Get(1) == 2  # MKL_CBWR_BRANCH: MKL_CBWR_AUTO
    with limit_threads(1):
        assert mkl_info()["num_threads"] == 1
    with limit_threads(2):
        assert mkl_info()["num_threads"] == 2
        with single_threaded_blas():
            assert mkl_info()["num_threads"] == 1
