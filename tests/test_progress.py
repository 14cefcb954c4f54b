"""Progress reporting: summary lines always, the bar only on a terminal."""

import io

import numpy as np
import pytest

from fastfnn import FastFNN
from fastfnn.progress import EpochProgress, format_epoch

from .conftest import blobs


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


RECORD = {"loss": 0.5, "accuracy": 0.75, "val_loss": None, "val_accuracy": None, "seconds": 1.25}


def test_format_epoch_with_and_without_validation():
    assert format_epoch(0, RECORD, 20) == "epoch 1/20  loss 0.5000  accuracy 0.7500  1.25s"
    line = format_epoch(2, {**RECORD, "val_loss": 0.6, "val_accuracy": 0.7})
    assert line.startswith("epoch 3  ") and "val_accuracy 0.7000" in line


def test_no_bar_when_not_a_terminal():
    stream = io.StringIO()
    progress = EpochProgress(3, stream)
    assert not progress.bar_enabled
    progress.on_progress(10, 100, 5.0, 7.0)
    progress.on_epoch(0, RECORD)
    assert stream.getvalue() == format_epoch(0, RECORD, 3) + "\n"


def test_bar_on_a_terminal_shows_running_loss_and_accuracy():
    stream = FakeTerminal()
    progress = EpochProgress(2, stream)
    progress.on_progress(50, 100, 25.0, 40.0)
    progress.on_progress(100, 100, 40.0, 90.0)
    progress.on_epoch(0, RECORD)
    out = stream.getvalue()
    assert "epoch 1/2" in out and "loss=0.4000" in out and "accuracy=0.9000" in out


def test_verbose_fit_prints_one_line_per_epoch(capsys):
    X, y = blobs(n=60)
    FastFNN((4,), verbose=True, max_iter=3, tol=0.0, backend="numpy", random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"epoch {i + 1}/3 ") for i, line in
                                   enumerate(lines))


def test_progress_in_parts_trains_exactly_like_whole_epochs(monkeypatch):
    X, y = blobs(n=300)
    quiet = FastFNN((6,), max_iter=2, batch_size=16, backend="numpy", random_state=1).fit(X, y)
    monkeypatch.setattr("fastfnn.model.EpochProgress",
                        lambda max_epochs, stream: EpochProgress(max_epochs, FakeTerminal()))
    shown = FastFNN((6,), max_iter=2, batch_size=16, backend="numpy", random_state=1,
                    verbose=True).fit(X, y)
    for a, b in zip(quiet.coefs_, shown.coefs_):
        np.testing.assert_array_equal(a, b)
    assert quiet.loss_curve_ == shown.loss_curve_


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_progress_keeps_numbas_sparse_sgd_bitwise(monkeypatch, batch_size):
    """Per-example SGD on sparse pixels updates the first layer lazily; run in parts, each part
    caught every row up at its end and the weights came out 6e-8 apart."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    X = ((rng.random((400, 64)) < 0.2) * rng.integers(1, 256, (400, 64))).astype(np.uint8)
    y = rng.integers(0, 3, 400)
    fit = lambda verbose: FastFNN((8,), solver="sgd", batch_size=batch_size, max_iter=1,
                                  backend="numba", random_state=0, verbose=verbose).fit(X, y)
    quiet = fit(False)
    monkeypatch.setattr("fastfnn.model.EpochProgress",
                        lambda max_epochs, stream: EpochProgress(max_epochs, FakeTerminal()))
    shown = fit(True)
    for a, b in zip(quiet.coefs_, shown.coefs_):
        np.testing.assert_array_equal(a, b)
