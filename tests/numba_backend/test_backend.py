"""The backend class (numba_backend.backend): plumbing, argument checks, fallbacks to the base
class's NumPy defaults, and what it sends to the fused epoch."""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import N_ROWS, NB, PAR, REF, assert_same_epoch, clone, make_job, requires_numba

pytestmark = requires_numba


def test_available_and_describe():
    assert type(NB).availability() == (True, "")
    info = NB.describe()
    for key in ("numba", "threads", "threading_layer", "cache", "blas", "gemm"):
        assert isinstance(info[key], str) and info[key], key
    assert info["avx512"] in ("yes", "no")
    PAR.bias_act(np.zeros((400, 400)), np.zeros(400), "relu")  # a parallel kernel has run now
    assert "not yet" not in NB.describe()["threading_layer"]


def test_a_bad_fastfnn_blas_stops_a_fit_before_it_changes_anything(monkeypatch):
    """FASTFNN_BLAS names the BLAS library of the gemm; any other value than its choices is a
    ValueError when a fit starts, and the fitted model stays as it was."""
    from fastfnn import FastFNN
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)), np.arange(64) % 3
    model = FastFNN((8,), backend="numba", max_iter=2, batch_size=32, random_state=0).fit(X, y)
    before = [c.copy() for c in model.coefs_]
    monkeypatch.setenv("FASTFNN_BLAS", "openblas")
    with pytest.raises(ValueError, match="FASTFNN_BLAS='openblas' is not a BLAS choice; "
                                         "expected one of auto, mkl, loaded"):
        model.fit(X + 1.0, y)
    for now, then in zip(model.coefs_, before):
        np.testing.assert_array_equal(now, then)


def test_mkl_asked_for_but_missing_stops_a_fit_before_it_changes_anything(monkeypatch):
    """FASTFNN_BLAS=mkl where MKL's wheel is missing: the ValueError comes when the fit starts
    (not at its first BLAS epoch), and the fitted model stays as it was."""
    from fastfnn import FastFNN
    from fastfnn.kernels.numba_backend import cblas
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((64, 5)), np.arange(64) % 3
    model = FastFNN((8,), backend="numba", max_iter=2, batch_size=1, random_state=0).fit(X, y)
    before = [c.copy() for c in model.coefs_]
    monkeypatch.setattr(cblas, "_MKL", [None])  # as where the wheel is missing
    monkeypatch.setattr(cblas, "_FOUND", {})
    monkeypatch.setenv("FASTFNN_BLAS", "mkl")
    with pytest.raises(ValueError, match="MKL is not installed"):
        model.fit(X + 1.0, y)  # batch 1: the fused epoch, which calls no BLAS
    for now, then in zip(model.coefs_, before):
        np.testing.assert_array_equal(now, then)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        NB.bias_act(np.zeros((2, 2)), np.zeros(2), "swish")


def test_bad_labels_raise():
    with pytest.raises(IndexError):
        NB.softmax_xent(np.zeros((2, 3)), np.array([0, 3]), np.zeros((2, 3)), np.zeros(2), 1.0)
    with pytest.raises(IndexError):
        NB.sigmoid_bce(np.zeros((2, 3)), np.array([-1, 0]), np.zeros((2, 3)), np.zeros(2), 1.0)


def test_optimizer_steps_on_non_contiguous_views():
    p = np.arange(12.0).reshape(3, 4)
    g = np.ones((3, 4))
    v = np.zeros((3, 4))
    want = p.copy()
    REF.sgd_step(want[:, ::2], g[:, ::2], v.copy()[:, ::2], 0.1, 0.0, False, 0.0)
    NB.sgd_step(p[:, ::2], g[:, ::2], v[:, ::2], 0.1, 0.0, False, 0.0)
    np.testing.assert_array_equal(p, want)


def test_gather_and_take_reject_bad_rows():
    X = np.zeros((4, 3), np.uint8)
    with pytest.raises(IndexError):
        NB.gather(X, np.array([0, 4]), np.empty((2, 3)), 1.0)
    with pytest.raises(IndexError):
        NB.take(np.arange(4), np.array([-5]), np.empty(1, np.int64))


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


def test_thread_limit_sets_numba_threads_and_restores_them():
    import numba

    backend = NB
    before = numba.get_num_threads()
    with backend.thread_limit(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with backend.thread_limit(None):
        assert numba.get_num_threads() == before


_MKL_UNDER_LIMIT_SCRIPT = """
import numpy as np
from threadpoolctl import threadpool_info
from fastfnn.kernels import backend_class
from fastfnn.kernels.numba_backend import cblas
cblas.cpu_vendor = lambda: "AuthenticAMD"  # auto: MKL for float32, OpenBLAS for float64
with backend_class("numba")().thread_limit(1):
    assert cblas.find_gemm(np.float32).is_mkl  # as a float32 epoch looks it up
    print([lib["num_threads"] for lib in threadpool_info() if lib["internal_api"] == "mkl"])
"""


def test_thread_limit_reaches_mkl_where_only_float32_takes_it():
    """Where auto takes MKL for float32 only (AMD's CPUs), a float32 fit still runs MKL at the
    thread limit: thread_limit loads MKL (looking up both dtypes' gemms) before the limit scans
    the BLAS libraries. A fresh process, so that nothing loaded MKL before."""
    import os
    import subprocess
    import sys

    from .helpers import skip_without_mkl
    skip_without_mkl()
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: MKL's default thread count is the limit's")
    env = {**os.environ, "FASTFNN_BLAS": "auto"}
    proc = subprocess.run([sys.executable, "-c", _MKL_UNDER_LIMIT_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[1]"


def test_order_may_count_from_the_end():
    """Negative row numbers in ``order`` mean what they mean in NumPy."""
    job = make_job(batch=5)
    negative = clone(job)
    negative.order = job.order - N_ROWS
    positive = clone(job)
    NB.fused_epoch(negative)
    NB.fused_epoch(positive)
    for a, b in zip(negative.coefs + [negative.stats], positive.coefs + [positive.stats]):
        np.testing.assert_array_equal(a, b)


def test_bad_order_or_labels_raise_and_change_nothing():
    job = make_job(batch=5)
    for change, match in [(dict(order=np.array([0, N_ROWS])), "out of range"),
                          (dict(targets=np.full(N_ROWS, 4)), "outside \\[0, 4\\)")]:
        bad = clone(job)
        for key, value in change.items():
            setattr(bad, key, value)
        before = [a.copy() for a in bad.coefs + [bad.stats]]
        with pytest.raises(IndexError, match=match):
            NB.fused_epoch(bad)
        for a, b in zip(bad.coefs + [bad.stats], before):
            np.testing.assert_array_equal(a, b)


def test_dense_enough_inputs_take_the_dense_path():
    """Above sparse_max_density the first layer reads every input (gathered), same result."""
    job = make_job(batch=5, d=30)
    sparse = clone(job)
    NB.fused_epoch(sparse)
    backend = type(NB)()
    backend.sparse_max_density = 0.0
    assert backend._sparse_of(job.X) is None
    dense = clone(job)
    backend.fused_epoch(dense)
    assert_same_epoch(dense, sparse, np.float64)
