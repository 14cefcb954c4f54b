"""Finite-difference checks of the analytic gradients, in float64, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.network import Workspace, backward, forward, init_params, output_loss

ACTIVATIONS = ["identity", "relu", "sigmoid", "tanh"]
N_IN, N_OUT = 5, 3


def _net(hidden, activation, seed):
    rng = np.random.default_rng(seed)
    coefs, intercepts = init_params((N_IN, *hidden, N_OUT), 0.7, activation, np.float64, rng)
    for b in intercepts:
        b[:] = rng.standard_normal(b.shape) * 0.3
    return coefs, intercepts


def _targets(output, m, rng):
    if output == "sigmoid-multilabel":
        return (rng.random((m, N_OUT)) < 0.5).astype(np.float64)
    return rng.integers(0, N_OUT, m).astype(np.int64)


def _mean_loss(backend, coefs, intercepts, x, targets, activation, output, ws):
    stats = backend.zeros((2,), np.float64)
    logits = forward(backend, coefs, intercepts, x, ws.acts, activation)
    output_loss(backend, output, logits, targets, stats, 0.0)
    return float(backend.to_numpy(stats)[0]) / x.shape[0]


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "sigmoid-multilabel"])
@pytest.mark.parametrize("m", [1, 6])
def test_gradients_match_finite_differences(backend, depth, activation, output, m):
    hidden = (4, 6, 3)[:depth]
    rng = np.random.default_rng(depth * 100 + m)
    host_coefs, host_intercepts = _net(hidden, activation, seed=depth + 7 * m)
    x_host = rng.standard_normal((m, N_IN))
    t_host = _targets(output, m, rng)
    kernel_output = "softmax" if output == "softmax" else "sigmoid"
    coefs = [backend.asarray(w) for w in host_coefs]
    intercepts = [backend.asarray(b) for b in host_intercepts]
    x, targets = backend.asarray(x_host), backend.asarray(t_host)
    ws = Workspace(backend, (N_IN, *hidden, N_OUT), m, np.float64, t_host.shape[1:], t_host.dtype)

    logits = forward(backend, coefs, intercepts, x, ws.acts, activation)
    output_loss(backend, kernel_output, logits, targets, ws.stats, 1.0 / m)
    backward(backend, coefs, x, ws.acts, ws.deltas, ws.coef_grads, ws.intercept_grads, activation)

    step = 1e-6
    params = [(p, g) for p, g in zip(coefs, ws.coef_grads)] + \
             [(p, g) for p, g in zip(intercepts, ws.intercept_grads)]
    for param, grad in params:
        host_param = backend.to_numpy(param).copy()
        numeric = np.empty_like(host_param)
        for index in np.ndindex(host_param.shape):
            losses = []
            for delta in (step, -step):
                bumped = host_param.copy()
                bumped[index] += delta
                param[...] = backend.asarray(bumped)
                losses.append(_mean_loss(backend, coefs, intercepts, x, targets, activation,
                                         kernel_output, ws))
            numeric[index] = (losses[0] - losses[1]) / (2 * step)
        param[...] = backend.asarray(host_param)
        # ReLU's kink is not differentiable; the random inputs keep every unit away from 0 by far
        # more than the step, so the check is still exact there.
        np.testing.assert_allclose(backend.to_numpy(grad), numeric, rtol=1e-5, atol=1e-8)
