"""The seed workloads and what their epochs must compute at least: the GEMMs and their FLOPs.

A workload is an MNIST-shaped MLP (784 inputs, 10 classes; float32, ReLU hidden layers, softmax +
cross-entropy, plain SGD) at one batch size. Counting is pure arithmetic on layer sizes; the weights
every variant starts from come from :func:`initial_params`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Seed of the weight initialisation, the synthetic data and each variant's shuffling.
SEED = 0


@dataclass(frozen=True)
class Workload:
    """One seed workload: layer sizes, batch size (None = full batch), SGD learning rate."""

    key: str
    sizes: tuple
    batch_size: int | None
    lr: float
    description: str

    def batch_rows(self, n):
        """Rows per step on an ``n``-row data set."""
        return n if self.batch_size is None else min(self.batch_size, n)


#: The seed workloads: two mini-batch MLPs, per-example softmax regression, full-batch 784-10-10,
#: and the 784-128-64-10 MLP again at batch 32 and per example (the batch sizes of issue 3's goals).
WORKLOADS = (
    Workload("784-128-64-10", (784, 128, 64, 10), 128, 0.1, "ReLU MLP, SGD, batch 128"),
    Workload("784-128-64-10/32", (784, 128, 64, 10), 32, 0.05, "ReLU MLP, SGD, batch 32"),
    Workload("784-128-64-10/1", (784, 128, 64, 10), 1, 0.01, "ReLU MLP, per-example SGD"),
    Workload("784-128-10", (784, 128, 10), 128, 0.1, "ReLU MLP, SGD, batch 128"),
    Workload("784-10", (784, 10), 1, 0.01, "softmax regression, SGD, batch 1"),
    Workload("784-10-10", (784, 10, 10), None, 0.1, "ReLU MLP, full-batch gradient descent"),
)
#: Workloads run only when named (``--workloads``): the GPU goals' larger batch.
EXTRA_WORKLOADS = (
    Workload("784-128-64-10/1024", (784, 128, 64, 10), 1024, 0.1, "ReLU MLP, SGD, batch 1024"),
)
WORKLOADS_BY_KEY = {w.key: w for w in WORKLOADS + EXTRA_WORKLOADS}


def batch_sizes(n, batch_size):
    """Row counts of the steps of one epoch over ``n`` rows (the last step takes what is left)."""
    rows = n if batch_size is None else min(batch_size, n)
    full, rest = divmod(n, rows)
    return [rows] * full + ([rest] if rest else [])


def step_gemms(sizes, m):
    """The GEMMs of one training step on ``m`` rows, as (rows, inner, cols) of ``(r, k) @ (k, c)``.

    Per layer (n_in -> n_out): forward ``(m, n_in) @ (n_in, n_out)``, weight gradient
    ``(n_in, m) @ (m, n_out)``, and, except for the first layer, the input gradient
    ``(m, n_out) @ (n_out, n_in)``. Ordered forward first, then backward from the last layer.
    """
    layers = list(zip(sizes[:-1], sizes[1:]))
    gemms = [(m, n_in, n_out) for n_in, n_out in layers]
    for index in range(len(layers) - 1, -1, -1):
        n_in, n_out = layers[index]
        gemms.append((n_in, m, n_out))
        if index > 0:
            gemms.append((m, n_out, n_in))
    return gemms


def gemm_flops(shapes):
    """2 * r * k * c summed over GEMM shapes (r, k, c)."""
    return sum(2 * r * k * c for r, k, c in shapes)


def epoch_flops(sizes, n, batch_size=None):
    """GEMM flops of one epoch over ``n`` rows: per layer forward 2*m*n_in*n_out, backward twice that
    except that the first layer has no input gradient. Independent of the batching."""
    return sum(gemm_flops(step_gemms(sizes, m)) for m in batch_sizes(n, batch_size))


def initial_params(workload):
    """The He-initialised float32 weights every variant of ``workload`` starts from (NumPy arrays)."""
    from fastfnn.network import init_params
    return init_params(workload.sizes, "he", "relu", np.float32, np.random.default_rng(SEED))
