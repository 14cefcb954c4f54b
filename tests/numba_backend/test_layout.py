"""The fused epoch's memory (numba_backend.layout): padded flat copies of the caller's arrays, and
the work items of a parallel update."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastfnn.kernels.numba_backend.layout import (BLOCK_ROWS, UPDATE_PIECE, make_layout, pack,
                                                  update_items)
from fastfnn.kernels.numba_backend.vectors import VECTOR_BYTES

from .helpers import DTYPES, requires_numba, rng_for

pytestmark = requires_numba


@njit
def _layout(shapes, like):
    return make_layout(shapes, 1, 0, 0.0, like)


@njit
def _items(shapes, like):
    return update_items(make_layout(shapes, 1, 0, 0.0, like)[0])


def _address(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_layout_pads_rows_to_whole_vectors(dtype):
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    shapes = np.array([[5, 3], [3, lanes + 1], [lanes + 1, 2]], np.int64)
    layout, wsize, asize = _layout(shapes, np.zeros(1, dtype))
    np.testing.assert_array_equal(layout.width, [lanes, 2 * lanes, lanes])
    np.testing.assert_array_equal(layout.weight_at, [0, 6 * lanes, 14 * lanes])
    np.testing.assert_array_equal(layout.bias_at, layout.weight_at + shapes[:, 0] * layout.width)
    assert wsize == layout.bias_at[-1] + layout.width[-1]
    np.testing.assert_array_equal(layout.act_at, np.cumsum([0, *(BLOCK_ROWS * layout.width[:-1])]))
    assert asize == BLOCK_ROWS * layout.width.sum()


@pytest.mark.parametrize("dtype", DTYPES)
def test_pack_copies_in_and_back(dtype):
    """Two groups (parameters, one optimizer state) of two layers go to the padded buffers (the
    padding stays 0) and come back from them."""
    rng = rng_for("pack", dtype)
    shapes = np.array([[4, 3], [3, 2]], np.int64)
    groups = [[rng.standard_normal(tuple(s)).astype(dtype) for s in shapes] +
              [rng.standard_normal(s[1]).astype(dtype) for s in shapes] for _ in range(2)]
    mats = [g[i] for g in groups for i in (0, 1)]
    vecs = [g[i] for g in groups for i in (2, 3)]
    addresses = np.array([[_address(a) for a in mats], [_address(a) for a in vecs]], np.int64)
    layout, wsize, _ = _layout(shapes, np.zeros(1, dtype))
    bufs = np.zeros((3, wsize), dtype)
    pack(addresses, layout, bufs, False)
    for k in range(2):
        for l in range(2):
            P, wo, bo = layout.width[l], layout.weight_at[l], layout.bias_at[l]
            rows = bufs[k, wo:bo].reshape(shapes[l, 0], P)
            np.testing.assert_array_equal(rows[:, :shapes[l, 1]], mats[2 * k + l])
            assert not rows[:, shapes[l, 1]:].any()
            np.testing.assert_array_equal(bufs[k, bo:bo + shapes[l, 1]], vecs[2 * k + l])
    assert not bufs[2].any()
    before = [a.copy() for a in mats + vecs]
    bufs[:2] += 1
    pack(addresses, layout, bufs, True)
    for a, b in zip(mats + vecs, before):
        np.testing.assert_array_equal(a, b + 1)


def test_update_items_cover_every_parameter_once():
    shapes = np.array([[700, 30], [30, 10]], np.int64)
    like = np.zeros(1, np.float32)
    layout, wsize, _ = _layout(shapes, like)
    items, first = _items(shapes, like)
    covered = np.zeros(wsize, np.int64)
    decays = np.zeros(wsize, np.int64)
    for lo, hi, decay in items:
        assert hi - lo <= UPDATE_PIECE
        covered[lo:hi] += 1
        decays[lo:hi] = decay
    assert (covered == 1).all()
    for l in range(2):  # weights decay, biases do not
        assert decays[layout.weight_at[l]:layout.bias_at[l]].all()
        assert not decays[layout.bias_at[l]:layout.bias_at[l] + layout.width[l]].any()
    assert items[first, 0] == layout.bias_at[0]  # items[first:]: all but the first weights
