"""The ways one epoch of a workload is run and timed: FastFNN per backend and what it is compared with.

- ``fastfnn[<backend>]``: FastFNN's trainer epoch (the backend's fused epoch where it offers one for the
  job, else the composed kernels), one variant per available backend;
- ``pytorch``: the same network in eager PyTorch on the CPU, tensors in memory, no DataLoader;
- ``pytorch cuda``: the same in eager PyTorch on the GPU, data on the device, shuffled there, the
  loss summed there and read once per epoch;
- ``numpy loop``: the straightforward hand-written NumPy loop;
- ``floor``: only the epoch's GEMMs into preallocated buffers, by the Numba backend's gemm;
- ``bound``: the floor's GEMMs with BLAS on one thread, the time divided by the cores.

Every variant starts from the same weights (:func:`fastfnn.bench.workloads.initial_params`, in the
workload's dtype) and shuffles with the same seed, so they train the same network the same way, with
the workload's solver (plain SGD or Adam) and hidden activation. The NumPy loop covers float32 SGD
with ReLU only (:func:`unsupported`). PyTorch is imported only when its variant is built (the ``bench`` extra).
:func:`make_variant` builds a variant by name, the same way in this process and in an isolated
worker (:mod:`fastfnn.bench.isolation`).
"""

from __future__ import annotations

import os
import time

import numpy as np

from fastfnn.bench.workloads import ADAM_BETAS, ADAM_EPSILON, SEED, initial_params
from fastfnn.kernels.threads import process_share, single_threaded_blas

#: Comparisons that can be asked for (``--compare``), beside FastFNN, the floor and the bound.
COMPARISONS = ("torch", "torch-cuda", "loop")
#: Variant names of the floor, the bound, PyTorch (CPU and CUDA) and the NumPy loop.
FLOOR = "floor"
BOUND = "bound"
TORCH = "pytorch"
TORCH_CUDA = "pytorch cuda"
LOOP = "numpy loop"


class Variant:
    """One way of running an epoch of a workload; :meth:`epoch` is what gets timed."""

    name = "?"
    kind = "?"
    path = ""

    def epoch(self):
        """Train one epoch; return its mean loss (float)."""
        raise NotImplementedError

    def timed_epoch(self):
        """One epoch timed by ``time.perf_counter``: (seconds, mean loss)."""
        started = time.perf_counter()
        loss = self.epoch()
        return time.perf_counter() - started, loss


class FastFNNVariant(Variant):
    """One epoch of FastFNN's trainer (:class:`fastfnn.trainer.EpochRunner`) on a backend.

    Per fit (untimed) the data, weights and workspace go on the backend; per epoch (timed) the
    runner shuffles, runs the fused or composed epoch and reads the (loss, correct) stats once.
    Validation, the divergence check and the history are left out.
    """

    kind = "fastfnn"

    def __init__(self, backend_name, workload, data):
        from fastfnn.backends import get_backend
        from fastfnn.trainer import EpochRunner, TrainConfig, TrainState, new_opt_state

        self.backend = b = get_backend(backend_name)
        self.name = f"fastfnn[{b.name}]"
        self.workload = workload
        coefs, intercepts = initial_params(workload)
        coefs = [b.asarray(w) for w in coefs]
        intercepts = [b.asarray(v) for v in intercepts]
        state = TrainState(coefs, intercepts, new_opt_state(b, workload.solver, coefs, intercepts))
        self.n = data.X.shape[0]
        config = TrainConfig(activation=workload.activation, output="softmax", solver=workload.solver,
                             learning_rate_init=workload.lr,
                             batch_size=workload.batch_rows(self.n), momentum=0.0,
                             nesterovs_momentum=False, beta_1=ADAM_BETAS[0], beta_2=ADAM_BETAS[1],
                             epsilon=ADAM_EPSILON)
        # uint8 pixels go on the backend as they are and are scaled while gathered; dense floats
        # arrive in the workload's dtype
        self.runner = EpochRunner(b, config, b.asarray(data.X), b.asarray(data.y), state,
                                  x_scale=data.x_scale)
        self.rng = np.random.default_rng(SEED)

    @property
    def path(self):
        return self.runner.path

    def epoch(self):
        loss_sum, _ = self.runner.run(self.rng)
        self.backend.synchronize()
        return loss_sum / self.n


