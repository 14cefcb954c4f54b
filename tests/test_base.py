"""The base contract: every kernel has a working default on ``xp``, and ``run_epoch`` picks the path."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn.backends import get_backend
from fastfnn.kernels import Backend, EpochJob
from fastfnn.network import init_params
from fastfnn.trainer import new_opt_state

from .conftest import blobs


class BareBackend(Backend):
    """A backend that writes nothing but its name and availability: the defaults do the rest."""

    name = "bare"

    @classmethod
    def availability(cls):
        return True, ""


def _job(backend, solver, output, order):
    X, y = blobs(n=90)
    coefs, intercepts = init_params((X.shape[1], 7, 3), "he", "tanh", np.float64,
                                    np.random.default_rng(5))
    coefs = [backend.asarray(w) for w in coefs]
    intercepts = [backend.asarray(b) for b in intercepts]
    return EpochJob(X=backend.asarray(X), targets=backend.asarray(y), order=order, batch_size=16,
                    coefs=coefs, intercepts=intercepts, activation="tanh", output=output,
                    solver=solver, opt_state=new_opt_state(backend, solver, coefs, intercepts),
                    learning_rate=0.05, momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                    beta_2=0.999, epsilon=1e-8, alpha=1e-3, t=0, x_scale=1.0,
                    stats=backend.zeros((2,), np.float64))


def test_a_backend_that_overrides_nothing_trains_like_the_numpy_reference():
    order = np.random.default_rng(2).permutation(90)
    for solver in ("sgd", "adam"):
        for output in ("softmax", "sigmoid"):
            bare, ref = _job(BareBackend(), solver, output, order), \
                _job(get_backend("numpy"), solver, output, order)
            assert BareBackend().run_epoch(bare) == "composed"
            get_backend("numpy").run_epoch(ref)
            assert bare.t == ref.t
            for a, b in zip(bare.coefs + bare.intercepts + [bare.stats],
                            ref.coefs + ref.intercepts + [ref.stats]):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_flushes_subnormal_moments_and_leaves_the_parameters_bit_for_bit(dtype):
    """Steps whose gradient is 0 (after two that are not) take the moments through the
    subnormal range: the reference stores them as 0 there, and the parameters stay bit for bit
    those of the unflushed formula (Backend.adam_step's bounds: |param| >= 4e-23, eps 1e-8)."""
    reference = get_backend("numpy")
    rng = np.random.default_rng(3)
    p = rng.standard_normal(200).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p_plain, m_plain, v_plain = p.copy(), m.copy(), v.copy()
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    flushed = 0
    for t in range(1, 1200 if dtype == np.float32 else 7500):  # m falls 0.9x a step
        g = (rng.standard_normal(200) * 1e-3 if t <= 2 else np.zeros(200)).astype(dtype)
        lr_t = 1e-3 * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        reference.adam_step(p, g, m, v, lr_t, beta1, beta2, eps, 0.0)
        # the formula without the flush, in the reference's operation order
        m_plain *= beta1
        m_plain += (1 - beta1) * g
        v_plain *= beta2
        v_plain += (1 - beta2) * (g * g)
        p_plain -= lr_t * m_plain / (np.sqrt(v_plain) + eps)
        subnormal = (m_plain != 0) & (np.abs(m_plain) < np.finfo(dtype).tiny)
        flushed += int(subnormal.sum())
        assert not np.any((m != 0) & (np.abs(m) < np.finfo(dtype).tiny))
        assert not np.any((v != 0) & (np.abs(v) < np.finfo(dtype).tiny))
        np.testing.assert_array_equal(p, p_plain)
    assert flushed > 0  # the unflushed first moments did pass through the subnormal range


def test_run_epoch_says_which_path_ran():
    numba = get_backend("numba")
    assert numba.run_epoch(_job(numba, "sgd", "softmax", None)) == "blas"  # dense, 16 rows
    small = _job(numba, "sgd", "softmax", None)
    small.batch_size = 2
    assert numba.run_epoch(small) == "fused"
    assert get_backend("numpy").run_epoch(_job(get_backend("numpy"), "sgd", "softmax", None)) \
        == "composed"


@pytest.mark.parametrize("weighted", [False, True])
def test_regression_losses_are_scikit_learns(weighted):
    """The reference squared_error and poisson kernels report scikit-learn's squared_loss and
    poisson_loss (times the rows, as the epoch stats count them) and its output deltas."""
    nn_base = pytest.importorskip("sklearn.neural_network._base")
    rng = np.random.default_rng(8)
    raw = rng.standard_normal((9, 3))
    w = rng.uniform(0.1, 3.0, 9) if weighted else None
    backend = get_backend("numpy")
    for kernel, targets, prediction, sk_loss in (
            (backend.squared_error, rng.standard_normal((9, 3)), raw, nn_base.squared_loss),
            (backend.poisson, rng.poisson(1.0, (9, 3)).astype(float), np.exp(raw),
             nn_base.poisson_loss)):
        stats = np.zeros(2)
        d = kernel(raw.copy(), targets, np.empty_like(raw), stats, 0.5, row_weight=w)
        total = 9 if w is None else w.sum()
        np.testing.assert_allclose(stats[0] / total, sk_loss(targets, prediction, w),
                                   rtol=1e-12)
        want = (prediction - targets) * 0.5 * (1 if w is None else w[:, None])
        np.testing.assert_allclose(d, want, rtol=1e-12)
        assert stats[1] == 0
