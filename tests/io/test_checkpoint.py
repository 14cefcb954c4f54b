"""Checkpoints and resume: atomic per-epoch state, bitwise-equal resumed fits, refusals, and a
checkpoint of an earlier version resumed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import shutil
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor, TrainingDivergedError
from fastfnn.io.checkpoint import load_checkpoint

from ..conftest import blobs

#: Files written by fastfnn 0.1.0 (commit 0c2ab8c), before the FittedState: the format is the same.
OLD_FILES = Path(__file__).parent.parent / "data"

CONFIGS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.05, batch_size=16),
    "adam-early-stopping": dict(solver="adam", learning_rate_init=0.01, batch_size=32,
                                early_stopping=True, n_iter_no_change=50),
    "full-batch": dict(solver="sgd", learning_rate_init=0.1, batch_size=None),
}


class Interrupt(Exception):
    pass


def _model(backend_name, config, max_iter=6):
    return FastFNN((10, 6), random_state=3, tol=0.0, max_iter=max_iter, backend=backend_name,
                   **CONFIGS[config])


def _assert_same_weights(a, b):
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_interrupted_then_resumed_fit_equals_an_uninterrupted_one(backend, config, tmp_path):
    X, y = blobs(n=200, spread=1.5)
    whole = _model(backend.name, config).fit(X, y)
    path = tmp_path / "ckpt.npz"

    def stop_after_third(epoch, record):
        if epoch == 2:
            raise Interrupt

    interrupted = _model(backend.name, config)
    with pytest.raises(Interrupt):
        interrupted.fit(X, y, checkpoint=path, on_epoch=stop_after_third)
    assert not hasattr(interrupted, "coefs_")  # a failed fit changes nothing
    assert load_checkpoint(path).state.n_iter == 3

    resumed = _model(backend.name, config).fit(X, y, checkpoint=path, resume=True)
    _assert_same_weights(resumed, whole)
    assert resumed.loss_curve_ == whole.loss_curve_
    assert resumed.n_iter_ == whole.n_iter_ == 6
    assert resumed.t_ == whole.t_
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))


def test_a_regressor_with_weights_and_a_schedule_resumes_to_the_uninterrupted_fit(tmp_path):
    X, y = blobs(n=200, spread=1.5)
    Y = np.stack([y, X[:, 0]], axis=1).astype(float)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))

    def model():
        return FastFNNRegressor(hidden_layer_sizes=(6,), solver="sgd", learning_rate="adaptive",
                                tol=10.0,
                                n_iter_no_change=1, early_stopping=True, random_state=3,
                                max_iter=6, backend="numpy", learning_rate_init=0.01)

    whole = model().fit(X, Y, sample_weight=weights)
    path = tmp_path / "ckpt.npz"

    def stop_after_third(epoch, record):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        model().fit(X, Y, sample_weight=weights, checkpoint=path, on_epoch=stop_after_third)
    resumed = model().fit(X, Y, sample_weight=weights, checkpoint=path, resume=True)
    _assert_same_weights(resumed, whole)
    assert resumed.validation_scores_ == whole.validation_scores_
    assert resumed.fitted_state_.optimizer.learning_rate == \
        whole.fitted_state_.optimizer.learning_rate < 0.01
    with pytest.raises(ValueError, match="other parameters or data"):  # the weights are data
        model().fit(X, Y, sample_weight=weights[::-1], checkpoint=path, resume=True)


def test_a_warm_start_resumes_with_its_own_epochs(tmp_path):
    X, y = blobs(n=120)
    path = tmp_path / "ckpt.npz"

    def warm():
        model = _model("numpy", "sgd", max_iter=2).set_params(warm_start=True).fit(X, y)
        return model.set_params(max_iter=4)

    whole = warm().fit(X, y)
    interrupted = warm()

    def stop_after_first(epoch, record):
        if epoch == 2:  # the model's third epoch, this fit's first
            raise Interrupt

    with pytest.raises(Interrupt):
        interrupted.fit(X, y, checkpoint=path, on_epoch=stop_after_first)
    assert load_checkpoint(path).progress.fit_start == 2
    resumed = warm().fit(X, y, checkpoint=path, resume=True)
    _assert_same_weights(resumed, whole)
    assert resumed.loss_curve_ == whole.loss_curve_ and len(whole.loss_curve_) == 6


def test_resume_with_more_epochs_continues_and_a_finished_fit_is_not_repeated(tmp_path):
    X, y = blobs(n=120)
    path = tmp_path / "ckpt.npz"
    _model("numpy", "sgd", max_iter=3).fit(X, y, checkpoint=path)
    longer = _model("numpy", "sgd", max_iter=5).fit(X, y, checkpoint=path, resume=True)
    _assert_same_weights(longer, _model("numpy", "sgd", max_iter=5).fit(X, y))
    again = _model("numpy", "sgd", max_iter=5).fit(X, y, checkpoint=path, resume=True)
    _assert_same_weights(again, longer)  # nothing left to train: the checkpoint's result
    assert again.loss_curve_ == longer.loss_curve_


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_a_schedule_spanning_max_iter_resumes_only_with_the_same_max_iter(tmp_path, schedule):
    """Resumed with more epochs, it went on along another schedule than the one its first epochs
    followed: silently not the uninterrupted fit."""
    X, y = blobs(n=120)
    path = tmp_path / "ckpt.npz"
    model = lambda epochs: FastFNN((6,), solver="sgd", learning_rate=schedule, max_iter=epochs,
                                   random_state=0, backend="numpy", tol=0.0)
    model(2).fit(X, y, checkpoint=path)
    with pytest.raises(ValueError, match=f"max_iter too: the {schedule} schedule spans it"):
        model(4).fit(X, y, checkpoint=path, resume=True)
    _assert_same_weights(model(2).fit(X, y, checkpoint=path, resume=True), model(2).fit(X, y))


def test_resume_without_a_checkpoint_file_starts_afresh(tmp_path):
    X, y = blobs(n=80)
    fresh = _model("numpy", "sgd", 2).fit(X, y, checkpoint=tmp_path / "new.npz", resume=True)
    _assert_same_weights(fresh, _model("numpy", "sgd", 2).fit(X, y))
    assert FastFNN.load(tmp_path / "new.npz").n_iter_ == 2  # a checkpoint is a loadable model


@pytest.mark.parametrize("change", ["alpha", "data", "labels", "backend-params"])
def test_a_checkpoint_from_another_configuration_is_refused(tmp_path, change):
    X, y = blobs(n=80)
    path = tmp_path / "ckpt.npz"
    _model("numpy", "sgd", 2).fit(X, y, checkpoint=path)
    other = _model("numpy", "sgd", 4)
    if change == "alpha":
        other.set_params(alpha=0.5)
    elif change == "data":
        X = X + 1e-9
    elif change == "labels":
        y = (y + 1) % 3
    else:
        other.set_params(hidden_layer_sizes=(10, 7))
    before = os.path.getmtime(path), path.read_bytes()
    with pytest.raises(ValueError, match="other parameters or data"):
        other.fit(X, y, checkpoint=path, resume=True)
    assert not hasattr(other, "coefs_")
    assert (os.path.getmtime(path), path.read_bytes()) == before


def test_resume_needs_a_checkpoint_path():
    X, y = blobs(n=30)
    with pytest.raises(ValueError, match="resume=True needs checkpoint=PATH"):
        FastFNN(backend="numpy").fit(X, y, resume=True)


def test_nothing_non_finite_is_checkpointed(tmp_path):
    X, y = blobs(n=60)
    path = tmp_path / "ckpt.npz"
    model = FastFNN((8,), solver="sgd", learning_rate_init=1e6, max_iter=30, backend="numpy",
                    random_state=0)
    with pytest.raises(TrainingDivergedError):
        model.fit(X * 1e20, y, checkpoint=path)
    if path.exists():  # epochs before the divergence were fine and were saved, finite
        saved = load_checkpoint(path).state
        assert all(np.isfinite(w).all() for w in saved.coefs)


def test_a_plain_model_file_is_no_checkpoint(tmp_path):
    X, y = blobs(n=40)
    path = _model("numpy", "sgd", 1).fit(X, y).save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="m.npz: a model file without training progress"):
        load_checkpoint(path)


@pytest.mark.parametrize("section,message", [
    ({"config_hash": "x"}, "checkpoint config_hash is malformed, expected 64 hexadecimal"),
    ({"extra": 1}, "checkpoint is .*, expected an object with exactly the keys"),
    ({"seed": -1}, "checkpoint seed is -1, expected an integer in"),
    ({"rng_state": {"bit_generator": "MT19937"}}, "checkpoint rng_state is malformed"),
    ({"no_improvement": 1.5}, "checkpoint no_improvement is malformed"),
    ({"finished": 1}, "checkpoint finished is 1, expected true or false"),
    ({"best_loss": "low"}, "checkpoint best_loss is 'low'"),
])
def test_a_malformed_checkpoint_section_is_refused(tmp_path, section, message):
    X, y = blobs(n=40)
    path = tmp_path / "ckpt.npz"
    _model("numpy", "sgd", 1).fit(X, y, checkpoint=path)
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    raw = np.lib.format.read_array(io.BytesIO(entries["header.json.npy"]))
    header = json.loads(raw.tobytes())
    header["checkpoint"].update(section)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
    entries["header.json.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)
    FastFNN.load(path)  # still a model file: the section is checked by load_checkpoint


def test_a_checkpoint_of_0_1_0_resumes_from_its_last_epoch(tmp_path):
    """Written after 2 of 4 epochs with early stopping (best weights inside) by the old code.

    Its fit was configured with init="auto", He for ReLU in 0.1.0 and scikit-learn's Glorot today:
    the file reads as init="he", and resuming continues from its weights, optimizer state and
    history. (Today's Glorot draws other random numbers than He did, so the validation split of the
    resumed epochs is not the one the 0.1.0 fit would have kept.)"""
    X, y = blobs(n=60, n_features=4)
    path = shutil.copy(OLD_FILES / "checkpoint-0.1.0-adam-early-stopping.npz", tmp_path)
    saved = load_checkpoint(path)
    assert saved.state.n_iter == 2 and saved.progress.best is not None
    assert saved.state.params["init"] == "he" and saved.progress.fit_start == 0
    resumed = FastFNN((5,), solver="adam", early_stopping=True, n_iter_no_change=50,
                      backend="numpy", random_state=0, max_iter=4, tol=0.0).fit(
        X, y, checkpoint=path, resume=True)
    assert resumed.loss_curve_[:2] == saved.state.history["loss"] and resumed.n_iter_ == 4
    assert resumed.t_ == 4 * saved.state.t // 2


KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from fastfnn import FastFNN
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 40))
    y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 1)
    model = FastFNN((64, 32), solver="sgd", learning_rate_init=0.01, batch_size=8, max_iter=40,
                    tol=0.0, random_state=1, backend="numpy")
    model.fit(X, y, checkpoint=sys.argv[1], resume=sys.argv[2] == "resume",
              on_epoch=lambda e, r: print(e, flush=True))
    np.save(sys.argv[3], np.concatenate([w.ravel() for w in model.coefs_ + model.intercepts_]))
""")


@pytest.mark.slow
def test_killing_the_process_leaves_a_loadable_checkpoint_and_resume_is_exact(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    ckpt, weights = tmp_path / "ckpt.npz", tmp_path / "w.npy"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for kill_after in (1, 3, 4):
        proc = subprocess.Popen([sys.executable, str(script), str(ckpt), "resume", str(weights)],
                                stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(kill_after):
            proc.stdout.readline()
        time.sleep(0.01 * kill_after)  # somewhere inside the next epoch or its checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        load_checkpoint(ckpt)  # always loadable
    subprocess.run([sys.executable, str(script), str(ckpt), "resume", str(weights)], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    resumed = np.load(weights)
    subprocess.run([sys.executable, str(script), str(tmp_path / "other.npz"), "fresh",
                    str(weights)], check=True, stdout=subprocess.DEVNULL, env=env)
    np.testing.assert_array_equal(resumed, np.load(weights))
