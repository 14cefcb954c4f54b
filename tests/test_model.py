"""The estimator: training outcomes, scikit-learn compatibility, fitted state, bad input."""

from __future__ import annotations

import copy
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse

import fastfnn.model
from fastfnn import FastFNN, FastFNNRegressor, TrainingDivergedError
from fastfnn.sklearn_compat import ConvergenceWarning
from fastfnn.model import _validation_split
from fastfnn.network import init_params

from .conftest import blobs
from .state_checks import assert_same_model

FAST = dict(backend="numpy", random_state=0, max_iter=60, tol=0.0)


def snapshot(model):
    """Deep copy of everything a fit can change, for 'left unchanged' checks."""
    return copy.deepcopy(model)


def assert_unchanged(model, before):
    assert_same_model(before, model)


@pytest.fixture(scope="module")
def fitted():
    X, y = blobs()
    return FastFNN((8,), solver="sgd", learning_rate_init=0.1, **FAST).fit(X, y), X, y


@pytest.mark.parametrize("hidden", [(), (12,), (10, 6)])
@pytest.mark.parametrize("solver,lr", [("sgd", 0.1), ("adam", 0.01)])
@pytest.mark.parametrize("batch_size", [1, 32, None])
def test_separable_data_is_learnt_perfectly(backend, hidden, solver, lr, batch_size):
    X, y = blobs(n=120)
    # He init: per-example SGD at lr 0.1 through (10, 6) learns from this seed's He start (the
    # default was He for ReLU until init="auto" became scikit-learn's Glorot)
    model = FastFNN(hidden, solver=solver, learning_rate_init=lr, batch_size=batch_size, init="he",
                    **{**FAST, "backend": backend.name, "max_iter": 30 if batch_size else 150})
    assert model.fit(X, y).score(X, y) == 1.0
    assert len(model.loss_curve_) == model.n_iter_ == len(model.history_["loss"])
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_every_activation_and_output_trains(activation, output):
    X, y = blobs(n=150)
    model = FastFNN((10,), activation=activation, output=output, solver="adam",
                    learning_rate_init=0.02, **FAST).fit(X, y)
    assert model.score(X, y) == 1.0
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert model.out_activation_ == ("softmax" if output == "softmax" else "logistic")


def test_labels_of_any_kind_round_trip():
    X, y = blobs(n=90)
    names = np.array(["cat", "dog", "emu"])[y]
    model = FastFNN((8,), learning_rate_init=0.02, **FAST).fit(X, names)
    assert list(model.classes_) == ["cat", "dog", "emu"]
    assert model.predict(X).dtype == names.dtype
    assert model.score(X, names) == 1.0


#: Labels from pandas and Python objects, and the dtype scikit-learn 1.9's MLPClassifier gives its
#: classes_ and predictions for them.
FOREIGN_LABELS = {
    "object str": (lambda pd, y: np.array(["a", "b"], dtype=object)[y], "<U1"),
    "Series str": (lambda pd, y: pd.Series(np.array(["a", "b"])[y]), "<U1"),
    "Categorical": (lambda pd, y: pd.Series(pd.Categorical(np.array(["a", "b"])[y])), "<U1"),
    "Int64": (lambda pd, y: pd.Series(y, dtype="Int64"), "float64"),
    "boolean": (lambda pd, y: pd.Series(y.astype(bool), dtype="boolean"), "float64"),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN_LABELS))
def test_labels_take_the_dtype_scikit_learn_gives_them(kind):
    pd = pytest.importorskip("pandas")
    X, y = blobs(n=60, n_classes=2)
    make, dtype = FOREIGN_LABELS[kind]
    labels = make(pd, y)
    model = FastFNN((), learning_rate_init=0.02, **FAST).fit(X, labels)
    assert model.classes_.dtype == dtype
    assert model.predict(X).dtype == dtype
    assert model.score(X, labels) == 1.0


def test_partial_fit_reads_string_classes_held_as_objects_as_unicode():
    X, y = blobs(n=60, n_classes=2)
    names = np.array(["a", "b"], dtype=object)
    model = FastFNN((), **FAST).partial_fit(X, names[y], classes=names)
    assert model.classes_.dtype == "<U1"
    assert model.predict(X).dtype == "<U1"


def test_a_missing_nullable_label_is_refused():
    pd = pytest.importorskip("pandas")
    X, y = blobs(n=60, n_classes=2)
    with pytest.raises(ValueError, match="y contains NaN"):
        FastFNN((), **FAST).fit(X, pd.Series([None, *y[1:]], dtype="Int64"))


@pytest.mark.parametrize("estimator", [FastFNN, FastFNNRegressor])
def test_a_sparse_x_gives_what_its_dense_copy_gives(estimator):
    X, y = blobs(n=80, n_features=6)
    X[np.abs(X) < 1.5] = 0  # mostly zeros, as sparse input is
    sparse = scipy.sparse.csr_matrix(X)
    models = [estimator(hidden_layer_sizes=(5,), **{**FAST, "max_iter": 5}).fit(data, y)
              for data in (X, sparse)]
    assert_same_model(*models, timings=False)
    for model in models:
        model.partial_fit(sparse if model is models[1] else X, y)
    assert_same_model(*models, timings=False)
    dense_model, sparse_model = models
    methods = ["predict"] + (["predict_proba", "predict_log_proba"] if estimator is FastFNN else [])
    for method in methods:
        assert (getattr(sparse_model, method)(sparse).tobytes()
                == getattr(dense_model, method)(X).tobytes())
    assert sparse_model.score(sparse, y) == dense_model.score(X, y)
    if estimator is FastFNN:
        for key, value in sparse_model.evaluate(sparse, y).items():
            np.testing.assert_array_equal(value, dense_model.evaluate(X, y)[key])


