"""The fitted state: what it derives from its fields, and the optimizer groups it expects."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.backends import get_backend
from fastfnn.params import defaults
from fastfnn.state import FittedState, OptimizerState
from fastfnn.trainer import HISTORY_KEYS, new_opt_state


def small_state(output="softmax", epochs=3):
    sizes = (4, 6, 3)
    return FittedState(
        params=defaults(), coefs=[np.zeros((a, b), np.float32) for a, b in zip(sizes, sizes[1:])],
        intercepts=[np.zeros(b, np.float32) for b in sizes[1:]], classes=np.array([0, 1, 2]),
        activation="relu", output=output, multilabel=False,
        history={k: [0.5] * epochs for k in HISTORY_KEYS}, t=30 * epochs, best_loss=0.5,
        validation_scores=None, best_validation_score=None, optimizer=None)


def test_sizes_and_counts_follow_from_the_arrays_and_history():
    state = small_state(epochs=3)
    assert state.layer_sizes == (4, 6, 3)
    assert (state.n_features_in, state.n_layers, state.n_outputs, state.n_iter) == (4, 3, 3, 3)


@pytest.mark.parametrize("output,name", [("softmax", "softmax"), ("sigmoid", "logistic")])
def test_out_activation_has_scikit_learns_name(output, name):
    assert small_state(output).out_activation == name


@pytest.mark.parametrize("solver", sorted(OptimizerState.GROUPS))
def test_optimizer_groups_match_the_trainers(solver):
    backend = get_backend("numpy")
    coefs, intercepts = [np.zeros((2, 3))], [np.zeros(3)]
    groups = new_opt_state(backend, solver, coefs, intercepts)
    assert len(groups) == OptimizerState.GROUPS[solver]
