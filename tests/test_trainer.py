"""The one trainer: epochs, ordering, early stopping, divergence guard, evaluation helpers."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.backends import get_backend
from fastfnn.network import init_params
from fastfnn.trainer import (TrainConfig, TrainingDivergedError, TrainState, input_chunks,
                             new_opt_state, output_scores, train)

from .conftest import blobs


def _state(backend, sizes, solver="sgd", dtype=np.float64, seed=0):
    coefs, intercepts = init_params(sizes, "he", "relu", dtype, np.random.default_rng(seed))
    coefs = [backend.asarray(w) for w in coefs]
    intercepts = [backend.asarray(b) for b in intercepts]
    return TrainState(coefs, intercepts, new_opt_state(backend, solver, coefs, intercepts))


def test_history_has_one_record_per_epoch_and_stops_without_improvement():
    backend = get_backend("numpy")
    X, y = blobs(n=80)
    state = _state(backend, (8, 5, 3))
    config = TrainConfig(activation="relu", output="softmax", solver="sgd", learning_rate_init=0.05,
                         batch_size=16, max_iter=200, tol=10.0, n_iter_no_change=2)
    records = []
    train(backend, config, X, y, state, np.random.default_rng(0),
          on_epoch=lambda epoch, record: records.append((epoch, record)))
    # As in scikit-learn: the first epoch improves on an infinite best loss; with tol=10 no later
    # one counts as an improvement, and training stops once the count exceeds n_iter_no_change.
    assert len(state.history["loss"]) == 4 == len(records)
    assert [e for e, _ in records] == [0, 1, 2, 3]
    assert all(s > 0 for s in state.history["seconds"])
    assert state.history["val_loss"] == [None] * 4


def test_early_stopping_restores_the_best_epochs_weights():
    backend = get_backend("numpy")
    X, y = blobs(n=200, spread=3.0, seed=4)
    Xv, yv = blobs(n=100, spread=3.0, seed=4)
    state = _state(backend, (8, 32, 3))
    config = TrainConfig(activation="relu", output="softmax", solver="sgd", learning_rate_init=0.3,
                         batch_size=8, max_iter=30, tol=0.0, n_iter_no_change=4,
                         early_stopping=True)
    snapshots = []
    def validate(coefs, intercepts):
        outputs = output_scores(backend, coefs, intercepts, Xv, "relu", "softmax", 1.0)
        accuracy = float(np.mean(outputs.argmax(axis=1) == yv))
        return 0.0, accuracy, accuracy

    train(backend, config, X, y, state, np.random.default_rng(0), validate=validate,
          on_epoch=lambda e, r: snapshots.append([w.copy() for w in state.coefs]))
    scores = state.validation_scores
    assert scores == state.history["val_accuracy"]
    best = int(np.argmax(scores))
    for got, want in zip(state.coefs, snapshots[best]):
        np.testing.assert_array_equal(got, want)
    assert state.best_score == scores[best]


def test_divergence_raises_and_restores_the_last_good_weights():
    backend = get_backend("numpy")
    X, y = blobs(n=40)
    state = _state(backend, (8, 4, 3))
    good = [[w.copy() for w in state.coefs]]
    config = TrainConfig(activation="relu", output="softmax", solver="sgd", learning_rate_init=1e6,
                         batch_size=8, max_iter=50)
    with pytest.raises(TrainingDivergedError,
                       match=r"epoch (\d+), step (\d+):.*learning rate 1e\+06") as info:
        train(backend, config, X * 1e20, y, state, np.random.default_rng(0),
              on_epoch=lambda e, r: good.append([w.copy() for w in state.coefs]))
    assert f"epoch {len(good)}, step " in str(info.value)
    # what it is, and what scikit-learn's MLPs raise for non-finite weights
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, ValueError)
    for got, want in zip(state.coefs, good[-1]):
        np.testing.assert_array_equal(got, want)
    assert all(np.isfinite(w).all() for w in state.coefs)
    assert len(state.history["loss"]) == len(good) - 1


def test_divergence_names_the_first_bad_step():
    backend = get_backend("numpy")
    X, y = blobs(n=40)
    X[21] = 1e200  # row 21 (step 6 of 4-row steps) makes the weights overflow
    state = _state(backend, (8, 4, 3))
    config = TrainConfig(activation="relu", output="softmax", solver="sgd", learning_rate_init=0.1,
                         batch_size=4, max_iter=3, shuffle=False)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 6:"):
        train(backend, config, X, y, state, np.random.default_rng(0))


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_input_chunks_read_x_in_place_where_they_can(backend_name):
    """Evaluation and predictions read rows of a C-contiguous X of the compute dtype in place (no
    copy, X left as it is); other inputs are gathered, cast and scaled into one buffer."""
    backend = get_backend(backend_name)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4))
    chunks = list(input_chunks(backend, X, 1.0, np.float64, 6))
    assert [start for start, _ in chunks] == [0, 6]
    for start, rows in chunks:
        assert np.shares_memory(rows, X)
        np.testing.assert_array_equal(rows, X[start:start + 6])
    pixels = rng.integers(0, 256, (10, 4)).astype(np.uint8)
    cases = [(X, 0.5, X * 0.5), (X.astype(np.float32), 1.0, X.astype(np.float32)),
             (np.asfortranarray(X), 1.0, X), (pixels, 1 / 255, pixels * (1 / 255))]
    for source, scale, want in cases:
        (_, first), (start, rows) = input_chunks(backend, source, scale, np.float64, 6)
        assert start == 6 and np.shares_memory(rows, first)  # one buffer, reused
        assert not np.shares_memory(rows, source)
        np.testing.assert_allclose(rows, want[6:], rtol=1e-7)


def test_predictions_leave_x_uncopied_and_unchanged():
    """predict_proba reads a float64 X in place (readonly_array) and leaves it as it was."""
    from fastfnn import FastFNN
    X, y = blobs(200, 5, 3, seed=1)
    X = np.ascontiguousarray(X, dtype=np.float64)
    model = FastFNN((8,), max_iter=3, random_state=0, dtype="float64", backend="numpy").fit(X, y)
    before = X.copy()
    backend = get_backend("numpy")
    assert backend.readonly_array(X) is X
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    np.testing.assert_array_equal(X, before)