class NumpyLoopVariant(Variant):
    """The obvious hand-written NumPy training loop, no tricks: float32, plain SGD only."""

    name = LOOP
    kind = "numpy-loop"

    def __init__(self, workload, data):
        reason = unsupported(LOOP, workload)
        if reason:
            raise ValueError(reason)
        self.X = data.floats()
        self.y = data.y
        coefs, intercepts = initial_params(workload)
        self.W = [w.copy() for w in coefs]
        self.b = [v.copy() for v in intercepts]
        self.lr = workload.lr
        self.rows = workload.batch_rows(len(self.X))
        self.rng = np.random.default_rng(SEED)

    def epoch(self):
        X, y, W, b, lr = self.X, self.y, self.W, self.b, self.lr
        n = len(X)
        order = self.rng.permutation(n)
        total_loss = 0.0
        for start in range(0, n, self.rows):
            idx = order[start:start + self.rows]
            xb, yb = X[idx], y[idx]
            m = len(idx)
            # forward
            acts = [xb]
            h = xb
            for layer in range(len(W) - 1):
                h = np.maximum(h @ W[layer] + b[layer], 0)
                acts.append(h)
            z = h @ W[-1] + b[-1]
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            total_loss += -np.log(p[np.arange(m), yb]).sum()
            # backward
            g = p
            g[np.arange(m), yb] -= 1
            g /= m
            for layer in range(len(W) - 1, -1, -1):
                gW = acts[layer].T @ g
                gb = g.sum(axis=0)
                if layer > 0:
                    g = (g @ W[layer].T) * (acts[layer] > 0)
                W[layer] -= lr * gW
                b[layer] -= lr * gb
        return float(total_loss) / n


class TorchVariant(Variant):
    """The same network in eager PyTorch: nn.Sequential, F.cross_entropy, optim.SGD (no momentum)
    or optim.Adam (the workload's betas and epsilon, no weight decay), in the workload's dtype.

    On the CPU the loss is read after every step (as a training loop would); on ``device="cuda"``
    everything stays on the GPU and the loss sum is read once per epoch, the fair comparison for a
    backend that synchronises once per epoch.
    """

    kind = "pytorch"

    def __init__(self, workload, data, threads, device="cpu"):
        import torch
        from torch import nn

        if device == "cuda" and not torch.cuda.is_available():
            raise ImportError(f"PyTorch {torch.__version__} sees no CUDA device")
        torch.set_num_threads(threads)
        self.torch = torch
        self.device = device
        self.name = TORCH if device == "cpu" else TORCH_CUDA
        coefs, intercepts = initial_params(workload)
        layers = []
        for index, (w, v) in enumerate(zip(coefs, intercepts)):
            linear = nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                linear.bias.copy_(torch.from_numpy(v))
            layers.append(linear)
            if index < len(coefs) - 1:
                layers.append({"relu": nn.ReLU, "tanh": nn.Tanh,
                               "sigmoid": nn.Sigmoid}[workload.activation]())
        dtype = getattr(torch, workload.dtype)
        self.model = nn.Sequential(*layers).to(device=device, dtype=dtype)
        if workload.solver == "adam":
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=workload.lr,
                                              betas=ADAM_BETAS, eps=ADAM_EPSILON)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=workload.lr)
        self.X = torch.from_numpy(data.floats(workload.dtype)).to(device)
        self.y = torch.from_numpy(data.y).to(device)
        self.rows = workload.batch_rows(len(data.y))
        self.rng = np.random.default_rng(SEED)

    def epoch(self):
        torch = self.torch
        F = torch.nn.functional
        n = len(self.y)
        # the order the other variants use
        order = torch.from_numpy(self.rng.permutation(n)).to(self.device)
        on_host = self.device == "cpu"
        total_loss = 0.0 if on_host else torch.zeros((), device=self.device)
        for start in range(0, n, self.rows):
            idx = order[start:start + self.rows]
            xb, yb = self.X[idx], self.y[idx]
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()
            total_loss += (loss.item() if on_host else loss.detach()) * len(idx)
        return float(total_loss) / n


