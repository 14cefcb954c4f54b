"""fastfnn.bench.variants: the variants compared train the same network the same way, in the
workload's dtype and with its solver; the NumPy loop declines what it does not cover."""

import dataclasses
import os

import numpy as np
import pytest

from fastfnn.bench import variants, workloads
from fastfnn.bench.data import DataSource, synthetic_mnist

SEED_KEYS = [w.key for w in workloads.WORKLOADS + workloads.EXTRA_WORKLOADS]


def _losses(workload, data, names, epochs=2):
    """Mean loss of each of ``epochs`` epochs per variant name."""
    return {name: [v.epoch() for _ in range(epochs)] for name, v in
            ((name, variants.make_variant(name, workload, data, 1)) for name in names)}


@pytest.mark.parametrize("key", SEED_KEYS)
def test_compared_variants_train_the_same_network(key):
    """Same weights, same row order, same SGD: the same mean losses, epoch after epoch."""
    wl = workloads.WORKLOADS_BY_KEY[key]
    rows = 40 if wl.batch_size == 1 else 300
    losses = _losses(wl, synthetic_mnist(rows, seed=3), ["fastfnn[numpy]", "numpy loop"])
    np.testing.assert_allclose(losses["numpy loop"], losses["fastfnn[numpy]"], rtol=1e-4)


def test_pytorch_variant_trains_the_same_network():
    pytest.importorskip("torch")
    wl = workloads.WORKLOADS_BY_KEY["784-128-64-10"]
    losses = _losses(wl, synthetic_mnist(300, seed=3), ["fastfnn[numpy]", "pytorch"])
    np.testing.assert_allclose(losses["pytorch"], losses["fastfnn[numpy]"], rtol=1e-4)


# Adam's epsilon sits in a slightly different place in PyTorch (added to sqrt(v) / sqrt(1 - b2^t))
# than in FastFNN and scikit-learn (added to sqrt(v), the correction folded into the step size),
# hence the looser tolerance there.
@pytest.mark.parametrize("key, rows, names, rtol", [
    ("dense100/b32/f64/adam", 256, ["pytorch"], 1e-3),
    ("dense100/b32/f64/sgd", 256, ["pytorch"], 1e-7),  # float32 would differ by ~1e-6
    ("dense100/b200/f32/sgd", 400, ["pytorch", "numpy loop"], 1e-4),
    ("dense1000/b1/f32/adam", 24, ["pytorch"], 1e-3),
    ("wide/b32/f64/adam", 64, ["pytorch"], 1e-3),
    ("dense100-tanh/b200/f64/adam", 400, ["pytorch", "fastfnn[numba]"], 1e-3),
    ("dense100-sigmoid/b200/f32/adam", 400, ["pytorch", "fastfnn[numba]"], 1e-3),
])
def test_matrix_variants_train_the_same_network(key, rows, names, rtol):
    """Dense and MNIST inputs, float64, Adam, tanh and logistic hidden layers: FastFNN's NumPy
    backend and PyTorch (and the loop on float32 SGD, the Numba backend on other activations)
    give the same mean losses, and the loss goes down."""
    pytest.importorskip("torch")
    wl = dataclasses.replace(workloads.WORKLOADS_BY_KEY[key], rows=rows)
    data = DataSource(rows, synthetic=True).for_workload(wl)
    losses = _losses(wl, data, ["fastfnn[numpy]", *names])
    for name in names:
        np.testing.assert_allclose(losses[name], losses["fastfnn[numpy]"], rtol=rtol, err_msg=name)
    assert losses["fastfnn[numpy]"][1] < losses["fastfnn[numpy]"][0]


def test_variants_compute_in_the_workload_dtype():
    pytest.importorskip("torch")
    wl = dataclasses.replace(workloads.WORKLOADS_BY_KEY["dense100/b32/f64/adam"], rows=64)
    data = DataSource(64).for_workload(wl)
    fast = variants.make_variant("fastfnn[numpy]", wl, data, 1)
    assert fast.runner.state.coefs[0].dtype == np.float64
    assert len(fast.runner.state.opt_state) == 4  # Adam: m and v of weights and biases
    assert fast.runner.x_scale == 1.0
    torch_variant = variants.make_variant("pytorch", wl, data, 1)
    assert str(torch_variant.X.dtype) == "torch.float64"
    assert isinstance(torch_variant.optimizer, torch_variant.torch.optim.Adam)
    floor = variants.make_variant("floor", wl, data, 1)
    assert floor.W[0].dtype == np.float64 and floor.X.dtype == np.float64


