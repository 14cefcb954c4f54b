"""The training noise of the fused epoch, compiled: the counter-based uniforms of
:mod:`fastfnn.kernels.noise` (the same numbers, position by position), dropout factors and image
shifts.

Assumes: uint64 arithmetic that wraps (numba's); stream offsets precomputed on the host
(``noise.stream_base``).
"""

from __future__ import annotations

import numpy as np

from .. import noise
from .jit import JIT_INLINE, cast_like, compiled

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
