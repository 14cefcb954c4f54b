"""Learning-rate schedules over a whole fit: step decay, cosine annealing, one-cycle; warm-up.

Each is a pure function of the position in the fit, so :func:`epoch_rates` gives every step size of
one epoch from (epoch index, steps per epoch) alone: nothing is carried between epochs, and a
resumed checkpoint continues the schedule where it was. scikit-learn's own schedules (constant,
invscaling, adaptive) are not here: the trainer keeps them as scikit-learn runs them.

Positions count steps (``interval="step"``: step s of T = max_iter * steps_per_epoch) or epochs
(``interval="epoch"``: epoch e of T = max_iter, every step of an epoch at its epoch's rate). With
lr0 = learning_rate_init and W the warm-up length in the same unit (warmup epochs, times
steps_per_epoch when per step):

- warm-up (step, cosine): ``lr(s) = lr0 * (s + 1) / W`` for s < W (linear, reaching lr0).
- step: ``lr(s) = lr0 * gamma ** floor((s - W) / k)``, k = step_size epochs (times steps_per_epoch
  when per step).
- cosine: ``lr(s) = lr0 * (1 + cos(pi * (s - W) / (T - W))) / 2`` (annealed towards 0).
- onecycle: PyTorch's ``OneCycleLR(max_lr=lr0, total_steps=T)`` with its defaults (pct_start 0.3,
  div_factor 25, final_div_factor 1e4, cosine annealing, two phases): from lr0 / 25 up to lr0 over
  the steps up to p = 0.3 T - 1, then down to lr0 / 25 / 1e4 at T - 1, each phase
  ``end + (start - end) * (1 + cos(pi * pct)) / 2``; its momentum cycling is not done. Its warm-up
  is its first phase.

Past T (a fit longer than max_iter epochs cannot happen; partial_fit is refused) positions are
clamped to T - 1.
"""

from __future__ import annotations

import math

import numpy as np

#: The schedules this module computes (the values of ``learning_rate`` beyond scikit-learn's).
SCHEDULES = ("step", "cosine", "onecycle")
#: The schedules whose rates depend on max_iter (T spans the fit): a checkpoint of one resumes
#: only with the same max_iter.
SPANNING_MAX_ITER = ("cosine", "onecycle")

#: PyTorch OneCycleLR's defaults.
ONECYCLE_PCT_START = 0.3
ONECYCLE_DIV_FACTOR = 25.0
ONECYCLE_FINAL_DIV_FACTOR = 1e4


def rate_at(schedule: str, position: int, total: int, learning_rate_init: float, *, warmup=0.0,
            step_size=1.0, gamma=0.1) -> float:
    """The step size at ``position`` (0-based) of ``total`` positions of ``schedule``.

    warmup and step_size are in positions (steps or epochs, whichever the caller counts);
    see the module docstring for the formulas. Returns a Python float.
    """
    position = min(position, total - 1)
    lr0 = learning_rate_init
    if schedule == "onecycle":
        initial = lr0 / ONECYCLE_DIV_FACTOR
        final = initial / ONECYCLE_FINAL_DIV_FACTOR
        peak_step = float(ONECYCLE_PCT_START * total) - 1
        if position <= peak_step:
            start, end, pct = initial, lr0, position / peak_step
        else:
            start, end, pct = lr0, final, (position - peak_step) / (total - 1 - peak_step)
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    if position < warmup:
        return lr0 * (position + 1) / warmup
    if schedule == "step":
        return lr0 * gamma ** math.floor((position - warmup) / step_size)
    if schedule == "cosine":
        return lr0 * (1 + math.cos(math.pi * (position - warmup) / (total - warmup))) / 2
    raise ValueError(f"unknown schedule {schedule!r}; expected one of {list(SCHEDULES)}")


def epoch_rates(schedule: str, epoch: int, steps: int, max_iter: int, learning_rate_init: float,
                *, interval="step", warmup=0.0, step_size=1, gamma=0.1) -> np.ndarray:
    """The step sizes of the ``steps`` steps of epoch ``epoch`` (0-based) of a fit of ``max_iter``
    epochs.

    interval: "step" (the schedule moves every step) or "epoch" (once per epoch); warmup: epochs
    (a float: fractions allowed); step_size: epochs between step decays. Returns (steps,) float64.
    """
    if interval == "epoch":
        rate = rate_at(schedule, epoch, max_iter, learning_rate_init, warmup=warmup,
                       step_size=step_size, gamma=gamma)
        return np.full(steps, rate, dtype=np.float64)
    return np.array([rate_at(schedule, epoch * steps + s, max_iter * steps, learning_rate_init,
                             warmup=warmup * steps, step_size=step_size * steps, gamma=gamma)
                     for s in range(steps)], dtype=np.float64)
