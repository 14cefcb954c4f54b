"""The output layer's math (numba_backend.loss): one definition for the contract kernels and the
fused epoch, so the two agree bit for bit where their roundings are the same."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from numba import njit

from fastfnn.kernels.numba_backend.loss import (SIGMOID_INDICATORS, SIGMOID_LABELS,
                                                SOFTMAX_LABELS, output_loss)

from .helpers import DTYPES, NB, requires_numba, rng_for

pytestmark = requires_numba

Targets = namedtuple("Targets", ["labels", "indicators"])


@njit
def _fused_losses(kind, targets, z, k, d, scale, eps):
    """output_loss over every row of the flat logits z ((m * k,)), as the fused epoch calls it:
    (loss sum, correct rows)."""
    total = 0.0
    hits = 0
    for i in range(z.shape[0] // k):
        lo, ok = output_loss(kind, targets, i, z, i * k, k, d, i * k, scale, eps)
        total += lo
        hits += ok
    return total, hits


def _both(kind, logits, targets, scale, eps=0.0):
    """(fused gradient, fused stats, contract gradient, contract stats) of one loss."""
    m, k = logits.shape
    labels = targets if targets.ndim == 1 else np.zeros(1, np.int64)
    indicators = targets if targets.ndim == 2 else np.zeros((1, 1), logits.dtype)
    d = np.empty(m * k, logits.dtype)
    fused_stats = np.array(_fused_losses(kind, Targets(labels.astype(np.int64), indicators),
                                         logits.ravel(), k, d, logits.dtype.type(scale), eps))
    contract_stats = np.zeros(2)
    if kind == SOFTMAX_LABELS:
        got = NB.softmax_xent(logits, targets, np.empty_like(logits), contract_stats, scale,
                              label_smoothing=eps)
    else:
        got = NB.sigmoid_bce(logits, targets, np.empty_like(logits), contract_stats, scale)
    return d.reshape(m, k), fused_stats, got, contract_stats


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_losses_are_one_definition(dtype):
    """Sigmoid cross-entropy with labels and with indicators: the fused epoch's and the contract
    kernel's gradients and stats are equal bit for bit."""
    rng = rng_for("bce", dtype)
    logits = (rng.standard_normal((33, 7)) * 5).astype(dtype)
    for kind, targets in [(SIGMOID_LABELS, rng.integers(0, 7, 33)),
                          (SIGMOID_INDICATORS, (rng.random((33, 7)) < 0.4).astype(dtype))]:
        fused, fused_stats, contract, contract_stats = _both(kind, logits, targets, 1 / 33)
        np.testing.assert_array_equal(fused, contract)
        np.testing.assert_array_equal(fused_stats, contract_stats)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_softmax_xent_roundings(dtype, eps):
    """Softmax cross-entropy (plain and label-smoothed): the same loss and argmax in both paths;
    the gradients differ only by the softmax's rounding (the fused epoch divides the
    exponentials it kept by their sum)."""
    rng = rng_for("softmax", dtype)
    logits = (rng.standard_normal((33, 10)) * 5).astype(dtype)
    y = rng.integers(0, 10, 33)
    fused, fused_stats, contract, contract_stats = _both(SOFTMAX_LABELS, logits, y, 1.0, eps)
    np.testing.assert_array_equal(fused_stats, contract_stats)
    eps = np.finfo(dtype).eps  # gradients lie in [-1, 1]: a few eps apart at most
    np.testing.assert_allclose(fused, contract, rtol=4 * eps, atol=4 * eps)
    assert np.any(fused != contract)  # two roundings, as the module says


def test_nan_logits_win_the_argmax_as_in_numpy():
    z = np.array([[1.0, np.nan, 3.0, np.nan], [np.nan, 5.0, 1.0, 2.0], [2.0, 7.0, 7.0, 1.0],
                  [-np.inf, -np.inf, -np.inf, -np.inf]])
    out = np.empty(4, np.int64)
    np.testing.assert_array_equal(NB.argmax_rows(z, out), np.argmax(z, axis=1))
