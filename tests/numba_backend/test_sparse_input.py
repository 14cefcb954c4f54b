"""The CSR copy of sparse training data (numba_backend.sparse_input): right, kept while X stays
the same, rebuilt when X changes in place."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.kernels.numba_backend.sparse_input import SparseInputs

from .helpers import assert_same_epoch, clone, make_job, requires_numba, rng_for, run_both

pytestmark = requires_numba


def _csr_reference(X):
    rows, cols = np.nonzero(X)
    indptr = np.concatenate([[0], np.cumsum((X != 0).sum(axis=1))])
    return indptr, cols, X[rows, cols]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("n,d", [(1, 1), (3, 7), (700, 50), (300, 784)])
def test_csr_copy(dtype, n, d):
    rng = rng_for("csr", dtype, n, d)
    X = rng.integers(1, 256, (n, d)).astype(dtype)
    X[rng.random((n, d)) < 0.8] = 0
    got = SparseInputs().of(X, 0.5)
    if (X != 0).mean() > 0.5:
        assert got is None
        return
    for a, b in zip(got, _csr_reference(X)):
        np.testing.assert_array_equal(a[:len(b)], b)
    assert got[1].dtype == np.uint16 and got[2].dtype == X.dtype


def test_dense_data_has_no_sparse_copy():
    X = np.ones((20, 10), np.uint8)
    X[:, :4] = 0
    cache = SparseInputs()
    assert cache.of(X, 0.5) is None
    assert cache.of(X, 0.7) is not None


def test_copy_is_kept_for_the_same_data_and_density():
    X = np.eye(30, dtype=np.float32)
    cache = SparseInputs()
    first = cache.of(X, 0.5)
    assert cache.of(X, 0.5) is first
    assert cache.of(X, 0.01) is None  # a stricter threshold is honoured, not served from cache
    assert cache.of(X.copy(), 0.5) is not first


def test_fingerprint_notices_in_place_edits():
    X = np.zeros((1000, 20), np.uint8)
    cache = SparseInputs()
    assert cache.of(X, 0.5)[0][-1] == 0
    X[0, 3] = 9  # row 0 is always sampled
    ptr, ind, val = cache.of(X, 0.5)
    assert ptr[-1] == 1 and ind[0] == 3 and val[0] == 9


def test_fused_epoch_follows_edits_of_x():
    """The fused epoch reads the rebuilt copy after X changed in place."""
    job = make_job(batch=40)
    run_both(clone(job))
    job.X[::3] = 0  # every third row: the fingerprint samples row 0 at least
    assert_same_epoch(*run_both(clone(job)), np.float64)
