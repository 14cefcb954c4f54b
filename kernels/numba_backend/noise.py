"""The training noise of the compiled epochs: the counter-based uniforms of
:mod:`fastfnn.kernels.noise` (the same numbers, position by position), dropout factors and image
shifts, and their use on rows of units (``drop_units``) and of image pixels (``shifted_row``).

Assumes: uint64 arithmetic that wraps (numba's); stream offsets precomputed on the host
(``noise.stream_base``).
"""

from __future__ import annotations

import numpy as np

from .. import noise
from .jit import JIT_INLINE, cast_like, compiled, input_value

_GOLDEN = np.uint64(noise.GOLDEN)
_MIX_1 = np.uint64(noise.MIX_1)
_MIX_2 = np.uint64(noise.MIX_2)
_ROW_MULT = np.uint64(noise.ROW_MULT)
_TO_UNIT = 1.0 / (1 << 53)


@compiled(**JIT_INLINE)
def uniform(base, row, col):
    """The uniform in [0, 1) of position (row, col) of the stream starting at ``base`` (uint64)."""
    x = base + np.uint64(row) * _ROW_MULT + np.uint64(col) * _GOLDEN
    x ^= x >> np.uint64(30)
    x *= _MIX_1
    x ^= x >> np.uint64(27)
    x *= _MIX_2
    x ^= x >> np.uint64(31)
    return np.float64(x >> np.uint64(11)) * _TO_UNIT


@compiled(**JIT_INLINE)
def dropout_factor(base, row, col, rate, like):
    """Inverted dropout's factor of unit ``col`` of the epoch's row ``row``: 1 / (1 - rate) in
    like's dtype where the unit is kept, else 0 (as noise.dropout_scale)."""
    if uniform(base, row, col) >= rate:
        return cast_like(like, 1.0 / (1.0 - rate))
    return cast_like(like, 0.0)


@compiled(**JIT_INLINE)
def shift(base, row, max_shift):
    """A pixel shift in [-max_shift, max_shift] of the epoch's row ``row`` (as noise.shifts)."""
    return np.int64(np.floor(uniform(base, row, 0) * (2 * max_shift + 1))) - max_shift


@compiled(**JIT_INLINE)
def drop_units(extras, l, v, at, width, n, pos0, bs):
    """Multiply units j < n of rows i < bs of v[at + i * width:] (activations or deltas of the
    epoch's rows pos0 + i) by layer input l's dropout factors, when that input has dropout."""
    rate = extras.dropout[l]
    if rate > 0.0:
        base = extras.dropout_base[l]
        for i in range(bs):
            o = at + i * width
            for j in range(n):
                v[o + j] = v[o + j] * dropout_factor(base, pos0 + i, j, rate, v)


@compiled(**JIT_INLINE)
def shifted_row(X, r, extras, pos, xb, xo, lut, sc):
    """Row r of X (an image of extras.image_width columns) shifted by its random (dy, dx) into
    xb[xo:xo + d], zeros where the shift uncovers the border (as noise.shift_images)."""
    d = X.shape[1]
    width = extras.image_width
    height = d // width
    dy = shift(extras.shift_base[0], pos, extras.shift)
    dx = shift(extras.shift_base[1], pos, extras.shift)
    zero = cast_like(xb, 0.0)
    for y in range(height):
        sy = y - dy
        for x in range(width):
            sx = x - dx
            if 0 <= sy < height and 0 <= sx < width:
                xb[xo + y * width + x] = input_value(X[r, sy * width + sx], lut, sc)
            else:
                xb[xo + y * width + x] = zero
