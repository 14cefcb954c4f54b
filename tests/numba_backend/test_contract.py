"""The contract kernels (numba_backend.contract), through the backend's methods: each against the
NumPy reference, serial and in parallel chunks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastfnn.kernels import ACTIVATIONS
from fastfnn.kernels.numba_backend import contract

from .helpers import (DTYPES, NB, REF, TOL, assert_close, backend_for, f64, numba_backend,
                      requires_numba, rng_for, skip_without_mkl)

pytestmark = requires_numba

# (m, n): m = 1, odd widths, and one shape that PAR runs with its parallel kernels
SHAPES = [(1, 1), (1, 17), (3, 3), (7, 130), (17, 10), (300, 251)]


# ----------------------------------------------------------------------------- matmul
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 784, 10), (3, 17, 5), (7, 130, 3),
                                   (17, 3, 130)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_matmul(dtype, m, k, n, trans_a, trans_b):
    rng = rng_for(m, k, n, trans_a, trans_b)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    want = (f64(a).T if trans_a else f64(a)) @ (f64(b).T if trans_b else f64(b))
    out = np.empty((m, n), dtype)
    got = NB.matmul(a, b, out, trans_a, trans_b)
    assert got is out
    assert_close(got, want, dtype, **({"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_views(dtype):
    """Transposed views go to BLAS as they are; odd strides and first-rows outputs work too."""
    rng = rng_for("views", dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}
    a = rng.standard_normal((40, 30)).astype(dtype)[:9, ::2]  # (9, 15), neither C nor F
    b = rng.standard_normal((20, 15)).astype(dtype)
    buf = np.empty((30, 20), dtype)
    out = buf[:9]  # the first rows of a bigger C-contiguous buffer
    assert NB.matmul(a, b, out, False, True) is out
    assert_close(buf[:9], f64(a) @ f64(b).T, dtype, **tol)
    c = rng.standard_normal((15, 9)).astype(dtype)
    got = NB.matmul(c, b.T, np.empty((9, 20), dtype), True, False)  # c.T and b.T: F views
    assert_close(got, f64(c).T @ f64(b).T, dtype, **tol)
    # transposed operands reach compiled code as Fortran-ordered arrays: BLAS reads them in place
    layouts = {arg.layout for sig in contract.matmul.signatures for arg in sig
               if hasattr(arg, "layout")}
    assert "F" in layouts and "A" not in layouts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_matmul_by_mkl(dtype, trans_a, trans_b, monkeypatch):
    """Products of at least matmul_mkl_min_macs multiply-adds go to MKL's gemm, C operands as
    they are (transposes by the gemm's flags); smaller ones, and odd layouts, do not."""
    skip_without_mkl()
    from fastfnn.kernels.numba_backend.cblas import CblasGemm
    calls = []
    by_gemm = CblasGemm.matmul

    def counted(self, *args):
        calls.append(self.is_mkl)
        return by_gemm(self, *args)
    monkeypatch.setattr(CblasGemm, "matmul", counted)
    backend = numba_backend(matmul_mkl_min_macs=7 * 130 * 3, gemm_library="mkl")
    rng = rng_for("mkl", dtype, trans_a, trans_b)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}
    for m, k, n, by_mkl in ((7, 130, 3, [True]), (7, 130, 2, [])):
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        want = (f64(a).T if trans_a else f64(a)) @ (f64(b).T if trans_b else f64(b))
        out = np.empty((m, n), dtype)
        calls.clear()
        assert backend.matmul(a, b, out, trans_a, trans_b) is out
        assert_close(out, want, dtype, **tol)
        assert calls == by_mkl
    a = rng.standard_normal((40, 300)).astype(dtype)[:, ::2]  # neither C nor F
    b = rng.standard_normal((150, 4)).astype(dtype)
    calls.clear()
    out = backend.matmul(a, b, np.empty((40, 4), dtype))
    assert not calls
    assert_close(out, f64(a) @ f64(b), dtype, **tol)


