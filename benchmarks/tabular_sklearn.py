"""Issue 13's tabular case: FastFNN's default against scikit-learn's MLPClassifier and init="he".

make_classification (100,000 rows, 100 features, 20 informative, 5 classes, random_state=0), trained
on the first 80,000 and tested on the rest; (256, 128), Adam, batch 200, 4 epochs; seeds 0 and 1.
Prints each model's mean test accuracy and fit seconds. One BLAS thread keeps the comparison fair:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/tabular_sklearn.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier

from fastfnn import FastFNN

COMMON = dict(hidden_layer_sizes=(256, 128), solver="adam", batch_size=200, max_iter=4)
MODELS = {
    "sklearn MLPClassifier": lambda seed: MLPClassifier(**COMMON, random_state=seed),
    "FastFNN default (glorot)": lambda seed: FastFNN(**COMMON, random_state=seed,
                                                     backend="numba", n_jobs=1),
    "FastFNN init='he'": lambda seed: FastFNN(**COMMON, random_state=seed, backend="numba",
                                              n_jobs=1, init="he"),
}


def main():
    warnings.simplefilter("ignore")  # 4 epochs do not converge, by design
    X, y = make_classification(n_samples=100_000, n_features=100, n_informative=20, n_classes=5,
                               random_state=0)
    X = X.astype(np.float32)
    X_train, y_train, X_test, y_test = X[:80_000], y[:80_000], X[80_000:], y[80_000:]
    for name, make in MODELS.items():
        scores, seconds = [], []
        for seed in (0, 1):
            start = time.perf_counter()
            model = make(seed).fit(X_train, y_train)
            seconds.append(time.perf_counter() - start)
            scores.append(model.score(X_test, y_test))
        print(f"{name:28s} test accuracy {np.mean(scores):.4f} {scores}; "
              f"fit {np.mean(seconds):.1f} s")


if __name__ == "__main__":
    main()
