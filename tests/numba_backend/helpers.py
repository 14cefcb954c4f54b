"""What the Numba backend's tests share: the backends under test, tolerances, seeded generators,
and small random epochs (EpochJob) run fused and composed."""

from __future__ import annotations

import copy
import zlib

import numpy as np
import pytest

from fastfnn.kernels import EpochJob, backend_class
from fastfnn.kernels.composed import composed_epoch
from fastfnn.kernels.numpy_backend import NumpyBackend

from ..conftest import BACKEND_REPORT

#: Skip a test module when numba cannot run here (with the reason).
requires_numba = pytest.mark.skipif(BACKEND_REPORT.get("numba", "missing") != "",
                                    reason=f"numba backend unavailable: {BACKEND_REPORT.get('numba')}")



def skip_without_mkl():
    """Skip the calling test where MKL's wheel is not installed (CI installs it)."""
    from fastfnn.kernels.numba_backend.cblas import mkl_runtime_path
    if mkl_runtime_path() is None:
        pytest.skip("MKL's wheel is not installed here (pip install 'fastfnn[mkl]')")


def numba_backend(**knobs):
    """A Numba backend with the tuning attributes ``knobs`` (class attributes) set on it."""
    backend = backend_class("numba")()
    for name, value in knobs.items():
        if not hasattr(backend, name):
            raise AttributeError(f"NumbaBackend has no knob {name!r}")
        setattr(backend, name, value)
    return backend


#: The fused epoch's tests reach it with dense batches of up to 64 rows (by default the BLAS
#: epoch takes dense batches of more than 4; test_blas_epoch checks the default routing).
FUSED_DENSE_ROWS = 64
NB = numba_backend(dense_fused_max_rows=FUSED_DENSE_ROWS) \
    if BACKEND_REPORT.get("numba") == "" else None
#: The same backend with its parallel kernels from 10k elements on.
PAR = numba_backend(dense_fused_max_rows=FUSED_DENSE_ROWS, parallel_min_elements=10_000) \
    if NB is not None else None
REF = NumpyBackend()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-7, atol=1e-12)}


def rng_for(*key):
    """A generator seeded from the test's parameters (stable across processes, unlike hash)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def f64(x):
    return np.array(x, dtype=np.float64)


def backend_for(*shape):
    """The backend under test for arrays of ``shape``: big ones exercise the parallel kernels."""
    return PAR if int(np.prod(shape)) >= 10_000 else NB


def assert_close(got, want, dtype, **override):
    np.testing.assert_allclose(got, want, **{**TOL[dtype], **override})


# ----------------------------------------------------------------------------- epochs
N_ROWS = 40
SOLVERS = {"sgd": dict(solver="sgd", momentum=0.0, nesterov=False),
           "momentum": dict(solver="sgd", momentum=0.9, nesterov=False),
           "nesterov": dict(solver="sgd", momentum=0.9, nesterov=True),
           "adam": dict(solver="adam", momentum=0.9, nesterov=True)}
OUTPUTS = {"softmax": ("softmax", "labels"), "sigmoid": ("sigmoid", "labels"),
           "multilabel": ("sigmoid", "indicators")}
#: The regression outputs, with (n, k) float targets (values, counts).
REGRESSION_OUTPUTS = {"squared_error": ("squared_error", "values"),
                      "poisson": ("poisson", "counts")}
HIDDEN = {0: (), 1: (9,), 2: (9, 17), 3: (9, 17, 5)}


def make_job(*, dtype=np.float64, depth=1, batch=7, act="relu", output="softmax",
             solver="nesterov", inputs="sparse", n=N_ROWS, d=20, k=4, alpha=1e-3, seed=0,
             shuffle=True, hidden=None, weighted=False):
    """A small random epoch, already under way (nonzero optimizer state, t = 3); inputs:
    "sparse" uint8 (~80% zeros), "dense" uint8, "float"; hidden: the hidden widths (default
    HIDDEN[depth]); output: a key of OUTPUTS or REGRESSION_OUTPUTS; weighted: random sample
    weights in [0.1, 3)."""
    rng = np.random.default_rng(seed)
    out_kind, form = {**OUTPUTS, **REGRESSION_OUTPUTS}[output]
    if inputs == "float":
        X = rng.standard_normal((n, d)).astype(dtype)
        x_scale = 1.0
    else:
        X = rng.integers(1, 256, (n, d)).astype(np.uint8)
        if inputs == "sparse":
            X[rng.random((n, d)) < 0.8] = 0
        x_scale = 1 / 255
    targets = {"labels": lambda: rng.integers(0, k, n),
               "indicators": lambda: (rng.random((n, k)) < 0.4).astype(dtype),
               "values": lambda: rng.standard_normal((n, k)).astype(dtype),
               "counts": lambda: rng.poisson(1.0, (n, k)).astype(dtype)}[form]()
    sizes = (d, *(HIDDEN[depth] if hidden is None else hidden), k)
    coefs = [(rng.standard_normal((a, b)) * np.sqrt(2 / (a + b))).astype(dtype)
             for a, b in zip(sizes[:-1], sizes[1:])]
    intercepts = [(rng.standard_normal(b) * 0.1).astype(dtype) for b in sizes[1:]]
    opt = SOLVERS[solver]
    groups = 2 if opt["solver"] == "sgd" else 4
    state = [[(rng.standard_normal(p.shape) * 0.01).astype(dtype)
              for p in (coefs if g % 2 == 0 else intercepts)] for g in range(groups)]
    for group in state[2:]:  # Adam's second moments are not negative
        for a in group:
            np.abs(a, out=a)
    return EpochJob(
        X=X, targets=targets, order=rng.permutation(n) if shuffle else None, batch_size=batch,
        coefs=coefs, intercepts=intercepts, activation=act, output=out_kind,
        solver=opt["solver"], opt_state=state, learning_rate=0.05, momentum=opt["momentum"],
        nesterovs_momentum=opt["nesterov"], beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=alpha,
        t=3, x_scale=x_scale, stats=np.array([1.0, 2.0]),
        sample_weight=rng.uniform(0.1, 3.0, n).astype(dtype) if weighted else None)


def clone(job):
    """A deep copy of ``job`` that shares X (the fused epoch caches its CSR copy per X)."""
    return EpochJob(**{k: (v if k == "X" else copy.deepcopy(v)) for k, v in job.__dict__.items()})


def assert_same_epoch(fused, composed, dtype):
    """Parameters, optimizer state, stats and t of two runs of one epoch agree (rounding)."""
    rel = 1e-9 if dtype == np.float64 else 1e-4
    pairs = list(zip(fused.coefs + fused.intercepts, composed.coefs + composed.intercepts))
    pairs += [(a, b) for s, t in zip(fused.opt_state, composed.opt_state) for a, b in zip(s, t)]
    pairs.append((fused.stats, composed.stats))
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=rel, atol=rel * float(np.max(np.abs(want))))
    assert fused.t == composed.t


def run_both(job, backend=None):
    """(fused, composed): ``job`` run by the backend's fused epoch and by the composed epoch on
    the NumPy reference."""
    backend = backend or NB
    fused, composed = clone(job), clone(job)
    assert backend.fused_epoch_supported(fused)
    backend.fused_epoch(fused)
    if composed.order is None and composed.X.dtype != composed.coefs[0].dtype:
        composed.X = REF.gather(composed.X, np.arange(composed.X.shape[0]),
                                np.empty(composed.X.shape, composed.coefs[0].dtype),
                                composed.x_scale)
        composed.x_scale = 1.0
    composed_epoch(REF, composed)
    return fused, composed
