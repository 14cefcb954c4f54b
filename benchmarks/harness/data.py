"""The data every variant trains on: MNIST pixels or dense tabular rows, per workload.

A workload on "mnist" inputs trains on the first MNIST training rows as uint8 (else synthetic
MNIST-shaped ones); one on "dense" inputs on :func:`dense_classification`'s seeded Gaussian class
clusters, in the workload's dtype. :class:`DataSource` hands each workload its data, the same in
every process that asks (the isolated workers build their own). MNIST is read wherever
:func:`fastfnn.datasets.load_mnist` finds it without downloading; a benchmark never fetches anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fastfnn.bench.workloads import SEED
from fastfnn.datasets import find_mnist, load_mnist


@dataclass
class Data:
    """Training data: uint8 pixels (n, 784) or dense floats (n, d), int64 labels (n,), and where
    they came from."""

    X: np.ndarray
    y: np.ndarray
    source: str

    @property
    def x_scale(self):
        """What the inputs are multiplied by before the first layer: 1/255 for uint8 pixels, else 1."""
        return 1.0 / 255.0 if self.X.dtype == np.uint8 else 1.0

    def floats(self, dtype=np.float32):
        """The inputs as ``dtype`` floats (pixels in [0, 1]), the way a hand-written loop prepares
        them once; cached per dtype."""
        dtype = np.dtype(dtype)
        if self.X.dtype == dtype:
            return self.X
        cache = self.__dict__.setdefault("_floats", {})
        if dtype not in cache:
            cache[dtype] = (self.X.astype(dtype) / dtype.type(255) if self.X.dtype == np.uint8
                            else self.X.astype(dtype))
        return cache[dtype]

    def head(self, rows):
        """The first ``rows`` rows (views), with the same source."""
        if rows == len(self.y):
            return self
        return Data(self.X[:rows], self.y[:rows], self.source)


def synthetic_mnist(n, seed=SEED):
    """MNIST-shaped random data: (n, 784) uint8 with ~80% zeros, labels 0..9."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
    X[rng.integers(0, 5, size=(n, 784), dtype=np.uint8) != 0] = 0  # each pixel zero with p = 4/5
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return Data(X, y, f"synthetic MNIST-shaped uint8, ~80% zeros (seed {seed})")


def dense_classification(n, n_features, n_classes, dtype=np.float32, seed=SEED):
    """Dense tabular classification data like scikit-learn's ``make_classification``, NumPy only.

    ``max(n_classes, n_features // 10)`` informative features hold one Gaussian cluster per class
    (unit variance around a distinct vertex of the hypercube [-1, 1]^k, so classes overlap but are
    learnable); the other features are standard normal noise; the columns are shuffled, then
    standardized (mean 0, std 1, computed in float64). Classes are balanced and the rows shuffled.
    The same ``seed`` gives the same values in every dtype (drawn in float64, then cast).
    Returns :class:`Data` with X (n, n_features) of ``dtype`` and int64 labels (n,) in
    0..n_classes-1.
    """
    if n < 1 or n_classes < 2 or n_features < 1:
        raise ValueError(f"dense_classification needs n >= 1, n_classes >= 2 and n_features >= 1, "
                         f"got n={n}, n_classes={n_classes}, n_features={n_features}")
    informative = _informative(n_features, n_classes)
    if n_classes > 2 ** informative:
        raise ValueError(f"{n_classes} classes need more than {informative} informative features")
    rng = np.random.default_rng(seed)
    # distinct hypercube vertices: the binary digits of distinct integers below 2**informative
    # (at most 2**62 of them drawn from; the high bits stay 0 beyond 62 features, still distinct)
    codes = rng.choice(2 ** min(informative, 62), size=n_classes, replace=False)
    bits = (codes[:, None] >> np.arange(informative)) & 1
    centroids = 2.0 * bits - 1.0
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    X = rng.standard_normal((n, n_features))
    X[:, :informative] += centroids[y]
    X = X[:, rng.permutation(n_features)]
    X -= X.mean(axis=0)
    std = X.std(axis=0)
    X /= np.where(std > 0, std, 1.0)
    return Data(np.ascontiguousarray(X, dtype=dtype), y, _dense_source(n_features, n_classes, seed))


def _informative(n_features, n_classes):
    """How many of ``n_features`` hold the class clusters."""
    return min(n_features, max(n_classes, n_features // 10))


def _dense_source(n_features, n_classes, seed):
    return (f"dense Gaussian classes, standardized: {n_features} features "
            f"({_informative(n_features, n_classes)} informative), {n_classes} classes (seed {seed})")


class DataSource:
    """Each workload's data: MNIST rows (read once, at the most rows asked for yet) or dense rows.

    rows: rows per epoch of a workload whose ``rows`` is None; ``rows_override``, when given, the
    rows of every workload. ``data_dir`` and ``synthetic`` as for :func:`load_data`. Picklable
    before use, so a worker process can build the same data.
    """

    def __init__(self, rows, data_dir=None, synthetic=False, rows_override=None):
        self.rows, self.data_dir, self.synthetic = rows, data_dir, synthetic
        self.rows_override = rows_override
        self._mnist = None
        self._dense = {}

    def __getstate__(self):
        return {**self.__dict__, "_mnist": None, "_dense": {}}

    def rows_for(self, workload):
        """Rows per epoch of ``workload``."""
        if self.rows_override is not None:
            return self.rows_override
        return self.rows if workload.rows is None else workload.rows

    def describe(self, workload):
        """Where ``workload``'s data come from (reads MNIST, but generates no dense rows)."""
        if workload.inputs == "dense":
            return _dense_source(workload.sizes[0], workload.sizes[-1], SEED)
        return self.for_workload(workload).source

    def for_workload(self, workload):
        """The :class:`Data` ``workload`` trains on (uint8 MNIST pixels or dense floats of its dtype).

        Raises ValueError / FileNotFoundError as :func:`load_data` does.
        """
        rows = self.rows_for(workload)
        if workload.inputs == "dense":
            key = (rows, workload.sizes[0], workload.sizes[-1], workload.dtype)
            if key not in self._dense:
                self._dense = {key: dense_classification(rows, workload.sizes[0], workload.sizes[-1],
                                                         workload.dtype)}
            return self._dense[key]
        if self._mnist is None or len(self._mnist.y) < rows:
            self._mnist = load_data(rows, self.data_dir, self.synthetic)
        return self._mnist.head(rows)


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