class FloorVariant(Variant):
    """Only the epoch's GEMMs (see :func:`step_gemms`) into preallocated buffers of the
    workload's dtype, by the gemm the Numba backend's BLAS epoch uses (MKL's where its wheel is
    installed, float64 on Intel's CPUs only, else NumPy's BLAS; FASTFNN_BLAS chooses), else by
    NumPy's matmul."""

    name = FLOOR
    kind = "floor"
    path = "GEMMs only"

    def __init__(self, workload, data):
        dtype = np.dtype(workload.dtype)
        X = data.floats(dtype)
        n = len(X)
        rows = workload.batch_rows(n)
        self.steps = [(start, min(rows, n - start)) for start in range(0, n, rows)]
        rng = np.random.default_rng(SEED)
        sizes = workload.sizes
        self.X = X
        self.W = [rng.standard_normal((a, c)).astype(dtype) for a, c in zip(sizes[:-1], sizes[1:])]
        # acts[l] (rows, sizes[l + 1]); dz/d buffers likewise; weight gradients like W.
        self.acts = [np.empty((rows, c), dtype) for c in sizes[1:]]
        self.dz = [rng.standard_normal((rows, c)).astype(dtype) for c in sizes[1:]]
        self.dprev = [np.empty((rows, c), dtype) for c in sizes[1:-1]]
        self.gW = [np.empty_like(w) for w in self.W]
        gemm = _numba_gemm(dtype)
        self.matmul = _numpy_matmul if gemm is None else gemm.matmul
        self.library = _library_name(gemm)
        self.path = f"GEMMs only ({self.library})"

    def epoch(self):
        X, W, acts, dz, dprev, gW = self.X, self.W, self.acts, self.dz, self.dprev, self.gW
        matmul, layers = self.matmul, len(W)
        for start, m in self.steps:
            x = X[start:start + m]
            a = x
            for layer in range(layers):
                matmul(a, W[layer], acts[layer][:m])
                a = acts[layer][:m]
            for layer in range(layers - 1, -1, -1):
                a_prev = x if layer == 0 else acts[layer - 1][:m]
                matmul(a_prev, dz[layer][:m], gW[layer], trans_a=True)
                if layer > 0:
                    matmul(dz[layer][:m], W[layer], dprev[layer - 1][:m], trans_b=True)
        return 0.0


class BoundVariant(FloorVariant):
    """The floor's GEMMs with BLAS on one thread, the epoch's time divided by the cores this
    process may use (:func:`fastfnn.kernels.threads.process_share`): the time the epoch's GEMMs
    would take shared out over the cores with nothing lost, each core running its share on one
    thread, at the shapes of whole steps.

    A lower bound for any epoch whose products are this gemm's: a piece of a product runs no
    faster a flop than the whole on one thread, and a threaded product gains at most the cores
    (the floor's threaded products can be beaten, by running a step's pieces side by side on
    single threads, as the Numba backend's BLAS epoch does). Skipping work, such as MNIST's
    zero inputs, can go below it, and so can per-example steps that call no gemm (batch 1).
    """

    name = BOUND
    kind = "bound"

    def __init__(self, workload, data):
        super().__init__(workload, data)
        self.cores = process_share()
        self.path = f"GEMMs on one thread / {self.cores} cores ({self.library})"

    def timed_epoch(self):
        """The floor's epoch on one BLAS thread, timed: (seconds / cores, 0.0)."""
        with single_threaded_blas():
            seconds, loss = super().timed_epoch()
        return seconds / self.cores, loss


