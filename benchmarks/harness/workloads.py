"""The workloads and what their epochs must compute at least: the GEMMs and their FLOPs.

A workload is an MLP (ReLU hidden layers unless it says otherwise) with a softmax + cross-entropy
output at one batch size, in one dtype, with one solver, on one kind of inputs. The seed workloads
(:data:`WORKLOADS`, :data:`EXTRA_WORKLOADS`) are MNIST-shaped (784 uint8 pixels, 10 classes),
float32, plain SGD. The matrix (:data:`MATRIX`, issue 11) adds dense float tabular inputs (100 and
1,000 features, 5 classes) at batch 1 to 1024, a wide and a deep net on MNIST pixels, in float32
and float64, with SGD and Adam; :data:`ACTIVATION_WORKLOADS` the dense 100-feature net with tanh and
logistic hidden layers. Counting is pure arithmetic on layer sizes; the weights every variant
starts from come from :func:`initial_params`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Seed of the weight initialisation, the synthetic data and each variant's shuffling.
SEED = 0


#: Values a workload's fields may take.
DTYPES = ("float32", "float64")
SOLVERS = ("sgd", "adam")
INPUTS = ("mnist", "dense")
#: Hidden activations, as the kernels name them ("sigmoid": scikit-learn's "logistic").
ACTIVATIONS = ("relu", "tanh", "sigmoid")
#: Adam's hyper-parameters in every variant (scikit-learn's and PyTorch's defaults); no weight decay.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


@dataclass(frozen=True)
class Workload:
    """One workload: layer sizes, batch size (None = full batch), learning rate, and

    dtype: "float32" or "float64", of the weights and the computation; solver: "sgd" (plain, no
    momentum) or "adam" (:data:`ADAM_BETAS`, :data:`ADAM_EPSILON`); inputs: "mnist" (the MNIST uint8
    pixels, scaled by 1/255) or "dense" (dense float tabular data of ``sizes[0]`` features and
    ``sizes[-1]`` classes, :func:`fastfnn.bench.data.dense_classification`); rows: rows per epoch,
    or None for the command's; activation: the hidden layers' (:data:`ACTIVATIONS`).
    """

    key: str
    sizes: tuple
    batch_size: int | None
    lr: float
    description: str
    dtype: str = "float32"
    solver: str = "sgd"
    inputs: str = "mnist"
    rows: int | None = None
    activation: str = "relu"

    def __post_init__(self):
        for field, allowed in (("dtype", DTYPES), ("solver", SOLVERS), ("inputs", INPUTS),
                               ("activation", ACTIVATIONS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"workload {self.key!r}: {field} must be one of {allowed}, got "
                                 f"{getattr(self, field)!r}")

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

#: SGD learning rate of the dense matrix rows (plain SGD, no momentum, like the seed workloads) and
#: Adam's (its usual default).
DENSE_SGD_LR = 0.01
ADAM_LR = 1e-3
_SHORT_DTYPE = {"float32": "f32", "float64": "f64"}


def _matrix():
    """The matrix workloads (issue 11), keys ``<net>/b<batch>/<f32|f64>/<sgd|adam>``."""
    out = []
    for features, rows, batch1_rows in ((100, 40000, 4000), (1000, 10000, 2000)):
        for batch in (1, 32, 200, 1024):
            for dtype in DTYPES:
                for solver in SOLVERS:
                    out.append(Workload(
                        f"dense{features}/b{batch}/{_SHORT_DTYPE[dtype]}/{solver}",
                        (features, 256, 128, 5), batch, ADAM_LR if solver == "adam" else DENSE_SGD_LR,
                        f"dense tabular, {features} features, 5 classes, {dtype}, {solver}, batch {batch}",
                        dtype, solver, "dense", batch1_rows if batch == 1 else rows))
    for name, sizes, rows, what in (("wide", (784, 1024, 1024, 10), 6000, "wide ReLU MLP"),
                                    ("deep", (784, *[256] * 6, 10), 10000, "deep ReLU MLP")):
        for batch in (32, 200):
            for dtype in DTYPES:
                out.append(Workload(f"{name}/b{batch}/{_SHORT_DTYPE[dtype]}/adam", sizes, batch, ADAM_LR,
                                    f"{what} on MNIST pixels, {dtype}, adam, batch {batch}", dtype,
                                    "adam", "mnist", rows))
    return tuple(out)


#: Issue 11's matrix (``fastfnn bench --matrix``): dense tabular 100-256-128-5 (40,000 rows; 4,000
#: at batch 1) and 1000-256-128-5 (10,000; 2,000 at batch 1) at batch 1, 32, 200 and 1024, float32
#: and float64, SGD (lr 0.01, no momentum) and Adam (lr 1e-3); the wide 784-1024-1024-10 (6,000
#: rows) and the deep 784-256x6-10 (10,000 rows) on MNIST pixels at batch 32 and 200, float32 and
#: float64, Adam.
MATRIX = _matrix()
#: The dense 100-feature matrix net with other hidden activations, keys
#: ``dense100-<tanh|sigmoid>/b<batch>/<f32|f64>/adam``: tanh at batch 32 and 200 in float32 and at
#: batch 200 in float64, the logistic function at batch 200 in float32 (40,000 rows, Adam).
ACTIVATION_WORKLOADS = tuple(
    Workload(f"dense100-{act}/b{batch}/{_SHORT_DTYPE[dtype]}/adam", (100, 256, 128, 5), batch,
             ADAM_LR, f"dense tabular, 100 features, {act} hidden layers, {dtype}, adam, batch "
             f"{batch}", dtype, "adam", "dense", 40000, act)
    for act, batch, dtype in (("tanh", 32, "float32"), ("tanh", 200, "float32"),
                              ("tanh", 200, "float64"), ("sigmoid", 200, "float32")))
WORKLOADS_BY_KEY = {w.key: w for w in WORKLOADS + EXTRA_WORKLOADS + MATRIX + ACTIVATION_WORKLOADS}


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
    """The weights every variant of ``workload`` starts from: He-initialised for ReLU, Xavier's
    otherwise; NumPy arrays of the workload's dtype (the same draws in float32 and float64)."""
    from fastfnn.network import init_params
    init = "he" if workload.activation == "relu" else "xavier"
    return init_params(workload.sizes, init, workload.activation, np.dtype(workload.dtype),
                       np.random.default_rng(SEED))
