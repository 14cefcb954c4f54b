"""The Numba backend: every kernel against the NumPy reference, the fused epoch against the
composed one, reproducibility, and the on-disk cache fallback."""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from fastfnn.kernels import ACTIVATIONS, EpochJob, backend_class

from .conftest import BACKEND_REPORT

pytestmark = pytest.mark.skipif(BACKEND_REPORT.get("numba", "missing") != "",
                                reason=f"numba backend unavailable: {BACKEND_REPORT.get('numba')}")

from fastfnn.kernels import numba_backend as nbmod  # noqa: E402
from fastfnn.kernels.numpy_backend import NumpyBackend  # noqa: E402
from fastfnn.network import init_params  # noqa: E402
from fastfnn.trainer import composed_epoch, new_opt_state  # noqa: E402

NB = backend_class("numba")() if BACKEND_REPORT.get("numba") == "" else None
PAR = backend_class("numba")() if NB is not None else None  # parallel kernels from 10k elements
if PAR is not None:
    PAR.parallel_min_elements = 10_000
REF = NumpyBackend()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-7, atol=1e-12)}
# (m, n): m = 1, odd widths, and one shape that PAR runs with its parallel kernels
SHAPES = [(1, 1), (1, 17), (3, 3), (7, 130), (17, 10), (300, 251)]


