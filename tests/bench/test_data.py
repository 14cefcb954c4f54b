"""fastfnn.bench.data: synthetic MNIST-shaped rows, and real rows wherever load_mnist finds them."""

import hashlib

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
