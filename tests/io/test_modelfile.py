"""Model files: exact round trips, files of earlier versions, atomic writes, and a corpus of damaged
files."""

from __future__ import annotations

import io
import json
import os
import pathlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor
from fastfnn.io import modelfile
from fastfnn.io.modelfile import MAX_HEADER_BYTES, load_model, save_model

from ..conftest import blobs
from ..state_checks import assert_same_model, assert_same_state

FAST = dict(backend="numpy", random_state=0, max_iter=3, tol=0.0)

#: Files written by fastfnn 0.1.0 (commit 0c2ab8c), before the FittedState: the format is the same.
OLD_FILES = Path(__file__).parent.parent / "data"


def tiny_model(solver="sgd", hidden=()):
    X, y = blobs(n=40, n_features=2, n_classes=2)
    return FastFNN(hidden, solver=solver, **FAST).fit(X, y)


def round_trip(model, tmp_path):
    """``model`` saved and loaded again as an estimator."""
    return FastFNN.load(model.save(tmp_path / "m.npz"))


# ----------------------------------------------------------------------------------- round trips
LABELS = {
    "int": lambda y: y,
    "str": lambda y: np.array(["cat", "dog", "emu"])[y],
    "float": lambda y: y * 2.0 - 1.0,  # whole numbers: other floats are not class labels
    "object-str": lambda y: np.array(["a", "bb", "ccc"], dtype=object)[y],
    "bytes": lambda y: np.array([b"\x00e", b"cat", b"\xffdog"])[y],  # h5py's strings, any byte
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [(), (7,), (6, 5)])
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_round_trip_predicts_bitwise_identically(tmp_path, dtype, hidden, output, solver):
    X, y = blobs(n=90, n_features=5)
    model = FastFNN(hidden, output=output, solver=solver, dtype=dtype, **FAST).fit(X, y)
    path = tmp_path / "model.npz"
    assert save_model(model.fitted_state_, path) == path
    assert_same_state(load_model(path), model.fitted_state_)
    loaded = FastFNN.load(path)
    assert_same_model(model, loaded)
    proba = loaded.predict_proba(X)
    assert proba.dtype == np.dtype(dtype)
    assert proba.tobytes() == model.predict_proba(X).tobytes()


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_labels_keep_their_kind(tmp_path, kind):
    X, y = blobs(n=60, n_features=4)
    labels = LABELS[kind](y)
    model = FastFNN((4,), **FAST).fit(X, labels)
    loaded = round_trip(model, tmp_path)
    assert loaded.classes_.dtype == model.classes_.dtype
    assert list(loaded.classes_) == list(model.classes_)
    assert [type(c) for c in loaded.classes_] == [type(c) for c in model.classes_]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("kind,dtype", [("Categorical", "<U3"), ("Int64", "float64")])
def test_pandas_labels_round_trip_with_scikit_learns_dtype(tmp_path, kind, dtype):
    pd = pytest.importorskip("pandas")
    X, y = blobs(n=60, n_features=4)
    labels = (pd.Series(pd.Categorical(np.array(["cat", "dog", "emu"])[y])) if kind == "Categorical"
              else pd.Series(y, dtype="Int64"))
    model = FastFNN((4,), **FAST).fit(X, labels)
    loaded = round_trip(model, tmp_path)
    assert loaded.classes_.dtype == dtype
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_object_classes_of_an_earlier_fit_still_round_trip(tmp_path):
    """Object classes (those of a model fitted by fastfnn 0.3.0 or earlier on strings held as
    objects, or assigned) keep their dtype through save and load."""
    model = tiny_model()
    model.classes_ = np.array(["a", "b"], dtype=object)
    loaded = round_trip(model, tmp_path)
    assert loaded.classes_.dtype == object and list(loaded.classes_) == ["a", "b"]


