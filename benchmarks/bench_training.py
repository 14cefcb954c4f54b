"""One training epoch of each seed workload: FastFNN per backend beside PyTorch, hand-written NumPy
and the GEMM floor.

Workloads (float32, ReLU hidden layers, softmax + cross-entropy, plain SGD; see
``fastfnn.bench.workloads.WORKLOADS``): 784-128-64-10 with batch 128, 32 and 1, 784-128-10 with
batch 128, 784-10 softmax regression with batch 1, 784-10-10 full batch (one step per epoch), and
784-128-64-10 at batch 1024 (``EXTRA_WORKLOADS``); issue 11's matrix is in bench_matrix.py. Each
epoch runs over the first ``FASTFNN_BENCH_ROWS`` (default 6000) MNIST training rows wherever
``load_mnist()`` finds them without downloading ($FASTFNN_DATA/mnist, then the user cache), else over
random MNIST-shaped data of that size.

Variants (one benchmark group per workload, one benchmark per variant):
    fastfnn[<backend>]  FastFNN's trainer epoch (fused epoch where the backend offers one, else the
                        composed kernels) on every backend available at collection time;
    pytorch             eager PyTorch on the CPU, torch.set_num_threads(2), tensors in memory;
    numpy-loop          the straightforward hand-written NumPy loop;
    floor               the epoch's GEMMs alone through NumPy's BLAS.

Each variant is built (data and weights on the backend) outside the timing, runs one untimed warm-up
epoch (JIT compile or cache load, first touches), sleeps ``fastfnn.bench.measure.SETTLE_S`` so that
the thread pools of the previous benchmark stop spinning, then runs ROUNDS timed epochs of one
iteration each.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from fastfnn import FastFNN

from fastfnn.backends import available_backends
from fastfnn.bench import variants
from fastfnn.bench.measure import SETTLE_S
from fastfnn.bench.workloads import EXTRA_WORKLOADS, WORKLOADS, WORKLOADS_BY_KEY, epoch_flops

#: Timed epochs per benchmark (after one warm-up epoch).
ROUNDS = 5
#: PyTorch intra-op threads: the machine's two cores.
TORCH_THREADS = 2

BACKENDS = [name for name, reason in available_backends().items() if not reason]
VARIANTS = [*(f"fastfnn[{name}]" for name in BACKENDS), "pytorch", "numpy-loop", "floor"]


def _torch_missing():
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return f"PyTorch is not importable ({exc}); pip install 'fastfnn[bench]'"
    return ""


def make_variant(name, workload, data):
    if name.startswith("fastfnn["):
        return variants.FastFNNVariant(name[len("fastfnn["):-1], workload, data)
    if name == "pytorch":
        reason = _torch_missing()
        if reason:
            pytest.skip(reason)
        return variants.TorchVariant(workload, data, TORCH_THREADS)
    if name == "numpy-loop":
        return variants.NumpyLoopVariant(workload, data)
    return variants.FloorVariant(workload, data)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("workload", [w.key for w in WORKLOADS + EXTRA_WORKLOADS])
def test_epoch(benchmark, epoch_data, workload, variant):
    wl = WORKLOADS_BY_KEY[workload]
    runner = make_variant(variant, wl, epoch_data)
    benchmark.group = f"epoch {workload} ({wl.description})"
    rows = len(epoch_data.y)
    flops = epoch_flops(wl.sizes, rows, wl.batch_size)
    benchmark.extra_info.update(rows=rows, data=epoch_data.source, gemm_flops=flops)
    if not benchmark.disabled:
        runner.epoch()  # warm-up: JIT compile or cache load, first touches
        time.sleep(SETTLE_S)  # let the previous benchmark's spinning thread pools go idle
    loss = benchmark.pedantic(runner.epoch, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["path"] = runner.path
    assert loss == loss  # noqa: PLR0124 - not NaN (the floor returns 0.0)


#: partial_fit loop: calls, rows a call, features, hidden units, classes (a stream of small
#: chunks, as dask-ml's Incremental feeds): per-call work, not the epochs, sets its time.
PARTIAL_FIT_LOOP = (100, 200, 50, 64, 5)


@pytest.mark.parametrize("variant", [*(f"fastfnn[{name}]" for name in BACKENDS), "sklearn"])
def test_partial_fit_loop(benchmark, variant):
    calls, rows, features, hidden, classes = PARTIAL_FIT_LOOP
    rng = np.random.default_rng(0)
    X = rng.standard_normal((calls * rows, features)).astype(np.float32)
    y = rng.integers(0, classes, calls * rows)
    if variant == "sklearn":
        neural_network = pytest.importorskip("sklearn.neural_network")
        model = neural_network.MLPClassifier((hidden,), batch_size=rows, random_state=0)
    else:
        model = FastFNN((hidden,), batch_size=rows, random_state=0, backend=variant[8:-1])
    benchmark.group = (f"partial_fit loop: {calls} calls of {rows} rows, "
                       f"{features}-{hidden}-{classes}, adam")
    model.partial_fit(X[:rows], y[:rows], classes=np.arange(classes))  # compile or cache load
    loops = []

    def loop():
        for start in range(0, len(y), rows):
            model.partial_fit(X[start:start + rows], y[start:start + rows])
        loops.append(1)
    benchmark.pedantic(loop, rounds=ROUNDS, iterations=1)
    assert len(model.loss_curve_) == 1 + calls * len(loops) or variant == "sklearn"


#: predict_proba: rows, the net's sizes (issue 11's dense tabular net on 1,000 features).
PREDICT = (10_000, (1000, 256, 128, 5))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("variant", [*(f"fastfnn[{name}]" for name in BACKENDS), "sklearn",
                                     "pytorch"])
def test_predict_proba(benchmark, variant, dtype):
    """Class probabilities of dense rows from one fitted net: the same weights in every variant
    (scikit-learn's MLPClassifier and a PyTorch nn.Sequential under no_grad take FastFNN's)."""
    from fastfnn.bench.data import dense_classification
    rows, sizes = PREDICT
    data = dense_classification(rows, sizes[0], sizes[-1], dtype=np.dtype(dtype))
    model = FastFNN(sizes[1:-1], max_iter=1, random_state=0, dtype=dtype, backend="numpy")
    model.fit(data.X[:500], data.y[:500])
    benchmark.group = f"predict_proba: {rows} rows, {'-'.join(map(str, sizes))}, {dtype}"
    if variant == "sklearn":
        neural_network = pytest.importorskip("sklearn.neural_network")
        other = neural_network.MLPClassifier(sizes[1:-1], max_iter=1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other.fit(data.X[:500], data.y[:500])
        other.coefs_, other.intercepts_ = list(model.coefs_), list(model.intercepts_)
        run = lambda: other.predict_proba(data.X)  # noqa: E731
    elif variant == "pytorch":
        reason = _torch_missing()
        if reason:
            pytest.skip(reason)
        run = _torch_predict(model, data.X, dtype)
    else:
        model.set_params(backend=variant[8:-1])
        run = lambda: model.predict_proba(data.X)  # noqa: E731
    run()  # compile or cache load, first touches
    if not benchmark.disabled:
        time.sleep(SETTLE_S)
    probabilities = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    np.testing.assert_allclose(np.asarray(probabilities), model.predict_proba(data.X),
                               rtol=1e-3, atol=1e-4)


def _torch_predict(model, X, dtype):
    """predict_proba of ``model``'s weights as a PyTorch nn.Sequential on 2 threads."""
    import torch
    torch.set_num_threads(TORCH_THREADS)
    layers = []
    for w, b in zip(model.coefs_, model.intercepts_):
        linear = torch.nn.Linear(*w.shape, dtype=getattr(torch, dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1], torch.nn.Softmax(dim=1))
    inputs = torch.from_numpy(X)

    def run():
        with torch.no_grad():
            return net(inputs).numpy()
    return run
