"""Optimizer steps (numba_backend.optimizer): the per-row SGD step of per-example training is the
range step bit for bit, and the lazy first layer's closed-form catch-up is the steps it skips."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastfnn.kernels.numba_backend.optimizer import (CatchUp, FlatParams, OptimizerStep,
                                                     catch_up_rows, sgd_row, step_range,
                                                     step_rows, zero_grad_powers)
from fastfnn.kernels.numba_backend.vectors import VECTOR_BYTES

from .helpers import DTYPES, requires_numba, rng_for

pytestmark = requires_numba

SGD_KINDS = [(0.0, False), (0.9, False), (0.9, True)]  # (momentum, nesterovs_momentum)


def _sgd(dtype, momentum, nesterov, weight_decay, learning_rate=0.05):
    T = np.dtype(dtype).type
    return OptimizerStep(0, T(learning_rate), T(momentum), nesterov, momentum != 0,
                         T(weight_decay), T(0), T(0), T(0), T(0), T(0), T(0))


@njit
def _step_row_on_the_fly(step, decay, params, o, P, x, dz):
    sgd_row(step, decay, params, o, P, x, dz, 0)


def _state(dtype, n, seed):
    rng = rng_for("state", dtype, n, seed)
    w = rng.standard_normal(n).astype(dtype)
    v = (rng.standard_normal(n) * 0.1).astype(dtype)
    return w, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov", SGD_KINDS)
@pytest.mark.parametrize("decay", [False, True])
def test_row_step_is_the_range_step(dtype, momentum, nesterov, decay):
    """sgd_row (gradient x * dz formed in registers) = step_range on that gradient, bit for bit."""
    P = 2 * VECTOR_BYTES // np.dtype(dtype).itemsize
    step = _sgd(dtype, momentum, nesterov, 1e-3)
    w, v = _state(dtype, 3 * P, 0)
    dz = rng_for("dz", dtype).standard_normal(P).astype(dtype)
    x = dtype(0.37)
    fly = FlatParams(w.copy(), v.copy(), v.copy())
    _step_row_on_the_fly(step, decay, fly, P, P, x, dz)
    ranged = FlatParams(w.copy(), v.copy(), v.copy())
    g = np.zeros(3 * P, dtype)
    g[P:2 * P] = x * dz
    step_range(step, decay, ranged, g, np.uint64(P), np.uint64(P))
    np.testing.assert_array_equal(fly.w, ranged.w)
    np.testing.assert_array_equal(fly.s0, ranged.s0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_rows_steps_only_the_listed_rows_and_clears_their_gradient(dtype):
    P = 4
    step = _sgd(dtype, 0.9, True, 1e-3)
    w, v = _state(dtype, 5 * P, 1)
    g = rng_for("g", dtype).standard_normal(5 * P).astype(dtype)
    params = FlatParams(w.copy(), v.copy(), v.copy())
    step_rows(step, True, params, g.copy(), 0, P, np.array([3, 1, 0, 0]), np.int64(2))
    want = FlatParams(w.copy(), v.copy(), v.copy())
    for j in (3, 1):
        step_range(step, True, want, g, np.uint64(j * P), np.uint64(P))
    np.testing.assert_array_equal(params.w, want.w)
    np.testing.assert_array_equal(params.s0, want.s0)
    cleared = g.copy()
    step_rows(step, True, FlatParams(w.copy(), v.copy(), v.copy()), cleared, 0, P,
              np.array([3, 1]), np.int64(2))
    assert not cleared[P:2 * P].any() and not cleared[3 * P:4 * P].any()
    np.testing.assert_array_equal(cleared[:P], g[:P])


@pytest.mark.parametrize("momentum,nesterov", SGD_KINDS)
@pytest.mark.parametrize("weight_decay", [0.0, 2e-3])
def test_catch_up_is_the_skipped_zero_gradient_steps(momentum, nesterov, weight_decay):
    """Row j last stepped at last[j]: the closed form M^k equals k steps with a zero gradient."""
    dtype = np.float64
    P, rows, s = 4, 3, 9
    step = _sgd(dtype, momentum, nesterov, weight_decay)
    w, v = _state(dtype, rows * P, 2)
    last = np.array([9, 2, 5], np.int64)
    powers = zero_grad_powers(s, step.learning_rate, step.momentum, step.weight_decay, nesterov,
                              momentum != 0)
    caught = FlatParams(w.copy(), v.copy(), v.copy())
    catch_up_rows(CatchUp(last.copy(), powers, momentum != 0), caught, 0, P, last, -rows, s)
    stepped = FlatParams(w.copy(), v.copy(), v.copy())
    zero = np.zeros(rows * P, dtype)
    for j in range(rows):
        for _ in range(s - last[j]):
            step_range(step, weight_decay != 0, stepped, zero, np.uint64(j * P), np.uint64(P))
    np.testing.assert_allclose(caught.w, stepped.w, rtol=1e-12, atol=1e-15)
    if momentum:
        np.testing.assert_allclose(caught.s0, stepped.s0, rtol=1e-12, atol=1e-15)
