"""The data every variant trains on: the first MNIST training rows as uint8, else synthetic ones.

MNIST is read wherever :func:`fastfnn.datasets.load_mnist` finds it without downloading; a benchmark
never fetches anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fastfnn.bench.workloads import SEED
from fastfnn.datasets import find_mnist, load_mnist


@dataclass
class Data:
    """Training data: uint8 pixels (n, 784), int64 labels (n,), and where they came from."""

    X: np.ndarray
    y: np.ndarray
    source: str

    def floats(self):
        """Pixels as float32 in [0, 1], the way a hand-written loop prepares them once."""
        if not hasattr(self, "_floats"):
            self._floats = self.X.astype(np.float32) / np.float32(255)
        return self._floats


def synthetic_mnist(n, seed=SEED):
    """MNIST-shaped random data: (n, 784) uint8 with ~80% zeros, labels 0..9."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
    X[rng.integers(0, 5, size=(n, 784), dtype=np.uint8) != 0] = 0  # each pixel zero with p = 4/5
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return Data(X, y, f"synthetic MNIST-shaped uint8, ~80% zeros (seed {seed})")


def load_data(rows, data_dir=None, synthetic=False):
    """The first ``rows`` MNIST training rows (uint8), else synthetic data of that shape.

    data_dir: a folder with the four MNIST IDX files, or one holding them in ``mnist/``; when None,
    :func:`fastfnn.datasets.load_mnist` looks in ``$FASTFNN_DATA/mnist`` and the user cache (never
    downloads) and synthetic data is used when nothing is there. A given ``data_dir`` must hold the
    files. Raises ValueError when ``rows`` exceeds the MNIST training rows.
    """
    if synthetic:
        return synthetic_mnist(rows)
    if data_dir is not None:
        where = _mnist_folder(data_dir)
        (X, y), _ = load_mnist(where, dtype=np.uint8, download=False)
    else:
        try:
            (X, y), _ = load_mnist(dtype=np.uint8, download=False)
        except FileNotFoundError:
            data = synthetic_mnist(rows)
            data.source += " (no MNIST files found; set FASTFNN_DATA or pass --data)"
            return data
        where = "$FASTFNN_DATA/mnist or the user cache"
    if rows > len(X):
        raise ValueError(f"--rows {rows} exceeds the {len(X)} MNIST training rows")
    return Data(np.ascontiguousarray(X[:rows]), np.ascontiguousarray(y[:rows], dtype=np.int64),
                f"MNIST training set, first {rows} rows ({where})")


def _mnist_folder(data_dir):
    """``data_dir`` if it holds MNIST, else ``data_dir/mnist`` if that does, else ``data_dir`` (whose
    load then says what is missing)."""
    for folder in (data_dir, os.path.join(data_dir, "mnist")):
        try:
            return find_mnist(folder)
        except FileNotFoundError:
            continue
    return data_dir
