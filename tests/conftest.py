"""Shared fixtures: the backends to test, MNIST wherever ``load_mnist()`` finds it without downloading,
and the repository's root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastfnn.backends import available_backends, get_backend

BACKEND_REPORT = available_backends()
#: The repository's root (the checkout these tests run from).
REPO = Path(__file__).resolve().parent.parent


def backend_params(include_numpy=True):
    """pytest params for every registered backend; unavailable ones skip with the reason."""
    params = []
    for name, reason in BACKEND_REPORT.items():
        if name == "numpy" and not include_numpy:
            continue
        marks = [pytest.mark.skip(reason=f"backend {name} unavailable here: {reason}")] \
            if reason else []
        if name == "cupy":
            marks.append(pytest.mark.gpu)
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.fixture(params=backend_params())
def backend(request):
    """Every backend available here (unavailable ones are skipped with the reason)."""
    return get_backend(request.param)


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder ``load_mnist()`` reads MNIST from without downloading ($FASTFNN_DATA/mnist, then the
    user cache that ``fastfnn train`` fills), or skip saying where it looked."""
    from fastfnn.datasets import find_mnist
    try:
        return find_mnist()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc} (`fastfnn train` or `python -c 'import fastfnn; fastfnn.load_mnist()'` "
                    "downloads it into the cache)")


@pytest.fixture(scope="session")
def mnist_uint8(mnist_dir):
    """((X_train, y_train), (X_test, y_test)) with uint8 pixels."""
    from fastfnn.datasets import load_mnist
    return load_mnist(mnist_dir, dtype=np.uint8)


def blobs(n=300, n_features=8, n_classes=3, seed=0, spread=0.3):
    """Separable Gaussian blobs: X float64 (n, n_features), y int64 (n,)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)) * 3
    y = rng.integers(0, n_classes, n)
    X = centres[y] + spread * rng.standard_normal((n, n_features))
    return X, y