def test_bool_labels(tmp_path):
    X, y = blobs(n=60, n_features=4, n_classes=2)
    model = FastFNN((4,), **FAST).fit(X, y.astype(bool))
    loaded = round_trip(model, tmp_path)
    assert loaded.classes_.dtype == np.bool_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_multilabel_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 6))
    Y = (X[:, :3] > 0).astype(int)
    model = FastFNN((8,), **FAST).fit(X, Y)
    loaded = round_trip(model, tmp_path)
    assert_same_model(model, loaded)
    assert loaded.predict_proba(X).tobytes() == model.predict_proba(X).tobytes()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_early_stopping_state_round_trips(tmp_path):
    X, y = blobs(n=120)
    model = FastFNN((5,), early_stopping=True, **{**FAST, "max_iter": 6}).fit(X, y)
    assert model.validation_scores_ is not None
    assert_same_model(model, round_trip(model, tmp_path))


def test_uint8_inputs_predict_identically(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, (50, 16), dtype=np.uint8)
    y = (X[:, 0] > 127).astype(int)
    model = FastFNN((6,), **FAST).fit(X, y)
    loaded = round_trip(model, tmp_path)
    assert loaded.predict_proba(X).tobytes() == model.predict_proba(X).tobytes()


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_after_load_continues_exactly(tmp_path, solver):
    X, y = blobs(n=100, n_features=6)
    model = FastFNN((7, 5), solver=solver, **FAST)
    model.partial_fit(X[:50], y[:50], classes=np.unique(y))
    loaded = round_trip(model, tmp_path)
    for _ in range(2):
        model.partial_fit(X, y)
        loaded.partial_fit(X, y)
    assert_same_model(model, loaded, timings=False)
    assert loaded.predict_proba(X).tobytes() == model.predict_proba(X).tobytes()


def test_warm_start_fit_after_load_continues_exactly(tmp_path):
    X, y = blobs(n=100, n_features=6)
    model = FastFNN((7,), warm_start=True, **FAST).fit(X, y)
    loaded = round_trip(model, tmp_path)
    model.fit(X, y)
    loaded.fit(X, y)
    assert_same_model(model, loaded, timings=False)


def test_solver_changed_after_fit_saves_without_optimizer_state(tmp_path):
    X, y = blobs(n=60)
    model = FastFNN((4,), solver="sgd", **FAST).fit(X, y)
    model.set_params(solver="adam")
    loaded = round_trip(model, tmp_path)
    assert loaded.fitted_state_.optimizer is None
    loaded.partial_fit(X, y)  # a fresh Adam state, as a new optimizer must start
    assert np.isfinite(loaded.loss_)


def test_generator_random_state_is_stored_as_none(tmp_path):
    X, y = blobs(n=60)
    model = FastFNN((4,), **{**FAST, "random_state": np.random.RandomState(0)}).fit(X, y)
    assert round_trip(model, tmp_path).random_state is None


