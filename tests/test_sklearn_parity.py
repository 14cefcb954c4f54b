"""Parity with scikit-learn itself, in float64: the same starting weights, shuffle=False, a few
epochs (L-BFGS: a few iterations), then the weights agree to 1e-10 (relative).

Covered: sample weights (sgd and adam, several steps per epoch), every learning-rate schedule, the
regressor's two losses, class weights (as the sample weights they stand for), L-BFGS, a warm refit
after a stop on tol and partial_fit's adaptive step size, on every CPU backend here (NumPy, and
Numba with its fused epoch).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor
from fastfnn.network import init_params

from .conftest import backend_params, blobs

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

RTOL, ATOL = 1e-10, 1e-12
HIDDEN = (7,)
SGD = dict(solver="sgd", learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=True,
           alpha=0.01, batch_size=16)


@pytest.fixture(params=[p for p in backend_params() if p.id != "cupy"])
def backend_name(request):
    return request.param


def classification(n=64):
    X, y = blobs(n=n, n_features=5, spread=1.5)
    return X, y


def regression(n=64, poisson=False):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 5))
    Y = np.stack([X[:, 0] - 0.5 * X[:, 1], np.sin(X[:, 2])], axis=1)
    return X, (rng.poisson(np.exp(0.5 * Y)).astype(np.float64) if poisson else Y)


def starting_weights(n_in, n_out, activation="relu"):
    return init_params((n_in, *HIDDEN, n_out), "glorot", activation, np.float64,
                       np.random.default_rng(0))


def fit_from(theirs, ours, start, X, y, sample_weight=None, classes=None):
    """Fit both warm-started from ``start`` (fresh optimizer, history and counters)."""
    coefs, intercepts = start
    # scikit-learn initialises its fitted attributes on a first call; then every counter is reset
    if theirs.solver == "lbfgs":
        theirs.set_params(max_iter=1).fit(X, y)
    else:
        theirs.partial_fit(X, y, **({} if classes is None else {"classes": classes}))
        del theirs._optimizer
        theirs.t_, theirs.loss_curve_, theirs._no_improvement_count = 0, [], 0
        theirs.best_loss_ = np.inf
    theirs.set_params(max_iter=ours.max_iter)
    for model in (theirs, ours):
        model.coefs_ = [w.copy() for w in coefs]
        model.intercepts_ = [b.copy() for b in intercepts]
    theirs.fit(X, y, sample_weight=sample_weight)
    ours.fit(X, y, sample_weight=sample_weight)


def assert_same_weights(ours, theirs):
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def pair(params, regressor=False, epochs=4, **ours_only):
    theirs_class, ours_class = (MLPRegressor, FastFNNRegressor) if regressor else (
        MLPClassifier, FastFNN)
    common = dict(hidden_layer_sizes=HIDDEN, shuffle=False, warm_start=True, max_iter=epochs,
                  **params)
    return (theirs_class(**common, random_state=0),
            ours_class(**common, **ours_only, dtype="float64"))


def sample_weights(n, seed=5):
    return np.random.default_rng(seed).uniform(0.0, 3.0, n)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sample_weights(backend_name, solver):
    X, y = classification()
    params = SGD if solver == "sgd" else dict(solver="adam", learning_rate_init=0.01, alpha=0.01,
                                              batch_size=16)
    theirs, ours = pair(params, backend=backend_name)
    fit_from(theirs, ours, starting_weights(5, 3), X, y, sample_weights(len(y)), classes=[0, 1, 2])
    assert_same_weights(ours, theirs)
    # the loss's L2 term is taken with the epoch's last weights for every step (scikit-learn: each
    # step's own), hence the looser tolerance
    np.testing.assert_allclose(ours.loss_curve_[0], theirs.loss_curve_[0], rtol=1e-4)
    assert ours.t_ == theirs.t_


def test_class_weight_is_the_sample_weight_of_its_class(backend_name):
    X, y = classification()
    per_class = {0: 2.0, 1: 0.5, 2: 1.0}
    theirs, ours = pair(SGD, backend=backend_name, class_weight=per_class)
    fit_from(theirs, ours, starting_weights(5, 3), X, y,
             sample_weight=None, classes=[0, 1, 2])
    _, reference = pair(SGD, backend=backend_name)
    reference.coefs_, reference.intercepts_ = starting_weights(5, 3)
    reference.fit(X, y, sample_weight=np.vectorize(per_class.get)(y).astype(float))
    assert_same_weights(ours, reference)


@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
def test_learning_rate_schedules(backend_name, schedule):
    X, y = classification()
    # tol=10: no epoch improves enough, so adaptive divides its step size every other epoch
    params = {**SGD, "learning_rate": schedule, "power_t": 0.3, "tol": 10.0,
              "n_iter_no_change": 1}
    theirs, ours = pair(params, epochs=6, backend=backend_name)
    fit_from(theirs, ours, starting_weights(5, 3), X, y, sample_weights(len(y)), classes=[0, 1, 2])
    assert_same_weights(ours, theirs)
    assert math.isclose(ours.fitted_state_.optimizer.learning_rate,
                        theirs._optimizer.learning_rate, rel_tol=1e-12)
    assert ours.n_iter_ == len(theirs.loss_curve_)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_regressor_losses(backend_name, loss, weighted):
    X, Y = regression(poisson=loss == "poisson")
    params = {**SGD, "learning_rate_init": 0.01, "loss": loss}
    theirs, ours = pair(params, regressor=True, backend=backend_name)
    fit_from(theirs, ours, starting_weights(5, 2), X, Y,
             sample_weights(len(Y)) if weighted else None)
    assert_same_weights(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)


def test_regressor_one_output_predicts_1d(backend_name):
    X, Y = regression()
    theirs, ours = pair({**SGD, "learning_rate_init": 0.01}, regressor=True, backend=backend_name)
    fit_from(theirs, ours, starting_weights(5, 1), X, Y[:, 0])
    assert_same_weights(ours, theirs)
    assert ours.predict(X).shape == theirs.predict(X).shape == (len(Y),)


@pytest.mark.parametrize("iterations", [1, 3, 8])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lbfgs_first_iterations(backend_name, iterations, weighted):
    X, y = classification()
    theirs, ours = pair(dict(solver="lbfgs", alpha=0.01), epochs=iterations, backend=backend_name)
    with pytest.warns(UserWarning):  # both stop at max_iter before converging
        fit_from(theirs, ours, starting_weights(5, 3), X, y,
                 sample_weights(len(y)) if weighted else None)
    assert_same_weights(ours, theirs)
    assert ours.loss_curve_[-1] == pytest.approx(theirs.loss_, rel=1e-10)


def test_lbfgs_regressor(backend_name):
    X, Y = regression()
    theirs, ours = pair(dict(solver="lbfgs", alpha=0.01), regressor=True, epochs=5,
                        backend=backend_name)
    with pytest.warns(UserWarning):
        fit_from(theirs, ours, starting_weights(5, 2), X, Y)
    assert_same_weights(ours, theirs)


def test_sample_weights_on_sparse_inputs_and_large_batches(backend_name):
    """Mostly-zero inputs (the Numba backend's sparse first layer) and 100-row steps."""
    X, y = classification(n=240)
    X = np.where(np.random.default_rng(7).random(X.shape) < 0.7, 0.0, np.abs(X))
    theirs, ours = pair({**SGD, "batch_size": 100}, backend=backend_name)
    fit_from(theirs, ours, starting_weights(5, 3), X, y, sample_weights(len(y)), classes=[0, 1, 2])
    assert_same_weights(ours, theirs)


def test_a_warm_refit_after_a_stop_on_tol_keeps_the_no_improvement_count(backend_name):
    """scikit-learn sets its count only on a first fit: the refit stops after its first epoch
    that does not improve the loss by tol, with the same weights."""
    X, y = classification()
    params = dict(solver="adam", learning_rate_init=0.01, batch_size=16, alpha=0.0, tol=1e-2,
                  n_iter_no_change=3)
    theirs, ours = pair(params, epochs=300, backend=backend_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # both stop on tol
        fit_from(theirs, ours, starting_weights(5, 3), X, y, classes=[0, 1, 2])
        first = len(theirs.loss_curve_)
        assert ours.n_iter_ == first < 300
        theirs.fit(X, y)
        ours.fit(X, y)
    assert ours.n_iter_ == len(theirs.loss_curve_) < first + 3
    assert_same_weights(ours, theirs)


def test_partial_fit_counts_epochs_without_improvement_across_calls(backend_name):
    """scikit-learn's adaptive schedule divides the step size in partial_fit too, once
    n_iter_no_change calls in a row did not improve the loss by tol."""
    X, y = classification()
    theirs, ours = pair({**SGD, "learning_rate": "adaptive", "tol": 1e9, "n_iter_no_change": 2},
                        backend=backend_name)
    rates = []  # tol=1e9: no call improves, whatever the weights
    for _ in range(5):
        theirs.partial_fit(X, y, classes=[0, 1, 2])
        ours.partial_fit(X, y, classes=[0, 1, 2])
        rates.append(ours.fitted_state_.optimizer.learning_rate)
        assert rates[-1] == theirs._optimizer.learning_rate
    assert rates == [0.05, 0.05, 0.05, 0.01, 0.01]
