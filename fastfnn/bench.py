"""Time one training epoch of the seed workloads on every backend, beside PyTorch (``fastfnn bench``).

For each seed workload (MNIST-shaped data, float32, ReLU hidden layers, softmax + cross-entropy, plain
SGD) the same network is trained, starting from the same weights, by

- ``fastfnn[<backend>]``: FastFNN's trainer epoch (the backend's fused epoch where it offers one for the
  job, else the composed kernels), one variant per available backend;
- ``pytorch``: the same network in eager PyTorch on the CPU, tensors in memory, no DataLoader;
- ``numpy loop``: the straightforward hand-written NumPy loop (``X[idx]``, ``relu(X @ W1 + b1)``, ...,
  softmax, gradients, ``W -= lr * gW``);
- ``floor``: only the epoch's GEMMs (forward, weight gradients, input gradients except for the first
  layer), through NumPy's BLAS at the same shapes into preallocated buffers — what no implementation
  that leaves the GEMMs to BLAS can beat.

The variants of a workload are interleaved: one epoch each, round-robin (the starting variant rotates),
repeated ``--reps`` times; the table reports the median. Each epoch starts after a short sleep
(``--settle``) so that the previous variant's busy-waiting thread pools are idle. Each variant's first epoch (JIT compilation or
cache loading, lazy initialisation, first touch of buffers) is run before the timed rounds and reported
apart.

With ``--compile``, the first-fit overhead is measured apart (:func:`first_fit_overhead`): a fresh
process fits the seed network twice, once with an empty Numba cache (cold: everything compiles) and
once more with the cache that run left behind (warm: cached code is loaded); the overhead is the
first fit's time minus the second's.

Run ``fastfnn bench`` or ``python -m fastfnn.bench``; ``--quick`` takes well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

#: Rows per epoch by default (MNIST's training set) and with ``--quick``.
DEFAULT_ROWS = 60000
QUICK_ROWS = 3000
#: Timed epochs per variant by default and with ``--quick``.
DEFAULT_REPS = 5
QUICK_REPS = 5
#: Seconds of idle time before each timed epoch. The variants' thread pools busy-wait after use
#: (OpenBLAS's workers for about 0.1 s): without a pause, an epoch right after another variant's
#: shares the cores with those spinning threads (PyTorch ran 7x slower after a NumPy epoch here).
SETTLE_S = 0.15
#: Seed of the weight initialisation, the synthetic data and each variant's shuffling.
SEED = 0

COMPARISONS = ("torch", "loop")
FLOOR = "floor"
TORCH = "pytorch"
LOOP = "numpy loop"


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
WORKLOADS_BY_KEY = {w.key: w for w in WORKLOADS}


# ----------------------------------------------------------------------------------- counting (pure)
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


# ------------------------------------------------------------------------------------------- data
@dataclass
class Data:
    """Training data: uint8 pixels (n, 784), int64 labels (n,), and where they came from."""

    X: np.ndarray
    y: np.ndarray
    source: str

    def floats(self):
        """Pixels as float32 in [0, 1], the way a hand-written loop prepares them once."""
        if not hasattr(self, "_floats"):
            self._floats = self.X.astype(np.float32) / np.float32(255)
        return self._floats


def synthetic_mnist(n, seed=SEED):
    """MNIST-shaped random data: (n, 784) uint8 with ~80% zeros, labels 0..9."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
    X[rng.integers(0, 5, size=(n, 784), dtype=np.uint8) != 0] = 0  # each pixel zero with p = 4/5
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return Data(X, y, f"synthetic MNIST-shaped uint8, ~80% zeros (seed {seed})")


def load_data(rows, data_dir=None, synthetic=False):
    """The first ``rows`` MNIST training rows (uint8), else synthetic data of that shape.

    data_dir: a folder with the four MNIST IDX files, or one holding them in ``mnist/``; when None,
    ``fastfnn.data.load_mnist`` looks in ``$FASTFNN_DATA/mnist`` and the user cache (never downloads)
    and synthetic data is used when nothing is there. A given ``data_dir`` must hold the files.
    """
    if synthetic:
        return synthetic_mnist(rows)
    try:
        from fastfnn.data import load_mnist
    except ImportError as exc:
        if data_dir is not None:
            raise
        data = synthetic_mnist(rows)
        data.source += f" (fastfnn.data unavailable: {exc})"
        return data
    if data_dir is not None:
        folder = data_dir
        if not _has_mnist(folder) and _has_mnist(os.path.join(folder, "mnist")):
            folder = os.path.join(folder, "mnist")
        (X, y), _ = load_mnist(folder, dtype=np.uint8, download=False)
        where = folder
    else:
        try:
            (X, y), _ = load_mnist(dtype=np.uint8, download=False)
        except FileNotFoundError:
            data = synthetic_mnist(rows)
            data.source += " (no MNIST files found; set FASTFNN_DATA or pass --data)"
            return data
        where = "$FASTFNN_DATA/mnist or the user cache"
    if rows > len(X):
        raise ValueError(f"--rows {rows} exceeds the {len(X)} MNIST training rows")
    return Data(np.ascontiguousarray(X[:rows]), np.ascontiguousarray(y[:rows], dtype=np.int64),
                f"MNIST training set, first {rows} rows ({where})")


