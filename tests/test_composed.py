"""The composed epoch and its layer passes: forward against plain NumPy, finite-difference checks of
the analytic gradients in float64 on every backend (every output, with and without row weights),
and whole epochs (slices vs gathers, stats, sample weights); dropout, label smoothing, schedules
within an epoch and image shifts."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.backends import get_backend
from fastfnn.kernels import EpochJob, noise
from fastfnn.kernels.composed import Workspace, backward, composed_epoch, forward, output_loss
from fastfnn.network import init_params
from fastfnn.trainer import TrainState, loss_and_correct, new_opt_state

from .conftest import blobs

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
    if output == "squared_error":
        return rng.standard_normal((m, N_OUT))
    if output == "poisson":
        return rng.poisson(1.5, (m, N_OUT)).astype(np.float64)
    return rng.integers(0, N_OUT, m).astype(np.int64)


def _mean_loss(backend, coefs, intercepts, x, targets, activation, output, ws, row_weight):
    """The loss the gradients are of: sum_i w_i loss_i / sum_i w_i (w = 1 without weights)."""
    stats = backend.zeros((2,), np.float64)
    logits = forward(backend, coefs, intercepts, x, ws.acts, activation)
    output_loss(backend, output, logits, targets, stats, 0.0, row_weight)
    total = x.shape[0] if row_weight is None else float(backend.to_numpy(row_weight).sum())
    return float(backend.to_numpy(stats)[0]) / total


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "sigmoid-multilabel", "squared_error",
                                    "poisson"])
@pytest.mark.parametrize("m, weighted", [(1, False), (6, False), (6, True)])
def test_gradients_match_finite_differences(backend, depth, activation, output, m, weighted):
    hidden = (4, 6, 3)[:depth]
    rng = np.random.default_rng(depth * 100 + m)
    host_coefs, host_intercepts = _net(hidden, activation, seed=depth + 7 * m)
    x_host = rng.standard_normal((m, N_IN))
    t_host = _targets(output, m, rng)
    kernel_output = "sigmoid" if output == "sigmoid-multilabel" else output
    coefs = [backend.asarray(w) for w in host_coefs]
    intercepts = [backend.asarray(b) for b in host_intercepts]
    x, targets = backend.asarray(x_host), backend.asarray(t_host)
    row_weight = backend.asarray(rng.uniform(0.1, 3.0, m)) if weighted else None
    scale = 1.0 / (m if row_weight is None else float(backend.to_numpy(row_weight).sum()))
    ws = Workspace(backend, (N_IN, *hidden, N_OUT), m, np.float64, t_host.shape[1:], t_host.dtype)

    logits = forward(backend, coefs, intercepts, x, ws.acts, activation)
    output_loss(backend, kernel_output, logits, targets, ws.stats, scale, row_weight)
    backward(backend, coefs, x, ws.acts, ws.deltas, ws.coef_grads, ws.intercept_grads, activation)
    # scikit-learn's squared loss averages over the outputs but its gradient does not: the
    # gradient is N_OUT times the derivative of the loss it reports
    loss_scale = N_OUT if output == "squared_error" else 1

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
                                         kernel_output, ws, row_weight))
            numeric[index] = (losses[0] - losses[1]) / (2 * step) * loss_scale
        param[...] = backend.asarray(host_param)
        # ReLU's kink is not differentiable; the random inputs keep every unit away from 0 by far
        # more than the step, so the check is still exact there.
        np.testing.assert_allclose(backend.to_numpy(grad), numeric, rtol=1e-5, atol=1e-8)


def test_forward_matches_plain_numpy():
    backend = get_backend("numpy")
    rng = np.random.default_rng(3)
    coefs, intercepts = init_params((6, 5, 4, 3), "he", "tanh", np.float64, rng)
    x = rng.standard_normal((7, 6))
    ws = Workspace(backend, (6, 5, 4, 3), 10, np.float64)
    got = forward(backend, coefs, intercepts, x, ws.acts, "tanh")
    a = x
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        a = a @ w + b
        if i < 2:
            a = np.tanh(a)
    np.testing.assert_allclose(got, a, rtol=1e-12)


def _state(backend, sizes, solver="sgd", dtype=np.float64, seed=0):
    coefs, intercepts = init_params(sizes, "he", "relu", dtype, np.random.default_rng(seed))
    coefs = [backend.asarray(w) for w in coefs]
    intercepts = [backend.asarray(b) for b in intercepts]
    return TrainState(coefs, intercepts, new_opt_state(backend, solver, coefs, intercepts))


def _job(backend, state, X, y, order, batch_size, solver="sgd", sample_weight=None):
    return EpochJob(X=X, targets=y, order=order, batch_size=batch_size, coefs=state.coefs,
                    intercepts=state.intercepts, activation="relu", output="softmax",
                    solver=solver, opt_state=state.opt_state, learning_rate=0.05, momentum=0.9,
                    nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=1e-3, t=0,
                    x_scale=1.0, stats=backend.zeros((2,), np.float64),
                    sample_weight=sample_weight)


@pytest.mark.parametrize("batch_size", [1, 16, 100])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_slicing_in_order_equals_gathering_the_identity_order(batch_size, solver):
    backend = get_backend("numpy")
    X, y = blobs(n=100)
    a, b = (_state(backend, (8, 6, 3), solver) for _ in range(2))
    ja = _job(backend, a, X, y, None, batch_size, solver)
    jb = _job(backend, b, X, y, np.arange(100), batch_size, solver)
    composed_epoch(backend, ja)
    composed_epoch(backend, jb)
    assert ja.t == jb.t == (100 + batch_size - 1) // batch_size * (solver == "adam")
    np.testing.assert_array_equal(ja.stats, jb.stats)
    for wa, wb in zip(a.coefs + a.intercepts, b.coefs + b.intercepts):
        np.testing.assert_array_equal(wa, wb)


def test_epoch_stats_count_loss_and_correct_rows():
    backend = get_backend("numpy")
    X, y = blobs(n=50)
    state = _state(backend, (8, 3))
    job = _job(backend, state, X, y, np.arange(50), 50)
    before = loss_and_correct(backend, state.coefs, state.intercepts, X, y, "relu", "softmax", 1.0)
    composed_epoch(backend, job)  # one full-batch step: the stats are those of the start weights
    np.testing.assert_allclose(job.stats, before, rtol=1e-12)


@pytest.mark.parametrize("order", [None, "shuffled"])
def test_unit_sample_weights_change_nothing(order):
    backend = get_backend("numpy")
    X, y = blobs(n=100)
    rows = None if order is None else np.random.default_rng(1).permutation(100)
    a, b = (_state(backend, (8, 6, 3), "adam") for _ in range(2))
    ja = _job(backend, a, X, y, rows, 32, "adam")
    jb = _job(backend, b, X, y, rows, 32, "adam", sample_weight=np.ones(100))
    composed_epoch(backend, ja)
    composed_epoch(backend, jb)
    np.testing.assert_array_equal(ja.stats, jb.stats)
    for wa, wb in zip(a.coefs + a.intercepts, b.coefs + b.intercepts):
        np.testing.assert_array_equal(wa, wb)


def test_a_weighted_step_is_scikit_learns():
    """One SGD step with sample weights, against the step written out from scikit-learn's
    definition: output deltas times w_i, gradients over S = sum(w), L2 decay alpha / S, and the
    loss stat the weighted mean loss times the rows."""
    backend = get_backend("numpy")
    X, y = blobs(n=40)
    w = np.random.default_rng(2).uniform(0.2, 4.0, 40)
    state = _state(backend, (8, 3), "sgd")
    W, b = state.coefs[0].copy(), state.intercepts[0].copy()
    job = _job(backend, state, X, y, None, 40, sample_weight=w)
    job.momentum = 0.0
    composed_epoch(backend, job)

    z = X @ W + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(40)
    loss = -np.log(p[rows, y])
    delta = p.copy()
    delta[rows, y] -= 1
    delta *= w[:, None]
    S = w.sum()
    grad_W = (X.T @ delta + job.alpha * W) / S
    grad_b = delta.sum(axis=0) / S
    np.testing.assert_allclose(state.coefs[0], W - 0.05 * grad_W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(state.intercepts[0], b - 0.05 * grad_b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(job.stats[0], np.average(loss, weights=w) * 40, rtol=1e-12)


@pytest.mark.parametrize("output", ["squared_error", "poisson"])
def test_regression_outputs_train_in_an_epoch(output):
    backend = get_backend("numpy")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((64, 8))
    targets = _targets(output, 64, rng)[:, :3]
    state = _state(backend, (8, 6, 3), "adam")
    job = _job(backend, state, X, targets, rng.permutation(64), 16, "adam")
    job.output = output
    composed_epoch(backend, job)
    assert np.isfinite(job.stats[0]) and job.stats[0] > 0
    assert job.stats[1] == 0  # no row of a regression counts as correct
    assert job.t == 4


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("rates", [(0.0, 0.5, 0.0), (0.3, 0.4, 0.25)])
def test_dropout_gradients_match_finite_differences(backend, activation, rates):
    """With this step's masks fixed, the gradients through dropout (input and hidden layers) are
    those of the loss of the masked network."""
    m, hidden = 6, (4, 6)
    rng = np.random.default_rng(11)
    host_coefs, host_intercepts = _net(hidden, activation, seed=3)
    coefs = [backend.asarray(w) for w in host_coefs]
    intercepts = [backend.asarray(b) for b in host_intercepts]
    x = backend.asarray(rng.standard_normal((m, N_IN)))
    targets = backend.asarray(rng.integers(0, N_OUT, m))
    ws = Workspace(backend, (N_IN, *hidden, N_OUT), m, np.float64, dropout=rates)
    for layer, rate in enumerate(rates):
        if rate:
            noise.dropout_scale(backend.xp, ws.masks[layer], 5, layer, 0, rate)

    def loss():
        stats = backend.zeros((2,), np.float64)
        output_loss(backend, "softmax", forward(backend, coefs, intercepts, x, ws.acts,
                                                activation, ws), targets, stats, 0.0)
        return float(backend.to_numpy(stats)[0]) / m

    logits = forward(backend, coefs, intercepts, x, ws.acts, activation, ws)
    output_loss(backend, "softmax", logits, targets, ws.stats, 1.0 / m)
    backward(backend, coefs, x, ws.acts, ws.deltas, ws.coef_grads, ws.intercept_grads, activation,
             ws)
    for param, grad in list(zip(coefs, ws.coef_grads)) + list(zip(intercepts, ws.intercept_grads)):
        host = backend.to_numpy(param).copy()
        numeric = np.empty_like(host)
        for index in np.ndindex(host.shape):
            sides = []
            for delta in (1e-6, -1e-6):
                bumped = host.copy()
                bumped[index] += delta
                param[...] = backend.asarray(bumped)
                sides.append(loss())
            numeric[index] = (sides[0] - sides[1]) / 2e-6
        param[...] = backend.asarray(host)
        np.testing.assert_allclose(backend.to_numpy(grad), numeric, rtol=1e-5, atol=1e-8)
    assert any(float(backend.to_numpy(g).std()) > 0 for g in ws.coef_grads)


@pytest.mark.parametrize("eps", [0.1, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_gradients_match_finite_differences(backend, eps, weighted):
    m = 5
    rng = np.random.default_rng(12)
    logits_host = rng.standard_normal((m, N_OUT)) * 2
    y = backend.asarray(rng.integers(0, N_OUT, m))
    w = backend.asarray(rng.uniform(0.2, 2.0, m)) if weighted else None
    grad = output_loss(backend, "softmax", backend.asarray(logits_host), y,
                       backend.zeros((2,), np.float64), 1.0, w, eps)

    def loss(z):
        stats = backend.zeros((2,), np.float64)
        output_loss(backend, "softmax", backend.asarray(z), y, stats, 0.0, w, eps)
        return float(backend.to_numpy(stats)[0])

    numeric = np.empty_like(logits_host)
    for index in np.ndindex(logits_host.shape):
        bumped = [logits_host.copy(), logits_host.copy()]
        bumped[0][index] += 1e-6
        bumped[1][index] -= 1e-6
        numeric[index] = (loss(bumped[0]) - loss(bumped[1])) / 2e-6
    np.testing.assert_allclose(backend.to_numpy(grad), numeric, rtol=1e-6, atol=1e-9)
    # the loss itself: cross-entropy against (1 - eps) onehot + eps / k
    p = np.exp(logits_host - logits_host.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    t = np.full((m, N_OUT), eps / N_OUT)
    t[np.arange(m), backend.to_numpy(y)] += 1 - eps
    row = -(t * np.log(p)).sum(axis=1)
    want = row.sum() if w is None else (row * backend.to_numpy(w)).sum()
    assert loss(logits_host) == pytest.approx(want, rel=1e-12)


def test_label_smoothing_is_the_softmax_outputs_only():
    backend = get_backend("numpy")
    with pytest.raises(ValueError, match="label smoothing applies to the softmax output"):
        output_loss(backend, "sigmoid", np.zeros((2, 3)), np.zeros(2, np.int64), np.zeros(2),
                    1.0, None, 0.1)


def test_step_learning_rates():
    """A schedule within the epoch: equal rates compute the constant epoch bitwise; any rates
    equal the epoch's steps run one by one at those rates."""
    backend = get_backend("numpy")
    X, y = blobs(n=90)
    order = np.random.default_rng(3).permutation(90)
    for solver in ("sgd", "adam"):
        a, b = (_state(backend, (8, 6, 3), solver) for _ in range(2))
        ja = _job(backend, a, X, y, order, 30, solver)
        jb = _job(backend, b, X, y, order, 30, solver)
        jb.step_learning_rates = np.full(3, ja.learning_rate)
        composed_epoch(backend, ja)
        composed_epoch(backend, jb)
        for wa, wb in zip(a.coefs + a.intercepts, b.coefs + b.intercepts):
            np.testing.assert_array_equal(wa, wb)

        rates = [0.1, 0.01, 0.05]
        c, d = (_state(backend, (8, 6, 3), solver) for _ in range(2))
        jc = _job(backend, c, X, y, order, 30, solver)
        jc.step_learning_rates = np.array(rates)
        composed_epoch(backend, jc)
        for s, rate in enumerate(rates):
            jd = _job(backend, d, X, y, order[30 * s:30 * s + 30], 30, solver)
            jd.learning_rate, jd.t = rate, s
            composed_epoch(backend, jd)
        for wc, wd in zip(c.coefs + c.intercepts, d.coefs + d.intercepts):
            np.testing.assert_array_equal(wc, wd)