def _rng(*key):
    """A generator seeded from the test's parameters (stable across processes, unlike hash)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _f64(x):
    return np.array(x, dtype=np.float64)


def _be(*shape):
    """The backend under test for arrays of ``shape``: big ones exercise the parallel kernels."""
    return PAR if int(np.prod(shape)) >= 10_000 else NB


def _close(got, want, dtype, **override):
    np.testing.assert_allclose(got, want, **{**TOL[dtype], **override})


# ----------------------------------------------------------------------------- plumbing
def test_available_and_describe():
    assert type(NB).availability() == (True, "")
    info = NB.describe()
    for key in ("numba", "threads", "threading_layer", "cache", "blas"):
        assert isinstance(info[key], str) and info[key], key
    PAR.bias_act(np.zeros((400, 400)), np.zeros(400), "relu")  # a parallel kernel has run now
    assert "not yet" not in NB.describe()["threading_layer"]


# ----------------------------------------------------------------------------- matmul
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 784, 10), (3, 17, 5), (7, 130, 3),
                                   (17, 3, 130)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_matmul(dtype, m, k, n, trans_a, trans_b):
    rng = _rng(m, k, n, trans_a, trans_b)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    want = (_f64(a).T if trans_a else _f64(a)) @ (_f64(b).T if trans_b else _f64(b))
    out = np.empty((m, n), dtype)
    got = NB.matmul(a, b, out, trans_a, trans_b)
    assert got is out
    _close(got, want, dtype, **({"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_views(dtype):
    """Transposed views go to BLAS as they are; odd strides and first-rows outputs work too."""
    rng = _rng("views", dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}
    a = rng.standard_normal((40, 30)).astype(dtype)[:9, ::2]  # (9, 15), neither C nor F
    b = rng.standard_normal((20, 15)).astype(dtype)
    buf = np.empty((30, 20), dtype)
    out = buf[:9]  # the first rows of a bigger C-contiguous buffer
    assert NB.matmul(a, b, out, False, True) is out
    _close(buf[:9], _f64(a) @ _f64(b).T, dtype, **tol)
    c = rng.standard_normal((15, 9)).astype(dtype)
    got = NB.matmul(c, b.T, np.empty((9, 20), dtype), True, False)  # c.T and b.T: F views
    _close(got, _f64(c).T @ _f64(b).T, dtype, **tol)
    # transposed operands reach compiled code as Fortran-ordered arrays: BLAS reads them in place
    layouts = {arg.layout for sig in nbmod._matmul.signatures for arg in sig
               if hasattr(arg, "layout")}
    assert "F" in layouts and "A" not in layouts


# ----------------------------------------------------------------------------- element-wise
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_bias_act_and_act_grad(dtype, m, n, act):
    rng = _rng("act", m, n, act)
    z = (rng.standard_normal((m, n)) * 3).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    got = _be(m, n).bias_act(z.copy(), b, act)
    want = REF.bias_act(_f64(z), _f64(b), act)
    _close(got, want, dtype)
    da = rng.standard_normal((m, n)).astype(dtype)
    g = _be(m, n).act_grad(da.copy(), got, act)
    _close(g, REF.act_grad(_f64(da), _f64(got), act), dtype)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        NB.bias_act(np.zeros((2, 2)), np.zeros(2), "swish")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("alias", [False, True])
def test_softmax_xent(dtype, m, n, alias):
    rng = _rng("sx", m, n, alias)
    logits = (rng.standard_normal((m, n)) * 4).astype(dtype)
    y = rng.integers(0, n, m)
    scale = 1.0 / m
    stats = np.array([5.0, 2.0])  # kernels add to what is there
    want_stats = np.array([5.0, 2.0])
    want = REF.softmax_xent(_f64(logits), y, np.empty((m, n)), want_stats, scale)
    work = logits.copy()
    out = work if alias else np.empty_like(work)
    got = _be(m, n).softmax_xent(work, y, out, stats, scale)
    assert got is out
    _close(got, want, dtype)
    np.testing.assert_allclose(stats, want_stats, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert stats[1] == want_stats[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("form", ["labels", "indicators"])
def test_sigmoid_bce(dtype, m, n, form):
    rng = _rng("bce", m, n, form)
    logits = (rng.standard_normal((m, n)) * 4).astype(dtype)
    if form == "labels":
        targets = rng.integers(0, n, m)
    else:
        targets = (rng.random((m, n)) < 0.4).astype(dtype)
        targets[0] = (logits[0] > 0)  # at least one fully correct row
    stats, want_stats = np.array([1.5, 3.0]), np.array([1.5, 3.0])
    want = REF.sigmoid_bce(_f64(logits), targets, np.empty((m, n)), want_stats, 0.5)
    got = _be(m, n).sigmoid_bce(logits.copy(), targets, np.empty_like(logits), stats, 0.5)
    _close(got, want, dtype)
    np.testing.assert_allclose(stats, want_stats, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert stats[1] == want_stats[1]


def test_bad_labels_raise():
    with pytest.raises(IndexError):
        NB.softmax_xent(np.zeros((2, 3)), np.array([0, 3]), np.zeros((2, 3)), np.zeros(2), 1.0)
    with pytest.raises(IndexError):
        NB.sigmoid_bce(np.zeros((2, 3)), np.array([-1, 0]), np.zeros((2, 3)), np.zeros(2), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
def test_softmax_and_argmax(dtype, m, n):
    rng = _rng("sm", m, n)
    z = (rng.standard_normal((m, n)) * 5).astype(dtype)
    _close(_be(m, n).softmax(z.copy()), REF.softmax(_f64(z)), dtype)
    ties = np.round(z)  # many equal maxima: the first one wins, as with np.argmax
    out = np.empty(m, np.int64)
    assert NB.argmax_rows(ties, out) is out
    np.testing.assert_array_equal(out, np.argmax(ties, axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
def test_col_sum(dtype, m, n):
    rng = _rng("cs", m, n)
    dz = rng.standard_normal((m, n)).astype(dtype)
    got = _be(m, n).col_sum(dz, np.empty(n, dtype))
    # rows are summed in order, like NumPy's axis-0 reduction: equal to it bit for bit
    np.testing.assert_array_equal(got, REF.col_sum(dz, np.empty(n, dtype)))
    tol = TOL[dtype] if m <= 20 else dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else {}
    np.testing.assert_allclose(got, REF.col_sum(_f64(dz), np.empty(n)), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (17,), (130, 3), (300, 251)])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_sgd_step(dtype, shape, momentum, nesterov, weight_decay):
    rng = _rng("sgd", shape, momentum, nesterov, weight_decay)
    p, g, v = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    ours = [p.copy(), v.copy()]
    _be(*shape).sgd_step(ours[0], g, ours[1], 0.05, momentum, nesterov, weight_decay)
    same = [p.copy(), v.copy()]  # the reference in the same dtype: identical operation order
    REF.sgd_step(same[0], g, same[1], 0.05, momentum, nesterov, weight_decay)
    np.testing.assert_array_equal(ours[0], same[0])
    np.testing.assert_array_equal(ours[1], same[1])
    wide = [_f64(p), _f64(v)]
    REF.sgd_step(wide[0], _f64(g), wide[1], 0.05, momentum, nesterov, weight_decay)
    _close(ours[0], wide[0], dtype)
    _close(ours[1], wide[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (17,), (130, 3), (300, 251)])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_adam_step(dtype, shape, weight_decay):
    rng = _rng("adam", shape, weight_decay)
    p, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    m = rng.standard_normal(shape).astype(dtype) * 0.1
    v = np.abs(rng.standard_normal(shape)).astype(dtype) * 0.01
    ours = [p.copy(), m.copy(), v.copy()]
    _be(*shape).adam_step(*ours[:1], g, *ours[1:], 1e-3, 0.9, 0.999, 1e-8, weight_decay)
    same = [p.copy(), m.copy(), v.copy()]
    REF.adam_step(*same[:1], g, *same[1:], 1e-3, 0.9, 0.999, 1e-8, weight_decay)
    for a, b in zip(ours, same):
        np.testing.assert_array_equal(a, b)
    wide = [_f64(p), _f64(m), _f64(v)]
    REF.adam_step(*wide[:1], _f64(g), *wide[1:], 1e-3, 0.9, 0.999, 1e-8, weight_decay)
    for a, b in zip(ours, wide):
        _close(a, b, dtype)


def test_optimizer_steps_on_non_contiguous_views():
    p = np.arange(12.0).reshape(3, 4)
    g = np.ones((3, 4))
    v = np.zeros((3, 4))
    want = p.copy()
    REF.sgd_step(want[:, ::2], g[:, ::2], v.copy()[:, ::2], 0.1, 0.0, False, 0.0)
    NB.sgd_step(p[:, ::2], g[:, ::2], v[:, ::2], 0.1, 0.0, False, 0.0)
    np.testing.assert_array_equal(p, want)


# ----------------------------------------------------------------------------- gather / take
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("m,d", [(1, 1), (5, 17), (130, 784)])
def test_gather(dtype, x_dtype, m, d):
    rng = _rng("gather", m, d, x_dtype)
    n = 150
    if x_dtype == np.uint8:
        X = rng.integers(0, 256, (n, d)).astype(np.uint8)
        scale = 1 / 255
    else:
        X = rng.standard_normal((n, d)).astype(x_dtype)
        scale = 0.5 if x_dtype == np.float32 else 1.0
    idx = rng.integers(-n, n, m)  # negative rows count from the end, as in NumPy
    got = _be(m, d).gather(X, idx, np.empty((m, d), dtype), scale)
    np.testing.assert_array_equal(got, REF.gather(X, idx, np.empty((m, d), dtype), scale))
    _close(got, REF.gather(X, idx, np.empty((m, d)), scale), dtype)


def test_gather_and_take_reject_bad_rows():
    X = np.zeros((4, 3), np.uint8)
    with pytest.raises(IndexError):
        NB.gather(X, np.array([0, 4]), np.empty((2, 3)), 1.0)
    with pytest.raises(IndexError):
        NB.take(np.arange(4), np.array([-5]), np.empty(1, np.int64))


def test_take():
    rng = _rng("take")
    y = rng.integers(0, 10, 50)
    Y = (rng.random((50, 7)) < 0.5).astype(np.float32)
    idx = rng.integers(-50, 50, 20)
    np.testing.assert_array_equal(NB.take(y, idx, np.empty(20, np.int64)), y[idx])
    np.testing.assert_array_equal(NB.take(Y, idx, np.empty((20, 7), np.float32)), Y[idx])


# ----------------------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_logits_finite_and_warning_free(dtype):
    rng = _rng("big")
    z = (np.sign(rng.standard_normal((9, 5))) * 1e4).astype(dtype)
    z[0] = 1e4  # a row of equal huge logits
    y = rng.integers(0, 5, 9)
    Y = (rng.random((9, 5)) < 0.5).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, fn in [("softmax_xent", lambda s: NB.softmax_xent(z.copy(), y, np.empty_like(z), s, 1 / 9)),
                         ("bce labels", lambda s: NB.sigmoid_bce(z.copy(), y, np.empty_like(z), s, 1 / 9)),
                         ("bce indicators", lambda s: NB.sigmoid_bce(z.copy(), Y, np.empty_like(z), s, 1 / 9))]:
            stats = np.zeros(2)
            grad = fn(stats)
            assert np.all(np.isfinite(grad)) and np.all(np.isfinite(stats)), name
        sm = NB.softmax(z.copy())
        assert np.all(np.isfinite(sm))
        np.testing.assert_allclose(sm.sum(axis=1), 1, rtol=1e-6)
        for act in ("sigmoid", "tanh"):
            assert np.all(np.isfinite(NB.bias_act(z.copy(), np.zeros(5, dtype), act)))
    stats, want = np.zeros(2), np.zeros(2)
    NB.softmax_xent(z.copy(), y, np.empty_like(z), stats, 1.0)
    REF.softmax_xent(_f64(z), y, np.empty((9, 5)), want, 1.0)
    np.testing.assert_allclose(stats, want, rtol=1e-6)


# ----------------------------------------------------------------------------- fused epoch
N_ROWS = 40
SOLVERS = {"sgd": dict(solver="sgd", momentum=0.0, nesterov=False),
           "momentum": dict(solver="sgd", momentum=0.9, nesterov=False),
           "nesterov": dict(solver="sgd", momentum=0.9, nesterov=True),
           "adam": dict(solver="adam", momentum=0.9, nesterov=True)}
OUTPUTS = {"softmax": ("softmax", "labels"), "sigmoid": ("sigmoid", "labels"),
           "multilabel": ("sigmoid", "indicators")}
HIDDEN = {0: (), 1: (9,), 2: (9, 17), 3: (9, 17, 5)}


def make_job(*, dtype=np.float64, depth=1, batch=7, act="relu", output="softmax",
             solver="nesterov", inputs="sparse", n=N_ROWS, d=20, k=4, alpha=1e-3, seed=0,
             shuffle=True, hidden=None):
    """A small random epoch; inputs: "sparse" uint8 (~80% zeros), "dense" uint8, "float";
    hidden: the hidden widths (default HIDDEN[depth])."""
    rng = np.random.default_rng(seed)
    out_kind, form = OUTPUTS[output]
    if inputs == "float":
        X = rng.standard_normal((n, d)).astype(dtype)
        x_scale = 1.0
    else:
        X = rng.integers(1, 256, (n, d)).astype(np.uint8)
        if inputs == "sparse":
            X[rng.random((n, d)) < 0.8] = 0
        x_scale = 1 / 255
    targets = rng.integers(0, k, n) if form == "labels" else \
        (rng.random((n, k)) < 0.4).astype(dtype)
    sizes = (d, *(HIDDEN[depth] if hidden is None else hidden), k)
    coefs, intercepts = init_params(sizes, "auto", act, dtype, rng)
    for b in intercepts:
        b[...] = rng.standard_normal(b.shape) * 0.1
    opt = SOLVERS[solver]
    state = new_opt_state(REF, opt["solver"], coefs, intercepts)
    for group in state:  # a run already under way: nonzero optimizer state
        for a in group:
            a[...] = rng.standard_normal(a.shape) * 0.01
    if opt["solver"] == "adam":
        for a in state[2] + state[3]:
            np.abs(a, out=a)
    return EpochJob(
        X=X, targets=targets, order=rng.permutation(n) if shuffle else None, batch_size=batch,
        coefs=coefs, intercepts=intercepts, activation=act, output=out_kind,
        solver=opt["solver"], opt_state=state, learning_rate=0.05, momentum=opt["momentum"],
        nesterovs_momentum=opt["nesterov"], beta_1=0.9, beta_2=0.999, epsilon=1e-8, alpha=alpha, t=3,
        x_scale=x_scale, stats=np.array([1.0, 2.0]))


def clone(job):
    return EpochJob(**{k: (v if k == "X" else copy.deepcopy(v)) for k, v in job.__dict__.items()})


def assert_same_epoch(fused, composed, dtype):
    rel = 1e-9 if dtype == np.float64 else 1e-4
    pairs = list(zip(fused.coefs + fused.intercepts, composed.coefs + composed.intercepts))
    pairs += [(a, b) for s, t in zip(fused.opt_state, composed.opt_state) for a, b in zip(s, t)]
    pairs.append((fused.stats, composed.stats))
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=rel, atol=rel * float(np.max(np.abs(want))))
    assert fused.t == composed.t


def run_both(job, backend=None):
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


def _grid():
    """Every activation x output x solver, and every batch size x depth x dtype, with the other
    factors cycling through their values."""
    acts, outs, solvers = list(ACTIVATIONS), list(OUTPUTS), list(SOLVERS)
    batches, depths = [1, 7, 32, N_ROWS], list(HIDDEN)
    cases = []
    for i, (act, out, solver) in enumerate(itertools.product(acts, outs, solvers)):
        cases.append((DTYPES[i % 2], batches[i % 4], depths[(i // 2) % 4], act, out, solver))
    for i, (batch, depth, dtype) in enumerate(itertools.product(batches, depths, DTYPES)):
        cases.append((dtype, batch, depth, acts[i % 4], outs[(i // 4) % 3], solvers[(i + 1) % 4]))
    return cases


@pytest.mark.parametrize("dtype,batch,depth,act,output,solver", _grid(),
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_fused_epoch_matches_composed(dtype, batch, depth, act, output, solver):
    job = make_job(dtype=dtype, batch=batch, depth=depth, act=act, output=output, solver=solver)
    assert NB._sparse_of(job.X) is not None  # the sparse first-layer path
    assert_same_epoch(*run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("batch", [1, 16])
def test_wide_hidden_layers(dtype, act, batch):
    """Hidden layers wider than 16 and than a vector: the backward pass takes their inputs 16
    at a time (two groups and a rest of 8 for 40 inputs) over rows of several vectors."""
    job = make_job(dtype=dtype, batch=batch, act=act, hidden=(40, 33), solver="momentum")
    assert_same_epoch(*run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 4, 5])
@pytest.mark.parametrize("solver,alpha", [("sgd", 0.0), ("sgd", 1e-2), ("momentum", 0.0),
                                          ("nesterov", 1e-2), ("adam", 1e-2)])
def test_sparse_first_layer_small_batches(dtype, batch, solver, alpha):
    """Sparse inputs: only nonzero inputs are visited; with SGD and batches up to
    lazy_max_rows only the touched first-layer rows are updated per step (the others catch up
    in closed form), including a shorter last step (40 rows in steps of 3)."""
    job = make_job(dtype=dtype, batch=batch, depth=2, solver=solver, alpha=alpha, d=50, n=41)
    assert NB._sparse_of(job.X) is not None
    assert (job.X == 0).mean() > 0.7
    assert_same_epoch(*run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inputs,batch", [("float", 1), ("float", 16), ("dense", 5),
                                          ("float", 64)])
def test_dense_inputs(dtype, inputs, batch):
    job = make_job(dtype=dtype, batch=batch, depth=2, inputs=inputs, solver="momentum")
    assert NB._sparse_of(job.X) is None
    assert_same_epoch(*run_both(job), dtype)
    big = make_job(dtype=dtype, batch=NB.dense_fused_max_rows + 1, inputs=inputs, n=100)
    assert not NB.fused_epoch_supported(big)  # large dense batches: composed (BLAS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inputs", ["sparse", "float"])
def test_unshuffled_full_batch(dtype, inputs):
    """order None: batches are slices of X (already in the parameters' dtype, scale 1)."""
    job = make_job(dtype=dtype, batch=N_ROWS, inputs=inputs, shuffle=False, depth=2)
    if job.X.dtype != dtype:
        job.X = REF.gather(job.X, np.arange(N_ROWS), np.empty(job.X.shape, dtype), job.x_scale)
        job.x_scale = 1.0
    assert_same_epoch(*run_both(job), dtype)


def _chunky():
    """A backend whose fused steps split into parallel row chunks already at 8 rows."""
    backend = backend_class("numba")()
    backend.fused_rows_per_chunk = 8
    return backend


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,solver,inputs,d", [(N_ROWS * 3, "nesterov", "sparse", 20),
                                                   (50, "adam", "sparse", 20),
                                                   (24, "sgd", "float", 20),
                                                   # a wide sparse first layer: its gradient is
                                                   # summed by rows of W0, in column-sorted runs
                                                   # of up to 128 rows (2 runs for 150 rows)
                                                   (150, "sgd", "sparse", 200),
                                                   (60, "momentum", "sparse", 200)])
