"""fastfnn.streaming.fit_chunks: seeded streams of chunks from memmaps and dask arrays."""

from __future__ import annotations

import copy
import mmap
import sys

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor
from fastfnn import streaming
from fastfnn.streaming import _release_pages, fit_chunks, streams
from .conftest import blobs


def model(**changes):
    return FastFNN(**{"hidden_layer_sizes": (16,), "batch_size": 16, "random_state": 0,
                      "learning_rate_init": 0.02,
                      "backend": "numba", **changes})


@pytest.fixture
def on_disk(tmp_path):
    """Blobs as a uint8 memmap (n, 12) and int labels (n,)."""
    X, y = blobs(n=250, n_features=12, n_classes=3, spread=1.0)
    X8 = np.clip((X - X.min()) / (X.max() - X.min()) * 255, 0, 255).astype(np.uint8)
    path = tmp_path / "X.u8"
    X8.tofile(path)
    return np.memmap(path, np.uint8, "r", shape=X8.shape), y


def test_streams_chunks_and_rows_in_seeded_order(on_disk):
    """One partial_fit per chunk, chunks and rows drawn from the seed: the same as calling
    partial_fit by hand in that order, bitwise."""
    X, y = on_disk
    streamed = fit_chunks(model(), X, y, chunk_rows=64, epochs=2, random_state=7)
    by_hand, rng = model(), np.random.default_rng(7)
    for _ in range(2):
        for start in rng.permutation(np.arange(0, 250, 64)):
            rows = start + rng.permutation(min(64, 250 - start))
            by_hand.partial_fit(np.asarray(X)[rows], y[rows], classes=[0, 1, 2])
    assert streamed.n_iter_ == by_hand.n_iter_ == 8   # one history entry per chunk
    for a, b in zip(streamed.coefs_ + streamed.intercepts_, by_hand.coefs_ + by_hand.intercepts_):
        np.testing.assert_array_equal(a, b)
    other = fit_chunks(model(), X, y, chunk_rows=64, epochs=2, random_state=8)
    assert not np.array_equal(other.coefs_[0], streamed.coefs_[0])
    assert streamed.score(np.asarray(X), y) > 0.9


def test_regressors_stream_without_classes(on_disk):
    X, y = on_disk
    regressor = FastFNNRegressor(hidden_layer_sizes=(8,), batch_size=16, random_state=0,
                                 learning_rate_init=0.01, backend="numba")
    fit_chunks(regressor, X, y.astype(np.float64), chunk_rows=100, epochs=2)
    assert regressor.n_iter_ == 2 * 3
    assert regressor.score(np.asarray(X), y) > 0.5   # R^2 of blob labels from their features


def test_seed_defaults_to_the_models_random_state(on_disk):
    X, y = on_disk
    a = fit_chunks(model(max_iter=2), X, y, chunk_rows=100)
    b = fit_chunks(model(max_iter=2), X, y, chunk_rows=100, random_state=0)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.n_iter_ == 2 * 3


def test_dask_array_streams_like_the_memmap(on_disk):
    da = pytest.importorskip("dask.array",
                             reason="dask is not installed (pip install -e '.[dask]')")
    X, y = on_disk
    from_memmap = fit_chunks(model(), X, y, chunk_rows=50, epochs=1)
    from_dask = fit_chunks(model(), da.from_array(np.asarray(X), chunks=(70, 12)),
                           da.from_array(y, chunks=70), chunk_rows=50, epochs=1)
    for a, b in zip(from_memmap.coefs_, from_dask.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change,message", [
    (dict(y=np.zeros(10)), "X has 250 rows but y has 10"),
    (dict(chunk_rows=0), "chunk_rows must be a positive int"),
    (dict(chunk_rows=2.5), "chunk_rows must be a positive int"),
    (dict(epochs=0), "epochs must be a positive int"),
    (dict(solver="lbfgs"), "needs a stochastic solver"),
])
def test_bad_arguments_are_refused_before_training(on_disk, change, message):
    X, y = on_disk
    fresh = model(**{k: change.pop(k) for k in ("solver",) if k in change})
    with pytest.raises(ValueError, match=message):
        fit_chunks(fresh, X, change.pop("y", y), **change)
    assert not hasattr(fresh, "coefs_")