def _has_mnist(folder):
    return any(os.path.isfile(os.path.join(folder, f"train-images-idx3-ubyte{ext}"))
               for ext in ("", ".gz"))


def initial_params(workload):
    """The He-initialised float32 weights every variant of ``workload`` starts from (NumPy arrays)."""
    from fastfnn.network import init_params
    return init_params(workload.sizes, "he", "relu", np.float32, np.random.default_rng(SEED))


# ------------------------------------------------------------------------------------ the variants
class Variant:
    """One way of running an epoch of a workload; :meth:`epoch` is what gets timed."""

    name = "?"
    kind = "?"
    path = ""

    def epoch(self):
        raise NotImplementedError


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
        state = TrainState(coefs, intercepts, new_opt_state(b, "sgd", coefs, intercepts))
        self.n = data.X.shape[0]
        config = TrainConfig(activation="relu", output="softmax", solver="sgd",
                             learning_rate_init=workload.lr,
                             batch_size=workload.batch_rows(self.n), momentum=0.0,
                             nesterovs_momentum=False)
        self.runner = EpochRunner(b, config, b.asarray(data.X), b.asarray(data.y), state,
                                  x_scale=1.0 / 255.0)
        self.rng = np.random.default_rng(SEED)

    @property
    def path(self):
        return self.runner.path

    def epoch(self):
        loss_sum, _ = self.runner.run(self.rng)
        self.backend.synchronize()
        return loss_sum / self.n


class NumpyLoopVariant(Variant):
    """The obvious hand-written NumPy training loop, no tricks."""

    name = LOOP
    kind = "numpy-loop"

    def __init__(self, workload, data):
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
    """The same network in eager PyTorch on the CPU: nn.Sequential, F.cross_entropy, optim.SGD."""

    name = TORCH
    kind = "pytorch"

    def __init__(self, workload, data, threads):
        import torch
        from torch import nn

        torch.set_num_threads(threads)
        self.torch = torch
        coefs, intercepts = initial_params(workload)
        layers = []
        for index, (w, v) in enumerate(zip(coefs, intercepts)):
            linear = nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                linear.bias.copy_(torch.from_numpy(v))
            layers.append(linear)
            if index < len(coefs) - 1:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=workload.lr)
        self.X = torch.from_numpy(data.floats())
        self.y = torch.from_numpy(data.y)
        self.rows = workload.batch_rows(len(data.y))
        self.rng = np.random.default_rng(SEED)

    def epoch(self):
        torch = self.torch
        F = torch.nn.functional
        n = len(self.y)
        order = torch.from_numpy(self.rng.permutation(n))  # the order the other variants use
        total_loss = 0.0
        for start in range(0, n, self.rows):
            idx = order[start:start + self.rows]
            xb, yb = self.X[idx], self.y[idx]
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item() * len(idx)
        return total_loss / n


