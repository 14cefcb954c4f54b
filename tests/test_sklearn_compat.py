"""The exceptions and warnings shared with scikit-learn, with it installed and without it, and
scikit-learn's metadata routing (set_fit_request, ...) through its meta-estimators."""

from __future__ import annotations

import pickle
import sys
import warnings

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor, sklearn_compat


def test_without_scikit_learn_the_classes_are_our_own():
    made = sklearn_compat._derived.__wrapped__(sklearn_compat.NotFittedError,
                                               "no_such_module_here", "NotFittedError")
    assert made is sklearn_compat.NotFittedError
    assert issubclass(made, ValueError) and issubclass(made, AttributeError)


def test_a_warning_or_an_error_does_not_import_scikit_learn():
    """Importing scikit-learn takes most of a second: a fit that ends at max_iter (its
    ConvergenceWarning) or a predict before fit (its NotFittedError) in a program that has not
    imported it leaves it unimported, and raises or warns FastFNN's own classes."""
    import subprocess
    code = """if True:
        import sys, warnings
        import numpy as np
        from fastfnn import FastFNN, NotFittedError
        from fastfnn.sklearn_compat import ConvergenceWarning
        X = np.random.default_rng(0).standard_normal((40, 3)); y = np.arange(40) % 2
        try:
            FastFNN(backend="numpy").predict(X)
        except NotFittedError as exc:
            assert type(exc) is NotFittedError, type(exc)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            FastFNN(hidden_layer_sizes=(4,), max_iter=1, backend="numpy").fit(X, y)
        assert [w.category for w in caught] == [ConvergenceWarning], caught
        assert "sklearn" not in sys.modules
        """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_with_scikit_learn_they_are_also_its_classes():
    exceptions = pytest.importorskip("sklearn.exceptions")
    error = sklearn_compat.not_fitted("not fitted")
    assert isinstance(error, (exceptions.NotFittedError, sklearn_compat.NotFittedError))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sklearn_compat.warn_data_conversion("converted")
        sklearn_compat.warn_convergence("not converged")
    assert issubclass(caught[0].category, exceptions.DataConversionWarning)
    assert issubclass(caught[1].category, exceptions.ConvergenceWarning)


def test_not_fitted_error_survives_pickling():
    """joblib workers send exceptions back pickled; the class made with scikit-learn's pickles."""
    with pytest.raises(sklearn_compat.NotFittedError) as info:
        FastFNN().predict(np.zeros((1, 3)))
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and str(again) == str(info.value)


# ------------------------------------------------------------------ metadata routing (QA bug6)
ESTIMATORS = {"FastFNN": FastFNN, "FastFNNRegressor": FastFNNRegressor}
#: scikit-learn's MLP each of ours stands in for.
THEIRS = {"FastFNN": "MLPClassifier", "FastFNNRegressor": "MLPRegressor"}


