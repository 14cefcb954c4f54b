"""Training noise (fastfnn.kernels.noise): the counter-based uniforms, dropout factors and image
shifts, against their definitions and a plain NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.kernels import noise


def test_uniforms_are_a_pure_function_of_their_position():
    rows, cols = np.arange(500)[:, None], np.arange(64)[None, :]
    u = noise.uniform(np, 7, 3, rows, cols)
    assert u.shape == (500, 64) and u.dtype == np.float64
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.std() - np.sqrt(1 / 12)) < 0.01
    # any order, any subset: the same number for the same (seed, stream, row, col)
    np.testing.assert_array_equal(noise.uniform(np, 7, 3, rows[::-1], cols), u[::-1])
    np.testing.assert_array_equal(noise.uniform(np, 7, 3, np.array([42]), np.array([5])), u[42, 5])
    for other in (noise.uniform(np, 8, 3, rows, cols), noise.uniform(np, 7, 4, rows, cols)):
        assert np.mean(other == u) < 1e-3  # seeds and streams are independent draws


@pytest.mark.parametrize("rate", [0.1, 0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_factors(rate, dtype):
    out = noise.dropout_scale(np, np.empty((400, 50), dtype), 3, 1, 1000, rate)
    scale = dtype(1 / (1 - rate))
    assert set(np.unique(out)) == {dtype(0), scale}
    assert abs(np.mean(out == 0) - rate) < 0.01
    keep = noise.uniform(np, 3, noise.DROPOUT_STREAM + 1, np.arange(1000, 1400)[:, None],
                         np.arange(50)[None, :]) >= rate
    np.testing.assert_array_equal(out, keep * scale)


def test_shifts_cover_the_range_evenly():
    dy, dx = noise.shifts(np, 11, 0, 20_000, 2)
    for d in (dy, dx):
        assert d.dtype == np.int64 and d.min() == -2 and d.max() == 2
        assert np.all(np.abs(np.bincount(d + 2) / 20_000 - 0.2) < 0.015)
    assert np.mean(dy == dx) < 0.3  # the two axes draw apart


def _shift_reference(image, dy, dx):
    out = np.zeros_like(image)
    h, w = image.shape
    for y in range(h):
        for x in range(w):
            if 0 <= y - dy < h and 0 <= x - dx < w:
                out[y, x] = image[y - dy, x - dx]
    return out


def test_shift_images_against_a_plain_loop():
    rng = np.random.default_rng(0)
    x = rng.random((30, 5 * 7)).astype(np.float32)
    dy = rng.integers(-3, 4, 30)
    dx = rng.integers(-3, 4, 30)
    out = noise.shift_images(np, x, dy, dx, (5, 7), np.empty_like(x))
    for i in range(30):
        np.testing.assert_array_equal(out[i].reshape(5, 7),
                                      _shift_reference(x[i].reshape(5, 7), dy[i], dx[i]))
