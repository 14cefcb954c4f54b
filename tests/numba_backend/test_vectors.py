"""SIMD vector values (numba_backend.vectors): lane sums, ReLU and its step, arithmetic operators
and square roots lane by lane, the lane functions of floats and vectors (FMA, rounding, |x|,
copysign, compare-select, powers of two), the flush of subnormals, raw addresses."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

from fastfnn.kernels.numba_backend.vectors import (VECTOR_BYTES, flush_subnormal, lanes,
                                                   pointer_to, pow2, registers_hold_vectors, vabs,
                                                   vcopysign, vfma, vhsum, vld, vrelu, vrint, vst,
                                                   vst_sums, vstep, where_less)

from .helpers import DTYPES, requires_numba, rng_for

pytestmark = requires_numba


@njit
def _sums(x, out_tree, out_shared):
    """Lane sums of the 16 vectors in x: one by one (vhsum) and all at once (vst_sums)."""
    V = lanes(x)
    for j in range(16):
        out_tree[j] = vhsum(vld(x, j * V))
    vst_sums(out_shared, 0, vld(x, 0), vld(x, V), vld(x, 2 * V), vld(x, 3 * V), vld(x, 4 * V),
             vld(x, 5 * V), vld(x, 6 * V), vld(x, 7 * V), vld(x, 8 * V), vld(x, 9 * V),
             vld(x, 10 * V), vld(x, 11 * V), vld(x, 12 * V), vld(x, 13 * V), vld(x, 14 * V),
             vld(x, 15 * V))


@njit
def _relu_and_step(x, relu, step):
    V = lanes(x)
    for c0 in range(0, x.shape[0], V):
        vst(relu, c0, vrelu(vld(x, c0)))
        vst(step, c0, vstep(vld(x, c0)))


@njit
def _formula(a, b, c, half):
    """One expression of operators, a scalar and np.sqrt: on vectors, then element by element."""
    return (a * half - b / c) + np.sqrt(c) * a


@njit
def _formula_both_ways(a, b, c, half, by_vectors, by_scalars):
    V = lanes(a)
    for c0 in range(0, a.shape[0], V):
        vst(by_vectors, c0, _formula(vld(a, c0), vld(b, c0), vld(c, c0), half))
    for i in range(a.shape[0]):
        by_scalars[i] = _formula(a[i], b[i], c[i], half)


@njit
def _flushed(x, by_vectors, by_scalars):
    V = lanes(x)
    for c0 in range(0, x.shape[0], V):
        vst(by_vectors, c0, flush_subnormal(vld(x, c0)))
    for i in range(x.shape[0]):
        by_scalars[i] = flush_subnormal(x[i])


@njit
def _lane_functions(x, y, z, out):
    """out[f, :] = lane function f of x (and y, z), f = fma, rint, |x|, copysign, where_less,
    ReLU, 2^rint(x): rows 0..6 by vectors, rows 7..13 element by element."""
    V = lanes(x)
    for c0 in range(0, x.shape[0], V):
        a, b, c = vld(x, c0), vld(y, c0), vld(z, c0)
        for f, v in enumerate((vfma(a, b, c), vrint(a), vabs(a), vcopysign(a, b),
                               where_less(a, b, b, c), vrelu(a), pow2(vrint(a)))):
            vst(out[f], c0, v)
    for i in range(x.shape[0]):
        a, b, c = x[i], y[i], z[i]
        for f, v in enumerate((vfma(a, b, c), vrint(a), vabs(a), vcopysign(a, b),
                               where_less(a, b, b, c), vrelu(a), pow2(vrint(a)))):
            out[7 + f, i] = v


@njit
def _double_at(address, n, like):
    a = numba.carray(pointer_to(address, like), n)
    for i in range(n):
        a[i] *= 2


def _halving_tree(v):
    """The sum of v's lanes as vhsum adds them: halves added until one lane is left."""
    while v.shape[0] > 1:
        h = v.shape[0] // 2
        v = v[:h] + v[h:]
    return v[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_shared_lane_sums_round_as_the_halving_tree(dtype):
    V = VECTOR_BYTES // np.dtype(dtype).itemsize
    x = (rng_for("sums", dtype).standard_normal(16 * V) * 1e3).astype(dtype)
    tree, shared = np.empty(16, dtype), np.empty(16, dtype)
    _sums(x, tree, shared)
    np.testing.assert_array_equal(shared, tree)
    np.testing.assert_array_equal(tree, [_halving_tree(x[j * V:(j + 1) * V]) for j in range(16)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_its_step_lane_by_lane(dtype):
    V = VECTOR_BYTES // np.dtype(dtype).itemsize
    x = np.zeros(V, dtype)
    x[:6] = [-1.0, -0.0, 0.0, 2.0, np.nan, -np.inf]
    relu, step = np.empty_like(x), np.empty_like(x)
    _relu_and_step(x, relu, step)
    want = np.where(x < 0, 0, x)  # NaN and -0.0 pass, as in the scalar ReLU
    np.testing.assert_array_equal(relu, want)
    assert np.signbit(relu[1])
    np.testing.assert_array_equal(step, (x > 0).astype(dtype))


def test_pointer_to_reaches_the_array():
    a = np.arange(5, dtype=np.float32)
    _double_at(a.__array_interface__["data"][0], 5, a)
    np.testing.assert_array_equal(a, 2 * np.arange(5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_operators_and_sqrt_round_lane_by_lane_as_scalars(dtype):
    """+, -, *, / and np.sqrt on vectors (a scalar operand in every lane) give each lane what the
    same expression gives that element: one formula serves the vector loop and its tail."""
    V = VECTOR_BYTES // np.dtype(dtype).itemsize
    rng = rng_for("ops", dtype)
    a, b = (rng.standard_normal(4 * V).astype(dtype) for _ in range(2))
    c = np.abs(rng.standard_normal(4 * V)).astype(dtype) + dtype(0.1)
    by_vectors, by_scalars = np.empty_like(a), np.empty_like(a)
    _formula_both_ways(a, b, c, dtype(0.5), by_vectors, by_scalars)
    np.testing.assert_array_equal(by_vectors, by_scalars)
    np.testing.assert_array_equal(by_scalars, (a * dtype(0.5) - b / c) + np.sqrt(c) * a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lane_functions_of_floats_and_vectors(dtype):
    """The lane functions give each lane of a vector what they give that element as a float,
    and what NumPy gives: fma with one rounding (checked in float64 against exact float32
    products), round half to even, |x| and copysign on the sign bit (zeros, NaN), an ordered
    compare-select, ReLU, and 2^k from the exponent bits over the normal range."""
    V = VECTOR_BYTES // np.dtype(dtype).itemsize
    info = np.finfo(dtype)
    lo, hi = info.minexp, info.maxexp - 1
    x = np.resize(np.array([-0.0, 0.0, 2.5, -2.5, 3.5, -1.5, np.nan, -np.inf, 1e3, lo, hi, -7.0,
                            0.49999997, 1.0], dtype), 2 * V)
    rng = rng_for("lanes", dtype)
    y = np.resize(np.array([1.0, -1.0, np.nan, -0.0], dtype), x.size) * rng.uniform(1, 2, x.size)
    y = y.astype(dtype)
    z = rng.standard_normal(x.size).astype(dtype)
    out = np.empty((14, x.size), dtype)
    _lane_functions(x, y, z, out)
    bits = np.dtype(f"u{x.itemsize}")
    np.testing.assert_array_equal(out[:7].view(bits), out[7:].view(bits))
    fma, rint, absolute, copysign, where, relu, powers = out[:7]
    if dtype == np.float32:  # exact products in float64, then one rounding to float32
        with np.errstate(invalid="ignore"):
            want = (x.astype(np.float64) * y + z).astype(np.float32)
        finite = np.isfinite(want)
        np.testing.assert_array_equal(fma[finite], want[finite])
    np.testing.assert_array_equal(rint, np.rint(x))
    np.testing.assert_array_equal(absolute.view(bits), np.abs(x).view(bits))
    np.testing.assert_array_equal(copysign.view(bits), np.copysign(x, y).view(bits))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(where, np.where(x < y, y, z))
        np.testing.assert_array_equal(relu, np.where(x < 0, 0, x))
    k = np.rint(x)
    normal = np.isfinite(k) & (k >= lo) & (k <= hi)
    np.testing.assert_array_equal(powers[normal], np.ldexp(dtype(1), k[normal].astype(int)))
    assert np.all(powers[np.isnan(x)] == 1)  # NaN taken as 0
    assert {lo, hi} <= set(k[normal].astype(int))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flush_subnormal_zeroes_subnormals_only(dtype):
    """Subnormals (either sign) become 0; the smallest normal, zeros of either sign, infinities
    and NaN pass unchanged, in vectors and scalars alike."""
    V = VECTOR_BYTES // np.dtype(dtype).itemsize
    info = np.finfo(dtype)
    special = np.array([info.smallest_subnormal, -info.smallest_subnormal, info.tiny / 2,
                        -info.tiny / 3, info.tiny, -info.tiny, 0.0, -0.0, np.inf, -np.inf, np.nan,
                        1.5, -2.0, info.max], dtype)
    x = np.resize(special, 2 * V).astype(dtype)
    subnormal = (x != 0) & (np.abs(x) < info.tiny)
    assert subnormal.sum() >= 4
    by_vectors, by_scalars = np.empty_like(x), np.empty_like(x)
    _flushed(x, by_vectors, by_scalars)
    want = np.where(subnormal, dtype(0), x)
    for got in (by_vectors, by_scalars):
        np.testing.assert_array_equal(got.view(np.dtype(f"u{x.itemsize}")),
                                      want.view(np.dtype(f"u{x.itemsize}")))


@pytest.mark.parametrize("features, expected", [("+avx2,+avx512f,+fma", True),
                                                ("+avx2,-avx512f,+fma", False),
                                                ("+avx2,+avx512fp16", False)])
def test_registers_hold_vectors_as_numba_sees_the_cpu(monkeypatch, features, expected):
    """NUMBA_CPU_FEATURES (numba's config), when set, says whether the target has AVX-512F."""
    monkeypatch.setattr(numba.core.config, "CPU_FEATURES", features)
    assert registers_hold_vectors() is expected
