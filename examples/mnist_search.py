"""The search the Dask and Ray examples distribute: 4 candidates x 3 folds of FastFNN on MNIST.

Shared by search_dask.py and search_ray.py (run those); it defines the search, loads the images and
times one search under whatever joblib backend is active.
"""

from __future__ import annotations

import time

import joblib
import numpy as np
from sklearn.model_selection import GridSearchCV

from fastfnn import FastFNN, load_mnist

#: The candidates: 2 learning rates x 2 L2 strengths.
GRID = {"learning_rate_init": [0.05, 0.1], "alpha": [1e-4, 1e-3]}


def mnist_subset(n_images: int):
    """The first ``n_images`` MNIST training images as uint8 (n, 784) and their labels (n,)."""
    (X, y), _ = load_mnist(dtype=np.uint8)
    return X[:n_images], y[:n_images]


def timed_search(X, y, n_jobs):
    """Run the 3-fold grid search of a 784-128-64-10 net (5 epochs, batch 128) whose fits use
    ``n_jobs`` threads, under the active joblib backend.

    Returns (seconds, per-split test scores (3, 4))."""
    search = GridSearchCV(FastFNN(hidden_layer_sizes=(128, 64), batch_size=128, max_iter=5,
                                  random_state=0, n_jobs=n_jobs),
                          GRID, cv=3, refit=False, n_jobs=-1)
    start = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - start
    scores = np.array([search.cv_results_[f"split{i}_test_score"] for i in range(3)])
    return seconds, scores


def compare_thread_defaults(X, y, serial, engine, repeat):
    """Time the search with the default thread count (n_jobs=None) and with n_jobs=1 under the
    joblib backend ``engine``, interleaved ``repeat`` times (the first search also pays each
    worker's first tasks); print each run, whether its scores equal ``serial``'s, and the medians.
    Returns {n_jobs: median seconds}."""
    seconds = {None: [], 1: []}
    for _ in range(repeat):
        for n_jobs in (None, 1):
            with joblib.parallel_config(backend=engine):
                elapsed, scores = timed_search(X, y, n_jobs)
            seconds[n_jobs].append(elapsed)
            same = np.array_equal(scores, serial)
            print(f"{engine}, n_jobs={n_jobs}: {elapsed:.2f} s, scores as serial: {same}")
    medians = {n_jobs: float(np.median(times)) for n_jobs, times in seconds.items()}
    print(f"medians: default {medians[None]:.2f} s, n_jobs=1 {medians[1]:.2f} s, "
          f"ratio {medians[None] / medians[1]:.2f}x")
    return medians
