"""What each step of the compiled epochs (fused and BLAS) computes alike: the step's weight sum
and step size, each row's loss (weighted or not), the step's stats, and its optimizer scalars.

Assumes: ``hyper`` an ``epoch.Hyperparameters``; ``extras`` None (a plain epoch, pruned before
typing) or an ``epoch.Extras``.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import JIT, JIT_INLINE, cast_like, compiled
from .loss import any_output_loss, output_loss
from .optimizer import OptimizerStep


@compiled(**JIT_INLINE)
def weight_sum_and_rate(hyper, extras, order, start, m, s):
    """(weight sum, step size) of the epoch's step s, m rows from order[start]: (m, the
    learning rate) without extras, else the sum of the rows' sample weights and the step's own
    size (scikit-learn's steps: gradients and weight decay over the weight sum). float64 both."""
    if extras is None:
        return float(m), hyper.learning_rate
    weight_sum = 0.0
    for i in range(m):
        weight_sum += np.float64(extras.row_weight[order[start + i]])
    return weight_sum, extras.learning_rates[s]


@compiled(**JIT)  # not inlined: ``extras is None`` is pruned in its own compilation
def row_loss(kind, data, r, z, zo, k, d, do, scale, extras, eps):
    """(loss, correct) of row r's outputs z[zo:zo+k], the gradient scaled by ``scale`` into
    d[do:do+k] (loss.output_loss's arguments): a classifier's kinds without extras (label
    smoothing 0); with extras every kind, the row weighted by its sample weight and the softmax
    smoothed by eps."""
    if extras is None:
        return output_loss(kind, data, r, z, zo, k, d, do, scale, 0.0)
    weight = extras.row_weight[r]
    lo, ok = any_output_loss(kind, data, r, z, zo, k, d, do, scale * weight, eps)
    return lo * np.float64(weight), ok


@compiled(**JIT_INLINE)
def add_step_stats(results, nch, stats, extras, m, weight_sum):
    """Add the step's (loss sum, correct rows), summed over rows 0..nch-1 of results (one per
    chunk; cleared here), to stats; with extras the loss of the step's weighted mean, times its
    m rows (stats[0] / n is then scikit-learn's loss_curve_ figure)."""
    total = 0.0
    hits = 0.0
    for c in range(nch):
        total += results[c, 0]
        hits += results[c, 1]
        results[c, 0] = 0.0
        results[c, 1] = 0.0
    if extras is not None:
        total *= m / weight_sum
    stats[0] += total
    stats[1] += hits


@compiled(**JIT_INLINE)
def optimizer_step(hyper, t, step_lr, weight_sum, like):
    """(OptimizerStep, Adam step count after it) of a step of size step_lr over rows of weight
    sum weight_sum (weight decay alpha / weight_sum), scalars in the dtype of array ``like``.
    Adam counts the step and folds its bias correction into the step size."""
    lr = cast_like(like, step_lr)
    lr_t = lr
    if hyper.solver == 1:
        t += 1
        lr_t = cast_like(like, step_lr * math.sqrt(1.0 - math.pow(hyper.beta_2, float(t)))
                         / (1.0 - math.pow(hyper.beta_1, float(t))))
    step = OptimizerStep(hyper.solver, lr, cast_like(like, hyper.momentum),
                         hyper.nesterovs_momentum, hyper.momentum != 0.0,
                         cast_like(like, hyper.alpha / weight_sum), lr_t,
                         cast_like(like, hyper.beta_1), cast_like(like, 1.0 - hyper.beta_1),
                         cast_like(like, hyper.beta_2), cast_like(like, 1.0 - hyper.beta_2),
                         cast_like(like, hyper.epsilon))
    return step, t