def _numpy_matmul(a, b, out, trans_a=False, trans_b=False):
    """out = op(a) @ op(b) by NumPy (the floor where no CBLAS gemm is found)."""
    return np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)


def _numba_gemm(dtype):
    """The Numba backend's CBLAS gemm for ``dtype`` (cblas.find_gemm), or None: no Numba, or no
    such gemm (the floor then takes NumPy's matmul)."""
    try:
        from fastfnn.kernels.numba_backend.cblas import find_gemm
    except ImportError:
        return None
    return find_gemm(dtype)


def _library_name(gemm):
    """The library of the floor's product (``gemm``, None for NumPy's matmul), in a word or two."""
    if gemm is None:
        return "NumPy matmul"
    return "MKL" if gemm.is_mkl else os.path.basename(gemm.library)


def variant_names(backends, comparisons):
    """Variant names in timing order: ``fastfnn[<backend>]`` per backend, then the comparisons asked
    for (PyTorch, PyTorch CUDA, the NumPy loop), the floor and the bound, always."""
    names = [f"fastfnn[{name}]" for name in backends]
    names += [name for key, name in (("torch", TORCH), ("torch-cuda", TORCH_CUDA), ("loop", LOOP))
              if key in comparisons]
    return names + [FLOOR, BOUND]


def unsupported(name, workload):
    """Why variant ``name`` does not run ``workload`` by design ("" when it does)."""
    if name == LOOP and (workload.dtype, workload.solver) != ("float32", "sgd"):
        return "the hand-written NumPy loop is float32 SGD only"
    if name == LOOP and workload.activation != "relu":
        return "the hand-written NumPy loop has ReLU hidden layers only"
    return ""


def make_variant(name, workload, data, torch_threads):
    """The variant called ``name`` (see :func:`variant_names`) set up on ``workload`` and ``data``.

    Raises ValueError for an unknown name or a workload the variant does not run, ImportError when
    PyTorch (or its CUDA device) is missing, and whatever a backend raises while setting up.
    """
    if name.startswith("fastfnn[") and name.endswith("]"):
        return FastFNNVariant(name[len("fastfnn["):-1], workload, data)
    if name == TORCH:
        return TorchVariant(workload, data, torch_threads)
    if name == TORCH_CUDA:
        return TorchVariant(workload, data, torch_threads, device="cuda")
    if name == LOOP:
        return NumpyLoopVariant(workload, data)
    if name == FLOOR:
        return FloorVariant(workload, data)
    if name == BOUND:
        return BoundVariant(workload, data)
    raise ValueError(f"unknown variant {name!r}")


def setup_failure(name, workload, exc, skipped):
    """Note in ``skipped`` why ``name`` could not be set up on ``workload`` (exception ``exc``).

    A missing PyTorch is noted once for the variant; anything else per workload.
    Returns True when the variant cannot run on any workload (PyTorch missing), else False.
    """
    if isinstance(exc, ImportError):
        skipped[name] = (f"PyTorch is not importable ({exc}); pip install 'fastfnn[bench]'"
                         if name == TORCH else f"cannot run here ({exc})")
        return True
    skipped[f"{name} on {workload.key}"] = f"failed to set up: {exc!r}"
    return False


def build_variants(workload, data, names, torch_threads, skipped):
    """The variants ``names`` set up on ``workload`` in this process; those that cannot run go to
    ``skipped`` with why (:func:`unsupported`, :func:`setup_failure`)."""
    variants = []
    for name in names:
        reason = unsupported(name, workload)
        if reason:
            skipped[f"{name} on {workload.key}"] = reason
            continue
        try:
            variants.append(make_variant(name, workload, data, torch_threads))
        except Exception as exc:  # noqa: BLE001 - report a broken variant, time the others
            setup_failure(name, workload, exc, skipped)
    return variants
