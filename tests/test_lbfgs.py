"""Full-batch L-BFGS: the objective's gradient is its loss's, in chunks, with and without weights.

scikit-learn's squared error reports the loss averaged over the k outputs but takes the gradient of
their sum (its MLPRegressor does so, L-BFGS included): the gradient is k times the loss's there.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn import lbfgs
from fastfnn.backends import get_backend
from fastfnn.lbfgs import FullBatchObjective, pack
from fastfnn.network import init_params
from fastfnn.trainer import TrainConfig

from .conftest import blobs


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "squared_error", "poisson"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_gradient_is_the_losss_in_chunks(monkeypatch, output, weighted):
    monkeypatch.setattr(lbfgs, "EVAL_CHUNK", 7)  # several chunks, the last one short
    backend = get_backend("numpy")
    X, y = blobs(n=30, n_features=4)
    targets = y if output in ("softmax", "sigmoid") else \
        np.stack([y, X[:, 0] ** 2], axis=1).astype(np.float64) / 3
    n_out = 3 if output in ("softmax", "sigmoid") else 2
    coefs, intercepts = init_params((4, 5, n_out), "glorot", "tanh", np.float64,
                                    np.random.default_rng(0))
    config = TrainConfig(activation="tanh", output=output, solver="lbfgs",
                         learning_rate_init=0.001, batch_size=None,
                         alpha=0.0 if output == "squared_error" else 0.1)  # see the docstring
    weights = np.random.default_rng(1).uniform(0.2, 2.0, len(y)) if weighted else None
    objective = FullBatchObjective(backend, config, X, targets, [w.shape for w in coefs],
                                   np.float64, weights)
    start = pack(coefs, intercepts)
    _, grad = objective(start)
    grad_per_loss = n_out if output == "squared_error" else 1
    step = 1e-6
    for i in np.random.default_rng(2).choice(len(start), 12, replace=False):
        bump = np.zeros_like(start)
        bump[i] = step
        numeric = (objective(start + bump)[0] - objective(start - bump)[0]) / (2 * step)
        assert grad[i] == pytest.approx(grad_per_loss * numeric, rel=1e-5, abs=1e-8)
