"""The ``fastfnn`` command line: train, evaluate, plot, predict, info and bench; one-line errors.

Most tests call ``main()`` in-process on a tiny synthetic MNIST-shaped folder (the official MD5 table
is patched to accept it); two run the real command in a subprocess on the real MNIST when
$FASTFNN_DATA has it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

from fastfnn import FastFNN, datasets
from fastfnn.cli import main
from fastfnn.io.idx import write_idx
from fastfnn.sklearn_compat import ConvergenceWarning

from .conftest import blobs

COMMAND = [sys.executable, "-c", "from fastfnn.cli import main; raise SystemExit(main())"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_digits(n, seed):
    """MNIST-shaped uint8 images whose class (0-9) is the position of a bright 6x6 square."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.uint8) % 10
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        row, col = 2 + 13 * (k // 5), 1 + 5 * (k % 5)
        images[i, row:row + 6, col:col + 6] = 255
    return images, labels


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    """A folder of the four MNIST IDX files holding synthetic data, and their MD5s."""
    folder = tmp_path_factory.mktemp("mnist")
    (train_x, train_y), (test_x, test_y) = synthetic_digits(300, 0), synthetic_digits(100, 1)
    arrays = {"train_images": train_x, "train_labels": train_y,
              "test_images": test_x, "test_labels": test_y}
    md5 = {}
    for role, array in arrays.items():
        name = datasets.MNIST_FILES[role]
        write_idx(folder / name, array)
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return folder, md5


@pytest.fixture
def mnist(synthetic_dir, monkeypatch):
    """The synthetic folder, accepted by load_mnist for this test."""
    folder, md5 = synthetic_dir
    for name, digest in md5.items():
        monkeypatch.setitem(datasets.MNIST_MD5, name, digest)
    return folder


def train_args(mnist, out, *extra):
    return ["train", "--data", str(mnist), "--no-download", "--backend", "numpy", "--hidden",
            "16", "--epochs", "3", "--out", str(out), *extra]


def assert_one_line_error(capsys, status, expected_status, *fragments):
    captured = capsys.readouterr()
    assert status == expected_status, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastfnn: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# ----------------------------------------------------------------------------------------- train
def test_train_logs_saves_and_evaluate_reads_it(mnist, tmp_path, capsys):
    out, log = tmp_path / "model.npz", tmp_path / "log.jsonl"
    assert main(train_args(mnist, out, "--log-json", str(log))) == 0
    stdout = capsys.readouterr().out
    assert "training 784-16-10 relu on 300 MNIST images: backend numpy" in stdout
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}/3  loss " in stdout
    assert "test accuracy" in stdout and f"model saved to {out}" in stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(set(r) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
               for r in records)

    model = FastFNN.load(out)
    assert model.verbose is False and "_print_epoch" not in vars(model)
    assert [r["loss"] for r in records] == model.loss_curve_
    _, (X_test, y_test) = datasets.load_mnist(mnist, dtype=np.uint8)
    accuracy = model.score(X_test, y_test)
    assert f"test accuracy {accuracy:.4f}" in stdout

    assert main(["evaluate", str(out), "--data", str(mnist), "--no-download"]) == 0
    stdout = capsys.readouterr().out
    assert f"accuracy {accuracy:.4f} ({round(accuracy * 100)}/100)" in stdout
    assert "784-16-10 relu, softmax output, float32; backend numpy" in stdout
    assert "true \\ predicted" in stdout
    matrix = [line.split()[1:] for line in stdout.splitlines()[-10:]]
    assert sum(int(c) for row in matrix for c in row) == 100


