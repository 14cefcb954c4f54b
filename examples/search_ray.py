"""GridSearchCV on Ray: each (candidate, fold) fit runs in a Ray worker, through its joblib backend.

Starts Ray on this machine with 2 CPUs (pass --address to join a running cluster), with a
runtime_env that warms every worker's compile cache before its first task
(fastfnn.distributed.ray_runtime_env), then runs the 4-candidate, 3-fold search on MNIST images with
fits using the default thread count (n_jobs=None: the worker's share, one thread here) and with
n_jobs=1, and checks both against a serial run.

    FASTFNN_DATA=... python examples/search_ray.py [--images 5000]
"""

from __future__ import annotations

import argparse

import joblib
import ray
from ray.util.joblib import register_ray

from fastfnn.distributed import ray_runtime_env
from mnist_search import compare_thread_defaults, mnist_subset, timed_search


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--address", help="address of a running Ray cluster")
    args = parser.parse_args()
    X, y = mnist_subset(args.images)
    with joblib.parallel_config(backend="sequential"):
        serial_seconds, serial = timed_search(X, y, n_jobs=1)
    print(f"serial, n_jobs=1: {serial_seconds:.1f} s")
    ray.init(address=args.address, num_cpus=None if args.address else args.cpus,
             include_dashboard=False, log_to_driver=False,
             runtime_env=ray_runtime_env(dtypes=("float32",), inputs=("uint8",)))
    register_ray()
    try:
        compare_thread_defaults(X, y, serial, "ray", args.repeat)
    finally:
        ray.shutdown()


if __name__ == "__main__":  # Ray's workers import this file
    main()