@pytest.mark.parametrize("method", ["fit", "partial_fit", "predict", "score"])
def test_nan_in_a_sparse_x_is_refused_as_in_its_dense_copy(fitted, method):
    model, X, y = fitted
    model = copy.deepcopy(model)
    before = snapshot(model)
    bad = np.where(X > 1, np.nan, X)
    errors = []
    for data in (bad, scipy.sparse.csr_matrix(bad)):
        with pytest.raises(ValueError, match="NaN or infinite") as info:
            getattr(model, method)(data, *(() if method == "predict" else (y,)))
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert_unchanged(model, before)


def test_multilabel_indicator_targets():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 6))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0], axis=1).astype(int)
    model = FastFNN((16,), learning_rate_init=0.02, **FAST).fit(X, Y)
    assert model.out_activation_ == "logistic"
    assert model.predict(X).shape == (200, 2)
    assert model.score(X, Y) > 0.95
    with pytest.raises(ValueError, match="output='sigmoid'"):
        FastFNN(output="softmax", **FAST).fit(X, Y)


def test_same_seed_same_model_bitwise():
    X, y = blobs()
    a = FastFNN((8,), **{**FAST, "max_iter": 5}).fit(X, y)
    b = FastFNN((8,), **{**FAST, "max_iter": 5}).fit(X, y)
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)