@pytest.mark.parametrize("params,saved", [
    (dict(hidden_layer_sizes=np.array([4, 3])), dict(hidden_layer_sizes=(4, 3))),
    (dict(hidden_layer_sizes=range(3, 5)), dict(hidden_layer_sizes=(3, 4))),
    (dict(hidden_layer_sizes=(4, 3), dropout=np.array([0.1, 0.2])), dict(dropout=(0.1, 0.2))),
    (dict(hidden_layer_sizes=(4,), augment_shift=1, image_shape=np.array([4, 4])),
     dict(image_shape=(4, 4))),
])
def test_array_like_parameters_fit_takes_save_as_tuples(tmp_path, params, saved):
    X, y = blobs(n=60, n_features=16)
    model = FastFNN(**params, **FAST).fit(X, y)
    loaded = round_trip(model, tmp_path)
    assert {name: loaded.get_params()[name] for name in saved} == saved
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_backend_that_cannot_run_here_gives_way_to_auto_at_load(tmp_path, monkeypatch):
    """A model trained on a GPU predicts on a machine without one: its saved backend is replaced
    by "auto", with a warning that says so (numba stands in for a missing cupy here)."""
    from fastfnn.kernels import backend_class

    model = tiny_model(hidden=(4,)).set_params(backend="numba")
    path = model.save(tmp_path / "m.npz")
    assert FastFNN.load(path).backend == "numba"   # runs here: kept as saved
    X, _ = blobs(n=40, n_features=2, n_classes=2)
    expected = model.set_params(backend="numpy").predict_proba(X)
    monkeypatch.setattr(backend_class("numba"), "availability",
                        classmethod(lambda cls: (False, "numba is not installed")))
    monkeypatch.delenv("FASTFNN_BACKEND", raising=False)
    with pytest.warns(modelfile.BackendFallbackWarning,
                      match=r"m.npz: backend 'numba' is not available: numba is not installed; "
                            r"loaded with backend='auto' \(numpy here\) instead of 'numba'"):
        loaded = FastFNN.load(path)
    assert loaded.backend == "auto"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_bytes_paths_save_as_they_load(tmp_path):
    model = tiny_model()
    path = os.fsencode(tmp_path / "m.npz")
    assert model.save(path) == path
    assert_same_model(FastFNN.load(path), model)