@pytest.mark.parametrize("fitted", [True, False])
def test_a_bad_later_chunk_leaves_the_model_as_it_was(fitted):
    """NaN rows in the second chunk are found after the first chunk trained: the model (fitted
    or not) must not keep that training."""
    X, y = blobs(n=200, n_features=6, n_classes=2)
    streamed = model(backend="numpy", max_iter=2)
    if fitted:
        streamed.fit(X, y)
    before = {name: copy.deepcopy(value) for name, value in vars(streamed).items()
              if name.endswith("_")}
    X_bad = np.r_[X[:100], np.full((100, 6), np.nan)]
    seen = []
    with pytest.raises(ValueError, match="NaN"):
        fit_chunks(streamed, X_bad, y, chunk_rows=100, epochs=1, random_state=0,
                   on_chunk=lambda epoch, index, trained: seen.append(trained.n_iter_))
    assert seen == [3 if fitted else 1]    # the good chunk did train, on the copy
    after = {name: value for name, value in vars(streamed).items() if name.endswith("_")}
    assert after.keys() == before.keys()
    for name in ("coefs_", "intercepts_"):
        for a, b in zip(after.get(name, ()), before.get(name, ())):
            np.testing.assert_array_equal(a, b)
    assert after.get("n_iter_") == before.get("n_iter_")
    assert after.get("loss_curve_") == before.get("loss_curve_")


def test_feature_names_are_xs_own_and_checked_once_before_training(on_disk):
    """As partial_fit treats them: an unfitted model takes a data frame's names; a fitted one
    checks X's against its own once (the chunks, read as arrays, have none) and keeps them."""
    pd = pytest.importorskip("pandas")
    X, y = blobs(n=120, n_features=3, n_classes=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    streamed = fit_chunks(model(backend="numpy"), frame, y, chunk_rows=40, epochs=1)
    assert list(streamed.feature_names_in_) == ["a", "b", "c"]
    before = copy.deepcopy(streamed.fitted_state_)
    with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
        fit_chunks(streamed, frame[["c", "b", "a"]], y, chunk_rows=40, epochs=1)
    assert streamed.n_iter_ == before.n_iter
    np.testing.assert_array_equal(streamed.coefs_[0], before.coefs[0])
    with pytest.warns(UserWarning, match="X does not have valid feature names") as caught:
        fit_chunks(streamed, X, y, chunk_rows=40, epochs=1)
    assert len(caught) == 1 and streamed.n_iter_ == before.n_iter + 3
    assert list(streamed.feature_names_in_) == ["a", "b", "c"]
    X8, y8 = on_disk
    assert not hasattr(fit_chunks(model(backend="numpy"), X8, y8, epochs=1), "feature_names_in_")


def _resident_file_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"),
                    reason="reads RssFile from /proc/self/status (Linux)")
def test_released_pages_leave_resident_memory(tmp_path):
    """Without the release, every page an epoch reads stays resident: RSS grows to the file."""
    path = tmp_path / "big.u8"
    path.write_bytes(np.arange(64 << 20, dtype=np.uint8).tobytes())
    mapped = np.memmap(path, np.uint8, "r", shape=(1024, 64 << 10))
    before = _resident_file_kb()
    part = mapped[100:900]
    assert int(np.array(part).sum(dtype=np.int64)) > 0
    assert _resident_file_kb() - before > 40 << 10       # ~50 MB read in
    _release_pages(part)
    assert _resident_file_kb() - before < 4 << 10


def test_fit_streams_dask_arrays_and_big_memmaps_only(on_disk, monkeypatch):
    X, _ = on_disk
    assert not streams(X) and not streams(np.asarray(X)) and not streams([[1, 2]])
    monkeypatch.setattr(streaming, "STREAM_MEMMAP_BYTES", X.nbytes - 1)
    assert streams(X) and not streams(np.array(X))
    da = pytest.importorskip("dask.array",
                             reason="dask is not installed (pip install -e '.[dask]')")
    assert streams(da.from_array(np.asarray(X), chunks=(70, 12)))


def test_dask_ml_incremental_drives_partial_fit_block_by_block():
    """The other streaming route: dask-ml's Incremental calls partial_fit once per block."""
    wrappers = pytest.importorskip("dask_ml.wrappers",
                                   reason="dask-ml is not installed (pip install -e '.[dask]')")
    import dask
    import dask.array as da

    X, y = blobs(n=300, n_features=12, n_classes=3, spread=1.5)
    incremental = wrappers.Incremental(model(), shuffle_blocks=False)
    with dask.config.set(scheduler="sync"):
        incremental.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100),
                        classes=[0, 1, 2])
    by_hand = model()
    for start in (0, 100, 200):
        by_hand.partial_fit(X[start:start + 100], y[start:start + 100], classes=[0, 1, 2])
    for a, b in zip(incremental.estimator_.coefs_, by_hand.coefs_):
        np.testing.assert_array_equal(a, b)
