"""ONNX export (fastfnn.onnx_export): the graph passes the checker and, run by onnxruntime, gives
what predict and predict_proba give (MNIST test set: within 2e-6), for every output kind, input
dtype and class type; files are written whole or not at all; Pipelines convert through skl2onnx."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn import FastFNN
from fastfnn.onnx_export import register_skl2onnx, to_onnx

from .conftest import blobs

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


def _run(proto, X):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(session.get_outputs(), session.run(None, {"X": X}))}


def _fit(X, y, **params):
    params = {"hidden_layer_sizes": (12, 8), **params}
    return FastFNN(max_iter=3, backend="numpy", random_state=0, **params).fit(X, y)


@pytest.mark.parametrize("input_dtype", ["uint8", None])
def test_mnist_probabilities_match_predict_proba(mnist_uint8, input_dtype):
    (X, y), (X_test, _) = mnist_uint8
    model = FastFNN(hidden_layer_sizes=(64,), max_iter=1, backend="numpy", random_state=0) \
        .fit(X[:6000], y[:6000])
    X_in = X_test if input_dtype == "uint8" else (X_test / 255.0).astype(np.float32)
    out = _run(to_onnx(model, input_dtype=input_dtype), X_in)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X_in), rtol=0, atol=2e-6)
    np.testing.assert_array_equal(out["label"], model.predict(X_in))


@pytest.mark.parametrize("params", [dict(output="sigmoid"), dict(activation="tanh"),
                                    dict(activation="logistic", dtype="float64"),
                                    dict(activation="identity", hidden_layer_sizes=())])
def test_outputs_activations_and_dtypes(params):
    X, y = blobs(n=200)
    model = _fit(X, y, **params)
    X_in = X.astype(model.coefs_[0].dtype)
    out = _run(to_onnx(model), X_in)
    assert out["probabilities"].dtype == model.coefs_[0].dtype
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X_in), rtol=0, atol=2e-6)
    np.testing.assert_array_equal(out["label"], model.predict(X_in))


def test_string_classes_and_float64_inputs_to_a_float32_model():
    X, y = blobs(n=200)
    names = np.array(["ant", "bee", "cat"])[y]
    model = _fit(X, names)
    out = _run(to_onnx(model, input_dtype="float64"), X)
    np.testing.assert_array_equal(out["label"], model.predict(X))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=2e-6)


@pytest.mark.parametrize("classes", [
    np.array([1, 2**63 + 5, 2**64 - 1], np.uint64),     # past int64: exported as uint64
    np.array([3, -7, 2**40], dtype=object),              # integers in an object array
    np.array([-3, 0, 9], np.int32),
])
def test_integer_classes_come_out_as_predict_gives_them(classes):
    X, y = blobs(n=200)
    model = _fit(X, classes[y])
    out = _run(to_onnx(model, input_dtype="float64"), X)
    assert out["label"].dtype == (np.uint64 if classes.dtype == np.uint64 else np.int64)
    np.testing.assert_array_equal(out["label"].astype(object), model.predict(X).astype(object))


def test_integer_classes_no_onnx_integer_holds_are_refused():
    X, y = blobs(n=200)
    model = _fit(X, np.array([-1, 0, 2**64 - 1], dtype=object)[y])
    with pytest.raises(ValueError, match="integers from -1 to 18446744073709551615"):
        to_onnx(model)


def test_multilabel_indicators():
    X, y = blobs(n=200)
    Y = np.stack([y == 0, y != 1, y == 2], axis=1).astype(np.int64)
    model = _fit(X, Y, output="sigmoid")
    out = _run(to_onnx(model, input_dtype="float64"), X)
    np.testing.assert_array_equal(out["label"], model.predict(X))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=2e-6)


def test_written_file_loads_and_a_refused_export_writes_nothing(tmp_path):
    X, y = blobs(n=100)
    path = tmp_path / "model.onnx"
    proto = to_onnx(_fit(X, y), path)
    assert onnx.load(str(path)) == proto
    with pytest.raises(ValueError, match="input_dtype"):
        to_onnx(_fit(X, y), tmp_path / "bad.onnx", input_dtype="int32")
    with pytest.raises(ValueError, match="not fitted"):
        to_onnx(FastFNN(), tmp_path / "unfitted.onnx")
    with pytest.raises(FileNotFoundError) as caught:
        to_onnx(_fit(X, y), tmp_path / "missing" / "m.onnx")
    assert str(caught.value).startswith(f"{tmp_path / 'missing' / 'm.onnx'}: folder ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_pipeline_converts_through_skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = blobs(n=300)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), FastFNN(hidden_layer_sizes=(16,), max_iter=5,
                                                   backend="numpy", random_state=0)).fit(X, y)
    register_skl2onnx(FastFNN)
    out = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), atol=2e-6)
    big = np.array([1, 2, 2**63 + 5], np.uint64)      # uint64 labels keep their type
    pipe.fit(X, big[y])
    out = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert out["label"].dtype == np.uint64
    np.testing.assert_array_equal(out["label"], pipe.predict(X))


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("outputs", [1, 3])
def test_regressors(loss, outputs):
    from fastfnn import FastFNNRegressor

    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 6))
    Y = np.abs(X[:, :outputs] + 0.1 * rng.standard_normal((200, outputs)))
    y = Y[:, 0] if outputs == 1 else Y
    model = FastFNNRegressor(hidden_layer_sizes=(10,), loss=loss, max_iter=5, backend="numpy",
                             random_state=0).fit(X, y)
    out = _run(to_onnx(model, input_dtype="float64"), X)
    assert out["variable"].shape == model.predict(X).shape
    np.testing.assert_allclose(out["variable"], model.predict(X), rtol=2e-6, atol=2e-6)


def test_regressor_pipeline_converts_through_skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastfnn import FastFNNRegressor

    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 5)).astype(np.float32)
    y = X @ rng.standard_normal(5)
    pipe = make_pipeline(StandardScaler(), FastFNNRegressor(hidden_layer_sizes=(8,), max_iter=5,
                                                            backend="numpy", random_state=0))
    pipe.fit(X, y)
    register_skl2onnx(FastFNNRegressor)
    out = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_allclose(out["variable"].ravel(), pipe.predict(X), rtol=1e-5, atol=1e-5)
