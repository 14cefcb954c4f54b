"""Every kernel of the backend contract on every available backend, at the shapes training uses.

Batches m in (1, 32, 128, 1024) against the layers 784x128, 128x64 and 64x10 (the 784-128-64-10
network; 784-128-10, 784-10 and 784-10-10 use subsets of these shapes). float32, ReLU. One
benchmark group per kernel (the three GEMMs of a step are three groups), parametrized by backend,
m and layer; compare backends shape by shape with

    pytest benchmarks/bench_kernels.py --benchmark-group-by=group,param:layer,param:m

Every kernel is called once before its timed rounds (JIT compile, first touch); a timed call ends
with ``backend.synchronize()`` so asynchronous (GPU) backends are timed to completion.
"""

from __future__ import annotations

import numpy as np
import pytest

BATCHES = (1, 32, 128, 1024)
LAYERS = ("784x128", "128x64", "64x10")
#: Rows of the uint8 data set that gather/take index into (MNIST's training set size).
DATA_ROWS = 60000
DTYPE = np.float32

batches = pytest.mark.parametrize("m", BATCHES, ids=[f"m{m}" for m in BATCHES])
layers = pytest.mark.parametrize("layer", LAYERS)
params = pytest.mark.parametrize("layer", [*LAYERS, *(f"b{n_out}" for n_out in (128, 64, 10))])


def dims(layer):
    n_in, n_out = layer.split("x")
    return int(n_in), int(n_out)


def normal(backend, rng, shape, scale=1.0):
    return backend.asarray(rng.standard_normal(shape) * scale, dtype=DTYPE)


def param_shape(layer):
    """'784x128' -> (784, 128) weights; 'b128' -> (128,) biases."""
    return (int(layer[1:]),) if layer.startswith("b") else dims(layer)


# ---------------------------------------------------------------------------------------- GEMMs
@pytest.mark.benchmark(group="matmul forward: (m, n_in) @ W")
@layers
@batches
def test_matmul_forward(timed, backend, rng, m, layer):
    n_in, n_out = dims(layer)
    a, w = normal(backend, rng, (m, n_in)), normal(backend, rng, (n_in, n_out))
    out = backend.empty((m, n_out), DTYPE)
    timed(lambda: backend.matmul(a, w, out))


@pytest.mark.benchmark(group="matmul weight grad: a.T @ dz")
@layers
@batches
def test_matmul_weight_grad(timed, backend, rng, m, layer):
    n_in, n_out = dims(layer)
    a, dz = normal(backend, rng, (m, n_in)), normal(backend, rng, (m, n_out))
    out = backend.empty((n_in, n_out), DTYPE)
    timed(lambda: backend.matmul(a, dz, out, trans_a=True))


@pytest.mark.benchmark(group="matmul input grad: dz @ W.T")
@layers
@batches
def test_matmul_input_grad(timed, backend, rng, m, layer):
    n_in, n_out = dims(layer)
    dz, w = normal(backend, rng, (m, n_out)), normal(backend, rng, (n_in, n_out))
    out = backend.empty((m, n_in), DTYPE)
    timed(lambda: backend.matmul(dz, w, out, trans_b=True))


# ---------------------------------------------------------------------------------- element-wise
@pytest.mark.benchmark(group="bias_act relu")
@layers
@batches
def test_bias_act(timed, backend, rng, m, layer):
    _, n_out = dims(layer)
    z, b = normal(backend, rng, (m, n_out)), normal(backend, rng, (n_out,), 1e-3)
    timed(lambda: backend.bias_act(z, b, "relu"))


@pytest.mark.benchmark(group="act_grad relu")
@layers
@batches
def test_act_grad(timed, backend, rng, m, layer):
    _, n_out = dims(layer)
    da = normal(backend, rng, (m, n_out))
    a = backend.asarray(np.maximum(rng.standard_normal((m, n_out)), 0), dtype=DTYPE)
    timed(lambda: backend.act_grad(da, a, "relu"))


