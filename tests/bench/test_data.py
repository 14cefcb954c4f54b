"""fastfnn.bench.data: synthetic MNIST-shaped rows, and real rows wherever load_mnist finds them."""

import dataclasses
import hashlib
import pickle

import numpy as np
import pytest

from fastfnn import datasets
from fastfnn.bench import data
from fastfnn.io.idx import encode_idx


def test_synthetic_data_is_mnist_shaped():
    rows = data.synthetic_mnist(500)
    assert rows.X.shape == (500, 784) and rows.X.dtype == np.uint8
    assert rows.y.dtype == np.int64 and set(np.unique(rows.y)) <= set(range(10))
    assert 0.75 < np.mean(rows.X == 0) < 0.85
    floats = rows.floats()
    assert floats.dtype == np.float32 and floats.max() <= 1.0


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No MNIST in $FASTFNN_DATA or the user cache."""
    monkeypatch.delenv("FASTFNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def fake_mnist(folder, monkeypatch, n=20):
    """Write MNIST-shaped IDX files (n training rows) into ``folder``; patch the MD5 table to match."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8)}
    folder.mkdir(parents=True)
    md5 = {}
    for name, array in arrays.items():
        raw = encode_idx(array)
        (folder / name).write_bytes(raw)
        md5[name] = hashlib.md5(raw).hexdigest()
    monkeypatch.setattr(datasets, "MNIST_MD5", md5)
    return arrays


def test_without_mnist_anywhere_synthetic_rows_say_so(nowhere):
    rows = data.load_data(50)
    assert rows.X.shape == (50, 784) and "no MNIST files found" in rows.source


@pytest.mark.parametrize("nested", [False, True], ids=["dir", "dir/mnist"])
def test_data_dir_holds_mnist_itself_or_in_mnist(nowhere, tmp_path, monkeypatch, nested):
    folder = tmp_path / "d"
    arrays = fake_mnist(folder / "mnist" if nested else folder, monkeypatch)
    rows = data.load_data(7, str(folder))
    np.testing.assert_array_equal(rows.X, arrays["train-images-idx3-ubyte"][:7].reshape(7, 784))
    assert rows.y.dtype == np.int64 and "first 7 rows" in rows.source
    with pytest.raises(ValueError, match="--rows 21 exceeds the 20 MNIST training rows"):
        data.load_data(21, str(folder))


def test_data_dir_without_mnist_is_an_error(nowhere, tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False"):
        data.load_data(5, str(tmp_path))


def test_mnist_in_the_user_cache_is_found(nowhere, tmp_path, monkeypatch):
    fake_mnist(tmp_path / "xdg" / "fastfnn" / "mnist", monkeypatch)
    rows = data.load_data(4)
    assert rows.X.shape == (4, 784) and "MNIST training set" in rows.source


def test_dense_classification_is_seeded_shaped_standardized_and_balanced():
    a = data.dense_classification(500, 40, 5)
    b = data.dense_classification(500, 40, 5)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.X.shape == (500, 40) and a.X.dtype == np.float32 and a.X.flags.c_contiguous
    assert a.y.dtype == np.int64 and np.bincount(a.y).tolist() == [100] * 5
    np.testing.assert_allclose(a.X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(a.X.std(axis=0), 1, rtol=1e-4)
    assert a.x_scale == 1.0 and a.floats() is a.X
    wide = data.dense_classification(500, 40, 5, np.float64)
    assert wide.X.dtype == np.float64
    np.testing.assert_allclose(wide.X, a.X, rtol=1e-6, atol=1e-6)  # the same draws
    other = data.dense_classification(500, 40, 5, seed=1)
    assert not np.array_equal(other.X, a.X)


def test_dense_classes_are_learnable_but_not_trivially():
    """Nearest class mean, fitted on half, scores well above chance (0.2) on the other half."""
    d = data.dense_classification(2000, 100, 5)
    train, test = slice(0, 1000), slice(1000, 2000)
    means = np.stack([d.X[train][d.y[train] == k].mean(axis=0) for k in range(5)])
    guess = np.argmin(((d.X[test][:, None, :] - means) ** 2).sum(axis=2), axis=1)
    assert 0.6 < np.mean(guess == d.y[test]) < 1.0


def test_dense_classification_refuses_bad_sizes():
    with pytest.raises(ValueError, match="n_classes >= 2"):
        data.dense_classification(10, 5, 1)
    with pytest.raises(ValueError, match="need more than"):
        data.dense_classification(10, 2, 5)


def test_data_source_gives_each_workload_its_rows_and_inputs():
    from fastfnn.bench.workloads import WORKLOADS_BY_KEY, Workload

    source = data.DataSource(300, synthetic=True)
    seed = WORKLOADS_BY_KEY["784-128-10"]
    dense = Workload("d", (20, 8, 3), 16, 0.1, "d", dtype="float64", inputs="dense", rows=50)
    assert source.rows_for(seed) == 300 and source.rows_for(dense) == 50
    pixels = source.for_workload(seed)
    assert pixels.X.shape == (300, 784) and pixels.X.dtype == np.uint8 and pixels.x_scale == 1 / 255
    assert pixels.floats(np.float64).dtype == np.float64 and pixels.floats().max() <= 1.0
    rows = source.for_workload(dense)
    assert rows.X.shape == (50, 20) and rows.X.dtype == np.float64 and rows.y.max() == 2
    assert "20 features" in source.describe(dense)
    few = data.DataSource(300, synthetic=True, rows_override=40)
    assert few.for_workload(seed).X.shape[0] == 40 and few.for_workload(dense).X.shape[0] == 40
    # MNIST is read once at the most rows asked for; fewer rows are its first ones
    smaller = dataclasses.replace(seed, rows=100)
    np.testing.assert_array_equal(source.for_workload(smaller).X, pixels.X[:100])
    assert pickle.loads(pickle.dumps(source))._mnist is None  # a worker builds its own