@pytest.fixture
def routing():
    """scikit-learn's metadata routing enabled for one test (the global config restored after)."""
    sklearn = pytest.importorskip("sklearn")
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def weighted_data(n=200, seed=0):
    """X (n, 4), binary labels, real targets and sample weights that change every fit."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] > 0).astype(int), X @ [1.0, -2.0, 0.5, 0.0], rng.uniform(0.0, 3.0, n)


def small(kind, **params):
    """A quick deterministic estimator of ``kind`` (a key of ESTIMATORS)."""
    return ESTIMATORS[kind](hidden_layer_sizes=(5,), max_iter=20, random_state=0, backend="numpy",
                            dtype="float64", **params)


def target(kind, y, t):
    return y if kind == "FastFNN" else t


def test_bug6_repro_cross_validate_with_fit_request_only(routing):
    """QA bug6's script: fit asks for sample_weight, score does not; MLPClassifier's works."""
    from sklearn.model_selection import cross_validate
    X, y, _, w = weighted_data()
    model = FastFNN(max_iter=20, random_state=0, backend="numpy")
    assert model.set_fit_request(sample_weight=True) is model
    assert model.set_score_request(sample_weight=False) is model
    scores = cross_validate(model, X, y, cv=2, params={"sample_weight": w})["test_score"]
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_cross_validate_routes_sample_weight_to_fit_and_score(routing, kind):
    from sklearn.model_selection import cross_validate
    X, y, t, w = weighted_data()
    y = target(kind, y, t)
    model = small(kind).set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
    result = cross_validate(model, X, y, cv=2, params={"sample_weight": w},
                            return_estimator=True, return_indices=True)
    splits = zip(result["indices"]["train"], result["indices"]["test"])
    for fitted, score, (train, test) in zip(result["estimator"], result["test_score"], splits):
        alone = small(kind).fit(X[train], y[train], sample_weight=w[train])
        for theirs, ours in zip(fitted.coefs_, alone.coefs_):
            np.testing.assert_array_equal(theirs, ours)
        assert score == alone.score(X[test], y[test], sample_weight=w[test])
        assert score != alone.score(X[test], y[test])


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_pipeline_routes_sample_weight_to_fit_and_score(routing, kind):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y, t, w = weighted_data()
    y = target(kind, y, t)
    scaler = StandardScaler().set_fit_request(sample_weight=False)
    model = small(kind).set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
    pipe = make_pipeline(scaler, model).fit(X, y, sample_weight=w)
    alone = small(kind).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    for theirs, ours in zip(pipe[-1].coefs_, alone.coefs_):
        np.testing.assert_array_equal(theirs, ours)
    assert pipe.score(X, y, sample_weight=w) == pipe[-1].score(pipe[0].transform(X), y,
                                                                sample_weight=w)
    assert pipe.score(X, y, sample_weight=w) != pipe.score(X, y)


def test_grid_search_routes_sample_weight_and_its_clones_keep_the_request(routing):
    from sklearn.model_selection import GridSearchCV
    X, y, _, w = weighted_data()
    model = small("FastFNN").set_fit_request(sample_weight=True)
    model.set_score_request(sample_weight=True)
    search = GridSearchCV(model, {"alpha": [1e-4, 1e-1]}, cv=2).fit(X, y, sample_weight=w)
    best = small("FastFNN", alpha=search.best_params_["alpha"]).fit(X, y, sample_weight=w)
    for theirs, ours in zip(search.best_estimator_.coefs_, best.coefs_):
        np.testing.assert_array_equal(theirs, ours)
    assert search.best_estimator_.get_metadata_routing().fit.requests == {"sample_weight": True}


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_unrequested_sample_weight_raises_scikit_learns_error(routing, kind):
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.model_selection import cross_validate
    X, y, t, w = weighted_data()
    with pytest.raises(UnsetMetadataPassedError, match=rf"{kind}\.set_fit_request"):
        cross_validate(small(kind), X, target(kind, y, t), cv=2, params={"sample_weight": w})


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_requests_and_their_defaults_are_the_mlps(routing, kind):
    """The same set_{method}_request methods, taking the same metadata, as MLPClassifier and
    MLPRegressor, each unrequested (None) at first."""
    neural_network = pytest.importorskip("sklearn.neural_network")
    ours, theirs = small(kind), getattr(neural_network, THEIRS[kind])()
    methods = ("fit", "partial_fit", "predict", "predict_proba", "predict_log_proba",
               "decision_function", "score", "split", "transform", "inverse_transform")
    assert ({m: getattr(ours.get_metadata_routing(), m).requests for m in methods}
            == {m: getattr(theirs.get_metadata_routing(), m).requests for m in methods})
    setters = [name for name in dir(theirs) if name.startswith("set_") and "request" in name]
    assert setters == [name for name in dir(ours) if name.startswith("set_") and "request" in name]
    from sklearn.utils.metadata_routing import UNCHANGED
    assert sklearn_compat.UNCHANGED == UNCHANGED


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_a_request_survives_clone_set_params_and_pickling_and_is_no_parameter(routing, kind):
    from sklearn.base import clone
    model = small(kind)
    model.set_fit_request(sample_weight="fit_weight").set_score_request(sample_weight=False)
    model.set_partial_fit_request(sample_weight=True)
    expected = {"fit": {"sample_weight": "fit_weight"}, "score": {"sample_weight": False},
                "partial_fit": {"sample_weight": True}}
    if kind == "FastFNN":
        model.set_partial_fit_request(classes=True)
        expected["partial_fit"]["classes"] = True
    assert model.get_params() == small(kind).get_params()
    model.set_params(alpha=0.5)
    for copy in (model, clone(model), pickle.loads(pickle.dumps(model))):
        routing_ = copy.get_metadata_routing()
        assert {m: getattr(routing_, m).requests for m in expected} == expected
        assert copy.alpha == 0.5
    # one estimator's request is its own
    assert small(kind).get_metadata_routing().fit.requests == {"sample_weight": None}


def test_set_request_refuses_what_scikit_learn_refuses():
    sklearn = pytest.importorskip("sklearn")
    model = FastFNN()
    with pytest.raises(RuntimeError, match="enable_metadata_routing=True"):
        model.set_fit_request(sample_weight=True)
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="valid identifier"):
            model.set_fit_request(sample_weight=3)
        with pytest.raises(TypeError):
            model.set_fit_request(classes=True)
        # a refused value leaves the request as it was
        assert model.get_metadata_routing().fit.requests == {"sample_weight": None}


def test_without_scikit_learn_the_estimators_work_and_routing_names_it(monkeypatch):
    # every scikit-learn module made unimportable, those already imported included
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)
    X, y, _, _ = weighted_data(n=40)
    model = small("FastFNN").fit(X, y)
    assert model.score(X, y) > 0.5
    for call in (model.get_metadata_routing, lambda: model.set_fit_request(sample_weight=True)):
        with pytest.raises(ImportError, match="scikit-learn"):
            call()
