"""The estimator's schedules, dropout, image shifts and label smoothing, as the trainer hands them to
the kernels (EpochJob): defaults change nothing, a seed fixes the noise, predict draws none, and
settings that do not fit the network, data, output or solver are refused."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor
from fastfnn.backends import get_backend
from fastfnn.schedules import epoch_rates

from .conftest import blobs


def _images(n=120, side=6, seed=0):
    """Tiny uint8 "images" (n, side * side) of 3 classes, and their labels."""
    X, y = blobs(n, side * side, 3, seed)
    return np.clip(X * 40 + 128, 0, 255).astype(np.uint8), y


def _weights(model):
    return [w.copy() for w in (*model.coefs_, *model.intercepts_)]


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(_weights(a), _weights(b)))


@pytest.fixture
def jobs(monkeypatch):
    """The EpochJobs the numpy backend is given, in order."""
    backend_type = type(get_backend("numpy"))
    seen, run = [], backend_type.run_epoch

    def record(self, job):
        seen.append(job)
        return run(self, job)

    monkeypatch.setattr(backend_type, "run_epoch", record)
    return seen


def test_defaults_pass_no_schedule_noise_or_smoothing(jobs):
    X, y = _images()
    FastFNN((8,), max_iter=2, random_state=0, backend="numpy").fit(X, y)
    assert len(jobs) == 2
    for job in jobs:
        assert (job.step_learning_rates, job.dropout, job.noise_seed, job.augment_shift,
                job.image_shape, job.label_smoothing) == (None, None, 0, 0, None, 0.0)


def test_schedule_rates_reach_the_kernels(jobs):
    X, y = _images()
    model = FastFNN((8,), max_iter=3, batch_size=50, learning_rate="cosine", lr_warmup=0.5,
                    learning_rate_init=0.01, random_state=0, backend="numpy").fit(X, y)
    assert model.n_iter_ == 3
    for epoch, job in enumerate(jobs):
        expected = epoch_rates("cosine", epoch, 3, 3, 0.01, warmup=0.5)
        assert np.array_equal(job.step_learning_rates, expected)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_flat_step_schedule_is_the_constant_rate_bitwise(backend, solver):
    X, y = _images()
    common = dict(max_iter=3, solver=solver, random_state=0, backend=backend,
                  learning_rate_init=0.01)
    constant = FastFNN((8,), **common).fit(X, y)
    flat = FastFNN((8,), learning_rate="step", lr_gamma=1.0, **common).fit(X, y)
    assert _same(constant, flat)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_noise_is_fixed_by_the_seed_and_absent_from_predict(backend):
    X, y = _images()
    params = dict(max_iter=3, random_state=0, backend=backend, dropout=0.3, input_dropout=0.1,
                  augment_shift=1, label_smoothing=0.1, learning_rate="onecycle",
                  learning_rate_init=0.01)
    a = FastFNN((16,), **params).fit(X, y)
    b = FastFNN((16,), **params).fit(X, y)
    other = FastFNN((16,), **{**params, "random_state": 1}).fit(X, y)
    plain = FastFNN((16,), **{**params, "dropout": 0.0, "input_dropout": 0.0,
                              "augment_shift": 0}).fit(X, y)
    assert _same(a, b) and not _same(a, other) and not _same(a, plain)
    probabilities = a.predict_proba(X)
    assert np.array_equal(probabilities, a.predict_proba(X))
    # predict is the noiseless forward pass: the same weights without noise settings predict alike
    a.set_params(dropout=0.0, input_dropout=0.0, augment_shift=0)
    assert np.array_equal(probabilities, a.predict_proba(X))


def test_each_noise_and_the_smoothing_change_the_model(jobs):
    X, y = _images()
    base = dict(max_iter=2, random_state=0, backend="numpy")
    plain = FastFNN((8, 8), **base).fit(X, y)
    for change in ({"dropout": (0.0, 0.5)}, {"input_dropout": 0.2}, {"augment_shift": 2},
                   {"label_smoothing": 0.2}):
        assert not _same(plain, FastFNN((8, 8), **base, **change).fit(X, y)), change
    assert jobs[-1].label_smoothing == 0.2


def test_dropout_rates_per_layer_input(jobs):
    X, y = _images()
    FastFNN((8, 8), max_iter=1, dropout=(0.1, 0.2), input_dropout=0.3,
            backend="numpy").fit(X, y)
    FastFNN((8, 8), max_iter=1, dropout=0.4, backend="numpy").fit(X, y)
    assert [job.dropout for job in jobs] == [(0.3, 0.1, 0.2), (0.0, 0.4, 0.4)]


def test_image_shape_is_square_by_default_or_given(jobs):
    X, y = _images()
    FastFNN((8,), max_iter=1, augment_shift=1, backend="numpy").fit(X, y)
    FastFNN((8,), max_iter=1, augment_shift=2, image_shape=(4, 9), backend="numpy").fit(X, y)
    assert [(job.augment_shift, job.image_shape) for job in jobs] == [(1, (6, 6)), (2, (4, 9))]


@pytest.mark.parametrize("params, fit_with, message", [
    ({"dropout": (0.1, 0.2)}, None, "2 rates for 1 hidden layers"),
    ({"augment_shift": 1}, "wide", "not a square image"),
    ({"augment_shift": 1, "image_shape": (5, 5)}, None, "25 pixels; X has 36"),
    ({"label_smoothing": 0.1}, "multilabel", "for the softmax output"),
    ({"dropout": 0.1, "solver": "lbfgs"}, None, "stochastic solvers"),
    ({"learning_rate": "onecycle"}, "partial_fit", "partial_fit has none"),
    ({"lr_warmup": 1.0}, None, "step and cosine"),
    ({"lr_warmup": 1.0, "learning_rate": "onecycle"}, None, "step and cosine"),
])
def test_settings_that_do_not_fit_are_refused_and_change_nothing(params, fit_with, message):
    X, y = _images()
    model = FastFNN((8,), max_iter=1, backend="numpy", **params)
    with pytest.raises(ValueError, match=message):
        if fit_with == "wide":
            model.fit(np.hstack([X, X[:, :1]]), y)
        elif fit_with == "multilabel":
            model.fit(X, np.eye(3, dtype=int)[y])
        elif fit_with == "partial_fit":
            model.partial_fit(X, y, classes=[0, 1, 2])
        else:
            model.fit(X, y)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize("name, value, error", [
    ("dropout", 1.0, ValueError), ("dropout", "0.2", TypeError),
    ("dropout", (0.1, -0.1), ValueError),
    ("input_dropout", 1.0, ValueError), ("label_smoothing", -0.1, ValueError),
    ("augment_shift", -1, ValueError), ("image_shape", (28,), ValueError),
    ("image_shape", (28, 0), ValueError), ("learning_rate", "cyclic", ValueError),
    ("lr_interval", "batch", ValueError), ("lr_gamma", 0.0, ValueError),
    ("lr_step_size", 0, ValueError), ("lr_warmup", -1.0, ValueError),
])
def test_bad_values_are_refused_naming_the_parameter(name, value, error):
    X, y = _images()
    with pytest.raises(error, match=name):
        FastFNN((8,), max_iter=1, backend="numpy", **{name: value}).fit(X, y)


def test_the_regressor_takes_dropout_and_schedules_but_no_label_smoothing():
    X, y = blobs(100, 4, 2)
    model = FastFNNRegressor(hidden_layer_sizes=(8,), max_iter=2, dropout=0.2,
                             learning_rate="cosine",
                             random_state=0, backend="numpy").fit(X, y.astype(float))
    assert model.n_iter_ == 2
    with pytest.raises(TypeError):
        FastFNNRegressor(label_smoothing=0.1)


def test_a_schedule_on_the_numba_fused_epoch_matches_the_composed_one():
    X, y = _images()
    params = dict(max_iter=2, random_state=0, learning_rate="onecycle", learning_rate_init=0.01,
                  dropout=0.2, label_smoothing=0.1, dtype="float64")
    numpy_model = FastFNN((8,), backend="numpy", **params).fit(X, y)
    numba_model = FastFNN((8,), backend="numba", **params).fit(X, y)
    for u, v in zip(_weights(numpy_model), _weights(numba_model)):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12)


def test_progress_reporting_does_not_change_a_noisy_model():
    """A noisy epoch reported in parts draws the whole epoch's noise (each part's rows keep their
    epoch positions, EpochJob.noise_row0): the model does not depend on the progress bar."""
    from fastfnn.network import init_params
    from fastfnn.trainer import TrainConfig, TrainState, new_opt_state, train

    backend = get_backend("numpy")
    X, y = _images()
    config = TrainConfig(activation="relu", output="softmax", solver="adam",
                         learning_rate_init=0.01, batch_size=10, max_iter=2,
                         dropout=(0.0, 0.3), augment_shift=1, image_shape=(6, 6))
    models, calls = [], []
    for on_progress in (None, lambda *args: calls.append(args)):
        coefs, intercepts = init_params((36, 8, 3), "he", "relu", np.float32,
                                        np.random.default_rng(0))
        coefs = [backend.asarray(w) for w in coefs]
        intercepts = [backend.asarray(b) for b in intercepts]
        state = TrainState(coefs, intercepts, new_opt_state(backend, "adam", coefs, intercepts))
        train(backend, config, backend.asarray(X), backend.asarray(y), state,
              np.random.default_rng(1), x_scale=1 / 255, on_progress=on_progress)
        models.append([backend.to_numpy(w) for w in (*state.coefs, *state.intercepts)])
    assert len(calls) == 24  # in parts: 12 steps an epoch, one report each at this size
    assert all(np.array_equal(u, v) for u, v in zip(*models))
