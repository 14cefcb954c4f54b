"""The register-blocked loops of the fused epoch (numba_backend.blocks) against NumPy, on layer
widths that reach every vector branch (1, 2, 3, 4, 8 and 9 vectors)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastfnn.kernels import ACTIVATIONS
from fastfnn.kernels.numba_backend.blocks import (Inputs, back_dense, fwd_dense, grad_dense,
                                                  grad_sparse, grad_sparse_block)
from fastfnn.kernels.numba_backend.jit import ACT_CODES
from fastfnn.kernels.numba_backend.layout import BLOCK_ROWS, ColumnSort, Layer
from fastfnn.kernels.numba_backend.vectors import VECTOR_BYTES

from .helpers import DTYPES, REF, TOL, f64, requires_numba, rng_for

pytestmark = requires_numba

VECTORS = [1, 2, 3, 4, 8, 9]  # output widths in vectors: each branch of the blocked loops


def _lanes(dtype):
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def _flat_layer(W, b, P):
    """W (n_in, n) and b (n,) as a padded flat buffer: rows of P at 0, the bias after them."""
    n_in, n = W.shape
    w = np.zeros(n_in * P + P, W.dtype)
    w[:n_in * P].reshape(n_in, P)[:, :n] = W
    w[n_in * P:n_in * P + n] = b
    return w


@njit
def _grad_sparse_rows(src, order, bs, dz, P, g):
    for i in range(bs):
        r = order[i]
        grad_sparse(src, src.indptr[r], src.indptr[r + 1], dz, i * P, P, g, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", VECTORS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fwd_dense(dtype, vectors, act):
    rng = rng_for("fwd", dtype, vectors, act)
    P = vectors * _lanes(dtype)
    n, n_in, bs = P - 3, 21, 5
    W = rng.standard_normal((n_in, n)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    x = rng.standard_normal((bs, n_in)).astype(dtype)
    out = np.zeros(BLOCK_ROWS * P, dtype)
    layer = Layer(n_in, n, P, 0, n_in * P, 0, ACT_CODES[act])
    fwd_dense(layer, x.ravel(), 0, n_in, _flat_layer(W, b, P), out, bs,
              np.arange(BLOCK_ROWS + n_in), np.zeros(1, dtype))
    rows = out[:bs * P].reshape(bs, P)
    want = REF.bias_act(f64(x) @ f64(W), f64(b), act)
    np.testing.assert_allclose(rows[:, :n], want, **TOL[dtype])
    assert not rows[:, n:].any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_in", [5, 16, 40])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_back_dense(dtype, n_in, act):
    """Inputs 16 at a time (5: none, 16: one group, 40: two groups and 8 more)."""
    rng = rng_for("back", dtype, n_in, act)
    lanes = _lanes(dtype)
    P, n, bs = 2 * lanes, 2 * lanes - 5, 7
    Pa = (n_in + lanes - 1) // lanes * lanes
    W = rng.standard_normal((n_in, n)).astype(dtype)
    a_below = REF.bias_act(rng.standard_normal((bs, n_in)).astype(dtype), np.zeros(n_in, dtype),
                           act)
    d_layer = rng.standard_normal((bs, n)).astype(dtype)
    dz = np.zeros(BLOCK_ROWS * (Pa + P), dtype)
    a = np.zeros_like(dz)
    do = BLOCK_ROWS * Pa
    dz[do:do + bs * P].reshape(bs, P)[:, :n] = d_layer
    a[:bs * Pa].reshape(bs, Pa)[:, :n_in] = a_below
    layer = Layer(n_in, n, P, 0, n_in * P, do, ACT_CODES[act])
    below = Layer(0, n_in, Pa, 0, 0, 0, ACT_CODES[act])
    back_dense(layer, below, _flat_layer(W, np.zeros(n, dtype), P), dz, a, bs)
    want = REF.act_grad(f64(d_layer) @ f64(W).T, f64(a_below), act)
    got = dz[:bs * Pa].reshape(bs, Pa)
    np.testing.assert_allclose(got[:, :n_in], want, **TOL[dtype])
    assert not got[:, n_in:].any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", VECTORS)
def test_grad_dense(dtype, vectors):
    rng = rng_for("grad", dtype, vectors)
    P = vectors * _lanes(dtype)
    n, n_in, bs, Pa = P - 1, 19, 11, 32
    a = np.zeros(BLOCK_ROWS * Pa, dtype)
    x = rng.standard_normal((bs, n_in)).astype(dtype)
    a[:bs * Pa].reshape(bs, Pa)[:, :n_in] = x
    dz = np.zeros(BLOCK_ROWS * P, dtype)
    d = rng.standard_normal((bs, n)).astype(dtype)
    dz[:bs * P].reshape(bs, P)[:, :n] = d
    g = np.zeros(n_in * P + P, dtype)
    g[:n_in * P] = 0.5  # adds to what is there
    grad_dense(Layer(n_in, n, P, 0, n_in * P, 0, 0), a, 0, Pa, dz, bs, g, np.arange(BLOCK_ROWS))
    rows = g[:n_in * P].reshape(n_in, P)
    np.testing.assert_allclose(rows[:, :n], 0.5 + f64(x).T @ f64(d), **TOL[dtype])
    np.testing.assert_array_equal(rows[:, n:], 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", [1, 2, 4, 5])
def test_sparse_gradient_by_columns_equals_row_by_row(dtype, vectors):
    """grad_sparse_block (nonzeros sorted by input, each row of g summed in registers) and
    grad_sparse (row by row) add the same products in the same order: equal bit for bit."""
    rng = rng_for("sparse", dtype, vectors)
    P = vectors * _lanes(dtype)
    d, bs = 30, BLOCK_ROWS
    X = rng.integers(1, 256, (bs + 3, d)).astype(np.uint8)
    X[rng.random(X.shape) < 0.7] = 0
    indptr = np.concatenate([[0], np.cumsum((X != 0).sum(axis=1))]).astype(np.int64)
    rows, cols = np.nonzero(X)
    lut = (np.arange(256) / 255).astype(dtype)
    src = Inputs(indptr, cols.astype(np.uint16), X[rows, cols], lut, dtype(1 / 255))
    order = rng.permutation(bs + 3)[:bs].astype(np.int64)
    dz = rng.standard_normal(bs * P).astype(dtype)
    start = rng.standard_normal(d * P).astype(dtype)
    by_rows = start.copy()
    _grad_sparse_rows(src, order, bs, dz, P, by_rows)
    by_cols = start.copy()
    sort = ColumnSort(np.empty(d + 1, np.int64), np.empty(d, np.int64),
                      np.empty(bs * d, np.int32), np.empty(bs * d, dtype))
    grad_sparse_block(src, order, 0, bs, dz, 0, P, by_cols, 0, sort)
    np.testing.assert_array_equal(by_cols, by_rows)
    want = f64(start).reshape(d, P) + (f64(lut[X[order]])).T @ f64(dz).reshape(bs, P)
    np.testing.assert_allclose(by_cols.reshape(d, P), want, **TOL[dtype])