@pytest.mark.parametrize("blas", ["auto", "loaded"])
def test_the_floor_runs_the_numba_backend_s_gemm(monkeypatch, blas):
    """The floor's products are those of the gemm the BLAS epoch uses (MKL's where its wheel is
    installed), its path names that library, and its epoch forms each step's products."""
    pytest.importorskip("numba")
    from fastfnn.kernels.numba_backend.cblas import find_gemm
    monkeypatch.setenv("FASTFNN_BLAS", blas)
    wl = dataclasses.replace(workloads.WORKLOADS_BY_KEY["dense100/b32/f64/sgd"], rows=70)
    floor = variants.make_variant("floor", wl, DataSource(70).for_workload(wl), 1)
    gemm = find_gemm(np.float64)
    assert floor.matmul.__self__ is gemm
    name = "MKL" if "mkl" in gemm.library else os.path.basename(gemm.library)
    assert floor.path == f"GEMMs only ({name})"
    floor.epoch()
    x = floor.X[64:70]  # the last (short) step's products
    np.testing.assert_allclose(floor.acts[0][:6], x @ floor.W[0], rtol=1e-12)
    np.testing.assert_allclose(floor.gW[0], x.T @ floor.dz[0][:6], rtol=1e-12)
    np.testing.assert_allclose(floor.dprev[0][:6], floor.dz[1][:6] @ floor.W[1].T, rtol=1e-12)


def test_the_bound_times_the_floor_s_epoch_on_one_blas_thread_over_the_cores(monkeypatch):
    """The bound runs the floor's products (same buffers and steps) with every BLAS library on
    one thread, and reports the epoch's seconds divided by the cores the process may use."""
    pytest.importorskip("numba")
    from threadpoolctl import threadpool_info
    wl = dataclasses.replace(workloads.WORKLOADS_BY_KEY["dense100/b32/f64/sgd"], rows=70)
    data = DataSource(70).for_workload(wl)
    floor = variants.make_variant("floor", wl, data, 1)
    monkeypatch.setattr(variants, "process_share", lambda: 4)
    bound = variants.make_variant("bound", wl, data, 1)
    assert bound.cores == 4 and bound.path == floor.path.replace(
        "GEMMs only", "GEMMs on one thread / 4 cores")
    threads_seen, clock = [], iter([10.0, 13.0])

    def epoch():
        threads_seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        variants.FloorVariant.epoch(bound)
        return 0.0

    monkeypatch.setattr(bound, "epoch", epoch)
    monkeypatch.setattr(variants.time, "perf_counter", lambda: next(clock))
    assert bound.timed_epoch() == (0.75, 0.0)
    assert threads_seen and set(threads_seen) == {1}
    x = bound.X[64:70]
    np.testing.assert_allclose(bound.gW[0], x.T @ bound.dz[0][:6], rtol=1e-12)


def test_the_numpy_loop_declines_all_but_float32_sgd():
    names = variants.variant_names(["numpy"], ["loop"])
    assert names == ["fastfnn[numpy]", "numpy loop", "floor", "bound"]
    wl = dataclasses.replace(workloads.WORKLOADS_BY_KEY["dense100/b32/f64/sgd"], rows=64)
    skipped = {}
    built = variants.build_variants(wl, DataSource(64).for_workload(wl), names, 1, skipped)
    assert [v.name for v in built] == ["fastfnn[numpy]", "floor", "bound"]
    assert skipped == {"numpy loop on dense100/b32/f64/sgd":
                       "the hand-written NumPy loop is float32 SGD only"}
    with pytest.raises(ValueError, match="float32 SGD only"):
        variants.NumpyLoopVariant(wl, DataSource(64).for_workload(wl))


def test_a_broken_variant_is_noted_and_the_others_built():
    wl = dataclasses.replace(workloads.WORKLOADS[0], rows=64)
    skipped = {}
    built = variants.build_variants(wl, DataSource(64, synthetic=True).for_workload(wl),
                                    ["fastfnn[nosuch]", "floor"], 1, skipped)
    assert [v.name for v in built] == ["floor"]
    assert "failed to set up" in skipped["fastfnn[nosuch] on 784-128-64-10"]
    with pytest.raises(ValueError, match="unknown variant 'jax'"):
        variants.make_variant("jax", wl, None, 1)