@pytest.mark.benchmark(group="col_sum")
@layers
@batches
def test_col_sum(timed, backend, rng, m, layer):
    _, n_out = dims(layer)
    dz, out = normal(backend, rng, (m, n_out)), backend.empty((n_out,), DTYPE)
    timed(lambda: backend.col_sum(dz, out))


# --------------------------------------------------------------------------- output layer (m, 10)
def _output_case(backend, rng, m):
    logits = normal(backend, rng, (m, 10), 3.0)
    y = backend.asarray(rng.integers(0, 10, m), dtype=np.int64)
    return logits, y, backend.empty((m, 10), DTYPE), backend.zeros((2,), np.float64)


@pytest.mark.benchmark(group="softmax_xent")
@batches
def test_softmax_xent(timed, backend, rng, m):
    logits, y, dlogits, stats = _output_case(backend, rng, m)
    timed(lambda: backend.softmax_xent(logits, y, dlogits, stats, 1.0 / m))


@pytest.mark.benchmark(group="sigmoid_bce")
@batches
def test_sigmoid_bce(timed, backend, rng, m):
    logits, y, dlogits, stats = _output_case(backend, rng, m)
    timed(lambda: backend.sigmoid_bce(logits, y, dlogits, stats, 1.0 / m))


@pytest.mark.benchmark(group="softmax")
@batches
def test_softmax(timed, backend, rng, m):
    z = normal(backend, rng, (m, 10), 3.0)
    timed(lambda: backend.softmax(z))


@pytest.mark.benchmark(group="argmax_rows")
@batches
def test_argmax_rows(timed, backend, rng, m):
    z, out = normal(backend, rng, (m, 10)), backend.empty((m,), np.int64)
    timed(lambda: backend.argmax_rows(z, out))


# ------------------------------------------------------------------------------------- optimizers
@pytest.mark.benchmark(group="sgd_step (Nesterov momentum, weight decay)")
@params
def test_sgd_step(timed, backend, rng, layer):
    shape = param_shape(layer)
    p, g = normal(backend, rng, shape, 0.1), normal(backend, rng, shape, 1e-3)
    vel = backend.zeros(shape, DTYPE)
    decay = 1e-4 if len(shape) == 2 else 0.0
    timed(lambda: backend.sgd_step(p, g, vel, 1e-3, 0.9, True, decay))


@pytest.mark.benchmark(group="adam_step")
@params
def test_adam_step(timed, backend, rng, layer):
    shape = param_shape(layer)
    p, g = normal(backend, rng, shape, 0.1), normal(backend, rng, shape, 1e-3)
    m1, m2 = backend.zeros(shape, DTYPE), backend.zeros(shape, DTYPE)
    decay = 1e-4 if len(shape) == 2 else 0.0
    timed(
        lambda: backend.adam_step(p, g, m1, m2, 1e-4, 0.9, 0.999, 1e-8, decay))


# ----------------------------------------------------------------------------------- batch assembly
@pytest.fixture(scope="module")
def mnist_like():
    """uint8 (60000, 784), ~80% zeros, and int64 labels, on the host."""
    from fastfnn.bench.data import synthetic_mnist
    data = synthetic_mnist(DATA_ROWS)
    return data.X, data.y


@pytest.mark.benchmark(group="gather uint8 -> float32 /255")
@batches
def test_gather(timed, backend, rng, mnist_like, m):
    X = backend.asarray(mnist_like[0])
    idx = backend.asarray(rng.integers(0, DATA_ROWS, m), dtype=np.int64)
    out = backend.empty((m, 784), DTYPE)
    timed(lambda: backend.gather(X, idx, out, 1.0 / 255.0))


@pytest.mark.benchmark(group="take labels")
@batches
def test_take(timed, backend, rng, mnist_like, m):
    y = backend.asarray(mnist_like[1])
    idx = backend.asarray(rng.integers(0, DATA_ROWS, m), dtype=np.int64)
    out = backend.empty((m,), np.int64)
    timed(lambda: backend.take(y, idx, out))