def test_uint8_input_is_read_as_intensities_over_255():
    rng = np.random.default_rng(0)
    X8 = rng.integers(0, 256, (100, 12)).astype(np.uint8)
    y = (X8[:, 0] > 127).astype(int)
    params = dict(hidden_layer_sizes=(5,), **{**FAST, "max_iter": 3})
    from_uint8 = FastFNN(**params).fit(X8, y)
    scaled = X8.astype(np.float32) * np.float32(1 / 255)
    from_float = FastFNN(**params).fit(scaled, y)
    for a, b in zip(from_uint8.coefs_, from_float.coefs_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(from_uint8.predict_proba(X8),
                                  from_float.predict_proba(scaled))


def test_dtype_float64_keeps_float64_weights():
    X, y = blobs(n=60)
    model = FastFNN((4,), dtype="float64", **{**FAST, "max_iter": 2}).fit(X, y)
    assert all(w.dtype == np.float64 for w in model.coefs_ + model.intercepts_)
    assert model.predict_proba(X).dtype == np.float64


def test_warm_start_continues_from_assigned_coefs():
    X, y = blobs(n=60)
    model = FastFNN((4,), warm_start=True, **{**FAST, "max_iter": 1}).fit(X, y)
    model.coefs_ = [np.zeros_like(w) for w in model.coefs_]
    model.intercepts_ = [np.zeros_like(b) for b in model.intercepts_]
    model.max_iter = 0 + 1
    model.learning_rate_init = 1e-12  # so tiny that the weights stay ~0
    model.fit(X, y)
    assert max(np.abs(w).max() for w in model.coefs_) < 1e-6


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_from_assigned_coefs_of_new_sizes_starts_a_fresh_optimizer(backend, solver,
                                                                               tmp_path):
    """It stepped them with the optimizer state of the old sizes: Numba's epoch wrote out of
    bounds (the process died), NumPy's failed to broadcast; save() refused the model."""
    X, y = blobs(n=60)
    model = FastFNN((5,), solver=solver, batch_size=16, backend=backend.name, random_state=0,
                    max_iter=2).fit(X, y)
    rng = np.random.default_rng(1)
    model.coefs_ = [rng.normal(size=(X.shape[1], 7)).astype(np.float32),
                    rng.normal(size=(7, 3)).astype(np.float32)]
    model.intercepts_ = [np.zeros(7, np.float32), np.zeros(3, np.float32)]
    assert model.fitted_state_.optimizer is None  # nothing of it fits the new weights
    FastFNN.load(model.save(tmp_path / "assigned.npz"))
    model.set_params(hidden_layer_sizes=(7,)).partial_fit(X, y)
    state = model.fitted_state_
    assert [a.shape for a in state.optimizer.groups[0]] == [(X.shape[1], 7), (7, 3)]
    assert state.optimizer.steps == (-(-len(y) // 16) if solver == "adam" else 0)  # afresh


def test_coefs_assigned_in_float64_save_with_the_optimizer_in_float64(tmp_path):
    X, y = blobs(n=60)
    model = FastFNN((4,), solver="adam", **{**FAST, "max_iter": 2}).fit(X, y)
    model.coefs_ = [w.astype(np.float64) for w in model.coefs_]
    model.intercepts_ = [b.astype(np.float64) for b in model.intercepts_]
    loaded = FastFNN.load(model.save(tmp_path / "m.npz"))
    groups = loaded.fitted_state_.optimizer.groups
    assert {a.dtype for group in groups for a in group} == {np.dtype(np.float64)}


def test_partial_fit_refuses_early_stopping_as_scikit_learn_does(fitted):
    """It trained on every row, held none out, and set validation_scores_ to None."""
    model, X, y = fitted
    model = copy.deepcopy(model).set_params(early_stopping=True)
    before = snapshot(model)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        model.partial_fit(X, y)
    assert_unchanged(model, before)


def test_partial_fit_needs_classes_first_then_continues():
    X, y = blobs(n=90)
    model = FastFNN((6,), **FAST)
    with pytest.raises(ValueError, match="classes must be given"):
        model.partial_fit(X, y)
    assert not hasattr(model, "coefs_")
    for _ in range(3):
        model.partial_fit(X, y, classes=[0, 1, 2])
    assert len(model.loss_curve_) == 3 and model.n_iter_ == 3
    with pytest.raises(ValueError, match="not among the classes"):
        model.partial_fit(X, y + 5)


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(n=200, spread=2.5)
    model = FastFNN((32,), early_stopping=True, n_iter_no_change=3, solver="sgd",
                    learning_rate_init=0.5, **{**FAST, "max_iter": 40}).fit(X, y)
    assert model.validation_scores_ == model.history_["val_accuracy"]
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.n_iter_ < 40


def test_evaluate_returns_loss_accuracy_and_confusion_matrix(fitted):
    model, X, y = fitted
    report = model.evaluate(X, y)
    assert report["accuracy"] == model.score(X, y)
    matrix = report["confusion_matrix"]
    assert matrix.shape == (3, 3) and matrix.sum() == len(y)
    assert np.trace(matrix) == round(report["accuracy"] * len(y))
    assert report["loss"] > 0


def test_divergence_stops_with_a_clear_error_and_keeps_the_model():
    X, y = blobs(n=60)
    model = FastFNN((8,), solver="sgd", warm_start=True, **{**FAST, "max_iter": 2}).fit(X, y)
    model.set_params(learning_rate_init=1e30, max_iter=5)
    before = snapshot(model)
    # a warm start continues the history: the failing epoch is the model's third
    with pytest.raises(TrainingDivergedError, match=r"epoch 3.*learning rate 1e\+30"):
        model.fit(X * 1e10, y)
    assert_unchanged(model, before)


# ---------------------------------------------------------------- bad input changes nothing
BAD_FIT_INPUTS = {
    "nan": lambda X, y: (np.where(X > 1, np.nan, X), y),
    "inf": lambda X, y: (np.where(X > 1, np.inf, X), y),
    "1-D X": lambda X, y: (X[:, 0], y),
    "3-D X": lambda X, y: (X[:, :, None], y),
    "empty X": lambda X, y: (X[:0], y[:0]),
    "zero features": lambda X, y: (X[:, :0], y),
    "lengths differ": lambda X, y: (X, y[:-1]),
    "object X": lambda X, y: (np.where(X > 1, {"not": "a number"}, X.astype(object)), y),
    "string X": lambda X, y: (X.astype(str), y),
    "single class": lambda X, y: (X, np.zeros_like(y)),
    "wrong feature count": lambda X, y: (X[:, :-1], y),
    "unknown labels": lambda X, y: (X, y + 10),
    "None label": lambda X, y: (X, np.array([None] * len(y), dtype=object)),
    "3-D y": lambda X, y: (X, y[:, None, None].repeat(2, 1)),
}


@pytest.mark.parametrize("method,case", [
    (method, case) for method in ("fit", "partial_fit") for case in sorted(BAD_FIT_INPUTS)
    # a one-class batch is fine for partial_fit, only a fresh fit needs two classes
    if (method, case) != ("partial_fit", "single class")])
def test_bad_input_is_rejected_and_the_model_unchanged(fitted, case, method):
    model, X, y = fitted
    model = copy.deepcopy(model)
    model.warm_start = True
    before = snapshot(model)
    bad_X, bad_y = BAD_FIT_INPUTS[case](X, y)
    if case == "single class":
        model.warm_start = False
        before = snapshot(model)
    with pytest.raises((ValueError, TypeError)) as info:
        getattr(model, method)(bad_X, bad_y)
    assert len(str(info.value)) > 20
    assert_unchanged(model, before)


@pytest.mark.parametrize("case", ["nan", "1-D X", "3-D X", "empty X", "wrong feature count",
                                  "object X"])
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_bad_input_at_predict(fitted, case, method):
    model, X, y = fitted
    with pytest.raises((ValueError, TypeError)):
        getattr(model, method)(BAD_FIT_INPUTS[case](X, y)[0])


BAD_PARAMS = [
    dict(learning_rate_init=-0.1), dict(learning_rate_init=0), dict(batch_size=0),
    dict(batch_size=2.5), dict(activation="swish"), dict(solver="newton"),
    dict(backend="tpu"), dict(hidden_layer_sizes=(10, 0)), dict(hidden_layer_sizes="wide"),
    dict(max_iter=0), dict(momentum=1.5), dict(alpha=-1), dict(dtype="int8"),
    dict(init="orthogonal"), dict(init=-1.0), dict(learning_rate="optimal"), dict(power_t=-1.0),
    dict(max_fun=0), dict(class_weight="even"), dict(class_weight={0: -1.0}), dict(output="tanh"), dict(validation_fraction=1.0),
    dict(beta_1=1.0), dict(epsilon=0), dict(n_iter_no_change=0), dict(tol=float("nan")),
    dict(max_iter=True), dict(n_jobs=0), dict(n_jobs=1.5),
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: f"{p}")
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_invalid_hyperparameters_are_named_and_change_nothing(fitted, params, method):
    model, X, y = fitted
    model = copy.deepcopy(model)
    before = snapshot(model)
    model.set_params(**params)
    name = next(iter(params))
    with pytest.raises((ValueError, TypeError),
                       match=rf"^({name}(\[\d+\])? must be .*, got |unknown {name} )"):
        getattr(model, method)(X, y)
    model.set_params(**before.get_params())
    assert_unchanged(model, before)


def test_unfitted_model_says_so():
    with pytest.raises(ValueError, match="not fitted"):
        FastFNN().predict(np.zeros((1, 3)))
    assert not hasattr(FastFNN(), "fitted_state_")  # an AttributeError too, as in scikit-learn
    with pytest.raises(ValueError, match="cannot save an unfitted FastFNN"):
        FastFNN().save("never-written.npz")


def test_fitted_attributes_are_the_fitted_state(fitted):
    model, X, y = fitted
    state = model.fitted_state_
    assert state.coefs is model.coefs_ and state.intercepts is model.intercepts_
    assert state.classes is model.classes_ and state.history == model.history_
    assert (model.n_features_in_, model.n_layers_, model.n_outputs_, model.n_iter_) == (
        state.n_features_in, state.n_layers, state.n_outputs, state.n_iter) == (8, 3, 3, 60)
    assert model.loss_curve_ == state.history["loss"] and model.loss_ == model.loss_curve_[-1]
    assert (model.best_loss_, model.validation_scores_, model.best_validation_score_) == (
        state.best_loss, None, None)
    assert model.t_ == state.t == 60 * len(y) and model.out_activation_ == "softmax"
    assert state.params == model.get_params() and state.optimizer.solver == "sgd"


def test_partial_fit_after_a_solver_change_starts_a_fresh_optimizer():
    """The optimizer state of another solver is not continued from (it raised IndexError)."""
    X, y = blobs(n=60)
    model = FastFNN((4,), solver="sgd", **{**FAST, "max_iter": 2}).fit(X, y)
    model.set_params(solver="adam")
    model.partial_fit(X, y)
    assert model.fitted_state_.optimizer.solver == "adam"
    assert len(model.fitted_state_.optimizer.groups) == 4 and model.n_iter_ == 3


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_after_a_dtype_change_continues_in_the_new_dtype(backend, solver, tmp_path):
    """The optimizer state stayed float32 beside float64 weights: Numba's epoch failed to
    compile, NumPy's trained on but the model could not be saved."""
    X, y = blobs(n=60)
    model = FastFNN((4,), solver=solver, backend=backend.name, random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2])
    model.set_params(dtype="float64").partial_fit(X, y)
    state = model.fitted_state_
    assert {a.dtype for group in state.optimizer.groups for a in group} == {np.dtype(np.float64)}
    assert model.coefs_[0].dtype == np.float64 and model.n_iter_ == 2
    assert_same_model(FastFNN.load(model.save(tmp_path / "m.npz")), model)


def test_score_checks_y_against_the_models_labels(fitted):
    """Text labels for a model of numbers scored a silent 0.0; a 2-D y failed in NumPy's
    broadcasting. As MLPClassifier, both are refused with the reason."""
    model, X, y = fitted
    with pytest.raises(ValueError, match="Mix of label input types"):
        model.score(X, y.astype(str))
    with pytest.raises(ValueError, match="indicator matrix for a multi-label model"):
        model.score(X, np.c_[y == 0, y != 0].astype(int))
    assert model.score(X, y + 7) == 0.0  # labels it never saw: plainly wrong, as scikit-learn


def test_regressor_score_checks_ys_columns():
    """A 2-column y against a 1-output model was scored column by column (R^2 -1.07)."""
    X, Y = linear_targets(n=40, outputs=1)
    model = FastFNNRegressor(hidden_layer_sizes=(4,), **{**FAST, "max_iter": 2}).fit(X, Y[:, 0])
    with pytest.raises(ValueError, match=r"different number of output \(2!=1\)"):
        model.score(X, np.c_[Y, Y])


def test_unknown_labels_at_evaluate(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="unseen at fit"):
        model.evaluate(X, y + 7)


# ---------------------------------------------------------------- scikit-learn protocol
def test_get_set_params_round_trip():
    model = FastFNN((5,), solver="sgd", backend="numpy")
    params = model.get_params()
    assert params["hidden_layer_sizes"] == (5,) and params["backend"] == "numpy"
    assert model.set_params(alpha=0.5) is model and model.alpha == 0.5
    with pytest.raises(ValueError, match="invalid parameter"):
        model.set_params(hidden=(3,))


def test_sklearn_clone_pipeline_and_grid_search():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert sklearn.__version__
    X, y = blobs(n=120)
    model = FastFNN((6,), learning_rate_init=0.02, **{**FAST, "max_iter": 30})
    cloned = clone(model)
    assert cloned.get_params() == model.get_params() and cloned is not model
    pipe = make_pipeline(StandardScaler(), model).fit(X, y)
    assert pipe.score(X, y) == 1.0
    search = GridSearchCV(model, {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert search.best_params_["alpha"] in (1e-4, 1e-2)


def test_matches_sklearn_mlp_meaning_of_parameters():
    """Same data, same weights, same plain-SGD settings: one epoch gives the same weights."""
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier

    X, y = blobs(n=64)
    common = dict(hidden_layer_sizes=(7,), solver="sgd", learning_rate_init=0.05, momentum=0.9,
                  nesterovs_momentum=True, alpha=0.01, batch_size=64, max_iter=1, shuffle=False)
    coefs, intercepts = init_params((X.shape[1], 7, 3), "xavier", "relu", np.float64,
                                    np.random.default_rng(0))
    theirs = MLPClassifier(**common, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    ours = FastFNN(**common, backend="numpy", dtype="float64")
    for model in (ours, theirs):  # the same starting point, fresh optimizer state
        model.coefs_ = [w.copy() for w in coefs]
        model.intercepts_ = [b.copy() for b in intercepts]
    del theirs._optimizer
    theirs.partial_fit(X, y)
    ours.partial_fit(X, y, classes=[0, 1, 2])
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- MNIST seed designs (issue 2)
SEED_DESIGNS = {
    # name: (estimator parameters, minimum test accuracy)
    "784-128-10 relu he sgd mini-batch 20 epochs": (dict(
        hidden_layer_sizes=(128,), init="he", solver="sgd", learning_rate_init=0.05,
        momentum=0.9, batch_size=128, max_iter=20), 0.975),
    "784-128-64-10 relu he sgd mini-batch 20 epochs": (dict(
        hidden_layer_sizes=(128, 64), init="he", solver="sgd", learning_rate_init=0.05,
        momentum=0.9, batch_size=128, max_iter=20), 0.978),
    "softmax regression batch 1, 1 epoch": (dict(
        hidden_layer_sizes=(), solver="sgd", learning_rate_init=0.01, momentum=0.0,
        batch_size=1, max_iter=1), 0.90),
    "784-10-10 relu full batch lr 0.1, 700 iterations": (dict(
        hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=0.1, momentum=0.0,
        batch_size=None, max_iter=700), 0.88),
}


@pytest.mark.slow
@pytest.mark.parametrize("design", sorted(SEED_DESIGNS))
def test_mnist_seed_designs_reach_their_accuracy(mnist_uint8, design):
    (X, y), (X_test, y_test) = mnist_uint8
    params, floor = SEED_DESIGNS[design]
    # the default compiled backend: 17 s for the four designs against 60 s on the NumPy
    # reference (whose agreement with it tests/test_backends_agree.py checks)
    model = FastFNN(**params, backend="numba", alpha=0.0, tol=0.0, random_state=0).fit(X, y)
    assert model.n_iter_ == params["max_iter"]
    assert model.score(X_test, y_test) >= floor


def test_n_jobs_limits_blas_threads_and_keeps_results_bitwise():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y = blobs(n=100)
    seen = []

    class Spy:
        def __call__(self, epoch, record):
            seen.extend(info["num_threads"] for info in threadpoolctl.threadpool_info()
                        if info["user_api"] == "blas")

    one = FastFNN((6,), n_jobs=1, **{**FAST, "max_iter": 2}).fit(X, y, on_epoch=Spy())
    assert seen and set(seen) == {1}
    again = FastFNN((6,), n_jobs=1, **{**FAST, "max_iter": 2}).fit(X, y)
    for a, b in zip(one.coefs_, again.coefs_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="n_jobs"):
        FastFNN(n_jobs=0).fit(X, y)


# ---------------------------------------------------------------- scikit-learn's MLP surface
def test_unfitted_use_raises_scikit_learns_not_fitted_error():
    from sklearn.exceptions import NotFittedError as SklearnNotFitted

    from fastfnn import NotFittedError
    for method in ("predict", "predict_proba"):
        with pytest.raises(SklearnNotFitted, match="not fitted") as info:
            getattr(FastFNN(), method)(np.zeros((1, 3)))
        assert isinstance(info.value, (NotFittedError, ValueError, AttributeError))


def test_warm_start_appends_to_the_loss_curve():
    X, y = blobs(n=60)
    model = FastFNN((4,), warm_start=True, **{**FAST, "max_iter": 3}).fit(X, y)
    first = list(model.loss_curve_)
    model.set_params(max_iter=2).fit(X, y)
    assert model.loss_curve_[:3] == first and len(model.loss_curve_) == 5
    assert model.t_ == 5 * len(y) and model.n_iter_ == 5


@pytest.mark.parametrize("bad,message", [
    (lambda n: -np.ones(n), ">= 0"), (lambda n: np.ones(n - 1), "expected"),
    (lambda n: np.zeros(n), "non-zero"), (lambda n: np.ones((n, 1)), "1D"),
    (lambda n: np.full(n, np.nan), "finite"),
    # beyond float32's normal range (the default dtype): they would weigh 0 or sum to inf
    (lambda n: np.full(n, 1e-50), "out of range for dtype='float32'"),
    (lambda n: np.full(n, 1e38), "out of range for dtype='float32'"),
])
def test_bad_sample_weight_is_refused_and_changes_nothing(fitted, bad, message):
    model, X, y = fitted
    model = copy.deepcopy(model)
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, sample_weight=bad(len(y)))
    assert_unchanged(model, before)


def test_weights_beyond_float32_train_a_float64_model():
    X, y = blobs(n=60)
    model = FastFNN((4,), dtype="float64", **{**FAST, "max_iter": 2})
    model.fit(X, y, sample_weight=np.full(len(y), 1e-50))
    assert np.isfinite(model.loss_curve_).all()


def test_a_step_whose_rows_all_weigh_zero_is_refused_and_changes_nothing(backend, fitted):
    model, X, y = fitted
    model = copy.deepcopy(model).set_params(backend=backend.name, batch_size=4, shuffle=False,
                                            max_iter=2)
    before = snapshot(model)
    weights = np.ones(len(y))
    weights[8:12] = 0  # the third step's rows
    with pytest.raises(ValueError, match=r"rows 8\.\.11 of the epoch's order, batch_size=4\) "
                                         "weighs zero"):
        model.fit(X, y, sample_weight=weights)
    assert_unchanged(model, before)
    weights[8] = 0.5  # one row of weight is enough
    model.fit(X, y, sample_weight=weights)


def test_sample_weight_is_never_written_and_a_scalar_is_everyone_alike():
    X, y = blobs(n=60)
    weights = np.linspace(0.5, 2, len(y))
    kept = weights.copy()
    FastFNN((4,), **{**FAST, "max_iter": 2}).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(weights, kept)
    plain = FastFNN((4,), **{**FAST, "max_iter": 2}).fit(X, y)
    ones = FastFNN((4,), **{**FAST, "max_iter": 2}).fit(X, y, sample_weight=1.0)
    for a, b in zip(plain.coefs_, ones.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_balanced_class_weight_is_scikit_learns():
    X, y = blobs(n=90)
    counts = np.bincount(y)
    balanced = {c: len(y) / (3 * counts[c]) for c in range(3)}
    a = FastFNN((4,), class_weight="balanced", **{**FAST, "max_iter": 2}).fit(X, y)
    b = FastFNN((4,), class_weight=balanced, **{**FAST, "max_iter": 2}).fit(X, y)
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)
    for stranger in (7, 1.5, 0.9, "1"):  # no class, though a cast to int would make one
        with pytest.raises(ValueError, match="not among the classes"):
            FastFNN(class_weight={stranger: 2.0}, **FAST).fit(X, y)
    as_float = FastFNN((4,), class_weight={1.0: 3.0}, **{**FAST, "max_iter": 2}).fit(X, y)
    as_int = FastFNN((4,), class_weight={1: 3.0}, **{**FAST, "max_iter": 2}).fit(X, y)
    np.testing.assert_array_equal(as_float.coefs_[0], as_int.coefs_[0])
    with pytest.raises(ValueError, match="partial_fit cannot use it"):
        FastFNN(class_weight="balanced", **FAST).partial_fit(X, y, classes=[0, 1, 2])


def test_score_takes_sample_weight(fitted):
    model, X, y = fitted
    right = model.predict(X) == y
    weights = np.where(right, 1.0, 3.0)
    assert model.score(X, y, sample_weight=weights) == pytest.approx(
        np.average(right, weights=weights))


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_learning_rate_schedule_moves_sgds_step_size(schedule):
    X, y = blobs(n=60)
    model = FastFNN((4,), solver="sgd", learning_rate=schedule, power_t=0.25,
                    n_iter_no_change=1, **{**FAST, "tol": 10.0, "max_iter": 4}).fit(X, y)
    rate = model.fitted_state_.optimizer.learning_rate
    # tol=10: only the first epoch improves; after the third, 2 > n_iter_no_change epochs have not
    if schedule == "invscaling":  # stops there
        assert model.n_iter_ == 3 and rate == pytest.approx(0.001 / (3 * len(y) + 1) ** 0.25)
    else:  # divides its step size by 5 there instead, and goes on
        assert model.n_iter_ == 4 and rate == pytest.approx(0.001 / 5)
    model.partial_fit(X, y)  # continues from the step size it left
    assert model.fitted_state_.optimizer.learning_rate <= rate


def test_lbfgs_learns_and_has_no_partial_fit():
    X, y = blobs(n=90)
    model = FastFNN((6,), solver="lbfgs", **{**FAST, "max_iter": 100}).fit(X, y)
    assert model.score(X, y) == 1.0 and model.n_iter_ == len(model.loss_curve_) <= 100
    assert not hasattr(model, "partial_fit") and hasattr(FastFNN(), "partial_fit")
    assert model.fitted_state_.optimizer is None
    with pytest.raises(ValueError, match="checkpoint is for the stochastic solvers"):
        model.fit(X, y, checkpoint="never-written.npz")


def test_lbfgs_max_fun_bounds_the_evaluations():
    X, y = blobs(n=90)
    with pytest.warns(UserWarning, match="failed to converge"):
        model = FastFNN((6,), solver="lbfgs", max_fun=5, **FAST).fit(X, y)
    assert model.n_iter_ <= 5


def test_continuous_targets_are_not_class_labels():
    X, y = blobs(n=30)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        FastFNN(**FAST).fit(X, y + 0.5)


# ---------------------------------------------------------------- the regressor
def linear_targets(n=200, outputs=2):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, 5))
    return X, X @ rng.standard_normal((5, outputs)) + 0.1


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_regressor_learns_linear_targets(solver):
    X, Y = linear_targets()
    model = FastFNNRegressor(hidden_layer_sizes=(16,), solver=solver, learning_rate_init=0.01,
                             **{**FAST, "max_iter": 200}).fit(X, Y)
    assert model.score(X, Y) > 0.95 and model.predict(X).shape == Y.shape
    assert model.out_activation_ == "identity" and model.n_outputs_ == 2
    assert not hasattr(model, "classes_")
    one = FastFNNRegressor(hidden_layer_sizes=(8,), **{**FAST, "max_iter": 5}).fit(X, Y[:, 0])
    assert one.predict(X).shape == (len(X),) and one.predict(X).dtype == np.float64


def test_poisson_regressor_needs_non_negative_targets():
    X, Y = linear_targets(outputs=1)
    counts = np.random.default_rng(0).poisson(np.exp(0.3 * Y[:, 0]))
    model = FastFNNRegressor("poisson", (8,), **FAST).fit(X, counts)
    assert model.out_activation_ == "exp" and (model.predict(X) > 0).all()
    with pytest.raises(ValueError, match="negative"):
        FastFNNRegressor(loss="poisson", **FAST).fit(X, Y[:, 0] - 10)


def test_regressor_early_stopping_watches_r2_and_partial_fit_continues():
    X, Y = linear_targets()
    model = FastFNNRegressor(hidden_layer_sizes=(8,), early_stopping=True, learning_rate_init=0.01,
                             **{**FAST, "max_iter": 30}).fit(X, Y)
    assert model.best_validation_score_ == max(model.validation_scores_) > 0.5
    assert all(a is None for a in model.history_["accuracy"] + model.history_["val_accuracy"])
    epochs = model.n_iter_
    model.set_params(early_stopping=False).partial_fit(X, Y)
    assert model.n_iter_ == epochs + 1


def test_regressor_refuses_what_is_not_a_number():
    X, Y = linear_targets()
    with pytest.raises(ValueError, match="real numbers"):
        FastFNNRegressor(**FAST).fit(X, np.array(["a"] * len(X)))
    with pytest.raises(ValueError, match="NaN"):
        FastFNNRegressor(**FAST).fit(X, np.where(Y > 1, np.nan, Y))



def test_fit_streams_a_dask_array_as_fit_chunks_does():
    da = pytest.importorskip("dask.array", reason="the dask extra is not installed")
    from fastfnn.streaming import fit_chunks

    X, y = blobs(n=400)
    params = dict(hidden_layer_sizes=(8,), max_iter=2, backend="numpy", random_state=0)
    streamed = FastFNN(**params).fit(da.from_array(X, chunks=100), y)
    reference = FastFNN(**params)
    fit_chunks(reference, da.from_array(X, chunks=100), y)
    for got, want in zip(streamed.coefs_ + streamed.intercepts_,
                         reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(got, want)
    assert streamed.loss_curve_ == reference.loss_curve_
    before = copy.deepcopy(streamed.fitted_state_)
    streamed.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="does not support early_stopping"):
        streamed.fit(da.from_array(X, chunks=100), y)
    np.testing.assert_array_equal(streamed.coefs_[0], before.coefs[0])


def test_from_fitted_state_continues_the_optimizer():
    X, y = blobs(n=200)
    model = FastFNN(hidden_layer_sizes=(6,), max_iter=2, solver="adam", backend="numpy",
                    random_state=0).fit(X, y)
    twin = FastFNN.from_fitted_state(copy.deepcopy(model.fitted_state_))
    assert_same_model(twin, model)
    model.partial_fit(X, y)
    twin.partial_fit(X, y)
    assert_same_model(twin, model, timings=False)
    with pytest.raises(ValueError, match="expected a FastFNNRegressor's"):
        FastFNNRegressor.from_fitted_state(model.fitted_state_)


def test_from_fitted_state_gives_the_new_model_weights_of_its_own():
    """It shared the lists and arrays: assigning or writing a layer of the new model changed the
    predictions of the one the state came from."""
    X, y = blobs(n=60)
    model = FastFNN((4,), **{**FAST, "max_iter": 2}).fit(X, y)
    before = model.predict_proba(X)
    twin = FastFNN.from_fitted_state(model.fitted_state_)
    twin.coefs_[0] = np.zeros_like(twin.coefs_[0])
    twin.coefs_[1][...] = 0
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_feature_names_are_kept_and_checked_as_scikit_learn_does():
    pd = pytest.importorskip("pandas")
    X, y = blobs(n_features=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = FastFNN((8,), solver="sgd", learning_rate_init=0.1, **FAST).fit(frame, y)
    assert model.feature_names_in_.dtype == object
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right names: no warning, anywhere
        model.predict(frame)
        model.score(frame, y)
        model.evaluate(frame, y)
        model.partial_fit(frame, y)
    before = snapshot(model)
    for method in ("predict", "predict_proba", "partial_fit"):
        with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
            getattr(model, method)(*((frame[["c", "b", "a"]], y)[:2 if method == "partial_fit"
                                                                  else 1]))
    assert_unchanged(model, before)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)
    model.fit(X, y)  # a fresh fit without names forgets them
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but FastFNN was fitted without"):
        model.predict(frame)


@pytest.mark.parametrize("copy_of", ["save/load", "pickle", "from_fitted_state"])
def test_feature_names_survive_save_load_pickle_and_the_fitted_state(tmp_path, copy_of):
    pd = pytest.importorskip("pandas")
    X, y = blobs(n_features=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = FastFNN((8,), solver="sgd", learning_rate_init=0.1, **FAST).fit(frame, y)
    twin = {"save/load": lambda: FastFNN.load(model.save(tmp_path / "m.npz")),
            "pickle": lambda: pickle.loads(pickle.dumps(model)),
            "from_fitted_state": lambda: FastFNN.from_fitted_state(model.fitted_state_)}[copy_of]()
    assert twin.feature_names_in_.dtype == object
    assert list(twin.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
        twin.predict(frame[["c", "b", "a"]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        twin.predict(X)


def test_the_count_of_epochs_without_improvement_survives_save_and_load(tmp_path):
    """A loaded model's warm refit stops after as many epochs as the saved model's does."""
    X, y = blobs(n=100)
    # tol=1e9: only the first epoch improves; 3 more count, below n_iter_no_change=5
    model = FastFNN((4,), warm_start=True, n_iter_no_change=5, **{**FAST, "max_iter": 4,
                                                                 "tol": 1e9})
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    loaded = FastFNN.load(model.save(tmp_path / "m.npz"))
    assert loaded.fitted_state_.no_improvement == model.fitted_state_.no_improvement == 3
    for twin in (model, loaded):
        twin.fit(X, y)  # counts 4, 5, 6 > 5: stops after 3 epochs
        assert twin.n_iter_ == 7


@pytest.mark.parametrize("target,error", [("missing/c.npz", FileNotFoundError),
                                          (".", IsADirectoryError), ("", FileNotFoundError)])
def test_an_unwritable_checkpoint_path_fails_before_training(fitted, tmp_path, monkeypatch,
                                                             target, error):
    model, X, y = fitted
    model = copy.deepcopy(model)
    before = snapshot(model)
    path, trained = str(tmp_path / target) if target else "", []
    monkeypatch.setattr(fastfnn.model, "train", lambda *args, **kwargs: trained.append(1))
    with pytest.raises(error, match=f"^{re.escape(path or repr(path))}: "):
        model.fit(X, y, checkpoint=path)
    assert trained == []
    assert_unchanged(model, before)


def test_label_lists_in_messages_are_plain_labels(fitted):
    """Not NumPy 2's scalar reprs ("[np.int64(3)]", "np.str_('a')")."""
    model, X, y = fitted
    fresh = FastFNN((4,), **FAST)
    cases = [(lambda: model.evaluate(X, y + 1),
              "y contains labels unseen at fit: [3]; the model knows [0, 1, 2]"),
             (lambda: model.evaluate(X, np.array(["a", "b", "c"])[y]),
              "Mix of label input types (string and number): y holds <U1 labels, the model's "
              "classes_ are int64"),
             (lambda: fresh.partial_fit(X, y, classes=[0, 1]),
              "y contains labels not among the classes [0, 1]: [2]"),
             (lambda: fresh.fit(X, np.full(len(y), "a")), "y has one class only ('a' in "),
             (lambda: copy.deepcopy(model).partial_fit(X, y, classes=[0, 1, 5]),
              "classes [0, 1, 5] differ from the fitted classes [0, 1, 2]"),
             (lambda: FastFNN((4,), class_weight={7: 1.0}, **FAST).fit(X, y),
              "not among the classes [0, 1, 2]")]
    for call, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            call()


@pytest.mark.parametrize("n,fraction", [(12, 0.1), (30, 0.1), (20, 0.1), (57, 0.25), (7, 0.3)])
def test_early_stopping_holds_out_as_many_rows_as_scikit_learn(n, fraction):
    model_selection = pytest.importorskip("sklearn.model_selection")
    rows = np.arange(n)
    _, theirs = model_selection.train_test_split(rows, test_size=fraction, random_state=0)
    train_rows, held_out = _validation_split(rows % 2, fraction, np.random.default_rng(0))
    assert len(held_out) == len(theirs) and len(train_rows) == n - len(theirs)


def test_validation_fraction_zero_is_accepted_without_early_stopping():
    """As scikit-learn's MLPs: the fraction counts only with early stopping."""
    X, y = blobs(n=60)
    FastFNN((4,), validation_fraction=0.0, **{**FAST, "max_iter": 2}).fit(X, y)


@pytest.mark.parametrize("n,fraction,message", [(10, 0.1, "The validation set is too small"),
                                                (30, 0.0, r"too small \(0 of 30 samples\)"),
                                                (3, 0.9, "train set will be empty")])
def test_early_stopping_refuses_a_split_scikit_learn_refuses(n, fraction, message):
    X, y = linear_targets(n=n, outputs=1)
    model = FastFNNRegressor(hidden_layer_sizes=(4,), early_stopping=True,
                             validation_fraction=fraction, **FAST)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y[:, 0])
    assert not hasattr(model, "coefs_")


def test_early_stopping_with_held_out_rows_that_all_weigh_zero():
    """scikit-learn's MLPClassifier scores such rows 0.0 and trains on; MLPRegressor raises."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    weights = np.zeros(40)
    weights[:4] = 1.0  # random_state=0 holds out 4 rows of the other 36
    model = FastFNN(max_iter=20, early_stopping=True, random_state=0, backend="numpy")
    model.fit(X, y, sample_weight=weights)
    assert model.history_["val_loss"] == [None] * 12  # no weighted mean of zero weights
    assert model.validation_scores_ == [0.0] * 12  # never improves after the first epoch
    weights[1:] = 0.0  # only row 0 weighs, and random_state=0 does not hold it out
    regressor = FastFNNRegressor(max_iter=20, early_stopping=True, random_state=0,
                                 backend="numpy")
    with pytest.raises(ValueError, match="holds out all weigh zero"):
        regressor.fit(X, X[:, 0], sample_weight=weights)
    assert not hasattr(regressor, "coefs_")
    weights = np.roll(weights, 2)  # only row 2 weighs, and random_state=0 holds it out
    with pytest.raises(ValueError, match="trains on all weigh zero"):  # not a divergence
        regressor.fit(X, X[:, 0], sample_weight=weights)
    assert not hasattr(regressor, "coefs_")


def test_early_stopping_refuses_classes_its_stratified_split_cannot_hold():
    X, y = blobs(n=10, n_classes=2)
    with pytest.raises(ValueError, match="test_size = 1 should be greater or equal to the number "
                       "of classes = 2"):
        FastFNN(early_stopping=True, **FAST).fit(X, y)
    y = np.r_[np.zeros(29, dtype=int), 1]
    with pytest.raises(ValueError, match=r"Classes with too few members are: \[1\]"):
        FastFNN(early_stopping=True, **FAST).fit(blobs(n=30)[0], y)


@pytest.mark.parametrize("estimator", [FastFNN, FastFNNRegressor])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_a_fit_that_reaches_max_iter_warns_as_scikit_learn(estimator, solver):
    X, y = blobs(n=60)
    model = estimator(hidden_layer_sizes=(4,), solver=solver, backend="numpy", random_state=0,
                      max_iter=3)
    with pytest.warns(ConvergenceWarning, match=r"^Stochastic Optimizer: Maximum iterations "
                      r"\(3\) reached and the optimization hasn't converged yet\.$") as caught:
        model.fit(X, y)
    assert caught[0].filename == __file__  # it points at the call
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.partial_fit(X, y)  # one epoch by design, as scikit-learn's: no warning
        model.set_params(tol=1e9, n_iter_no_change=1).fit(X, y)
        assert model.n_iter_ == 3  # stopped on tol in the last epoch: converged
    with pytest.warns(ConvergenceWarning):  # a warm start's own max_iter epochs
        model.set_params(warm_start=True, tol=0.0, n_iter_no_change=10).fit(X, y)


def test_predict_log_proba_is_the_log_of_predict_proba(fitted):
    model, X, y = fitted
    np.testing.assert_array_equal(model.predict_log_proba(X), np.log(model.predict_proba(X)))
    model_selection = pytest.importorskip("sklearn.model_selection")
    logs = model_selection.cross_val_predict(FastFNN((4,), **FAST), X, y, cv=2,
                                             method="predict_log_proba")
    assert logs.shape == (len(X), 3) and (logs <= 0).all()


def test_a_batch_size_above_the_sample_count_is_clipped_with_scikit_learns_warning():
    X, y = blobs(n=60)
    model = FastFNN((4,), batch_size=500, **FAST)
    for method in ("fit", "partial_fit"):
        with pytest.warns(UserWarning, match="^Got `batch_size` less than 1 or larger than sample "
                          "size. It is going to be clipped: batch_size=500, 60 training"):
            getattr(model, method)(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Got `batch_size`")
        model.set_params(batch_size=None).fit(X, y)  # full batch: nothing is clipped
        model.set_params(batch_size=60).fit(X, y)
        model.set_params(batch_size=500, solver="lbfgs", max_iter=5, tol=1e-2).fit(X, y)


def test_a_warm_refit_with_early_stopping_continues_the_best_score_and_its_count():
    """As scikit-learn's: the previous fit's best validation score (and the weights it restored)
    stay the best to beat, and its count of epochs without improvement goes on."""
    X, y = blobs(n=100)
    model = FastFNN((4,), early_stopping=True, warm_start=True, n_iter_no_change=2,
                    learning_rate_init=0.05, **{**FAST, "tol": 1e9})
    model.fit(X, y)
    assert model.n_iter_ == 4  # the first epoch beats -inf, three more do not beat it by tol
    best, best_score = copy.deepcopy(model.coefs_), model.best_validation_score_
    assert best_score == 1.0  # the refit's epoch cannot beat it
    model.fit(X, y)
    assert model.n_iter_ == 5 and model.best_validation_score_ == best_score
    for now, then in zip(model.coefs_, best):
        np.testing.assert_array_equal(now, then)  # the previous fit's best weights, restored