def test_a_model_whose_backend_cannot_run_here_evaluates_and_predicts_on_auto(
        mnist, tmp_path, capsys, monkeypatch):
    """A GPU-trained model on a machine without one (numba stands in for cupy here): evaluate,
    predict and export run without --backend; one warning line says what happened."""
    from PIL import Image

    from fastfnn.kernels import backend_class

    trained, out = tmp_path / "numpy.npz", tmp_path / "elsewhere.npz"
    assert main(train_args(mnist, trained, "--epochs", "1", "--quiet")) == 0
    FastFNN.load(trained).set_params(backend="numba").save(out)
    monkeypatch.setattr(backend_class("numba"), "availability",
                        classmethod(lambda cls: (False, "numba is not installed")))
    monkeypatch.delenv("FASTFNN_BACKEND", raising=False)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(mnist), "--no-download"]) == 0
    captured = capsys.readouterr()
    assert "; backend numpy" in captured.out
    assert captured.err.splitlines() == [
        f"fastfnn: warning: {out}: backend 'numba' is not available: numba is not installed; "
        "loaded with backend='auto' (numpy here) instead of 'numba'; choose another with "
        "set_params(backend=...) (on the command line: --backend)"]
    image = tmp_path / "digit.png"
    Image.fromarray(synthetic_digits(1, 3)[0][0]).save(image)
    assert main(["predict", str(out), str(image), "--backend", "numpy"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{image}: ") and captured.err == ""   # chosen: no warning
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    assert main(["export", str(out), str(tmp_path / "m.onnx")]) == 0
    assert capsys.readouterr().err == ""   # the graph does not depend on the backend


def test_every_option_reaches_the_estimator(mnist, tmp_path, capsys):
    out = tmp_path / "m.npz"
    status = main(["train", "--data", str(mnist), "--no-download", "--backend", "numpy",
                   "--hidden", "", "--activation", "tanh", "--output", "sigmoid", "--solver",
                   "adam", "--lr", "0.01", "--momentum", "0.5", "--no-nesterov", "--alpha", "0",
                   "--batch-size", "full", "--epochs", "2", "--init", "0.01", "--dtype",
                   "float64", "--seed", "7", "--tol", "0.001", "--n-iter-no-change", "4",
                   "--limit", "50", "--n-jobs", "1", "--out", str(out), "--quiet"])
    assert status == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("test accuracy")
    model = FastFNN.load(out)
    assert model.get_params() | {"verbose": False} == {
        **model.get_params(), "hidden_layer_sizes": (), "activation": "tanh", "output": "sigmoid",
        "solver": "adam", "learning_rate_init": 0.01, "momentum": 0.5,
        "nesterovs_momentum": False, "alpha": 0.0, "batch_size": None, "max_iter": 2,
        "init": 0.01, "dtype": "float64", "random_state": 7, "tol": 0.001,
        "n_iter_no_change": 4, "early_stopping": False, "backend": "numpy", "verbose": False,
        "n_jobs": 1}
    assert model.coefs_[0].shape == (784, 10) and model.coefs_[0].dtype == np.float64
    assert model.t_ == 2 * 50


def test_defaults_suit_mnist_and_never_stop_early(mnist, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--data", str(mnist), "--no-download", "--backend", "numpy",
                 "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    params = FastFNN.load(out).get_params()
    assert params["hidden_layer_sizes"] == (128, 64) and params["solver"] == "sgd"
    assert params["learning_rate_init"] == 0.1 and params["momentum"] == 0.9
    assert params["batch_size"] == 128 and params["random_state"] == 0
    assert params["tol"] == 0 and params["n_iter_no_change"] >= params["max_iter"]


@pytest.mark.parametrize("recipe", [(), ("--recipe", "mnist")])
def test_train_runs_its_epochs_without_a_convergence_warning(mnist, tmp_path, capsys, recipe):
    """The command (and its recipes) trains a fixed number of epochs by design."""
    out = tmp_path / "m.npz"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(train_args(mnist, out, "--quiet", *recipe)) == 0
    assert FastFNN.load(out).n_iter_ == 3  # every epoch ran: FastFNN.fit would have warned
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert "ConvergenceWarning" not in capsys.readouterr().err


def test_early_stopping_reports_validation(mnist, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(train_args(mnist, out, "--early-stopping", "--validation-fraction", "0.2")) == 0
    assert "val_accuracy" in capsys.readouterr().out
    model = FastFNN.load(out)
    assert model.early_stopping and model.n_iter_no_change == 10
    assert model.validation_scores_ is not None


def test_help_documents_the_defaults(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("--lr LR learning rate (learning_rate_init) (default: 0.1)",
                     "(default: 128,64)", "(default: sgd)", "(default: 20)", "(default: 128)",
                     "(default: fastfnn-mnist.npz)", "--limit N"):
        assert fragment in text


# ------------------------------------------------------------------------ checkpoint, resume, log
def records_of(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_checkpoint_and_resume_equal_an_uninterrupted_run(mnist, tmp_path, capsys, monkeypatch):
    ckpt, log = tmp_path / "ckpt.npz", tmp_path / "log.jsonl"
    seen = []
    real_fit = FastFNN.fit

    def fit(self, X, y, *, on_epoch=None, **kwargs):
        def spy(epoch, record):  # the log already holds this epoch when the next one starts
            on_epoch(epoch, record)
            seen.append((epoch + 1, len(log.read_text().splitlines())))
        return real_fit(self, X, y, on_epoch=spy if on_epoch else None, **kwargs)

    monkeypatch.setattr(FastFNN, "fit", fit)
    straight = tmp_path / "straight.npz"
    assert main(train_args(mnist, straight, "--epochs", "4", "--quiet")) == 0
    assert main(train_args(mnist, tmp_path / "first.npz", "--epochs", "2", "--checkpoint",
                           str(ckpt), "--log-json", str(log))) == 0
    assert seen[-2:] == [(1, 1), (2, 2)]
    assert [r["epoch"] for r in records_of(log)] == [1, 2]
    assert FastFNN.load(ckpt).n_iter_ == 2  # the checkpoint is a model file
    capsys.readouterr()

    resumed = tmp_path / "resumed.npz"
    assert main(train_args(mnist, resumed, "--epochs", "4", "--checkpoint", str(ckpt),
                           "--resume", "--log-json", str(log))) == 0
    stdout = capsys.readouterr().out
    assert f"resuming from {ckpt} after epoch 2" in stdout
    assert "epoch 3/4" in stdout and "epoch 1/4" not in stdout
    assert seen[-2:] == [(3, 3), (4, 4)]  # written per epoch, after the checkpoint's epochs
    records = records_of(log)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    a, b = FastFNN.load(resumed), FastFNN.load(straight)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert [r["loss"] for r in records] == a.loss_curve_ == b.loss_curve_
    assert FastFNN.load(ckpt).n_iter_ == 4

    # Nothing left to train: the checkpoint's result, and still a log of every epoch.
    assert main(train_args(mnist, resumed, "--epochs", "4", "--checkpoint", str(ckpt),
                           "--resume", "--log-json", str(log), "--quiet")) == 0
    assert [r["loss"] for r in records_of(log)] == b.loss_curve_
    assert FastFNN.load(resumed).coefs_[0].tobytes() == b.coefs_[0].tobytes()


def test_resume_refuses_another_configuration_and_a_plain_model(mnist, tmp_path, capsys):
    ckpt, log = tmp_path / "ckpt.npz", tmp_path / "log.jsonl"
    assert main(train_args(mnist, tmp_path / "m.npz", "--epochs", "1", "--checkpoint",
                           str(ckpt), "--log-json", str(log))) == 0
    capsys.readouterr()
    before = ckpt.read_bytes(), log.read_text()
    # other options: a wrong command line, said in its words before the data is read
    status = main(train_args(mnist, tmp_path / "other.npz", "--checkpoint", str(ckpt),
                             "--resume", "--alpha", "0.5", "--no-nesterov", "--log-json", str(log),
                             "--data", str(tmp_path / "none")))
    assert_one_line_error(capsys, status, 2, f"--checkpoint {ckpt} was written with other "
                          "options: --alpha 0.0001 there, 0.5 here; --no-nesterov "
                          "(nesterovs_momentum) True there, False here; resume it with the same "
                          "options, or run without --resume to start afresh")
    # other data: found by fit (the data's hash), said in the command line's words
    status = main(train_args(mnist, tmp_path / "other.npz", "--checkpoint", str(ckpt),
                             "--resume", "--limit", "200", "--log-json", str(log), "--quiet"))
    assert_one_line_error(capsys, status, 2, f"--checkpoint {ckpt} was written on other data (a "
                          "different --limit or copy of MNIST)")
    assert (ckpt.read_bytes(), log.read_text()) == before  # neither was touched
    assert not (tmp_path / "other.npz").exists()
    status = main(train_args(mnist, tmp_path / "other.npz", "--checkpoint",
                             str(tmp_path / "m.npz"), "--resume"))
    assert_one_line_error(capsys, status, 1, "without training progress")


def test_resume_without_a_checkpoint_file_starts_afresh(mnist, tmp_path, capsys):
    ckpt = tmp_path / "new.npz"
    assert main(train_args(mnist, tmp_path / "m.npz", "--checkpoint", str(ckpt), "--resume",
                           "--quiet")) == 0
    capsys.readouterr()
    assert FastFNN.load(ckpt).n_iter_ == 3


# ------------------------------------------------------------------------------------------ plots
def assert_pngs(folder, *names):
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    for name in names:
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC


def test_train_plot_writes_three_pngs(mnist, tmp_path, capsys):
    folder = tmp_path / "plots" / "run1"  # created, parents too
    assert main(train_args(mnist, tmp_path / "m.npz", "--epochs", "2", "--plot",
                           str(folder))) == 0
    assert f"plots saved to {folder}: loss.png, accuracy.png, confusion.png" \
        in capsys.readouterr().out
    assert_pngs(folder, "loss.png", "accuracy.png", "confusion.png")


def test_plot_needs_matplotlib_before_training(mnist, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status = main(train_args(mnist, tmp_path / "m.npz", "--plot", str(tmp_path / "plots")))
    assert_one_line_error(capsys, status, 1, "matplotlib", "pip install 'fastfnn[plot]'")
    assert not (tmp_path / "m.npz").exists()
    (tmp_path / "log.jsonl").write_text('{"loss": 1, "accuracy": 0.5}\n')
    assert_one_line_error(capsys, main(["plot", str(tmp_path / "log.jsonl")]), 1,
                          "fastfnn[plot]")


@pytest.mark.parametrize("kind,targets,reason", [
    ("multi-label", lambda y: np.eye(10, dtype=int)[y], "the model is multi-label"),
    ("letters", lambda y: np.array(list("abcdefghij"))[y],
     "the model's classes are ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], not the digits"),
    ("three digits", lambda y: y % 3, "the model's classes are [0, 1, 2], not the digits 0-9"),
    ("regressor", lambda y: y.astype(float), "the model is a regressor"),
])
def test_plot_draws_the_curves_of_any_784_feature_model(tmp_path, capsys, kind, targets, reason):
    """Only a classifier of the digits 0-9 gets a confusion matrix; every model gets its curves,
    a classifier its accuracy too (no data is read for the others: there is none here)."""
    from fastfnn import FastFNNRegressor

    images, labels = synthetic_digits(60, 0)
    estimator = FastFNNRegressor if kind == "regressor" else FastFNN
    path = estimator(hidden_layer_sizes=(4,), backend="numpy", max_iter=2).fit(
        images.reshape(60, -1), targets(labels.astype(np.int64))).save(tmp_path / "m.npz")
    folder = tmp_path / "plots"
    assert main(["plot", str(path), "--out", str(folder), "--data", str(tmp_path / "none"),
                 "--no-download"]) == 0
    *notes, last = capsys.readouterr().out.splitlines()
    curves = ["loss.png"] if kind == "regressor" else ["loss.png", "accuracy.png"]
    assert notes[:-1] == (["no accuracy curve: the model is a regressor"] if kind == "regressor"
                          else [])
    assert notes[-1].startswith(f"no confusion matrix: {reason}")
    assert last == f"plots saved to {folder}: {', '.join(curves)}"
    assert_pngs(folder, *curves)


def test_plot_a_model_and_a_log(mnist, tmp_path, capsys, monkeypatch, five_feature_model):
    model, log = tmp_path / "m.npz", tmp_path / "log.jsonl"
    assert main(train_args(mnist, model, "--epochs", "2", "--log-json", str(log))) == 0
    capsys.readouterr()
    assert main(["plot", str(model), "--out", str(tmp_path / "from-model"), "--data", str(mnist),
                 "--no-download"]) == 0
    assert "loss.png, accuracy.png, confusion.png" in capsys.readouterr().out
    assert_pngs(tmp_path / "from-model", "loss.png", "accuracy.png", "confusion.png")

    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # the default --out
    assert main(["plot", str(log)]) == 0
    assert "plots saved to .: loss.png, accuracy.png" in capsys.readouterr().out
    assert_pngs(tmp_path / "here", "loss.png", "accuracy.png")

    assert main(["plot", str(five_feature_model), "--out", str(tmp_path / "five")]) == 0
    assert "no confusion matrix: the model takes 5 features" in capsys.readouterr().out
    assert_pngs(tmp_path / "five", "loss.png", "accuracy.png")


@pytest.mark.parametrize("lines,fragment", [
    (['{"loss": 1.0, "accuracy": 0.5}', '{"loss": 0.9, "accuracy"'], "line 2 is not JSON"),
    (['{"loss": 1.0, "accuracy": 0.5}', "", "[1, 2]"], "line 3 holds a list"),
    (['{"loss": 1.0, "accuracy": "high"}'], "line 1: accuracy is 'high'"),
    (['{"loss": 1.0, "accuracy": 0.5, "val_loss": true}'], "line 1: val_loss is True"),
    ([""], "holds no epochs"),
])
def test_plot_a_malformed_log_names_the_line(lines, fragment, tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    status = main(["plot", str(log), "--out", str(tmp_path / "out")])
    assert_one_line_error(capsys, status, 1, str(log), fragment)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------- predict
def test_predict_reads_digit_images(mnist, tmp_path, capsys):
    from PIL import Image

    from fastfnn.images import load_digit

    model = tmp_path / "m.npz"
    assert main(train_args(mnist, model, "--quiet")) == 0
    capsys.readouterr()
    images, _ = synthetic_digits(2, 5)
    paths = [tmp_path / "big-dark-on-light.png", tmp_path / "plain.jpg"]
    big = 255 - np.kron(images[0], np.ones((4, 4), dtype=np.uint8))  # 112x112, inverted
    Image.fromarray(big).save(paths[0])
    Image.fromarray(images[1]).save(paths[1])
    assert main(["predict", str(model), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    fitted = FastFNN.load(model)
    proba = fitted.predict_proba(np.stack([load_digit(p) for p in paths]))
    assert len(lines) == 2
    for line, path, p in zip(lines, paths, proba):
        digit = int(np.argmax(p))
        assert line == f"{path}: {fitted.classes_[digit]} (probability {p[digit]:.4f})"
        assert 0 <= digit <= 9 and 0.1 <= p[digit] <= 1


def test_predict_errors(mnist, tmp_path, capsys, monkeypatch, five_feature_model):
    from PIL import Image

    model = tmp_path / "m.npz"
    assert main(train_args(mnist, model, "--epochs", "1", "--quiet")) == 0
    capsys.readouterr()
    good, junk = tmp_path / "good.png", tmp_path / "junk.png"
    Image.fromarray(synthetic_digits(1, 3)[0][0]).save(good)
    junk.write_bytes(b"this is not an image")
    status = main(["predict", str(model), str(good), str(junk)])
    line = assert_one_line_error(capsys, status, 1, str(junk), "not a readable image")
    assert str(good) not in line
    assert_one_line_error(capsys, main(["predict", str(model), str(tmp_path / "none.png")]), 1,
                          "none.png: no such image file")
    assert_one_line_error(capsys, main(["predict", str(five_feature_model), str(good)]), 1,
                          "takes 5 features, not 28x28 MNIST images")
    assert_one_line_error(capsys, main(["predict", str(model)]), 2, "IMAGE")
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    assert_one_line_error(capsys, main(["predict", str(model), str(good)]), 1,
                          "Pillow", "pip install 'fastfnn[images]'")


# ------------------------------------------------------------------------------------ info, bench
def test_info_lists_every_backend(capsys):
    from fastfnn.backends import available_backends

    assert main(["info"]) == 0
    stdout = capsys.readouterr().out
    for name, reason in available_backends().items():
        assert f"  {name}: " + ("available" if not reason else f"not available: {reason}") \
            in stdout
    assert f"NumPy {np.__version__}" in stdout and "Python " in stdout and "CPUs: " in stdout
    assert "backend 'auto' picks: " in stdout


def test_bench_delegates_to_fastfnn_bench(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("fastfnn.bench")
    fake.add_arguments = lambda parser: parser.add_argument("--quick", action="store_true")
    fake.run = lambda args: calls.append(args) or 3
    monkeypatch.setitem(sys.modules, "fastfnn.bench", fake)
    assert main(["bench", "--quick"]) == 3
    assert calls[0].quick is True
    assert main(["bench", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out
    assert_one_line_error(capsys, main(["bench", "--slow"]), 2, "unrecognized arguments: --slow")


def test_bench_missing_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastfnn.bench", None)
    assert_one_line_error(capsys, main(["bench"]), 2, "bench command is not available")


# ---------------------------------------------------------------------------------------- errors
@pytest.fixture
def five_feature_model(tmp_path):
    X, y = blobs(n=40, n_features=5)
    from fastfnn import FastFNN
    return FastFNN((3,), backend="numpy", max_iter=2).fit(X, y).save(tmp_path / "five.npz")


@pytest.mark.parametrize("argv,status,fragment", [
    ([], 2, "required"),
    (["frobnicate"], 2, "invalid choice"),
    (["train", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["train", "--batch-size", "many"], 2, "batch_size must be 'auto', 'full' or an integer >= 1"),
    (["train", "--hidden", "12,x"], 2, "comma-separated positive layer sizes"),
    (["train", "--epochs", "0"], 2, "argument --epochs: max_iter must be an integer >= 1, got '0'"),
    (["train", "--solver", "newton"], 2, "invalid choice"),
    (["train", "--backend", "nope"], 2, "argument --backend: unknown backend 'nope'"),
    (["train", "--lr", "-1"], 2, "learning_rate_init must be a finite real number > 0, got '-1'"),
    (["train", "--validation-fraction", "1.5", "--early-stopping"], 2,
     "validation_fraction must be a finite real number in [0, 1), got '1.5'"),
    (["train", "--n-jobs", "0"], 2, "n_jobs must be -1 (every core) or an integer >= 1"),
    (["train", "--seed", "-1"], 2, "random_state must be an integer >= 0, got '-1'"),
    (["train", "--init", "orthogonal"], 2,
     "init must be one of ['auto', 'glorot', 'he', 'xavier'] or a"),
    (["train", "--out", "{tmp}/no/such/folder/m.npz"], 1, "does not exist"),
    (["train", "--out", "{tmp}"], 1, "is a folder"),
    (["train", "--out", ""], 1, "--out '': the path is empty, expected a file name"),
    (["export", "{five}", "{tmp}/no/m.onnx"], 1, "no/m.onnx: folder {tmp}/no does not exist"),
    (["train", "--log-json", "{tmp}/no/log.jsonl"], 1, "does not exist"),
    (["train", "--resume"], 2, "--resume needs --checkpoint"),
    (["train", "--checkpoint", "{tmp}/no/ckpt.npz"], 1, "does not exist"),
    (["train", "--checkpoint", "{tmp}/garbage.npz", "--resume"], 1, "not a FastFNN model file"),
    (["train", "--plot", "{tmp}/garbage.npz"], 1, "garbage.npz is a file, expected a folder"),
    (["train", "--plot", "{tmp}/garbage.npz/sub"], 1, "cannot be created"),
    (["plot", "{tmp}/absent.jsonl"], 1, "absent.jsonl: no such file"),
    (["plot", "{tmp}/garbage.npz", "--out", "{tmp}/out"], 1, "line 1 is not UTF-8"),
    (["plot"], 2, "required: MODEL_OR_LOG"),
    (["predict", "{tmp}/absent.npz", "x.png"], 1, "absent.npz: no such model file"),
    (["train", "--data", "{tmp}/empty", "--no-download"], 1, "MNIST files not found"),
    (["evaluate", "{tmp}/absent.npz"], 1, "absent.npz: no such model file"),
    (["evaluate", "{tmp}/garbage.npz"], 1, "not a FastFNN model file"),
    (["evaluate", "{five}"], 1, "takes 5 features, not 28x28 MNIST images"),
    (["evaluate", "{five}", "--backend", "nope"], 2, "argument --backend: unknown backend 'nope'"),
    (["evaluate"], 2, "required: MODEL"),
])
def test_errors_are_one_line_without_traceback(argv, status, fragment, mnist, tmp_path, capsys,
                                                five_feature_model, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default --out would land
    (tmp_path / "garbage.npz").write_bytes(b"\x80\x04not a model")
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path, five=five_feature_model) for a in argv]
    if argv and argv[0] == "train":
        argv += ["--data", str(mnist), "--no-download", "--epochs", "1"] \
            if "--data" not in argv else []
    assert_one_line_error(capsys, main(argv), status, fragment.format(tmp=tmp_path))
    assert not (tmp_path / "fastfnn-mnist.npz").exists()


def test_an_unwritable_out_fails_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    # os.access stands in for the permission bits, which root (CI containers) ignores; the data
    # folder is empty, so reaching the data would fail with another message
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(os, "access", lambda where, how: os.fspath(where) != str(tmp_path))
    status = main(["train", "--out", str(tmp_path / "m.npz"), "--data", str(tmp_path / "empty"),
                   "--no-download"])
    assert_one_line_error(capsys, status, 1, f"--out {tmp_path / 'm.npz'}: no permission to write "
                                             f"in folder {tmp_path}")


def test_subprocess_error_has_no_traceback(tmp_path):
    result = subprocess.run([*COMMAND, "evaluate", str(tmp_path / "absent.npz")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == f"fastfnn: error: {tmp_path / 'absent.npz'}: no such model file"


def test_real_mnist_train_then_evaluate_in_subprocesses(mnist_dir, tmp_path):
    out, log = tmp_path / "model.npz", tmp_path / "log.jsonl"
    env = {**os.environ, "FASTFNN_DATA": str(mnist_dir.parent)}
    train = subprocess.run([*COMMAND, "train", "--limit", "3000", "--epochs", "2", "--hidden",
                            "32", "--backend", "numpy", "--no-download", "--out", str(out),
                            "--log-json", str(log)],
                           capture_output=True, text=True, timeout=300, env=env)
    assert train.returncode == 0, train.stderr
    assert "on 3000 MNIST images" in train.stdout and "epoch 2/2" in train.stdout
    assert "\r" not in train.stdout  # no progress bar when stdout is not a terminal
    assert len(log.read_text().splitlines()) == 2
    evaluate = subprocess.run([*COMMAND, "evaluate", str(out), "--data", str(mnist_dir),
                               "--no-download"], capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr
    accuracy = float(evaluate.stdout.split("accuracy ")[1].split()[0])
    assert accuracy > 0.85
    assert f"test accuracy {accuracy:.4f}" in train.stdout


def test_warmup_reports_each_combination_and_the_cache(capsys):
    assert main(["warmup", "--backend", "numpy", "--dtypes", "float64"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["float64 weights, uint8 inputs",
                                                         "float64 weights, float inputs"]
    assert lines[2].startswith("backend numpy: ") and "keeps no compiled kernels" in lines[2]


def test_warmup_refuses_an_unknown_dtype(capsys):
    status = main(["warmup", "--backend", "numpy", "--dtypes", "float32,float16"])
    assert_one_line_error(capsys, status, 2, "unknown dtype 'float16'")


def test_export_writes_onnx_for_a_classifier_and_a_regressor(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from fastfnn import FastFNNRegressor

    X, y = blobs(n=120)
    for model in (FastFNN(hidden_layer_sizes=(5,), max_iter=2, backend="numpy").fit(X, y),
                  FastFNNRegressor(hidden_layer_sizes=(5,), max_iter=2, backend="numpy")
                  .fit(X, X[:, 0])):
        path, out = tmp_path / "model.npz", tmp_path / "model.onnx"
        model.save(path)
        assert main(["export", str(path), str(out), "--input-dtype", "float64"]) == 0
        assert f"wrote {out}" in capsys.readouterr().out
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        first = session.run(None, {"X": X})[0]
        np.testing.assert_allclose(first, model.predict(X), rtol=2e-6, atol=2e-6)


def test_export_of_a_missing_model_is_an_error_and_writes_nothing(tmp_path, capsys):
    status = main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "out.onnx")])
    assert_one_line_error(capsys, status, 1, "missing.npz")
    assert not (tmp_path / "out.onnx").exists()


# ----------------------------------------------------------- refused before any data is read
def empty_data(tmp_path):
    """--data of an empty folder, --no-download: a command that reaches the data fails there."""
    (tmp_path / "empty").mkdir(exist_ok=True)
    return ["--data", str(tmp_path / "empty"), "--no-download"]


@pytest.mark.parametrize("options,message", [
    (["--lr-warmup", "1"], "--lr-warmup is for the step and cosine schedules; --lr-schedule is "
                           "'constant'"),
    (["--solver", "lbfgs", "--dropout", "0.1"], "dropout, --input-dropout and --augment-shift "
                                                "are for the stochastic solvers"),
    (["--output", "sigmoid", "--label-smoothing", "0.1"], "--label-smoothing is for the softmax "
                                                          "output"),
    (["--dropout", "0.1,0.2,0.3"], "dropout has 3 rates for 2 hidden layers"),
    (["--early-stopping", "--validation-fraction", "0"],
     "--early-stopping needs a --validation-fraction above 0"),
])
def test_options_refused_together_are_a_usage_error_before_the_data(options, message, tmp_path,
                                                                      capsys):
    status = main(["train", "--backend", "numpy", "--out", str(tmp_path / "m.npz"), *options,
                   *empty_data(tmp_path)])
    assert_one_line_error(capsys, status, 2, message, "(see 'fastfnn train --help')")


def test_limit_must_keep_every_digit_of_the_test_set(mnist, tmp_path, capsys):
    out = tmp_path / "m.npz"
    status = main(train_args(mnist, out, "--limit", "5", "--plot", str(tmp_path / "plots")))
    assert_one_line_error(capsys, status, 2, "--limit 5 keeps only the digits 0, 1, 2, 3, 4 of "
                          "the training set; the test set also has 5, 6, 7, 8, 9: give --limit "
                          "10 or more")
    assert not out.exists() and not (tmp_path / "plots").exists()


def test_resume_with_fewer_epochs_than_the_checkpoint_holds_is_refused(mnist, tmp_path, capsys):
    ckpt = tmp_path / "ckpt.npz"
    assert main(train_args(mnist, tmp_path / "m.npz", "--checkpoint", str(ckpt))) == 0
    capsys.readouterr()
    before = ckpt.read_bytes()
    status = main(train_args(mnist, tmp_path / "less.npz", "--epochs", "1", "--checkpoint",
                             str(ckpt), "--resume", "--data", str(tmp_path / "none")))
    assert_one_line_error(capsys, status, 2, f"--checkpoint {ckpt} holds 3 epochs, more than "
                          "--epochs 1: give --epochs 3 or more to resume it")
    assert ckpt.read_bytes() == before and not (tmp_path / "less.npz").exists()


def test_the_summary_counts_this_run_s_epochs_and_the_total(mnist, tmp_path, capsys):
    ckpt = tmp_path / "ckpt.npz"
    assert main(train_args(mnist, tmp_path / "m.npz", "--epochs", "1", "--checkpoint",
                           str(ckpt))) == 0
    stdout = capsys.readouterr().out
    assert ", up to 1 epoch\n" in stdout
    seconds = re.search(r"^trained 1 epoch in (\S+) s$", stdout, re.M).group(1)
    assert float(seconds) > 0 and seconds != "0.0"
    assert main(train_args(mnist, tmp_path / "m.npz", "--checkpoint", str(ckpt),
                           "--resume")) == 0
    stdout = capsys.readouterr().out
    assert ", up to 3 epochs\n" in stdout
    assert re.search(r"^trained 2 epochs in \S+ s \(3 in all\)$", stdout, re.M), stdout


@pytest.mark.parametrize("seconds,text", [(0.0234, "0.023 s"), (0.5, "0.5 s"), (1.26, "1.3 s"),
                                          (754.31, "754.3 s")])
def test_durations_do_not_round_to_zero(seconds, text):
    from fastfnn.cli import _seconds

    assert _seconds(seconds) == text


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_a_model_that_is_a_folder_is_named_as_such(command, tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    argv = {"evaluate": [], "predict": [str(tmp_path / "x.png")],
            "export": [str(tmp_path / "m.onnx")]}[command]
    assert_one_line_error(capsys, main([command, str(folder), *argv]), 1,
                          f"{folder} is a folder, expected a model file (.npz)")


@pytest.mark.parametrize("kind,targets,reason", [
    ("multi-label", lambda y: np.eye(10, dtype=int)[y], "the model is multi-label"),
    ("letters", lambda y: np.array(list("abcdefghij"))[y], "the model's classes are ['a', 'b'"),
    ("digits 1-10", lambda y: y + 1, "the model's classes are [1, 2, 3"),
    ("regressor", lambda y: y.astype(float), "the model is a regressor"),
])
def test_evaluate_and_predict_refuse_a_model_of_no_mnist_digits(kind, targets, reason, tmp_path,
                                                                 capsys):
    from PIL import Image

    from fastfnn import FastFNNRegressor

    images, labels = synthetic_digits(60, 0)
    estimator = FastFNNRegressor if kind == "regressor" else FastFNN
    path = estimator(hidden_layer_sizes=(4,), backend="numpy", max_iter=2).fit(
        images.reshape(60, -1), targets(labels.astype(np.int64))).save(tmp_path / "m.npz")
    status = main(["evaluate", str(path), *empty_data(tmp_path)])  # refused before the data
    assert_one_line_error(capsys, status, 1, f"{path}: {reason}", "fastfnn evaluate needs a "
                          "classifier of the digits 0-9 in 28x28 images")
    Image.fromarray(images[0]).save(tmp_path / "seven.png")
    status = main(["predict", str(path), str(tmp_path / "seven.png")])
    assert_one_line_error(capsys, status, 1, f"{path}: {reason}", "fastfnn predict needs")


def test_export_without_onnx_says_which_extra(tmp_path, capsys, monkeypatch, five_feature_model):
    monkeypatch.setitem(sys.modules, "onnx", None)
    status = main(["export", str(five_feature_model), str(tmp_path / "m.onnx")])
    assert_one_line_error(capsys, status, 1, "ONNX export needs the onnx package, which is not "
                          "installed: pip install 'fastfnn[onnx]'")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("data,message", [
    ("{tmp}/afile", "--data {tmp}/afile is a file, expected a folder with the MNIST IDX files"),
    ("{tmp}/afile/sub", "--data {tmp}/afile/sub cannot be created: {tmp}/afile is a file"),
])
@pytest.mark.parametrize("command", ["train", "evaluate", "plot"])
def test_data_that_is_no_folder_is_named_as_such(command, data, message, tmp_path, capsys, mnist):
    (tmp_path / "afile").write_text("x")
    model = tmp_path / "m.npz"
    assert main(train_args(mnist, model, "--epochs", "1", "--quiet")) == 0
    capsys.readouterr()
    argv = {"train": train_args(mnist, tmp_path / "new.npz"), "evaluate": ["evaluate", str(model)],
            "plot": ["plot", str(model), "--out", str(tmp_path / "plots")]}[command]
    status = main([*argv, "--data", data.format(tmp=tmp_path)])
    assert_one_line_error(capsys, status, 1, message.format(tmp=tmp_path))
    assert not (tmp_path / "new.npz").exists() and not (tmp_path / "plots").exists()


def test_missing_mnist_files_are_named_in_the_command_line_s_words(mnist, tmp_path, capsys,
                                                                  monkeypatch):
    assert main(train_args(mnist, tmp_path / "m.npz", "--epochs", "1", "--quiet")) == 0
    capsys.readouterr()
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in list(datasets.MNIST_FILES.values())[:3]:
        (partial / name).write_bytes((mnist / name).read_bytes())
    status = main(train_args(mnist, tmp_path / "new.npz", "--data", str(partial)))
    line = assert_one_line_error(capsys, status, 1, f"MNIST files not found: --data {partial} "
                                 "lacks t10k-labels-idx1-ubyte (raw or .gz); put them there, or "
                                 "run without --no-download to download them")
    assert "path=" not in line and "download=False" not in line
    monkeypatch.setenv("FASTFNN_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status = main(["evaluate", str(tmp_path / "m.npz"), "--no-download"])
    assert_one_line_error(capsys, status, 1, f"MNIST files not found: {tmp_path / 'mnist'} lacks "
                          f"all four; {tmp_path / 'cache' / 'fastfnn' / 'mnist'} lacks all four "
                          "(raw or .gz); give --data DIR, or run without --no-download")


# ----------------------------------------------------------------------------- warnings, backends
def test_warnings_are_one_line_and_lbfgs_runs_its_epochs_quietly(mnist, tmp_path, capsys):
    assert main(train_args(mnist, tmp_path / "m.npz", "--limit", "100", "--quiet")) == 0
    err = capsys.readouterr().err
    assert err.startswith("fastfnn: warning: Got `batch_size` less than 1 or larger than sample "
                          "size") and len(err.splitlines()) == 1, err
    assert main(train_args(mnist, tmp_path / "m.npz", "--solver", "lbfgs", "--epochs", "2",
                           "--quiet")) == 0
    assert capsys.readouterr().err == ""


def test_an_unknown_backend_is_2_and_an_unavailable_one_1_in_every_command(
        tmp_path, capsys, monkeypatch, five_feature_model):
    from fastfnn.kernels import backend_class

    monkeypatch.setattr(backend_class("numba"), "availability",
                        classmethod(lambda cls: (False, "numba is not installed")))
    commands = [["train", "--out", str(tmp_path / "m.npz"), *empty_data(tmp_path)],
                ["evaluate", str(five_feature_model)], ["plot", str(five_feature_model)],
                ["predict", str(five_feature_model), "x.png"], ["warmup"]]
    for argv in commands:
        assert_one_line_error(capsys, main([*argv, "--backend", "bogus"]), 2,
                              "argument --backend: unknown backend 'bogus'; expected one of [")
        assert_one_line_error(capsys, main([*argv, "--backend", "numba"]), 1,
                              "backend 'numba' is not available: numba is not installed")


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """``fastfnn info | head -1``: exit status 141 (128 + SIGPIPE), nothing on stderr."""
    process = subprocess.Popen([*COMMAND, "info"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # before the command writes: its first write finds no reader
    stderr = process.communicate(timeout=120)[1]
    assert (process.returncode, stderr) == (141, b"")


# ------------------------------------------------------------------------------ plot: all or none
def test_plot_checks_every_png_before_any_work(mnist, tmp_path, capsys):
    model, out = tmp_path / "m.npz", tmp_path / "out"
    assert main(train_args(mnist, model, "--epochs", "1", "--quiet")) == 0
    capsys.readouterr()
    (out / "accuracy.png").mkdir(parents=True)
    # the data folder is empty: reaching the data would fail with another message
    status = main(["plot", str(model), "--out", str(out), *empty_data(tmp_path)])
    assert_one_line_error(capsys, status, 1, f"--out {out / 'accuracy.png'}: the path is a folder")
    assert sorted(p.name for p in out.iterdir()) == ["accuracy.png"]
    status = main(train_args(mnist, tmp_path / "new.npz", "--plot", str(out)))
    assert_one_line_error(capsys, status, 1, f"--plot {out / 'accuracy.png'}: the path is a folder")
    assert not (tmp_path / "new.npz").exists()


def test_plot_a_log_without_accuracy_says_it_is_missing(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text('{"loss": 1.0}\n')
    status = main(["plot", str(log), "--out", str(tmp_path / "out")])
    assert_one_line_error(capsys, status, 1, "line 1: accuracy is missing, expected a number")


def test_plot_titles_name_the_source(mnist, tmp_path, capsys, monkeypatch):
    from fastfnn import plots

    titles = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.append(
        fig.axes[0].get_title()) or save(fig, path))
    model = tmp_path / "m.npz"
    assert main(train_args(mnist, model, "--epochs", "1", "--quiet")) == 0
    assert main(["plot", str(model), "--out", str(tmp_path / "out"), "--data", str(mnist),
                 "--no-download"]) == 0
    assert titles == [f"loss: {model}", f"accuracy: {model}",
                      f"confusion matrix: {model} on the MNIST test set"]