# ----------------------------------------------------------------------------- element-wise
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_bias_act_and_act_grad(dtype, m, n, act):
    rng = rng_for("act", m, n, act)
    z = (rng.standard_normal((m, n)) * 3).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    got = backend_for(m, n).bias_act(z.copy(), b, act)
    want = REF.bias_act(f64(z), f64(b), act)
    assert_close(got, want, dtype)
    da = rng.standard_normal((m, n)).astype(dtype)
    g = backend_for(m, n).act_grad(da.copy(), got, act)
    assert_close(g, REF.act_grad(f64(da), f64(got), act), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("alias", [False, True])
def test_softmax_xent(dtype, m, n, alias):
    rng = rng_for("sx", m, n, alias)
    logits = (rng.standard_normal((m, n)) * 4).astype(dtype)
    y = rng.integers(0, n, m)
    scale = 1.0 / m
    stats = np.array([5.0, 2.0])  # kernels add to what is there
    want_stats = np.array([5.0, 2.0])
    want = REF.softmax_xent(f64(logits), y, np.empty((m, n)), want_stats, scale)
    work = logits.copy()
    out = work if alias else np.empty_like(work)
    got = backend_for(m, n).softmax_xent(work, y, out, stats, scale)
    assert got is out
    assert_close(got, want, dtype)
    np.testing.assert_allclose(stats, want_stats, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert stats[1] == want_stats[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("form", ["labels", "indicators"])
def test_sigmoid_bce(dtype, m, n, form):
    rng = rng_for("bce", m, n, form)
    logits = (rng.standard_normal((m, n)) * 4).astype(dtype)
    if form == "labels":
        targets = rng.integers(0, n, m)
    else:
        targets = (rng.random((m, n)) < 0.4).astype(dtype)
        targets[0] = (logits[0] > 0)  # at least one fully correct row
    stats, want_stats = np.array([1.5, 3.0]), np.array([1.5, 3.0])
    want = REF.sigmoid_bce(f64(logits), targets, np.empty((m, n)), want_stats, 0.5)
    got = backend_for(m, n).sigmoid_bce(logits.copy(), targets, np.empty_like(logits), stats, 0.5)
    assert_close(got, want, dtype)
    np.testing.assert_allclose(stats, want_stats, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert stats[1] == want_stats[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
def test_softmax_and_argmax(dtype, m, n):
    rng = rng_for("sm", m, n)
    z = (rng.standard_normal((m, n)) * 5).astype(dtype)
    assert_close(backend_for(m, n).softmax(z.copy()), REF.softmax(f64(z)), dtype)
    ties = np.round(z)  # many equal maxima: the first one wins, as with np.argmax
    out = np.empty(m, np.int64)
    assert NB.argmax_rows(ties, out) is out
    np.testing.assert_array_equal(out, np.argmax(ties, axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
def test_col_sum(dtype, m, n):
    rng = rng_for("cs", m, n)
    dz = rng.standard_normal((m, n)).astype(dtype)
    got = backend_for(m, n).col_sum(dz, np.empty(n, dtype))
    # rows are summed in order, like NumPy's axis-0 reduction: equal to it bit for bit
    np.testing.assert_array_equal(got, REF.col_sum(dz, np.empty(n, dtype)))
    tol = TOL[dtype] if m <= 20 else dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else {}
    np.testing.assert_allclose(got, REF.col_sum(f64(dz), np.empty(n)), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_col_sum_of_strided_columns(dtype):
    """Columns of a strided view (what the vector loads cannot address) sum as NumPy sums them."""
    dz = rng_for("cs-strided").standard_normal((40, 66)).astype(dtype)[:, ::3]
    got = backend_for(40, 22).col_sum(dz, np.empty(22, dtype))
    np.testing.assert_array_equal(got, REF.col_sum(dz, np.empty(22, dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (17,), (130, 3), (300, 251)])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_sgd_step(dtype, shape, momentum, nesterov, weight_decay):
    rng = rng_for("sgd", shape, momentum, nesterov, weight_decay)
    p, g, v = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    ours = [p.copy(), v.copy()]
    backend_for(*shape).sgd_step(ours[0], g, ours[1], 0.05, momentum, nesterov, weight_decay)
    same = [p.copy(), v.copy()]  # the reference in the same dtype: identical operation order
    REF.sgd_step(same[0], g, same[1], 0.05, momentum, nesterov, weight_decay)
    np.testing.assert_array_equal(ours[0], same[0])
    np.testing.assert_array_equal(ours[1], same[1])
    wide = [f64(p), f64(v)]
    REF.sgd_step(wide[0], f64(g), wide[1], 0.05, momentum, nesterov, weight_decay)
    assert_close(ours[0], wide[0], dtype)
    assert_close(ours[1], wide[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (17,), (130, 3), (300, 251)])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_adam_step(dtype, shape, weight_decay):
    rng = rng_for("adam", shape, weight_decay)
    p, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    m = rng.standard_normal(shape).astype(dtype) * 0.1
    v = np.abs(rng.standard_normal(shape)).astype(dtype) * 0.01
    ours = [p.copy(), m.copy(), v.copy()]
    backend_for(*shape).adam_step(*ours[:1], g, *ours[1:], 1e-3, 0.9, 0.999, 1e-8, weight_decay)
    same = [p.copy(), m.copy(), v.copy()]
    REF.adam_step(*same[:1], g, *same[1:], 1e-3, 0.9, 0.999, 1e-8, weight_decay)
    for a, b in zip(ours, same):
        np.testing.assert_array_equal(a, b)
    wide = [f64(p), f64(m), f64(v)]
    REF.adam_step(*wide[:1], f64(g), *wide[1:], 1e-3, 0.9, 0.999, 1e-8, weight_decay)
    for a, b in zip(ours, wide):
        assert_close(a, b, dtype)


# ----------------------------------------------------------------------------- gather / take
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("m,d", [(1, 1), (5, 17), (130, 784)])
def test_gather(dtype, x_dtype, m, d):
    rng = rng_for("gather", m, d, x_dtype)
    n = 150
    if x_dtype == np.uint8:
        X = rng.integers(0, 256, (n, d)).astype(np.uint8)
        scale = 1 / 255
    else:
        X = rng.standard_normal((n, d)).astype(x_dtype)
        scale = 0.5 if x_dtype == np.float32 else 1.0
    idx = rng.integers(-n, n, m)  # negative rows count from the end, as in NumPy
    got = backend_for(m, d).gather(X, idx, np.empty((m, d), dtype), scale)
    np.testing.assert_array_equal(got, REF.gather(X, idx, np.empty((m, d), dtype), scale))
    assert_close(got, REF.gather(X, idx, np.empty((m, d)), scale), dtype)


def test_take():
    rng = rng_for("take")
    y = rng.integers(0, 10, 50)
    Y = (rng.random((50, 7)) < 0.5).astype(np.float32)
    idx = rng.integers(-50, 50, 20)
    np.testing.assert_array_equal(NB.take(y, idx, np.empty(20, np.int64)), y[idx])
    np.testing.assert_array_equal(NB.take(Y, idx, np.empty((20, 7), np.float32)), Y[idx])


# ----------------------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_logits_finite_and_warning_free(dtype):
    rng = rng_for("big")
    z = (np.sign(rng.standard_normal((9, 5))) * 1e4).astype(dtype)
    z[0] = 1e4  # a row of equal huge logits
    y = rng.integers(0, 5, 9)
    Y = (rng.random((9, 5)) < 0.5).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, fn in [("softmax_xent", lambda s: NB.softmax_xent(z.copy(), y, np.empty_like(z), s, 1 / 9)),
                         ("bce labels", lambda s: NB.sigmoid_bce(z.copy(), y, np.empty_like(z), s, 1 / 9)),
                         ("bce indicators", lambda s: NB.sigmoid_bce(z.copy(), Y, np.empty_like(z), s, 1 / 9))]:
            stats = np.zeros(2)
            grad = fn(stats)
            assert np.all(np.isfinite(grad)) and np.all(np.isfinite(stats)), name
        sm = NB.softmax(z.copy())
        assert np.all(np.isfinite(sm))
        np.testing.assert_allclose(sm.sum(axis=1), 1, rtol=1e-6)
        for act in ("sigmoid", "tanh"):
            assert np.all(np.isfinite(NB.bias_act(z.copy(), np.zeros(5, dtype), act)))
    stats, want = np.zeros(2), np.zeros(2)
    NB.softmax_xent(z.copy(), y, np.empty_like(z), stats, 1.0)
    REF.softmax_xent(f64(z), y, np.empty((9, 5)), want, 1.0)
    np.testing.assert_allclose(stats, want, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_kernels_take_rows_of_any_strides(dtype):
    """Logits and gradients that are strided views give what contiguous copies give."""
    rng = rng_for("strided", dtype)
    wide = (rng.standard_normal((9, 14)) * 3).astype(dtype)
    y = rng.integers(0, 7, 9)
    Y = (rng.random((9, 7)) < 0.4).astype(dtype)
    for kernel, targets in [(NB.softmax_xent, y), (NB.sigmoid_bce, y), (NB.sigmoid_bce, Y)]:
        out_wide = np.zeros((9, 14), dtype)
        stats_view, stats_copy = np.zeros(2), np.zeros(2)
        kernel(wide[:, ::2], targets, out_wide[:, 1::2], stats_view, 0.5)
        want = kernel(np.ascontiguousarray(wide[:, ::2]), targets, np.empty((9, 7), dtype),
                      stats_copy, 0.5)
        np.testing.assert_array_equal(out_wide[:, 1::2], want)
        np.testing.assert_array_equal(stats_view, stats_copy)
        assert not out_wide[:, ::2].any()