def test_name_is_used_as_given_and_permissions_follow_the_umask(tmp_path):
    model = tiny_model()
    path = tmp_path / "model.bin"
    assert model.save(str(path)) == str(path)
    assert os.listdir(tmp_path) == ["model.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert load_model(str(path)).coefs[0].shape == model.coefs_[0].shape


# ----------------------------------------------------------------------- files of earlier versions
def test_a_model_file_of_0_1_0_loads_as_the_same_fit_today(tmp_path):
    X, y = blobs(n=60, n_features=4)
    # version 1's init="auto" was He for ReLU: the file is read with the init its weights came from
    today = FastFNN((5,), solver="sgd", init="he", **FAST).fit(X, y)
    old = FastFNN.load(OLD_FILES / "model-0.1.0-sgd.npz")
    assert_same_model(today, old, timings=False)
    assert old.predict_proba(X).tobytes() == today.predict_proba(X).tobytes()
    old.partial_fit(X, y)  # its optimizer state continues
    today.partial_fit(X, y)
    assert_same_model(today, old, timings=False)


def test_an_early_stopping_adam_file_of_0_1_0_with_string_labels_loads():
    X, y = blobs(n=60, n_features=4)
    labels = np.array(["cat", "dog", "emu"])[y]
    today = FastFNN((5, 4), solver="adam", activation="logistic", dtype="float64", init="xavier",
                    early_stopping=True, **{**FAST, "max_iter": 4}).fit(X, labels)
    old = FastFNN.load(OLD_FILES / "model-0.1.0-adam-early-stopping.npz")
    # the file was trained on an Intel CPU (OpenBLAS's SkylakeX kernels); on an AMD EPYC
    # (Haswell kernels) two weights of this fit differ from it in the last bit (2.7e-16)
    assert_same_model(today, old, timings=False, rtol=1e-12)
    assert old.fitted_state_.activation == "sigmoid" and old.validation_scores_ is not None


def test_a_file_without_feature_names_and_no_improvement_count_loads(saved, tmp_path):
    """Version 2 files, written before the two keys existed: no feature names, the count starts
    at 0."""
    _, _, header, arrays = saved
    header = json.loads(json.dumps(header))
    assert header["format_version"] == 3
    del header["feature_names"], header["no_improvement"]
    header["format_version"] = 2
    state = load_model(write_archive(tmp_path / "m.npz", header, arrays))
    assert state.feature_names is None and state.no_improvement == 0


def test_feature_names_and_no_improvement_count_round_trip(tmp_path):
    X, y = blobs(n=40, n_features=2, n_classes=2)
    model = FastFNN((3,), **FAST).fit(X, y)
    model.feature_names_in_ = np.array(["x0", "Größe"], dtype=object)
    state = load_model(model.save(tmp_path / "m.npz"))
    assert state.feature_names.dtype == object and list(state.feature_names) == ["x0", "Größe"]
    assert state.no_improvement == model.fitted_state_.no_improvement


# -------------------------------------------------------------------------------- refusing to save
def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="unfitted"):
        FastFNN().save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("classes", [
    np.array([object(), object()], dtype=object),
    np.array([b"a", b"b"], dtype=object),   # a bytes array (dtype S) saves; loose bytes do not
    np.array([(1, 2), "x"], dtype=object),
], ids=["objects", "object-bytes", "tuple"])
def test_classes_json_cannot_hold_are_refused(tmp_path, classes):
    model = tiny_model()
    model.classes_ = classes
    with pytest.raises(ValueError, match="cannot save classes holding"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_non_finite_weights_are_not_saved(tmp_path):
    model = tiny_model()
    model.coefs_[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------------- atomic writes
class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("stage", ["savez", "fsync", "replace"])
def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path, monkeypatch, stage):
    path = tmp_path / "m.npz"
    path.write_bytes(b"the previous model")
    real_savez = np.savez

    def half_savez(f, **arrays):
        real_savez(f, **arrays)
        f.truncate(100)
        raise Boom("disk full")

    def fail(*args, **kwargs):
        raise Boom(stage)

    model = tiny_model()
    target = {"savez": (modelfile.np, "savez", half_savez), "fsync": (os, "fsync", fail),
              "replace": (os, "replace", fail)}[stage]
    monkeypatch.setattr(*target)
    with pytest.raises(Boom):
        model.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    assert path.read_bytes() == b"the previous model"


def test_missing_folder_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        tiny_model().save(tmp_path / "nowhere" / "m.npz")


def test_missing_file_is_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_model(path)


# --------------------------------------------------------------------------- damaged file corpus
def read_archive(path):
    """(header dict, {name: array}) of a saved model, read independently of load_model."""
    with zipfile.ZipFile(path) as zf:
        arrays = {name[:-4]: np.lib.format.read_array(zf.open(name), allow_pickle=False)
                  for name in zf.namelist()}
    header = json.loads(arrays.pop("header.json").tobytes())
    return header, arrays


def npy(array, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=allow_pickle)
    return buf.getvalue()


def write_archive(path, header, arrays, raw=None):
    """Write a model archive: ``header`` (dict or bytes), arrays, and raw .npy entry bytes."""
    if isinstance(header, dict):
        header = json.dumps(header).encode()
    entries = {"header.json": npy(np.frombuffer(header, dtype=np.uint8)),
               **{name: npy(a) for name, a in arrays.items()}, **(raw or {})}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(f"{name}.npy", data)
    return path


def expect_value_error(path):
    """load_model raises ValueError naming the file and saying what was expected."""
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "expected" in message, message
    return message


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved model (2-3-2, SGD state), its bytes, header and arrays."""
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    tiny_model(hidden=(3,)).save(path)
    header, arrays = read_archive(path)
    return path, path.read_bytes(), header, arrays


def test_every_truncation_is_a_value_error(saved, tmp_path):
    _, data, _, _ = saved
    assert len(data) < 6000  # small enough to try every length
    for n in range(len(data)):
        path = tmp_path / f"cut{n}.npz"
        path.write_bytes(data[:n])
        expect_value_error(path)
        path.unlink()


def test_flipped_bits_are_caught_or_harmless(saved, tmp_path):
    original_path, data, _, _ = saved
    X = np.linspace(-1, 1, 8).reshape(4, 2)
    expected = FastFNN.load(original_path).predict_proba(X)
    rng = np.random.default_rng(0)
    for offset in range(0, len(data), 3):
        damaged = bytearray(data)
        damaged[offset] ^= 1 << int(rng.integers(8))
        path = tmp_path / f"flip{offset}.npz"
        path.write_bytes(bytes(damaged))
        try:
            model = FastFNN.load(path)
        except ValueError:
            continue
        finally:
            path.unlink()
        # Only bytes no reader looks at (timestamps, the local copies of CRCs) may change silently.
        assert model.predict_proba(X).tobytes() == expected.tobytes(), offset


def _set(key, value):
    return lambda h: h.__setitem__(key, value)


HEADER_CASES = {
    "wrong format name": _set("format", "pickle"),
    "wrong version": _set("format_version", 4),
    "version as bool": _set("format_version", True),
    "missing key": lambda h: h.pop("history"),
    "extra key": _set("exec", "import os"),
    "architecture too short": _set("architecture", [2]),
    "architecture not ints": _set("architecture", [2, "2", 2]),
    "architecture zero": _set("architecture", [2, 0, 2]),
    "wrong layer chain": _set("architecture", [2, 2, 3]),
    "layers swapped": _set("architecture", [3, 2, 2]),
    "shape product overflows int64": _set("architecture", [2**62, 2**62, 2]),
    "huge layer": _set("architecture", [2, 10**9, 2]),
    "a million layers": _set("architecture", [2] * 1_000_000),
    "wrong dtype": _set("dtype", "float16"),
    "dtype of the other width": _set("dtype", "float64"),  # the weights are float32
    "object dtype": _set("dtype", "object"),
    "unknown activation": _set("activation", "__import__('os')"),
    "unknown output": _set("output", "linear"),
    "multilabel softmax": lambda h: h.update(multilabel=True),
    "multilabel not bool": _set("multilabel", "yes"),
    "classes count": lambda h: h["classes"].update(values=[0, 1, 2]),
    "classes unsorted": lambda h: h["classes"].update(values=[1, 0]),
    "classes duplicated": lambda h: h["classes"].update(values=[1, 1]),
    "classes out of dtype range": lambda h: h["classes"].update(values=[0, 2**70]),
    "classes object dtype of lists": lambda h: h["classes"].update(dtype="object",
                                                                  values=[[1], [2]]),
    "classes void dtype": lambda h: h["classes"].update(dtype="V8"),
    "classes pickle dtype": lambda h: h["classes"].update(dtype="O"),
    "classes mixed types": lambda h: h["classes"].update(dtype="object", values=["a", 1]),
    "params unknown": lambda h: h["params"].update(evil=1),
    "params bad value": lambda h: h["params"].update(learning_rate_init=-1),
    "params bad type": lambda h: h["params"].update(max_iter="many"),
    "params bool as string": lambda h: h["params"].update(shuffle="no"),
    "params nested": lambda h: h["params"].update(hidden_layer_sizes=[[2]]),
    "params not a dict": _set("params", [1, 2]),
    "optimizer groups for adam": lambda h: h["optimizer"].update(groups=4),
    "optimizer negative t": lambda h: h["optimizer"].update(t=-1),
    "history ragged": lambda h: h["history"]["loss"].append(0.5),
    "history empty": lambda h: h.update(history={k: [] for k in h["history"]}),
    "history string": lambda h: h["history"]["loss"].__setitem__(0, "0.5"),
    "n_iter negative": _set("n_iter", -1),
    "best_loss string": _set("best_loss", "low"),
    "validation_scores dict": _set("validation_scores", {}),
    "feature_names too few": _set("feature_names", ["a"]),
    "feature_names not strings": _set("feature_names", [1, 2]),
    "feature_names a string": _set("feature_names", "ab"),
    "no_improvement negative": _set("no_improvement", -1),
    "no_improvement a float": _set("no_improvement", 1.0),
    "checkpoint section a list": _set("checkpoint", []),
    "checkpoint section without has_best": _set("checkpoint", {"seed": 1}),
    "checkpoint has_best as string": _set("checkpoint", {"has_best": "yes"}),
    "checkpoint promises best weights it lacks": _set("checkpoint", {"has_best": True}),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_header_perturbations_are_value_errors(saved, tmp_path, case):
    _, _, header, arrays = saved
    header = json.loads(json.dumps(header))
    HEADER_CASES[case](header)
    expect_value_error(write_archive(tmp_path / "m.npz", header, arrays))


ARRAY_CASES = {
    "NaN weight": lambda a: a["coef_0"].__setitem__((0, 0), np.nan),
    "inf bias": lambda a: a["intercept_1"].__setitem__(0, np.inf),
    "NaN optimizer state": lambda a: a["opt_0_0"].__setitem__((0, 0), np.nan),
    "weights of another dtype": lambda a: a.update(coef_0=a["coef_0"].astype(np.float64)),
    "integer weights": lambda a: a.update(coef_0=a["coef_0"].astype(np.int32)),
    "transposed weights": lambda a: a.update(coef_0=np.ascontiguousarray(a["coef_0"].T)),
    "fortran order": lambda a: a.update(coef_1=np.asfortranarray(a["coef_1"])),
    "bias as matrix": lambda a: a.update(intercept_0=a["intercept_0"][None, :]),
    "missing entry": lambda a: a.pop("intercept_1"),
    "missing optimizer entry": lambda a: a.pop("opt_1_1"),
    "extra entry": lambda a: a.update(coef_2=np.zeros((2, 2), np.float32)),
    "renamed entry": lambda a: a.update(coef_00=a.pop("coef_0")),
    "structured dtype": lambda a: a.update(
        intercept_0=np.zeros(2, dtype=[("x", np.float32)])),
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_array_perturbations_are_value_errors(saved, tmp_path, case):
    _, _, header, arrays = saved
    arrays = {k: v.copy() for k, v in arrays.items()}
    ARRAY_CASES[case](arrays)
    expect_value_error(write_archive(tmp_path / "m.npz", header, arrays))


def touch(path):
    pathlib.Path(path).touch()


class Payload:
    """Pickled, it would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return touch, (self.marker,)


def test_pickle_payload_is_never_unpickled(saved, tmp_path):
    _, _, header, arrays = saved
    marker = tmp_path / "pwned"
    payload = np.array([Payload(str(marker))], dtype=object)
    for name in ("coef_0", "header.json"):
        raw = {name: npy(payload, allow_pickle=True)}
        kept = {k: v for k, v in arrays.items() if k != name}
        path = write_archive(tmp_path / f"{name}.npz", header, kept, raw)
        expect_value_error(path)
    assert not marker.exists()


def test_lying_npy_header_cannot_make_it_allocate(saved, tmp_path):
    _, _, header, arrays = saved
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 2**40)})
    lying = buf.getvalue() + arrays["coef_0"].tobytes()
    kept = {k: v for k, v in arrays.items() if k != "coef_0"}
    header = json.loads(json.dumps(header))
    header["architecture"][:2] = [2**40, 2**40]
    expect_value_error(write_archive(tmp_path / "a.npz", header, kept, {"coef_0": lying}))
    # A header shape matching the (lying) architecture is still bounded by the entry's real size.
    header["architecture"][:2] = [2, 2]
    expect_value_error(write_archive(tmp_path / "b.npz", header, kept, {"coef_0": lying}))