def test_parallel_chunks(dtype, batch, solver, inputs, d):
    job = make_job(dtype=dtype, batch=batch, n=max(N_ROWS * 3, 2 * batch + 7), solver=solver,
                   inputs=inputs, depth=1, d=d)
    assert_same_epoch(*run_both(job, _chunky()), dtype)


@pytest.mark.parametrize("batch,solver", [(1, "nesterov"), (7, "adam"), (N_ROWS * 3, "momentum")])
def test_fused_epoch_is_bitwise_reproducible(batch, solver):
    backend = _chunky()
    job = make_job(dtype=np.float32, batch=batch, solver=solver, n=N_ROWS * 3, depth=2)
    first, second = clone(job), clone(job)
    backend.fused_epoch(first)
    backend.fused_epoch(second)
    for a, b in zip(first.coefs + first.intercepts + [first.stats],
                    second.coefs + second.intercepts + [second.stats]):
        np.testing.assert_array_equal(a, b)


def test_fused_epoch_advances_adam_and_keeps_x():
    job = make_job(batch=7, solver="adam")
    x_before = job.X.copy()
    fused = clone(job)
    NB.fused_epoch(fused)
    assert fused.t == job.t + 6  # ceil(40 / 7) steps
    np.testing.assert_array_equal(job.X, x_before)


