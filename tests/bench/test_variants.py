"""fastfnn.bench.variants: the variants compared train the same network the same way."""

import numpy as np
import pytest

from fastfnn.bench import variants, workloads
from fastfnn.bench.data import synthetic_mnist


def _first_epoch_losses(workload, rows, names):
    data = synthetic_mnist(rows, seed=3)
    made = {"fastfnn[numpy]": lambda: variants.FastFNNVariant("numpy", workload, data),
            "numpy loop": lambda: variants.NumpyLoopVariant(workload, data),
            "pytorch": lambda: variants.TorchVariant(workload, data, 1)}
    return {name: [v.epoch() for _ in range(2)] for name, v in
            ((name, made[name]()) for name in names)}


@pytest.mark.parametrize("key", list(workloads.WORKLOADS_BY_KEY))
def test_compared_variants_train_the_same_network(key):
    """Same weights, same row order, same SGD: the same mean losses, epoch after epoch."""
    wl = workloads.WORKLOADS_BY_KEY[key]
    rows = 40 if wl.batch_size == 1 else 300
    losses = _first_epoch_losses(wl, rows, ["fastfnn[numpy]", "numpy loop"])
    np.testing.assert_allclose(losses["numpy loop"], losses["fastfnn[numpy]"], rtol=1e-4)


def test_pytorch_variant_trains_the_same_network():
    pytest.importorskip("torch")
    wl = workloads.WORKLOADS_BY_KEY["784-128-64-10"]
    losses = _first_epoch_losses(wl, 300, ["fastfnn[numpy]", "pytorch"])
    np.testing.assert_allclose(losses["pytorch"], losses["fastfnn[numpy]"], rtol=1e-4)
