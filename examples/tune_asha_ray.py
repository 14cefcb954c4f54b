"""Ray Tune with ASHA early stopping: trials trained one partial_fit epoch at a time, the poor ones
stopped after their first epochs.

Starts Ray on this machine with 2 CPUs (--address joins a running cluster) with workers warmed by
fastfnn.distributed.ray_runtime_env, and tunes the learning rate and hidden size of a FastFNN on
10,000 MNIST images (validated on the next 2,000) with fastfnn.distributed.epochs_trainable.

    FASTFNN_DATA=... python examples/tune_asha_ray.py [--epochs 8]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from fastfnn import load_mnist
from fastfnn.distributed import epochs_trainable, ray_runtime_env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--address", help="address of a running Ray cluster")
    args = parser.parse_args()
    (X, y), _ = load_mnist(dtype=np.uint8)
    ray.init(address=args.address, num_cpus=None if args.address else args.cpus,
             include_dashboard=False, log_to_driver=False,
             runtime_env=ray_runtime_env(dtypes=("float32",), inputs=("uint8",)))
    try:
        with tempfile.TemporaryDirectory(prefix="fastfnn-tune-") as storage:
            tuner = tune.Tuner(
                tune.with_parameters(epochs_trainable, X=X[:10000], y=y[:10000],
                                     X_val=X[10000:12000], y_val=y[10000:12000],
                                     epochs=args.epochs),
                param_space={"solver": "sgd", "batch_size": 128, "random_state": 0,
                             "learning_rate_init": tune.grid_search([0.001, 0.01, 0.05, 0.2]),
                             "hidden_layer_sizes": tune.grid_search([(32,), (128, 64)])},
                tune_config=tune.TuneConfig(metric="accuracy", mode="max", scheduler=ASHAScheduler(
                    max_t=args.epochs, grace_period=1, reduction_factor=2, time_attr="epoch")),
                run_config=tune.RunConfig(storage_path=storage, verbose=0))
            results = tuner.fit()
            for result in sorted(results, key=lambda r: -r.metrics["accuracy"]):
                config = result.config
                print(f"learning_rate_init {config['learning_rate_init']:<6} hidden "
                      f"{config['hidden_layer_sizes']!s:<10} epochs {result.metrics['epoch']}, "
                      f"validation accuracy {result.metrics['accuracy']:.4f}")
            stopped = sum(r.metrics["epoch"] < args.epochs for r in results)
            print(f"ASHA stopped {stopped} of {len(results)} trials early")
    finally:
        ray.shutdown()


if __name__ == "__main__":  # Ray's workers import this file
    main()