def test_fused_epoch_supported_rejects_what_it_cannot_run():
    job = make_job()
    assert NB.fused_epoch_supported(job)
    for change in [dict(activation="swish"), dict(output="linear"), dict(solver="lbfgs"),
                   dict(coefs=[c.astype(np.float32) for c in job.coefs]),
                   dict(targets=np.zeros((N_ROWS, 3))), dict(stats=np.zeros(2, np.float32))]:
        bad = clone(job)
        for key, value in change.items():
            setattr(bad, key, value)
        assert not NB.fused_epoch_supported(bad), change


def test_sparse_copy_follows_edits_of_x():
    """The cached CSR copy of X is rebuilt when X changes in place (the sampled fingerprint)."""
    job = make_job(batch=40)
    first, second = clone(job), clone(job)
    NB.fused_epoch(first)
    job.X[::3] = 0  # every third row: the fingerprint samples row 0 at least
    second.X = job.X
    fused, composed = run_both(clone(second))
    assert_same_epoch(fused, composed, np.float64)


# ----------------------------------------------------------------------------- cache fallback
_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from {package}.numba_backend import NumbaBackend
    b = NumbaBackend()
    z = np.arange(12.0).reshape(3, 4) - 6
    b.bias_act(z, np.ones(4), "relu")
    stats = np.zeros(2)
    b.softmax_xent(z, np.array([0, 1, 2]), z, stats, 1.0)
    print("ok", round(float(stats[0]), 6), b.describe()["cache"])
