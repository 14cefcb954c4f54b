"""Learning-rate schedules: each against its formula, step by step; one-cycle against PyTorch's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastfnn.schedules import epoch_rates, rate_at


def _fit_rates(schedule, steps, max_iter, lr0, **kwargs):
    """Every step size of a fit, epoch after epoch."""
    return np.concatenate([epoch_rates(schedule, e, steps, max_iter, lr0, **kwargs)
                           for e in range(max_iter)])


def test_step_decay_per_step_with_warmup():
    rates = _fit_rates("step", 4, 10, 0.1, warmup=1.5, step_size=3, gamma=0.5)
    expected = [0.1 * (s + 1) / 6 if s < 6 else 0.1 * 0.5 ** math.floor((s - 6) / 12)
                for s in range(40)]
    assert rates.tolist() == pytest.approx(expected, rel=1e-15)
    assert rates[5] == pytest.approx(0.1) and rates[6] == 0.1 and rates[18] == 0.05


def test_cosine_per_epoch_is_constant_within_an_epoch():
    rates = _fit_rates("cosine", 3, 8, 0.2, interval="epoch", warmup=2)
    expected = [0.2 * (e + 1) / 2 if e < 2 else 0.2 * (1 + math.cos(math.pi * (e - 2) / 6)) / 2
                for e in range(8)]
    assert rates.tolist() == pytest.approx(np.repeat(expected, 3).tolist(), rel=1e-15)


def test_cosine_per_step_anneals_towards_zero():
    rates = _fit_rates("cosine", 5, 4, 1.0)
    expected = [(1 + math.cos(math.pi * s / 20)) / 2 for s in range(20)]
    assert rates.tolist() == pytest.approx(expected, rel=1e-15)


def test_onecycle_matches_pytorch():
    torch = pytest.importorskip("torch")  # the reference; the formula test below needs no torch
    steps, max_iter, lr0 = 7, 5, 0.01
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr0, total_steps=steps * max_iter,
                                                cycle_momentum=False)
    expected = []
    for _ in range(steps * max_iter):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert _fit_rates("onecycle", steps, max_iter, lr0).tolist() == pytest.approx(expected,
                                                                                 rel=1e-12)


def test_onecycle_formula_ends():
    total = 100
    assert rate_at("onecycle", 0, total, 1.0) == pytest.approx(1 / 25)
    assert rate_at("onecycle", 29, total, 1.0) == pytest.approx(1.0)
    assert rate_at("onecycle", 99, total, 1.0) == pytest.approx(1 / 25 / 1e4)
    assert rate_at("onecycle", 200, total, 1.0) == rate_at("onecycle", 99, total, 1.0)
