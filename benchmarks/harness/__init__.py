"""Time one training epoch of the seed workloads on every backend, beside PyTorch (``fastfnn bench``).

For each seed workload (MNIST-shaped data, float32, ReLU hidden layers, softmax + cross-entropy, plain
SGD) the same network is trained, starting from the same weights, by

- ``fastfnn[<backend>]``: FastFNN's trainer epoch (the backend's fused epoch where it offers one for the
  job, else the composed kernels), one variant per available backend;
- ``pytorch``: the same network in eager PyTorch on the CPU, tensors in memory, no DataLoader;
- ``numpy loop``: the straightforward hand-written NumPy loop (``X[idx]``, ``relu(X @ W1 + b1)``, ...,
  softmax, gradients, ``W -= lr * gW``), float32 SGD only;
- ``floor``: only the epoch's GEMMs (forward, weight gradients, input gradients except for the first
  layer), by the Numba backend's gemm (threaded) at the same shapes into preallocated buffers;
- ``bound``: the floor's GEMMs on one BLAS thread, the time divided by the cores — what no epoch
  of those products can beat (a step's products run in pieces side by side on single threads can
  beat the floor's threaded ones).

``--matrix`` runs issue 11's matrix instead: dense tabular inputs (100 and 1,000 features, 5 classes)
at batch 1, 32, 200 and 1024, a wide (784-1024-1024-10) and a deep (784, six hidden layers of 256,
10) net on MNIST pixels, in float32 and float64, with SGD and Adam, each with its own rows per epoch;
keys like ``dense100/b200/f64/adam``. Every row has its floor and bound (in its dtype) and FLOP
count beside it, and its ratios to FastFNN's NumPy backend, to PyTorch, to the floor and to the
bound.

The variants of a workload are interleaved: one epoch each, round-robin (the starting variant rotates),
repeated ``--reps`` times; the table reports the median. Each epoch starts after a short sleep
(``--settle``) so that the previous variant's busy-waiting thread pools are idle. Each variant's first
epoch (JIT compilation or cache loading, lazy initialisation, first touches of buffers) is run before the
timed rounds and reported apart. With ``--isolate`` (the default for matrix rows) each variant lives in
a worker process of its own for the whole run and times its epochs there.

With ``--compile``, the first-fit overhead is measured apart (``first_fit.first_fit_overhead``): a fresh
process fits the seed network twice, once with an empty Numba cache (cold: everything compiles) and
once more with the cache that run left behind (warm: cached code is loaded); the overhead is the
first fit's time minus the second's.

Run ``fastfnn bench`` or ``python -m fastfnn.bench``; ``--quick`` takes well under a minute, ``--matrix``
about ten on two cores; ``--markdown`` prints the table for RESULTS.md.

This package lives in ``benchmarks/harness/`` and is installed as ``fastfnn.bench`` (setuptools
``package-dir``), beside the library rather than in it: no library module imports it, only the CLI's
``bench`` command when it is run. Modules, by job:
``workloads`` (the seed and matrix networks, their GEMMs and FLOPs), ``data`` (MNIST rows, synthetic
ones, dense tabular rows; which workload trains on what), ``variants`` (FastFNN per backend,
PyTorch, the NumPy loop, the floor, the bound), ``isolation`` (the variants in this process, or each
in a worker process of its own), ``measure`` (interleaved timing, medians and ratios), ``first_fit``
(compile overhead in fresh processes), ``gpu_budget`` (the CuPy backend's launches, counted on the
CUDA emulation), ``report`` (tables, machine facts), ``goals`` (issue 11's goals counted on the
matrix rows) and ``command`` (the options and the run). The names below are what the ``fastfnn
bench`` command uses.
"""

from fastfnn.bench.command import add_arguments, main, run

__all__ = ["add_arguments", "main", "run"]
