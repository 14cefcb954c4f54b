"""Out-of-core fit: 2 epochs over a uint8 memory-mapped file bigger than the memory a fit may use.

Writes MNIST's training images again and again into a file (2 GB by default, in the temporary
folder) without holding it in memory, fits a 784-128-64-10 net on it with
fastfnn.streaming.fit_chunks (chunks of 65,536 rows in a seeded order, rows shuffled within each),
prints the test accuracy, the time and the peak resident memory of this process, and deletes the
file (unless --keep).

    FASTFNN_DATA=... python examples/stream_memmap.py [--gigabytes 2] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np

from fastfnn import FastFNN, load_mnist
from fastfnn.streaming import fit_chunks


def write_copies(path, X, y, n_rows):
    """Write rows of X cyclically to ``path`` until it holds ``n_rows``; return their labels."""
    with open(path, "wb") as out:
        for start in range(0, n_rows, len(X)):
            out.write(X[:n_rows - start].tobytes())
    return np.resize(y, n_rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = parser.parse_args()
    (X, y), (X_test, y_test) = load_mnist(dtype=np.uint8)
    n_rows = int(args.gigabytes * 1e9) // X.shape[1]
    path = os.path.join(tempfile.gettempdir(), f"fastfnn-stream-{n_rows}x784.u8")
    labels = write_copies(path, X, y, n_rows)
    del X, y
    try:
        images = np.memmap(path, np.uint8, "r", shape=(n_rows, 784))
        model = FastFNN(hidden_layer_sizes=(128, 64), solver="sgd", learning_rate_init=0.05,
                        batch_size=128, random_state=0)
        start = time.perf_counter()
        fit_chunks(model, images, labels, chunk_rows=args.chunk_rows, epochs=args.epochs)
        seconds = time.perf_counter() - start
    finally:
        if not args.keep:
            os.remove(path)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    peak_mb = peak_kb / (1 << 20 if sys.platform == "darwin" else 1 << 10)
    print(f"{n_rows} rows ({n_rows * 784 / 1e9:.2f} GB) x {args.epochs} epochs in {seconds:.1f} s; "
          f"test accuracy {model.score(X_test, y_test):.4f}; peak resident memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
