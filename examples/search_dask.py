"""GridSearchCV on a Dask cluster: each (candidate, fold) fit runs on a worker, through joblib.

Starts a LocalCluster of 2 single-threaded worker processes (pass --scheduler ADDRESS to use a
running cluster), warms the workers' compile cache once (fastfnn.distributed.WarmupPlugin), then
runs the 4-candidate, 3-fold search on MNIST images with fits using the default thread count
(n_jobs=None: the worker's share, one thread here) and with n_jobs=1, and checks both against a
serial run.

    FASTFNN_DATA=... python examples/search_dask.py [--images 5000]
"""

from __future__ import annotations

import argparse

import joblib
from distributed import Client, LocalCluster

from fastfnn.distributed import WarmupPlugin
from mnist_search import compare_thread_defaults, mnist_subset, timed_search


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    args = parser.parse_args()
    X, y = mnist_subset(args.images)
    with joblib.parallel_config(backend="sequential"):
        serial_seconds, serial = timed_search(X, y, n_jobs=1)
    print(f"serial, n_jobs=1: {serial_seconds:.1f} s")
    cluster = None if args.scheduler else LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(args.scheduler or cluster) as client:
        client.register_plugin(WarmupPlugin(dtypes=("float32",), inputs=("uint8",)))
        compare_thread_defaults(X, y, serial, "dask", args.repeat)
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":  # the cluster spawns worker processes that import this file
    main()