class FloorVariant(Variant):
    """Only the epoch's GEMMs (see :func:`step_gemms`), NumPy matmul into preallocated buffers."""

    name = FLOOR
    kind = "floor"
    path = "GEMMs only"

    def __init__(self, workload, data):
        X = data.floats()
        n = len(X)
        rows = workload.batch_rows(n)
        self.steps = [(start, min(rows, n - start)) for start in range(0, n, rows)]
        rng = np.random.default_rng(SEED)
        sizes = workload.sizes
        self.X = X
        self.W = [rng.standard_normal((a, c)).astype(np.float32) for a, c in zip(sizes[:-1], sizes[1:])]
        # acts[l] (rows, sizes[l + 1]); dz/d buffers likewise; weight gradients like W.
        self.acts = [np.empty((rows, c), np.float32) for c in sizes[1:]]
        self.dz = [rng.standard_normal((rows, c)).astype(np.float32) for c in sizes[1:]]
        self.dprev = [np.empty((rows, c), np.float32) for c in sizes[1:-1]]
        self.gW = [np.empty_like(w) for w in self.W]

    def epoch(self):
        X, W, acts, dz, dprev, gW = self.X, self.W, self.acts, self.dz, self.dprev, self.gW
        layers = len(W)
        for start, m in self.steps:
            x = X[start:start + m]
            a = x
            for layer in range(layers):
                np.matmul(a, W[layer], out=acts[layer][:m])
                a = acts[layer][:m]
            for layer in range(layers - 1, -1, -1):
                a_prev = x if layer == 0 else acts[layer - 1][:m]
                np.matmul(a_prev.T, dz[layer][:m], out=gW[layer])
                if layer > 0:
                    np.matmul(dz[layer][:m], W[layer].T, out=dprev[layer - 1][:m])
        return 0.0


# ------------------------------------------------------------------------------------ measuring
def build_variants(workload, data, backends, comparisons, torch_threads, skipped):
    """The variants to compare on ``workload``; those that cannot run go to ``skipped`` with why."""
    variants = []
    for name in backends:
        try:
            variants.append(FastFNNVariant(name, workload, data))
        except Exception as exc:  # noqa: BLE001 - report a broken backend, time the others
            skipped[f"fastfnn[{name}] on {workload.key}"] = f"failed to set up: {exc!r}"
    if "loop" in comparisons:
        variants.append(NumpyLoopVariant(workload, data))
    if "torch" in comparisons:
        try:
            variants.append(TorchVariant(workload, data, torch_threads))
        except ImportError as exc:
            skipped[TORCH] = f"PyTorch is not importable ({exc}); pip install 'fastfnn[bench]'"
    variants.append(FloorVariant(workload, data))
    return variants


def _timed(fn, settle=0.0):
    if settle:
        time.sleep(settle)
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure_workload(workload, variants, reps, progress=None, settle=SETTLE_S, skipped=None):
    """First epoch of each variant (untimed rounds), then ``reps`` interleaved rounds of one epoch each.

    Every epoch is preceded by ``settle`` seconds of sleep, so that the previous variant's thread
    pools have stopped spinning.

    A variant whose first epoch raises is dropped (noted in ``skipped``, when given).
    Returns one record per variant: name, kind, path, first-epoch seconds and the timed seconds.
    """
    first = {}
    for variant in list(variants):
        try:
            first[variant.name] = _timed(variant.epoch, settle)
        except Exception as exc:  # noqa: BLE001 - report a broken variant, time the others
            variants.remove(variant)
            if skipped is not None:
                skipped[f"{variant.name} on {workload.key}"] = f"first epoch failed: {exc!r}"
            continue
        if progress:
            progress(f"  {workload.key:<14} {variant.name:<16} first epoch {first[variant.name]:.3f} s")
    times = {variant.name: [] for variant in variants}
    for rep in range(reps):
        shift = rep % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            times[variant.name].append(_timed(variant.epoch, settle))
    return [{"name": v.name, "kind": v.kind, "path": v.path, "first_epoch_s": first[v.name],
             "times_s": times[v.name]} for v in variants]


def summarize(workload, rows, records):
    """Add medians, ratios to PyTorch and to the floor, flops and GFLOP/s to a workload's records."""
    flops = epoch_flops(workload.sizes, rows, workload.batch_size)
    medians = {r["name"]: statistics.median(r["times_s"]) for r in records}
    torch_s = medians.get(TORCH)
    floor_s = medians.get(FLOOR)
    out = []
    for r in records:
        median = medians[r["name"]]
        out.append({
            "workload": workload.key, "description": workload.description,
            "sizes": list(workload.sizes), "batch_size": workload.batch_size, "lr": workload.lr,
            "rows": rows, "steps": len(batch_sizes(rows, workload.batch_size)),
            "variant": r["name"], "kind": r["kind"], "path": r["path"],
            "median_s": median, "min_s": min(r["times_s"]), "times_s": list(r["times_s"]),
            "first_epoch_s": r["first_epoch_s"],
            "ratio_to_torch": median / torch_s if torch_s else None,
            "ratio_to_floor": median / floor_s if floor_s else None,
            "gemm_flops": flops, "gflops": flops / median / 1e9 if median > 0 else None,
        })
    return out


