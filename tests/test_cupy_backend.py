"""The CuPy backend's own promises (issue 12's bugs), on a GPU or on its host emulation
(``FASTFNN_CUDA_EMULATE=1``, how CI runs them). The contract-wide agreement with the NumPy
reference is tests/test_backends_agree.py."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn import backends
from fastfnn.backends import get_backend
from fastfnn.kernels import cupy_backend

from .conftest import BACKEND_REPORT

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(bool(BACKEND_REPORT["cupy"]),
                                 reason=f"backend cupy unavailable here: {BACKEND_REPORT['cupy']}")]

REFERENCE = get_backend("numpy")


@pytest.fixture
def cupy():
    return get_backend("cupy")


def _rng_case(m=37, k=10, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)) * 3).astype(dtype), rng.integers(0, k, m)


@pytest.mark.parametrize("kernel", ["softmax_xent", "sigmoid_bce"])
def test_int32_labels_read_as_int32(cupy, kernel):
    # bug 1: labels were always read as int64, so int32 labels read past their end
    logits, y = _rng_case()
    results = []
    for label_dtype in (np.int64, np.int32):
        stats = cupy.zeros((2,), np.float64)
        d = getattr(cupy, kernel)(cupy.asarray(logits), cupy.asarray(y.astype(label_dtype)),
                                  cupy.empty(logits.shape, np.float32), stats, 0.5)
        results.append((cupy.to_numpy(d), cupy.to_numpy(stats)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_labels_of_another_dtype_are_a_clear_error(cupy):
    logits, y = _rng_case()
    with pytest.raises(TypeError, match="labels must be a C-contiguous int32 or int64"):
        cupy.softmax_xent(cupy.asarray(logits), cupy.asarray(y.astype(np.float32)),
                          cupy.empty(logits.shape, np.float32), cupy.zeros((2,), np.float64), 1.0)


def test_gather_takes_int32_indices(cupy):
    # bug 2: the gather kernel declared int64 indices only
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (50, 7)).astype(np.uint8)
    idx = rng.integers(0, 50, 9)
    want = REFERENCE.gather(X, idx, np.empty((9, 7), np.float32), 1 / 255)
    got = cupy.gather(cupy.asarray(X), cupy.asarray(idx.astype(np.int32)),
                      cupy.empty((9, 7), np.float32), 1 / 255)
    np.testing.assert_array_equal(cupy.to_numpy(got), want)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, True)])
def test_optimizer_steps_round_as_numpy_does(cupy, momentum, nesterov):
    # bug 3 (Adam's 1 - beta in float on the device drifted v by 1.3e-5) and bug 4 (no FMA
    # contraction): with the same operations in the same order, float32 steps are bitwise NumPy's
    rng = np.random.default_rng(2)
    p, g, a = (rng.standard_normal(300).astype(np.float32) for _ in range(3))
    b = rng.random(300).astype(np.float32)
    want = [p.copy(), a.copy(), b.copy()]
    REFERENCE.adam_step(want[0], g, want[1], want[2], 0.003, 0.9, 0.999, 1e-8, 0.01)
    got = [cupy.asarray(x) for x in (p, a, b)]
    cupy.adam_step(got[0], cupy.asarray(g), got[1], got[2], 0.003, 0.9, 0.999, 1e-8, 0.01)
    for x, w in zip(got, want):
        np.testing.assert_array_equal(cupy.to_numpy(x), w)
    want_p, want_v = p.copy(), a.copy()
    REFERENCE.sgd_step(want_p, g, want_v, 0.1, momentum, nesterov, 0.01)
    got_p, got_v = cupy.asarray(p), cupy.asarray(a)
    cupy.sgd_step(got_p, cupy.asarray(g), got_v, 0.1, momentum, nesterov, 0.01)
    np.testing.assert_array_equal(cupy.to_numpy(got_p), want_p)
    np.testing.assert_array_equal(cupy.to_numpy(got_v), want_v)


def test_softmax_of_a_strided_view(cupy):
    # bug 5: the kernel assumed C-contiguous rows, so a column slice gave wrong rows silently
    z = (np.random.default_rng(3).standard_normal((6, 8)) * 4).astype(np.float32)
    got = cupy.softmax(cupy.asarray(z)[:, 1:6])
    want = REFERENCE.softmax(z[:, 1:6].astype(np.float64))
    np.testing.assert_allclose(cupy.to_numpy(got), want, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not cupy_backend.EMULATED, reason="counting needs the CUDA emulation")
def test_loss_and_argmax_kernels_are_one_launch_allocating_nothing(cupy):
    # bug 6: softmax_xent allocated 2 arrays and 2 reductions per call, sigmoid_bce ~7 in 13
    # launches, argmax_rows 1
    from fastfnn.kernels import cupy_emulation

    logits, y = _rng_case()
    args = (cupy.asarray(logits), cupy.asarray(y), cupy.empty(logits.shape, np.float32),
            cupy.zeros((2,), np.float64))
    out = cupy.empty((logits.shape[0],), np.int64)
    for call in (lambda: cupy.softmax_xent(*args, 0.5), lambda: cupy.sigmoid_bce(*args, 0.5),
                 lambda: cupy.argmax_rows(args[0], out)):
        cupy_emulation.counters.reset()
        call()
        assert cupy_emulation.counters.snapshot() == (1, 0, 0)


@pytest.mark.parametrize("act", ["softplus", "RELU"])
def test_unknown_activation_is_a_value_error(cupy, act):
    # bug 8: it raised KeyError
    z = cupy.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown activation"):
        cupy.bias_act(z, cupy.zeros((3,), np.float32), act)
    with pytest.raises(ValueError, match="unknown activation"):
        cupy.act_grad(z, z, act)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", ["softmax_xent", "sigmoid_bce", "squared_error", "poisson"])
def test_weighted_losses_agree_with_the_reference(cupy, dtype, kernel):
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((300, 5)) * 2).astype(dtype)
    if kernel in ("softmax_xent", "sigmoid_bce"):
        targets = rng.integers(0, 5, 300)
    elif kernel == "squared_error":
        targets = rng.standard_normal((300, 5)).astype(dtype)
    else:
        targets = rng.poisson(1.5, (300, 5)).astype(dtype)
    weights = rng.random(300).astype(dtype)
    want_stats = np.array([0.5, 1.0])
    ref_targets = targets if targets.dtype.kind == "i" else targets.astype(np.float64)
    want = getattr(REFERENCE, kernel)(logits.astype(np.float64), ref_targets,
                                      np.empty(logits.shape), want_stats, 0.1,
                                      row_weight=weights.astype(np.float64))
    got_stats = cupy.asarray(np.array([0.5, 1.0]))
    got = getattr(cupy, kernel)(cupy.asarray(logits), cupy.asarray(targets),
                                cupy.empty(logits.shape, dtype), got_stats, 0.1,
                                row_weight=cupy.asarray(weights))
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cupy.to_numpy(got), want, **tol)
    np.testing.assert_allclose(cupy.to_numpy(got_stats), want_stats, rtol=tol["rtol"])


def test_a_failing_probe_makes_cupy_unavailable_and_auto_falls_back(monkeypatch):
    # bug 7: auto took cupy whenever a device was counted, then crashed compiling without headers
    def no_headers(*args):
        raise RuntimeError("Failed to find CUDA headers")

    monkeypatch.delenv("FASTFNN_BACKEND", raising=False)
    monkeypatch.setattr(cupy_backend, "_kernel", no_headers)
    cupy_backend._probe.cache_clear()
    try:
        ok, reason = cupy_backend.CupyBackend.availability()
        assert not ok
        assert "probe kernel failed (RuntimeError: Failed to find CUDA headers)" in reason
        assert ("compiles with g++" if cupy_backend.EMULATED else "[ctk] extra") in reason
        assert backends.available_backends()["cupy"] == reason
        assert backends.resolve_backend_name("auto") != "cupy"
    finally:
        monkeypatch.undo()
        cupy_backend._probe.cache_clear()
    assert cupy_backend.CupyBackend.availability() == (True, "")


def test_a_model_trained_here_loads_and_predicts_on_numpy(tmp_path):
    from fastfnn import FastFNN

    from .conftest import blobs

    X, y = blobs(n=120)
    model = FastFNN(hidden_layer_sizes=(8,), max_iter=3, batch_size=16, backend="cupy",
                    random_state=0).fit(X, y)
    model.save(tmp_path / "gpu.npz")
    loaded = FastFNN.load(tmp_path / "gpu.npz")
    loaded.set_params(backend="numpy")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
