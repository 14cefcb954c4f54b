"""Data-parallel training on Dask: one model over MNIST shards held by the workers (local SGD).

Starts a LocalCluster (--workers single-threaded processes; --scheduler ADDRESS uses a running one),
fits a 784-128-64-10 net with SGD on all 60,000 training images with fastfnn.distributed's
fit_data_parallel, averaging weights and momentum once per epoch and every --sync-every
mini-batches, and compares test accuracy and seconds per epoch with the same fit in this process
on one thread. It also prints what one round moves: the parameters and optimizer state, to each
worker and back.

    FASTFNN_DATA=... python examples/data_parallel_dask.py [--epochs 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from distributed import Client, LocalCluster

from fastfnn import FastFNN, load_mnist
from fastfnn.distributed import WarmupPlugin, fit_data_parallel


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sync-every", type=int, default=50, help="mini-batches per round")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    args = parser.parse_args()
    (X, y), (X_test, y_test) = load_mnist(dtype=np.uint8)
    model = FastFNN(hidden_layer_sizes=(128, 64), solver="sgd", learning_rate_init=0.05,
                    momentum=0.9, batch_size=128, max_iter=args.epochs, random_state=0, n_jobs=1)
    start = time.perf_counter()
    single = FastFNN(**model.get_params()).fit(X, y)
    print(f"one process, one thread: accuracy {single.score(X_test, y_test):.4f}, "
          f"{(time.perf_counter() - start) / args.epochs:.2f} s per epoch")
    state_bytes = sum(a.nbytes for group in single.fitted_state_.optimizer.groups for a in group) \
        + sum(a.nbytes for a in single.coefs_ + single.intercepts_)
    cluster = None if args.scheduler else LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(args.scheduler or cluster) as client:
        client.register_plugin(WarmupPlugin(dtypes=("float32",), inputs=("uint8",)))
        workers = len(client.scheduler_info()["workers"])
        for sync_every in (None, args.sync_every):
            rounds = []
            start = time.perf_counter()
            fitted = fit_data_parallel(model, client, X, y, sync_every=sync_every,
                                       on_round=lambda epoch, index, m: rounds.append(index))
            seconds = (time.perf_counter() - start) / args.epochs
            every = "epoch" if sync_every is None else f"{sync_every} mini-batches"
            print(f"{workers} workers, averaging every {every}: accuracy "
                  f"{fitted.score(X_test, y_test):.4f}, {seconds:.2f} s per epoch, {len(rounds)} "
                  f"rounds, {2 * workers * state_bytes / 1e6:.2f} MB moved per round")
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":  # the cluster spawns worker processes that import this file
    main()