# ------------------------------------------------------------------------------------ first-fit overhead
#: The fit whose first-call overhead ``--compile`` measures: the seed network, batch 128, one epoch.
FIRST_FIT = dict(hidden_layer_sizes=(128, 64), solver="sgd", batch_size=128, learning_rate_init=0.1,
                 momentum=0.0, max_iter=1, random_state=SEED, dtype="float32")
FIRST_FIT_NETWORK = "-".join(map(str, (784, *FIRST_FIT["hidden_layer_sizes"], 10)))


def first_fit_child(options_json):
    """Child process of :func:`first_fit_times`: import, load, fit twice; print the times as JSON."""
    import warnings

    started = time.perf_counter()
    options = json.loads(options_json)
    from fastfnn import FastFNN
    data = load_data(options["rows"], options["data"], options["synthetic"])
    loaded = time.perf_counter()
    fits = []
    for _ in range(2):
        model = FastFNN(backend=options["backend"], **FIRST_FIT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=1 does not converge, on purpose
            begin = time.perf_counter()
            model.fit(data.X, data.y)
            fits.append(time.perf_counter() - begin)
    print(json.dumps({"import_and_load_s": loaded - started, "first_fit_s": fits[0],
                      "second_fit_s": fits[1]}))


def first_fit_times(backend, cache_dir, rows, data_dir=None, synthetic=False):
    """Times of one fresh process (see :func:`first_fit_child`) with Numba's cache in ``cache_dir``.

    Returns a dict of seconds: import_and_load_s, first_fit_s, second_fit_s. Raises RuntimeError
    with the child's error output when it fails.
    """
    options = json.dumps({"backend": backend, "rows": rows, "data": data_dir, "synthetic": synthetic})
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, "-c", "import sys; from fastfnn.bench import "
                           "first_fit_child; first_fit_child(sys.argv[1])", options],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the first-fit process failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_fit_overhead(backend, rows, data_dir=None, synthetic=False):
    """Cold and warm first-fit overhead of ``backend`` (seconds over a warm fit in the same process).

    Cold: a process whose Numba cache directory starts empty, so every kernel it runs compiles.
    Warm: a second process on the cache the first one wrote. Returns a record with both overheads
    and the raw times of both processes.
    """
    with tempfile.TemporaryDirectory(prefix="fastfnn-bench-cache-") as cache_dir:
        cold = first_fit_times(backend, cache_dir, rows, data_dir, synthetic)
        warm = first_fit_times(backend, cache_dir, rows, data_dir, synthetic)
    return {"backend": backend, "rows": rows,
            "cold_extra_s": max(0.0, cold["first_fit_s"] - cold["second_fit_s"]),
            "warm_extra_s": max(0.0, warm["first_fit_s"] - warm["second_fit_s"]),
            "cold": cold, "warm": warm}


# ------------------------------------------------------------------------------------ reporting (pure)
def warmup_overhead(results):
    """Per variant: the sum over workloads of (first epoch - median epoch), floored at 0 each."""
    extra = {}
    for r in results:
        extra[r["variant"]] = extra.get(r["variant"], 0.0) + max(0.0, r["first_epoch_s"] - r["median_s"])
    return extra


TABLE_COLUMNS = (
    ("workload", "workload", "<"),
    ("variant", "variant", "<"),
    ("path", "path", "<"),
    ("median_s", "s/epoch", ">"),
    ("min_s", "min s", ">"),
    ("first_epoch_s", "1st epoch s", ">"),
    ("ratio_to_torch", "/ torch", ">"),
    ("ratio_to_floor", "/ floor", ">"),
    ("gflops", "GFLOP/s", ">"),
)


def _cell(key, value):
    if value is None:
        return "-"
    if key in ("median_s", "min_s", "first_epoch_s"):
        return f"{value:.4f}" if value < 10 else f"{value:.2f}"
    if key.startswith("ratio"):
        return f"{value:.2f}x"
    if key == "gflops":
        return f"{value:.2f}"
    return str(value)


def format_table(results, markdown=False):
    """The results (records of :func:`summarize`) as an aligned text table, or a Markdown table."""
    header = [title for _, title, _ in TABLE_COLUMNS]
    rows = [[_cell(key, r.get(key)) for key, _, _ in TABLE_COLUMNS] for r in results]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if align == ">" else "---" for _, _, align in TABLE_COLUMNS) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if align == "<" else c.rjust(w)
                         for c, w, (_, _, align) in zip(cells, widths, TABLE_COLUMNS)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for r, row in zip(results, rows):
        if previous is not None and r.get("workload") != previous:
            out.append("")
        previous = r.get("workload")
        out.append(line(row))
    return "\n".join(out)


