"""The CuPy backend's fused epoch: the composed epoch's result, within the launch, allocation and
host-sync budgets (counted on the CUDA emulation)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fastfnn.backends import get_backend
from fastfnn.kernels import Backend, EpochJob, cupy_backend, cupy_epoch
from fastfnn.network import init_params

from .conftest import BACKEND_REPORT

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(bool(BACKEND_REPORT["cupy"]),
                                 reason=f"backend cupy unavailable here: {BACKEND_REPORT['cupy']}")]


def _job(backend, *, sizes=(30, 9, 5, 4), dtype=np.float64, solver="sgd", activation="tanh",
         batch_size=32, n=100, shuffled=True, label_dtype=np.int64, output="softmax",
         indicators=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, sizes[0])).astype(np.uint8)
    X[rng.random(X.shape) < 0.6] = 0
    x_scale = 1 / 255
    if not shuffled:
        X, x_scale = X.astype(dtype) / 255, 1.0
    coefs, intercepts = init_params(sizes, "xavier", activation, dtype, rng)
    coefs = [backend.asarray(w) for w in coefs]
    intercepts = [backend.asarray(b) for b in intercepts]
    opt_state = [[backend.asarray(rng.standard_normal(p.shape).astype(dtype) * 0.01)
                  for p in group] for group in (coefs, intercepts)]
    if solver == "adam":
        opt_state += [[backend.asarray(rng.random(p.shape).astype(dtype) * 0.01)
                       for p in group] for group in (coefs, intercepts)]
    targets = (rng.random((n, sizes[-1])) < 0.4).astype(dtype) if indicators \
        else rng.integers(0, sizes[-1], n).astype(label_dtype)
    return EpochJob(
        X=backend.asarray(X), targets=backend.asarray(targets),
        order=backend.asarray(rng.permutation(n)) if shuffled else None, batch_size=batch_size,
        coefs=coefs, intercepts=intercepts, activation=activation, output=output,
        solver=solver, opt_state=opt_state, learning_rate=0.05 if solver == "sgd" else 0.01,
        momentum=0.9, nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
        alpha=1e-3, t=3, x_scale=x_scale, stats=backend.asarray(np.array([0.5, 1.0])))


def _copy(backend, job):
    arrays = lambda group: [backend.asarray(a) for a in group]  # noqa: E731
    return dataclasses.replace(job, coefs=arrays(job.coefs), intercepts=arrays(job.intercepts),
                               opt_state=[arrays(g) for g in job.opt_state],
                               stats=backend.asarray(job.stats))


def _state(backend, job):
    arrays = [*job.coefs, *job.intercepts, *(a for g in job.opt_state for a in g), job.stats]
    return [backend.to_numpy(a) for a in arrays]


@pytest.mark.parametrize("case", [
    {}, {"solver": "adam"}, {"activation": "relu", "dtype": np.float32},
    {"activation": "sigmoid", "batch_size": 7}, {"sizes": (30, 4)}, {"shuffled": False},
    {"label_dtype": np.int32, "batch_size": 1}, {"batch_size": 1000},
    {"sizes": (30, 20, 17, 18, 3), "activation": "identity", "solver": "adam"},
    {"output": "sigmoid"}, {"output": "sigmoid", "label_dtype": np.int32, "solver": "adam"},
    {"output": "sigmoid", "indicators": True}, {"output": "sigmoid", "indicators": True,
                                                "shuffled": False, "dtype": np.float32},
], ids=str)
def test_fused_epoch_computes_what_the_composed_epoch_computes(case):
    backend = get_backend("cupy")
    fused = _job(backend, **case)
    composed = _copy(backend, fused)
    assert cupy_epoch.covers(fused)
    assert backend.run_epoch(fused) == "fused"
    assert Backend.run_epoch(backend, composed) == "composed"
    assert fused.t == composed.t
    tol = (dict(rtol=2e-5, atol=2e-6) if case.get("dtype") == np.float32
           else dict(rtol=1e-12, atol=1e-14))
    for got, want in zip(_state(backend, fused), _state(backend, composed)):
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("case", [{}, {"solver": "adam", "dtype": np.float32},
                                  {"shuffled": False, "batch_size": 30}], ids=str)
def test_later_epochs_replay_a_captured_graph_with_the_same_results(case):
    """Epoch 1 runs launch by launch, epoch 2 is captured, epoch 3 replays the graph: each ends
    where the composed epoch does (new row orders and Adam's advancing t included)."""
    from fastfnn.kernels.composed import Workspace

    backend = get_backend("cupy")
    fused = _job(backend, **case)
    composed = _copy(backend, fused)
    fused.workspace = Workspace.for_layers(backend, fused.coefs, fused.batch_size, fused.targets,
                                           gathered=fused.order is not None)
    rng = np.random.default_rng(7)
    modes = []
    for _ in range(3):
        if fused.order is not None:
            order = backend.asarray(rng.permutation(fused.order.shape[0]))
            fused.order, composed.order = order, backend.asarray(order)
        modes.append(cupy_epoch.fused_epoch(backend, fused, cupy_backend._kernel,
                                            cupy_backend._NULL))
        Backend.run_epoch(backend, composed)
    assert modes == ["launches", "graph", "graph"]
    assert fused.t == composed.t
    tol = (dict(rtol=5e-5, atol=5e-6) if case.get("dtype") == np.float32
           else dict(rtol=1e-12, atol=1e-14))
    for got, want in zip(_state(backend, fused), _state(backend, composed)):
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.skipif(not cupy_backend.EMULATED, reason="the refusal is staged on the emulation")
def test_a_refused_capture_leaves_epochs_launch_by_launch(monkeypatch):
    from fastfnn.kernels.composed import Workspace

    run = cupy_epoch._Steps.run

    def run_with_an_array_operation(self, step, start, m):
        self.job.stats + 0  # not a raw kernel: the emulation refuses it during a capture
        return run(self, step, start, m)

    monkeypatch.setattr(cupy_epoch._Steps, "run", run_with_an_array_operation)
    backend = get_backend("cupy")
    fused = _job(backend)
    composed = _copy(backend, fused)
    fused.workspace = Workspace.for_layers(backend, fused.coefs, fused.batch_size, fused.targets)
    modes = []
    for _ in range(3):
        modes.append(cupy_epoch.fused_epoch(backend, fused, cupy_backend._kernel,
                                            cupy_backend._NULL))
        Backend.run_epoch(backend, composed)
    assert modes == ["launches"] * 3
    assert "array operation ran during a stream capture" in \
        cupy_epoch._buffers[fused.workspace].capture_error
    for got, want in zip(_state(backend, fused), _state(backend, composed)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("change", [
    {"output": "squared_error"}, {"solver": "lbfgs"}, {"sample_weight": "ones"},
])
def test_what_it_does_not_cover_runs_composed(change):
    backend = get_backend("cupy")
    job = _job(backend)
    if change.get("sample_weight"):
        change = {"sample_weight": backend.asarray(np.ones(100))}
    job = dataclasses.replace(job, **change)
    assert not cupy_epoch.covers(job)


BUDGET_LAUNCHES_PER_STEP = 12
BUDGET_SYNCS_PER_EPOCH = 2


@pytest.mark.skipif(not cupy_backend.EMULATED, reason="counting needs the CUDA emulation")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_a_fitted_epoch_keeps_the_budgets(solver):
    """784-128-64-10 shape in miniature (3 layers): launches and allocations per step from two
    epochs of different lengths through the trainer (replayed graphs), syncs per epoch as the
    trainer reads."""
    from fastfnn.kernels import cupy_emulation
    from fastfnn.trainer import EpochRunner, TrainConfig, TrainState, new_opt_state

    backend = get_backend("cupy")
    rng = np.random.default_rng(0)
    counts = {}
    for n in (160, 320):
        X = rng.integers(0, 256, (n, 24)).astype(np.uint8)
        coefs, intercepts = init_params((24, 12, 8, 10), "he", "relu", np.float32, rng)
        coefs = [backend.asarray(w) for w in coefs]
        intercepts = [backend.asarray(b) for b in intercepts]
        state = TrainState(coefs, intercepts, new_opt_state(backend, solver, coefs, intercepts))
        config = TrainConfig(activation="relu", output="softmax", solver=solver,
                             learning_rate_init=0.01, batch_size=16, alpha=1e-4)
        runner = EpochRunner(backend, config, backend.asarray(X),
                             backend.asarray(rng.integers(0, 10, n)), state, x_scale=1 / 255)
        runner.run(rng)  # the first epoch allocates the fused buffers
        runner.run(rng)  # the second is captured as a graph
        cupy_emulation.counters.reset()
        runner.run(rng)
        assert runner.path == "fused"
        counts[n // 16] = cupy_emulation.counters.snapshot()
    (l10, a10, s10), (l20, a20, s20) = counts[10], counts[20]
    assert (l20 - l10) / 10 <= BUDGET_LAUNCHES_PER_STEP
    assert l20 == l10  # the epoch is one graph launch whatever its length
    assert a20 == a10  # nothing per step (the epoch's one allocation is the trainer's order)
    assert max(s10, s20) <= BUDGET_SYNCS_PER_EPOCH


@pytest.mark.parametrize("per", [1, 2, 4])
@pytest.mark.parametrize("kind", ["forward", "back_delta", "back_weight"])
def test_gemm_tiles_and_epilogues(per, kind):
    backend = get_backend("cupy")
    rng = np.random.default_rng(per)
    m, n, k = 37, 70, 45
    null = cupy_backend._NULL
    out = np.full((m, n), np.nan)
    row_out = np.full(n, np.nan)
    bias, aux = rng.standard_normal(n), rng.random((m, n))
    if kind == "forward":  # relu(a @ b + bias)
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        want = np.maximum(a @ b + bias, 0)
        extra = (-1, null, backend.asarray(bias), null, np.int32(0), np.int32(1))
        template, rows = ("false", "false", "1"), m
    elif kind == "back_delta":  # (a @ b.T) * sigmoid'(aux)
        a, b = rng.standard_normal((m, k)), rng.standard_normal((n, k))
        want = (a @ b.T) * aux * (1 - aux)
        extra = (-1, null, null, backend.asarray(aux), np.int32(n), np.int32(2))
        template, rows = ("false", "true", "2"), m
    else:  # [a.T; ones] @ b: the weight gradient and, from the row of ones, the bias gradient
        a, b = rng.standard_normal((k, m - 1)), rng.standard_normal((k, n))
        want = a.T @ b
        extra = (m - 1, backend.asarray(row_out), null, null, np.int32(0), np.int32(0))
        template, rows = ("true", "false", "0"), m
    c_rows = rows - 1 if kind == "back_weight" else rows  # the ones row goes to row_out
    da, db, dout = backend.asarray(a), backend.asarray(b), backend.asarray(out[:c_rows])
    tile = 16 * per
    kernel = cupy_backend._kernel("gemm", np.float64, *template, str(per))
    kernel(((n + tile - 1) // tile, (rows + tile - 1) // tile), (16, 16),
           (da, np.int32(a.shape[1]), db, np.int32(b.shape[1]), dout, np.int32(n), np.int32(rows),
            np.int32(n), np.int32(k), np.int32(extra[0]), *extra[1:]))
    np.testing.assert_allclose(backend.to_numpy(dout), want, rtol=1e-12, atol=1e-12)
    if kind == "back_weight":
        np.testing.assert_allclose(backend.to_numpy(extra[1]), b.sum(axis=0), rtol=1e-12)


def test_gemm_tiles_grow_only_while_blocks_stay_plentiful():
    assert cupy_epoch.gemm_per(128, 128) == 1     # 784-128-64-10, batch 128, first layer
    assert cupy_epoch.gemm_per(1024, 128) == 2    # batch 1024
    assert cupy_epoch.gemm_per(60000, 128) == 4   # full batch