def test_oversized_header_is_refused(saved, tmp_path):
    _, _, header, arrays = saved
    big = json.dumps({**header, "pad": "x" * MAX_HEADER_BYTES}).encode()
    assert "at most" in expect_value_error(write_archive(tmp_path / "m.npz", big, arrays))


@pytest.mark.parametrize("raw", [
    b"not json", b"[1, 2]", b'{"format": NaN}', b"\xff\xfe", b"[" * 100000,
    b'{"format": "fastfnn", "format": "fastfnn"}',
], ids=["text", "list", "nan", "not-utf8", "deep", "duplicate-key"])
def test_malformed_json_header(saved, tmp_path, raw):
    _, _, _, arrays = saved
    expect_value_error(write_archive(tmp_path / "m.npz", raw, arrays))


def test_header_entry_of_floats(saved, tmp_path):
    _, _, header, arrays = saved
    raw = {"header.json": npy(np.frombuffer(json.dumps(header).encode(), np.uint8).astype(float))}
    path = write_archive(tmp_path / "m.npz", header, arrays, raw)
    expect_value_error(path)


def test_compressed_duplicate_and_non_zip_files(saved, tmp_path):
    path, data, header, arrays = saved
    compressed = tmp_path / "compressed.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(compressed, "w",
                                                        zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    expect_value_error(compressed)
    duplicate = write_archive(tmp_path / "dup.npz", header, arrays)
    with zipfile.ZipFile(duplicate, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("coef_0.npy", npy(arrays["coef_0"]))
    expect_value_error(duplicate)
    single = tmp_path / "array.npy"
    np.save(single, arrays["coef_0"])
    expect_value_error(single)
    empty_zip = tmp_path / "empty.npz"
    zipfile.ZipFile(empty_zip, "w").close()
    expect_value_error(empty_zip)


def test_missing_params_take_their_defaults(saved, tmp_path):
    _, _, header, arrays = saved
    header = json.loads(json.dumps(header))
    del header["params"]["epsilon"]
    model = FastFNN.load(write_archive(tmp_path / "m.npz", header, arrays))
    assert model.epsilon == FastFNN().epsilon


# ------------------------------------------------------------------ regressors, weights, schedules
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("targets", ["1-D", "2-D"])
def test_regressor_round_trip(tmp_path, loss, targets):
    X, y = blobs(n=60, n_features=4)
    Y = np.stack([y, X[:, 0] ** 2], axis=1).astype(float)
    Y = Y[:, 0] if targets == "1-D" else Y
    model = FastFNNRegressor(loss, (5,), solver="sgd", learning_rate="invscaling",
                             **FAST).fit(X, Y)
    loaded = FastFNNRegressor.load(model.save(tmp_path / "r.npz"))
    assert_same_model(model, loaded)
    assert loaded.predict(X).tobytes() == model.predict(X).tobytes()
    loaded.partial_fit(X, Y)  # continues sgd's step size and velocities
    model.partial_fit(X, Y)
    assert_same_model(model, loaded, timings=False)


def test_the_estimator_kind_is_checked_at_load(tmp_path):
    X, y = blobs(n=60, n_features=4)
    regressor = FastFNNRegressor(hidden_layer_sizes=(3,), **FAST).fit(X, y.astype(float))
    regressor = regressor.save(tmp_path / "r.npz")
    with pytest.raises(ValueError, match="holds a FastFNNRegressor"):
        FastFNN.load(regressor)
    with pytest.raises(ValueError, match="holds a FastFNN, expected a FastFNNRegressor"):
        FastFNNRegressor.load(tiny_model().save(tmp_path / "c.npz"))


def test_class_weight_dict_and_lbfgs_round_trip(tmp_path):
    X, y = blobs(n=60, n_features=4)
    labels = np.array(["cat", "dog", "emu"])[y]
    model = FastFNN((4,), solver="lbfgs", class_weight={"cat": 2.0, "emu": 0.5},
                    **FAST).fit(X, labels)
    loaded = round_trip(model, tmp_path)
    assert loaded.class_weight == {"cat": 2.0, "emu": 0.5}
    assert_same_model(model, loaded)
    assert loaded.fitted_state_.optimizer is None


def test_n_iter_no_change_inf_round_trips(tmp_path):
    """scikit-learn's "never stop early"; JSON has no infinity, the file spells it "inf"."""
    X, y = blobs(n=60, n_features=4)
    model = FastFNN((3,), n_iter_no_change=np.inf, **FAST).fit(X, y)
    loaded = round_trip(model, tmp_path)
    assert loaded.n_iter_no_change == np.inf and model.n_iter_ == 3
