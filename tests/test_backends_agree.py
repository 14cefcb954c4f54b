"""Every kernel of every available backend agrees with the NumPy float64 reference."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from fastfnn.backends import get_backend
from fastfnn.kernels import REGISTRY, Backend, backend_class

from .conftest import BACKEND_REPORT, backend_params

REFERENCE = get_backend("numpy")
TOL = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-7, atol=1e-12)}
SHAPES = [(1, 1, 1), (1, 784, 10), (3, 17, 5), (32, 130, 64), (7, 64, 10)]
ACTS = ["identity", "relu", "sigmoid", "tanh"]


def _ref(x):
    return np.array(x, dtype=np.float64)  # always a copy: reference kernels work in place


def _close(backend, got, want, dtype):
    np.testing.assert_allclose(backend.to_numpy(got), want, **TOL[dtype])


def _shape_of(fn):
    """Parameter names, kinds and defaults (annotations may differ between implementations)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_signatures_match_the_contract(name):
    if BACKEND_REPORT[name].startswith("not installed"):
        pytest.skip(f"{name}: {BACKEND_REPORT[name]}")
    cls = backend_class(name)
    for method, base_fn in inspect.getmembers(Backend, inspect.isfunction):
        if method.startswith("_"):
            continue
        assert _shape_of(getattr(cls, method)) == _shape_of(base_fn), (name, method)
    assert not getattr(cls, "__abstractmethods__", None), cls.__abstractmethods__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
def test_matmul(backend, dtype, m, k, n, trans_a, trans_b):
    rng = np.random.default_rng(m * k + n)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    want = (_ref(a).T if trans_a else _ref(a)) @ (_ref(b).T if trans_b else _ref(b))
    out = backend.empty((m, n), dtype)
    got = backend.matmul(backend.asarray(a), backend.asarray(b), out, trans_a, trans_b)
    np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-4 if dtype == np.float32
                               else 1e-10, atol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m,n", [(1, 1), (3, 17), (33, 130)])
def test_bias_act_and_act_grad(backend, dtype, act, m, n):
    rng = np.random.default_rng(n)
    z = (rng.standard_normal((m, n)) * 3).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    want_a = _ref(z) + _ref(b)
    REFERENCE.bias_act(want_a, _ref(b) * 0, act)
    got_a = backend.bias_act(backend.asarray(z), backend.asarray(b), act)
    _close(backend, got_a, want_a, dtype)
    da = rng.standard_normal((m, n)).astype(dtype)
    a = backend.to_numpy(got_a)
    want_da = REFERENCE.act_grad(_ref(da), _ref(a), act)
    _close(backend, backend.act_grad(backend.asarray(da), backend.asarray(a), act), want_da,
           dtype)


def _loss_case(kind, m, k, dtype, scale_logits, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((m, k)) * scale_logits).astype(dtype)
    if kind == "multilabel":
        targets = (rng.random((m, k)) < 0.4).astype(dtype)
    elif kind == "squared_error":
        targets = (rng.standard_normal((m, k)) * scale_logits).astype(dtype)
    elif kind == "poisson":
        targets = rng.poisson(2.0, (m, k)).astype(dtype)
    else:
        targets = rng.integers(0, k, m).astype(np.int64)
    return logits, targets