def machine_info():
    """CPU, cores, BLAS, versions: what a reader of the numbers needs to know (strings)."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "cpus": str(os.cpu_count())}
    try:
        info["cpus_usable"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("model name"):
                    info["cpu"] = text.split(":", 1)[1].strip()
                    break
    except OSError:
        info["cpu"] = platform.processor() or "unknown"
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = "; ".join(
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')} "
            f"{p.get('num_threads')} threads ({os.path.basename(p.get('filepath', ''))})"
            for p in threadpool_info() if p.get("user_api") == "blas") or "unknown"
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    for module in ("numba", "torch"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    if "numba" in sys.modules:
        config = sys.modules["numba"].config
        info["numba_threads"] = f"{config.NUMBA_NUM_THREADS} ({config.THREADING_LAYER} layer)"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "not MKL"
        info["torch_threads"] = str(torch.get_num_threads())
    from fastfnn import __version__
    info["fastfnn"] = __version__
    return info


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser):
    """Add the ``bench`` options to an argparse parser (the ``fastfnn bench`` subcommand's)."""
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer rows ({QUICK_ROWS}) and reps ({QUICK_REPS}): well under a minute")
    parser.add_argument("--json", metavar="PATH", help="write the raw numbers (every timing) as JSON")
    parser.add_argument("--backends", metavar="A,B",
                        help="FastFNN backends to time (default: every available one)")
    parser.add_argument("--compare", metavar="A,B", default="torch,loop",
                        help="comparisons: 'torch' (PyTorch eager CPU), 'loop' (hand-written NumPy), "
                             "or 'none' (default: torch,loop; the GEMM floor is always timed)")
    parser.add_argument("--workloads", metavar="K,K",
                        help=f"workloads to run (default: all of {', '.join(WORKLOADS_BY_KEY)})")
    parser.add_argument("--rows", type=int, metavar="N",
                        help=f"training rows per epoch (default {DEFAULT_ROWS}, --quick {QUICK_ROWS})")
    parser.add_argument("--reps", type=int, metavar="N",
                        help=f"timed epochs per variant (default {DEFAULT_REPS}, --quick {QUICK_REPS})")
    parser.add_argument("--data", metavar="DIR",
                        help="folder with the MNIST IDX files (or DIR/mnist); default: "
                             "$FASTFNN_DATA/mnist or the cache, else synthetic data")
    parser.add_argument("--synthetic", action="store_true",
                        help="use random MNIST-shaped data, read no files")
    parser.add_argument("--settle", type=float, default=SETTLE_S, metavar="S",
                        help="seconds of sleep before each epoch, for the previous variant's "
                             f"spinning threads to go idle (default {SETTLE_S})")
    parser.add_argument("--torch-threads", type=int, metavar="N",
                        help="PyTorch intra-op threads (default: the usable CPU cores)")
    parser.add_argument("--compile", action="store_true",
                        help="also measure each backend's first-fit overhead (JIT compile) with a "
                             "cold and a warm Numba cache, in fresh processes")
    return parser


def _split(text):
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def _resolve_options(args):
    """Validate the options; return (backends, comparisons, workloads, rows, reps) or raise ValueError."""
    from fastfnn.backends import available_backends

    report = available_backends()
    if args.backends:
        backends = _split(args.backends)
        for name in backends:
            if name not in report:
                raise ValueError(f"unknown backend {name!r}; registered: {', '.join(report)}")
            if report[name]:
                raise ValueError(f"backend {name!r} is not available: {report[name]}")
    else:
        backends = [name for name, reason in report.items() if not reason]
    comparisons = [] if (args.compare or "").strip().lower() in ("", "none") else _split(args.compare)
    for name in comparisons:
        if name not in COMPARISONS:
            raise ValueError(f"unknown comparison {name!r}; expected some of {', '.join(COMPARISONS)} "
                             "or 'none'")
    if args.workloads:
        keys = _split(args.workloads)
        for key in keys:
            if key not in WORKLOADS_BY_KEY:
                raise ValueError(f"unknown workload {key!r}; expected some of "
                                 f"{', '.join(WORKLOADS_BY_KEY)}")
        workloads = [WORKLOADS_BY_KEY[k] for k in keys]
    else:
        workloads = list(WORKLOADS)
    rows = args.rows if args.rows is not None else (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    reps = args.reps if args.reps is not None else (QUICK_REPS if args.quick else DEFAULT_REPS)
    if rows < 1:
        raise ValueError(f"--rows must be at least 1, got {rows}")
    if reps < 1:
        raise ValueError(f"--reps must be at least 1, got {reps}")
    if not args.settle >= 0:
        raise ValueError(f"--settle must be >= 0, got {args.settle}")
    unavailable = {name: reason for name, reason in report.items() if reason}
    return backends, comparisons, workloads, rows, reps, unavailable


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(args) -> int:
    """Run the benchmark described by parsed ``args``; print the table. Returns the exit status."""
    try:
        backends, comparisons, workloads, rows, reps, unavailable = _resolve_options(args)
        data = load_data(rows, args.data, args.synthetic)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"fastfnn bench: error: {exc}", file=sys.stderr)
        return 2
    torch_threads = args.torch_threads or _usable_cpus()

    def progress(text):
        print(text, file=sys.stderr, flush=True)

    progress(f"data: {data.source}; {rows} rows, {reps} timed epochs per variant")
    started = time.perf_counter()
    skipped = {}
    results = []
    for workload in workloads:
        variants = build_variants(workload, data, backends, comparisons, torch_threads, skipped)
        records = measure_workload(workload, variants, reps, progress, args.settle, skipped)
        results.extend(summarize(workload, rows, records))
        del variants
    overheads = []
    if args.compile:
        for name in backends:
            progress(f"  first-fit overhead of fastfnn[{name}] (two fresh processes)")
            try:
                overheads.append(first_fit_overhead(name, min(rows, 10000), args.data,
                                                    args.synthetic))
            except RuntimeError as exc:
                skipped[f"first-fit overhead of fastfnn[{name}]"] = str(exc)
    elapsed = time.perf_counter() - started

    info = machine_info()
    print(f"fastfnn bench: {rows} rows ({data.source}), float32, SGD; median of {reps} interleaved "
          f"epochs per variant")
    print(f"machine: {info.get('cpu', '?')}, {info.get('cpus_usable', info['cpus'])} usable cores; "
          f"BLAS: {info['blas']}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}")
    extras = [f"{label} {info[key]}" for key, label in
              (("numba", "numba"), ("numba_threads", "numba threads"), ("torch", "torch"),
               ("torch_threads", "torch threads"), ("torch_blas", "torch BLAS")) if key in info]
    print(f"versions: python {info['python']}, numpy {info['numpy']}"
          + "".join(f", {e}" for e in extras))
    print()
    print(format_table(results))
    print()
    print("s/epoch: median seconds per epoch; 1st epoch: the untimed warm-up epoch (JIT compile or "
          "cache load, first touches);")
    print("/ torch, / floor: median time over PyTorch's and over the floor's; GFLOP/s: the epoch's "
          "GEMM flops / median time;")
    print("floor: the epoch's GEMMs alone, NumPy BLAS into preallocated buffers. GFLOP/s counts dense "
          "GEMM flops, so a")
    print("backend that skips work (zero inputs, say) can show more than the floor's.")
    extra = warmup_overhead(results)
    if extra:
        print("warm-up beyond a timed epoch, all workloads (JIT compile or cache load, first touches): "
              + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in extra.items()))
    for record in overheads:
        print(f"first fit over a warm one, fastfnn[{record['backend']}] ({FIRST_FIT_NETWORK}, batch "
              f"{FIRST_FIT['batch_size']}, one epoch of {record['rows']} rows): cold cache "
              f"+{record['cold_extra_s']:.2f} s, warm cache +{record['warm_extra_s']:.2f} s")
    for name, reason in {**{f"fastfnn[{k}]": v for k, v in unavailable.items()}, **skipped}.items():
        print(f"not run: {name}: {reason}")
    print(f"total {elapsed:.1f} s")
    if args.json:
        payload = {"command": " ".join(sys.argv), "rows": rows, "reps": reps, "settle_s": args.settle,
                   "data": data.source, "dtype": "float32", "machine": info,
                   "backends": backends, "comparisons": comparisons,
                   "not_run": {**{f"fastfnn[{k}]": v for k, v in unavailable.items()}, **skipped},
                   "elapsed_s": elapsed, "results": results, "first_fit_overhead": overheads}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        print(f"raw numbers written to {args.json}")
    return 0


def main(argv=None) -> int:
    """``python -m fastfnn.bench [options]``."""
    parser = argparse.ArgumentParser(prog="python -m fastfnn.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
