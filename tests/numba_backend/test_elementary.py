"""exp, tanh and the logistic function of numba_backend.elementary: their error against
references in higher precision, the special values, the same bits as floats and as vector
lanes, and the activation codes (through the contract's bias_act, whose rows have tails)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastfnn.kernels.numba_backend import elementary
from fastfnn.kernels.numba_backend.vectors import VECTOR_BYTES, lanes, vld, vst

from .helpers import DTYPES, NB, requires_numba, rng_for

pytestmark = requires_numba

FUNCTIONS = ("exp", "tanh", "sigmoid")

#: The most units in the last place measured over the sweep of _sweep (2,000,000 points each
#: when written; exp 1.0 in both dtypes, tanh 2.5 / 2.0, the logistic 2.2 / 2.0 in float32 /
#: float64), with a little room. NumPy's own tanh is within 1.4 ulp of the same references.
MAX_ULPS = {"exp": 1.5, "tanh": 3.0, "sigmoid": 3.0}


@njit
def _by_vectors_and_floats(x, which, by_vectors, by_floats):
    """Function ``which`` (an index into FUNCTIONS) of x, by whole vectors and element by
    element."""
    V = lanes(x)
    for c0 in range(0, x.shape[0] - x.shape[0] % V, V):
        v = vld(x, c0)
        vst(by_vectors, c0, elementary.exp(v) if which == 0 else
            elementary.tanh(v) if which == 1 else elementary.sigmoid(v))
    for i in range(x.shape[0]):
        by_floats[i] = (elementary.exp(x[i]) if which == 0 else
                        elementary.tanh(x[i]) if which == 1 else elementary.sigmoid(x[i]))


def _evaluate(name, x):
    """(by vectors, by floats) of function ``name`` of x (its size a multiple of the lanes)."""
    assert x.size % (VECTOR_BYTES // x.itemsize) == 0
    by_vectors, by_floats = np.empty_like(x), np.empty_like(x)
    _by_vectors_and_floats(x, FUNCTIONS.index(name), by_vectors, by_floats)
    return by_vectors, by_floats


def _reference(name, x):
    """The function in more precision than x's: float64 for float32, x87's long double (64-bit
    significand) for float64."""
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    xw = x.astype(wide)
    with np.errstate(over="ignore"):
        if name == "exp":
            return np.exp(xw)
        if name == "tanh":
            return np.tanh(xw)
        return 1 / (1 + np.exp(-xw))


def _sweep(dtype, n=200_000):
    """x of both signs, magnitudes log-uniform from 1e-30 to 800, and the edges."""
    rng = rng_for("sweep", dtype)
    x = np.exp(rng.uniform(np.log(1e-30), np.log(800.0), n)) * rng.choice([-1.0, 1.0], n)
    return np.resize(x.astype(dtype), n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_within_a_few_ulps_of_the_reference(dtype, name):
    if dtype == np.float64 and np.finfo(np.longdouble).nmant < 63:
        pytest.skip("the float64 reference needs x87's long double (a 64-bit significand)")
    x = _sweep(dtype)
    got = _evaluate(name, x)[0]
    want = _reference(name, x)
    with np.errstate(over="ignore"):
        rounded = want.astype(dtype)
    normal = np.isfinite(rounded) & (np.abs(rounded) >= np.finfo(dtype).tiny)
    ulp = np.spacing(np.abs(rounded[normal])).astype(np.float64)
    err = np.abs(got[normal].astype(np.longdouble) - want[normal]) / ulp
    assert normal.sum() > 0.5 * x.size
    assert float(err.max()) <= MAX_ULPS[name], x[normal][np.argmax(err)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_floats_and_vector_lanes_give_the_same_bits(dtype, name):
    x = _sweep(dtype, 4096)
    by_vectors, by_floats = _evaluate(name, x)
    bits = np.dtype(f"u{x.itemsize}")
    np.testing.assert_array_equal(by_vectors.view(bits), by_floats.view(bits))


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    info = np.finfo(dtype)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max,
                  info.smallest_subnormal, -info.smallest_subnormal, 1e4, -1e4, 0.0], dtype)
    x = np.resize(x, 2 * VECTOR_BYTES // x.itemsize)
    with np.errstate(all="raise"):
        e, t, s = (_evaluate(name, x)[0] for name in FUNCTIONS)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(e), np.isnan(x))
    np.testing.assert_array_equal(e[x == np.inf], np.inf)
    np.testing.assert_array_equal(e[(x == -np.inf) | (x < -1e3)], 0)
    np.testing.assert_array_equal(e[x == 0], 1)
    np.testing.assert_array_equal(np.isnan(t), np.isnan(x))
    np.testing.assert_array_equal(np.signbit(t[finite]), np.signbit(x[finite]))  # -0.0 too
    np.testing.assert_array_equal(t[np.abs(x) > 100], np.sign(x[np.abs(x) > 100]))
    np.testing.assert_array_equal(t[np.abs(x) <= info.smallest_subnormal],
                                  x[np.abs(x) <= info.smallest_subnormal])
    np.testing.assert_array_equal(np.isnan(s), np.isnan(x))
    np.testing.assert_array_equal(s[x == 0], 0.5)
    np.testing.assert_array_equal(s[x > 100], 1)
    np.testing.assert_array_equal(s[x < -1e3], 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_rounds_results_below_the_normal_range_as_subnormals(dtype):
    info = np.finfo(dtype)
    k = np.arange(-np.log2(info.tiny) + 1, -np.log2(info.smallest_subnormal) + 1)
    x = np.resize(-k * np.log(2.0), 2 * VECTOR_BYTES // info.dtype.itemsize).astype(dtype)
    got = _evaluate("exp", x)[0]
    want = _reference("exp", x).astype(dtype)
    assert np.all((got > 0) & (got < info.tiny))
    np.testing.assert_allclose(got, want, rtol=0, atol=info.smallest_subnormal)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_overflow_free(dtype):
    z = np.resize(np.array([-1e4, -50.0, -1.0, -0.0, 0.0, 1.0, 50.0, 1e4], dtype),
                  VECTOR_BYTES // np.dtype(dtype).itemsize)
    with np.errstate(all="raise"):
        got = _evaluate("sigmoid", z)
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-z.astype(np.float64)))
    for out in got:
        np.testing.assert_allclose(out, want, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid", "tanh"])
def test_bias_act_rows_with_tails_and_strides_match_elementwise(dtype, act):
    """The contract's bias_act: rows of 37 (whole vectors and a tail), and the same rows of a
    non-contiguous view (element by element): the same bits, elementary's values."""
    rng = rng_for("bias_act", dtype, act)
    z = (rng.standard_normal((5, 37)) * 4).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    contiguous = NB.bias_act(z.copy(), b, act)
    wide = np.zeros((5, 74), dtype)
    wide[:, ::2] = z
    strided = NB.bias_act(wide[:, ::2], b, act)
    bits = np.dtype(f"u{z.itemsize}")
    np.testing.assert_array_equal(contiguous.view(bits), np.ascontiguousarray(strided).view(bits))
    v = z + b
    want = {"identity": v, "relu": np.where(v < 0, 0, v), "sigmoid": 1 / (1 + np.exp(-v)),
            "tanh": np.tanh(v)}[act]
    np.testing.assert_allclose(contiguous, want, rtol=4 * np.finfo(dtype).eps, atol=0)
