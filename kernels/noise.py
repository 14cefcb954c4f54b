"""The counter-based random numbers of training noise: dropout masks and augmentation shifts.

A number is a pure function of (seed, stream, row, column): SplitMix64's finaliser applied to a
mix of the four, so any backend (NumPy or CuPy arrays here, compiled loops in the Numba backend)
draws the same numbers for the same positions in any order, on any thread count, with no
generator state to carry between steps. ``row`` is a row's position in the epoch (0 .. n - 1),
``column`` the unit (dropout) or 0 (shifts); streams keep the kinds of noise apart.

Assumes: unsigned 64-bit arithmetic that wraps (NumPy and CuPy uint64 arrays do).
"""

from __future__ import annotations

import numpy as np

#: SplitMix64's constants: the golden-ratio increment and the finaliser's multipliers.
GOLDEN = 0x9E3779B97F4A7C15
MIX_1 = 0xBF58476D1CE4E5B9
MIX_2 = 0x94D049BB133111EB
#: Odd multipliers that spread the stream and the row over the 64 bits before finalising.
STREAM_MULT = 0xD6E8FEB86659FD93
ROW_MULT = 0xA0761D6478BD642F

#: Stream of the dropout mask of layer input l is ``DROPOUT_STREAM + l``; shifts take two streams.
DROPOUT_STREAM = 0
SHIFT_ROWS_STREAM = 1 << 20
SHIFT_COLS_STREAM = SHIFT_ROWS_STREAM + 1


def stream_base(seed: int, stream: int) -> int:
    """The 64-bit offset of ``stream`` of ``seed`` (Python ints) that a position's counter starts
    from: compiled implementations take it precomputed."""
    return (seed * GOLDEN + stream * STREAM_MULT) & 0xFFFFFFFFFFFFFFFF


def uniform(xp, seed: int, stream: int, rows, cols):
    """float64 uniforms in [0, 1) for every (row, col) of the broadcast of ``rows`` and ``cols``
    (integer arrays of ``xp``) in ``stream`` of ``seed`` (Python ints)."""
    u64 = xp.uint64
    x = u64(stream_base(seed, stream)) + rows.astype(u64) * u64(ROW_MULT) + \
        cols.astype(u64) * u64(GOLDEN)
    x ^= x >> u64(30)
    x *= u64(MIX_1)
    x ^= x >> u64(27)
    x *= u64(MIX_2)
    x ^= x >> u64(31)
    return (x >> u64(11)).astype(xp.float64) * (1.0 / (1 << 53))


def dropout_scale(xp, out, seed: int, layer: int, row0: int, rate: float):
    """Fill ``out`` (m, n) float with the inverted-dropout factor of layer input ``layer`` for the
    epoch's rows row0 .. row0 + m - 1: 1 / (1 - rate) where the unit is kept (its uniform >= rate),
    else 0. Returns ``out``."""
    m, n = out.shape
    rows = xp.arange(row0, row0 + m, dtype=xp.int64)[:, None]
    cols = xp.arange(n, dtype=xp.int64)[None, :]
    keep = uniform(xp, seed, DROPOUT_STREAM + layer, rows, cols) >= rate
    out[...] = keep * out.dtype.type(1 / (1 - rate))
    return out


def shifts(xp, seed: int, row0: int, m: int, max_shift: int):
    """(dy, dx): int64 (m,) each, the pixel shifts in [-max_shift, max_shift] of the epoch's rows
    row0 .. row0 + m - 1."""
    rows = xp.arange(row0, row0 + m, dtype=xp.int64)
    zero = xp.zeros(1, dtype=xp.int64)
    span = 2 * max_shift + 1
    draws = [xp.floor(uniform(xp, seed, stream, rows, zero) * span).astype(xp.int64) - max_shift
             for stream in (SHIFT_ROWS_STREAM, SHIFT_COLS_STREAM)]
    return draws[0], draws[1]


def shift_images(xp, x, dy, dx, image_shape, out):
    """``out[i]`` = image row ``x[i]`` (h * w pixels, row-major) moved by (dy[i], dx[i]) pixels
    (down and right for positive shifts), zeros filling the uncovered border. x: (m, h * w) float;
    dy, dx: (m,) int64; out: (m, h * w) of x's dtype, not ``x``. One vectorised gather on ``xp``.
    Returns ``out``."""
    h, w = image_shape
    ys = xp.arange(h, dtype=xp.int64)[None, :, None] - dy[:, None, None]  # source row of each pixel
    xs = xp.arange(w, dtype=xp.int64)[None, None, :] - dx[:, None, None]
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    source = (xp.clip(ys, 0, h - 1) * w + xp.clip(xs, 0, w - 1)).reshape(x.shape[0], h * w)
    xp.multiply(xp.take_along_axis(x, source, axis=1), inside.reshape(source.shape), out=out)
    return out