LOSS_KERNELS = {"softmax": "softmax_xent", "sigmoid": "sigmoid_bce", "multilabel": "sigmoid_bce",
                "squared_error": "squared_error", "poisson": "poisson"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k", [(1, 1), (1, 10), (5, 3), (130, 10)])
@pytest.mark.parametrize("kind,scale_logits,weighted", [
    (kind, scale, weighted) for kind in LOSS_KERNELS for scale, weighted in
    ((1.0, False), (1e4, False), (1.0, True))
    if not (kind == "poisson" and scale > 1)])  # exp(1e4) overflows: Poisson outputs are log-rates
def test_loss_kernels(backend, dtype, kind, m, k, scale_logits, weighted):
    logits, targets = _loss_case(kind, m, k, dtype, scale_logits, seed=m + k)
    row_weight = np.random.default_rng(m).uniform(0.1, 3.0, m).astype(dtype) if weighted else None
    want_stats = np.array([1.5, 2.0])
    got_stats = backend.asarray(np.array([1.5, 2.0]))
    want = _ref(logits).copy()
    fn = LOSS_KERNELS[kind]
    ref_targets = targets if targets.dtype == np.int64 else _ref(targets)
    getattr(REFERENCE, fn)(want, ref_targets, want, want_stats, 0.25,
                           row_weight=None if row_weight is None else _ref(row_weight))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # large logits must not overflow anywhere
        dev_logits = backend.asarray(logits)
        out = backend.empty((m, k), dtype)
        getattr(backend, fn)(dev_logits, backend.asarray(targets), out, got_stats, 0.25,
                             row_weight=None if row_weight is None else backend.asarray(row_weight))
    _close(backend, out, want, dtype)
    got = backend.to_numpy(got_stats)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], want_stats[0], rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert got[1] == want_stats[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k", [(1, 1), (4, 10), (130, 7)])
def test_softmax_argmax_col_sum(backend, dtype, m, k):
    rng = np.random.default_rng(k)
    z = (rng.standard_normal((m, k)) * 5).astype(dtype)
    _close(backend, backend.softmax(backend.asarray(z)), REFERENCE.softmax(_ref(z)), dtype)
    got = backend.argmax_rows(backend.asarray(z), backend.empty((m,), np.int64))
    np.testing.assert_array_equal(backend.to_numpy(got), np.argmax(z, axis=1))
    _close(backend, backend.col_sum(backend.asarray(z), backend.empty((k,), dtype)),
           _ref(z).sum(axis=0), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("shape", [(1,), (17,), (33, 10)])
def test_sgd_step(backend, dtype, momentum, nesterov, shape):
    rng = np.random.default_rng(len(shape))
    p, g, v = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    want_p, want_v = _ref(p), _ref(v)
    REFERENCE.sgd_step(want_p, _ref(g), want_v, 0.1, momentum, nesterov, 0.01)
    dp, dv = backend.asarray(p), backend.asarray(v)
    backend.sgd_step(dp, backend.asarray(g), dv, 0.1, momentum, nesterov, 0.01)
    _close(backend, dp, want_p, dtype)
    if momentum:
        _close(backend, dv, want_v, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (17,), (33, 10)])
def test_adam_step(backend, dtype, shape):
    rng = np.random.default_rng(len(shape))
    p, g, m1 = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    m2 = rng.random(shape).astype(dtype)
    want = [_ref(p), _ref(m1), _ref(m2)]
    REFERENCE.adam_step(want[0], _ref(g), want[1], want[2], 0.003, 0.9, 0.999, 1e-8, 0.01)
    got = [backend.asarray(a) for a in (p, m1, m2)]
    backend.adam_step(got[0], backend.asarray(g), got[1], got[2], 0.003, 0.9, 0.999, 1e-8, 0.01)
    for g_arr, w_arr in zip(got, want):
        _close(backend, g_arr, w_arr, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_step_stores_subnormal_moments_as_zero(backend, dtype):
    """Moments of zero-gradient parameters decay into the subnormal range: every backend stores
    them as 0 there (zeros keep their sign) and steps bit for bit as the reference in the dtype."""
    tiny = np.finfo(dtype).tiny
    n = 67  # whole vectors and a scalar tail in the Numba backend
    rng = np.random.default_rng(5)
    p = rng.standard_normal(n).astype(dtype)
    g = np.where(np.arange(n) % 4 == 0, rng.standard_normal(n), 0.0).astype(dtype)
    g[1::8] = -0.0
    m1 = (tiny * np.where(np.arange(n) % 3 == 0, -1, 1)).astype(dtype)
    m1[1::8] = -0.0  # -0.0 * beta1 + (1 - beta1) * -0.0 is -0.0, and stays so
    m2 = np.full(n, tiny, dtype)
    want = [a.copy() for a in (p, m1, m2)]
    REFERENCE.adam_step(want[0], g.copy(), want[1], want[2], 0.003, 0.9, 0.999, 1e-8, 0.0)
    assert np.all(want[1][g == 0] == 0) and np.all(want[2][g == 0] == 0)
    assert np.all(np.signbit(want[1][1::8]))
    got = [backend.asarray(a) for a in (p, m1, m2)]
    backend.adam_step(got[0], backend.asarray(g), got[1], got[2], 0.003, 0.9, 0.999, 1e-8, 0.0)
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
    for g_arr, w_arr in zip(got, want):
        np.testing.assert_array_equal(backend.to_numpy(g_arr).view(bits), w_arr.view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", [np.uint8, "same"])
@pytest.mark.parametrize("m", [1, 5, 64])
def test_gather_and_take(backend, dtype, source, m):
    rng = np.random.default_rng(m)
    src_dtype = dtype if source == "same" else source
    X = rng.integers(0, 256, (100, 13)).astype(src_dtype)
    idx = rng.integers(0, 100, m).astype(np.int64)
    scale = 1 / 255 if source == np.uint8 else 1.0
    got = backend.gather(backend.asarray(X), backend.asarray(idx), backend.empty((m, 13), dtype),
                         scale)
    want = REFERENCE.gather(X, idx, np.empty((m, 13), dtype), scale)
    np.testing.assert_array_equal(backend.to_numpy(got), want)  # cast then scale: exact
    y = rng.integers(0, 10, 100).astype(np.int64)
    got_y = backend.take(backend.asarray(y), backend.asarray(idx), backend.empty((m,), np.int64))
    np.testing.assert_array_equal(backend.to_numpy(got_y), y[idx])


# ---------------------------------------------------------------- whole epochs agree
def _epoch_weights(backend, dtype, batch_size, activation, output, solver, X, targets, order):
    from fastfnn.network import init_params
    from fastfnn.trainer import TrainConfig, TrainState, EpochRunner, new_opt_state

    coefs, intercepts = init_params((X.shape[1], 9, 5, 4), "xavier", activation, dtype,
                                    np.random.default_rng(11))
    coefs = [backend.asarray(w) for w in coefs]
    intercepts = [backend.asarray(b) for b in intercepts]
    state = TrainState(coefs, intercepts, new_opt_state(backend, solver, coefs, intercepts))
    config = TrainConfig(activation=activation, output=output, solver=solver,
                         learning_rate_init=0.01 if solver == "sgd" else 0.002, batch_size=batch_size,
                         alpha=1e-3, momentum=0.5, nesterovs_momentum=True)
    runner = EpochRunner(backend, config, backend.asarray(X), backend.asarray(targets), state,
                         x_scale=1 / 255)
    stats = runner.run(FixedOrder(order))
    return [backend.to_numpy(a) for a in state.coefs + state.intercepts], stats


class FixedOrder:
    """Stands in for the trainer's generator: the same batch order for every backend."""

    def __init__(self, order):
        self.order = order

    def permutation(self, n):
        return self.order


@pytest.mark.parametrize("name", backend_params(include_numpy=False))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [1, 32, 128, None])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("output,solver", [("softmax", "sgd"), ("sigmoid", "sgd"),
                                           ("softmax", "adam"), ("multilabel", "sgd")])
def test_one_epoch_ends_with_the_same_weights_as_numpy(name, dtype, batch_size, activation,
                                                       output, solver):
    backend = get_backend(name)
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (200, 30)).astype(np.uint8)
    X[rng.random(X.shape) < 0.7] = 0  # sparse, like MNIST
    if output == "multilabel":
        targets, output = (rng.random((200, 4)) < 0.4).astype(dtype), "sigmoid"
    else:
        targets = rng.integers(0, 4, 200).astype(np.int64)
    order = rng.permutation(200).astype(np.int64)
    args = (dtype, batch_size, activation, output, solver, X, targets, order)
    got, got_stats = _epoch_weights(backend, *args)
    want, want_stats = _epoch_weights(REFERENCE, *args)
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (1e-4, 1e-4)
    for g, w in zip(got, want):
        assert np.isfinite(w).all()  # a diverged run would compare NaN with NaN
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got_stats[0], want_stats[0], rtol=max(rtol, 1e-6))
    # float32: a logit within rounding of its threshold may be judged differently, a row or two.
    assert abs(got_stats[1] - want_stats[1]) <= (0 if dtype == np.float64 else 3)
