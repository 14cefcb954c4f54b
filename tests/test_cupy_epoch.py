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
         batch_size=32, n=100, shuffled=True, label_dtype=np.int64, seed=0):
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
    return EpochJob(
        X=backend.asarray(X), targets=backend.asarray(rng.integers(0, sizes[-1], n), label_dtype),
        order=backend.asarray(rng.permutation(n)) if shuffled else None, batch_size=batch_size,
        coefs=coefs, intercepts=intercepts, activation=activation, output="softmax",
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


@pytest.mark.parametrize("change", [
    {"output": "sigmoid"}, {"solver": "lbfgs"}, {"sample_weight": "ones"},
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
    epochs of different lengths through the trainer, syncs per epoch as the trainer reads."""
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
        cupy_emulation.counters.reset()
        runner.run(rng)
        assert runner.path == "fused"
        counts[n // 16] = cupy_emulation.counters.snapshot()
    (l10, a10, s10), (l20, a20, s20) = counts[10], counts[20]
    assert (l20 - l10) / 10 <= BUDGET_LAUNCHES_PER_STEP
    assert a20 == a10  # nothing per step (the epoch's one allocation is the trainer's order)
    assert max(s10, s20) <= BUDGET_SYNCS_PER_EPOCH