""")


def _run(script, env_extra, *args):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_unwritable_numba_cache_dir(tmp_path):
    """NUMBA_CACHE_DIR that cannot be created (under a regular file: root ignores permission
    bits, a file parent stops even root): numba falls back to another location, no crash."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    result = _run(_SCRIPT.format(package="fastfnn.kernels"),
                  {"NUMBA_CACHE_DIR": str(blocker / "cache")}, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_no_writable_cache_anywhere(tmp_path):
    """No cache location at all (in-tree __pycache__ is a file, the user-wide one cannot be
    made): the kernels compile in memory each process and still run."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    package_dir = Path(sys.modules[backend_class("numba").__module__].__file__).parent
    copy_root = tmp_path / "src"
    shutil.copytree(package_dir, copy_root / "kernels_nocache",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy_root / "kernels_nocache" / "__pycache__").write_text("")  # not a directory
    env = {"NUMBA_CACHE_DIR": "", "HOME": str(blocker), "XDG_CACHE_HOME": str(blocker / "x"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    result = _run(_SCRIPT.format(package="kernels_nocache"), env, str(copy_root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
    assert "no cache" in result.stdout


def test_thread_limit_sets_numba_threads_and_restores_them():
    import numba

    backend = NB
    before = numba.get_num_threads()
    with backend.thread_limit(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with backend.thread_limit(None):
        assert numba.get_num_threads() == before
