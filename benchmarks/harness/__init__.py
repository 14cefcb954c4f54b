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
(``--settle``) so that the previous variant's busy-waiting thread pools are idle. Each variant's first
epoch (JIT compilation or cache loading, lazy initialisation, first touch of buffers) is run before the
timed rounds and reported apart.

With ``--compile``, the first-fit overhead is measured apart (``first_fit.first_fit_overhead``): a fresh
process fits the seed network twice, once with an empty Numba cache (cold: everything compiles) and
once more with the cache that run left behind (warm: cached code is loaded); the overhead is the
first fit's time minus the second's.

Run ``fastfnn bench`` or ``python -m fastfnn.bench``; ``--quick`` takes well under a minute.

This package lives in ``benchmarks/harness/`` and is installed as ``fastfnn.bench`` (setuptools
``package-dir``), beside the library rather than in it: no library module imports it, only the CLI's
``bench`` command when it is run. Modules, by job:
``workloads`` (the seed networks, their GEMMs and FLOPs), ``data`` (MNIST rows or synthetic ones),
``variants`` (FastFNN per backend, PyTorch, the NumPy loop, the floor), ``measure`` (interleaved
timing), ``first_fit`` (compile overhead in fresh processes), ``report`` (tables, machine facts) and
``command`` (the options and the run). The names below are what the ``fastfnn bench`` command uses.
"""

from fastfnn.bench.command import add_arguments, main, run

__all__ = ["add_arguments", "main", "run"]