def _image_epoch(seed, n, pixels):
    """(X, y, order): n uint8 images of ``pixels`` pixels, 3 classes, an epoch's row order."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, pixels)).astype(np.uint8), rng.integers(0, 3, n),
            rng.permutation(n))


def test_augmented_epoch_trains_on_the_shifted_images():
    """An epoch with shifts equals an epoch, in stored order, on the images shifted by the same
    draws (rows numbered by position in the epoch)."""
    backend = get_backend("numpy")
    X, y, order = _image_epoch(5, 48, 36)
    a, b = (_state(backend, (36, 8, 3), "adam") for _ in range(2))
    ja = _job(backend, a, X, y, order, 16, "adam")
    ja.x_scale, ja.augment_shift, ja.image_shape, ja.noise_seed = 1 / 255, 2, (6, 6), 9
    composed_epoch(backend, ja)
    gathered = X[order].astype(np.float64) * (1 / 255)
    dy, dx = noise.shifts(np, 9, 0, 48, 2)
    shifted = noise.shift_images(np, gathered, dy, dx, (6, 6), np.empty_like(gathered))
    jb = _job(backend, b, shifted, y[order], None, 16, "adam")
    composed_epoch(backend, jb)
    assert np.any(shifted != gathered)
    for wa, wb in zip(a.coefs + a.intercepts, b.coefs + b.intercepts):
        np.testing.assert_array_equal(wa, wb)


def test_an_epoch_in_parts_draws_the_whole_epochs_noise():
    """Parts of an epoch (progress reports, replays) numbered by noise_row0 train as the whole."""
    backend = get_backend("numpy")
    X, y, order = _image_epoch(6, 60, 16)
    whole, parts = (_state(backend, (16, 8, 3), "adam") for _ in range(2))
    noise_fields = dict(x_scale=1 / 255, augment_shift=1, image_shape=(4, 4), noise_seed=4,
                        dropout=(0.0, 0.3))
    job = _job(backend, whole, X, y, order, 10, "adam")
    job.__dict__.update(noise_fields)
    composed_epoch(backend, job)
    t = 0
    for start in (0, 20, 40):
        part = _job(backend, parts, X, y, order[start:start + 20], 10, "adam")
        part.__dict__.update(noise_fields, noise_row0=start, t=t)
        composed_epoch(backend, part)
        t = part.t
    for a, b in zip(whole.coefs + whole.intercepts, parts.coefs + parts.intercepts):
        np.testing.assert_array_equal(a, b)
