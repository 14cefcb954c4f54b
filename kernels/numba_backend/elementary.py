"""exp, tanh and the logistic function of floats and of vectors, by one formula for both.

The hidden layers' tanh and sigmoid went through libm one element at a time: on a 100-256-128-5
tanh net, float32, batch 200, glibc's tanhf and the expm1f it calls took 35% of the samples of
an epoch (perf), and the epoch took 2.8x the ReLU net's. These run in the vector lanes: exp by
the usual reduction x = k ln 2 + r, |r| <= ln(2) / 2, a Taylor polynomial of expm1(r) (degree 14
in float64, 9 in float32, truncation under a tenth of an ulp) and 2^k from its exponent bits;
tanh and the logistic function from it. A float and each lane of a vector go through the same
operations, so an element's value does not depend on whether it falls in a vector or in a row's
scalar tail. They agree with NumPy's to a few units in the last place (tests/numba_backend/
test_elementary.py measures how many), not bit for bit: NumPy's own differ from libm's.

Assumes: ``fastmath=False`` (every operation rounded as written, FMA only where written); the
inputs are float32 or float64, or vectors of them (:mod:`.vectors`).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .jit import JIT_INLINE, compiled, numba, types
from .vectors import pow2, vabs, vcopysign, vfma, vrelu, vrint, vsplat, where_less

#: The constants of one dtype: log2(e); ln 2 rounded to the dtype and the rest of it (rounded);
#: exp's clamps, below which its result rounds to 0 and above which it is inf; expm1's lower
#: clamp, below which it rounds to -1; expm1's Taylor coefficients 1/n!, highest order first,
#: n = 14..2 in float64 and 9..2 in float32 (at |r| <= ln(2)/2 the first term left out is 1.2e-17
#: of r in float64, 1.3e-10 in float32).
ExpConstants = namedtuple("ExpConstants", ["log2e", "ln2_hi", "ln2_lo", "exp_lo", "exp_hi",
                                           "expm1_lo", "taylor"])


def _dtype_constants(bits):
    """The ExpConstants of float32 (bits 32) or float64 (64)."""
    if bits == 64:
        return ExpConstants(1.4426950408889634, math.log(2.0), 2.3190468138462996e-17, -746.0,
                            710.0, -40.0, _taylor(14))
    ln2_hi = float(np.float32(math.log(2.0)))  # float64's ln 2 is exact to 2e-17 of that rest
    return ExpConstants(1.4426950408889634, ln2_hi, float(np.float32(math.log(2.0) - ln2_hi)),
                        -104.0, 89.0, -20.0, _taylor(9))


def _taylor(order):
    """1/n! for n = order down to 2."""
    return tuple(1.0 / math.factorial(n) for n in range(order, 1, -1))


_CONSTANTS = {bits: _dtype_constants(bits) for bits in (32, 64)}


def _bits(t):
    return (t.dtype if hasattr(t, "dtype") else t).bitwidth


if numba is not None:
    from numba.extending import overload

    def _const(like, value):
        """``value`` as a float of like's dtype, splatted to every lane if like is a vector."""
        raise NotImplementedError

    @overload(_const, inline="always")
    def _ol_const(like, value):
        if hasattr(like, "lanes"):
            return lambda like, value: vsplat(like, value)
        if like == types.float32:
            return lambda like, value: np.float32(value)
        return lambda like, value: np.float64(value)

    def _constants(like):
        """_CONSTANTS of like's dtype."""
        raise NotImplementedError

    @overload(_constants, inline="always")
    def _ol_constants(like):
        consts = _CONSTANTS[_bits(like)]
        return lambda like: consts


@compiled(**JIT_INLINE)
def _reduce(x):
    """(k, expm1(r)) with x = k ln 2 + r, k an integer (as a float), |r| <= ln(2) / 2 (plus an
    ulp): r from x in two FMAs (ln 2 in two parts), expm1(r) = r + r^2 P(r) by Horner."""
    c = _constants(x)
    k = vrint(x * _const(x, c.log2e))
    r = vfma(k, _const(x, -c.ln2_hi), x)
    r = vfma(k, _const(x, -c.ln2_lo), r)
    coefs = c.taylor
    p = _const(x, coefs[0])
    for coef in coefs[1:]:
        p = vfma(p, r, _const(x, coef))
    return k, vfma(r * r, p, r)


@compiled(**JIT_INLINE)
def exp(x):
    """e^x of a float or of each lane of a vector (float32 or float64), any x: 0 at -inf, inf
    at inf, NaN at NaN, subnormal results rounded as such (2^k applied in two halves)."""
    c = _constants(x)
    lo = _const(x, c.exp_lo)
    hi = _const(x, c.exp_hi)
    xc = where_less(x, lo, lo, where_less(hi, x, hi, x))  # NaN passes
    k, q = _reduce(xc)
    k1 = vrint(k * _const(x, 0.5))
    s1 = pow2(k1)
    return vfma(s1, q, s1) * pow2(k - k1)


@compiled(**JIT_INLINE)
def _expm1_nonpositive(x):
    """e^x - 1 for x <= 0 (or NaN): 2^k (1 + q) - 1 as 2^k q + (2^k - 1), which is exact for
    k = 0 (q itself, however small x is)."""
    lo = _const(x, _constants(x).expm1_lo)
    k, q = _reduce(where_less(x, lo, lo, x))
    s = pow2(k)
    return vfma(s, q, s - _const(x, 1.0))


@compiled(**JIT_INLINE)
def tanh(x):
    """tanh(x) of a float or of each lane of a vector: with u = expm1(-2|x|) in (-1, 0],
    u / (-2 - u) carrying x's sign (so tanh(-0.0) = -0.0, tanh(+-inf) = +-1, NaN stays)."""
    u = _expm1_nonpositive(_const(x, -2.0) * vabs(x))
    return vcopysign(u / (_const(x, -2.0) - u), x)


@compiled(**JIT_INLINE)
def sigmoid(x):
    """1 / (1 + e^-x) of a float or of each lane of a vector, from e = exp(-|x|) (never
    overflowing): 1 / (1 + e) where x >= 0, e / (1 + e) where x < 0."""
    one = _const(x, 1.0)
    e = exp(_const(x, 0.0) - vabs(x))
    return where_less(x, _const(x, 0.0), e, one) / (one + e)


@compiled(**JIT_INLINE)
def activation(x, act):
    """The hidden activation of code ``act`` (0 identity, 1 ReLU, 2 sigmoid, 3 tanh) of a float
    or of each lane of a vector (ReLU: vectors.vrelu)."""
    if act == 0:
        return x
    if act == 1:
        return vrelu(x)
    if act == 2:
        return sigmoid(x)
    return tanh(x)
