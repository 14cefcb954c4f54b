"""The fused epoch's compiled noise (numba_backend.noise) draws exactly the numbers of
fastfnn.kernels.noise, position by position."""

from __future__ import annotations

import numpy as np

from fastfnn.kernels import noise
from fastfnn.kernels.numba_backend import noise as compiled_noise

from .helpers import requires_numba

pytestmark = requires_numba


def test_the_same_uniforms_dropout_factors_and_shifts():
    seed, stream = 12345, 2
    base = np.uint64(noise.stream_base(seed, stream))
    rows, cols = np.arange(40, 60), np.arange(9)
    want = noise.uniform(np, seed, stream, rows[:, None], cols[None, :])
    got = np.array([[compiled_noise.uniform(base, r, c) for c in cols] for r in rows])
    np.testing.assert_array_equal(got, want)

    like = np.zeros(1, np.float32)
    factors = noise.dropout_scale(np, np.empty((20, 9), np.float32), seed, stream, 40, 0.3)
    got = np.array([[compiled_noise.dropout_factor(base, r, c, 0.3, like) for c in cols]
                    for r in rows])
    np.testing.assert_array_equal(got, factors)

    dy, dx = noise.shifts(np, seed, 40, 20, 3)
    bases = [np.uint64(noise.stream_base(seed, s))
             for s in (noise.SHIFT_ROWS_STREAM, noise.SHIFT_COLS_STREAM)]
    np.testing.assert_array_equal([compiled_noise.shift(bases[0], r, 3) for r in rows], dy)
    np.testing.assert_array_equal([compiled_noise.shift(bases[1], r, 3) for r in rows], dx)
