"""Optimizer steps on flat parameter ranges, for the contract kernels and the fused epoch alike.

SGD (with momentum or Nesterov's momentum) and Adam, with L2 weight decay, in the NumPy
reference's operation order (one rounding per operation, no FMA): the contract's ``sgd_step`` and
``adam_step`` equal the reference bit for bit. The fused epoch also steps single rows from a
gradient formed on the fly (per-example SGD), and brings first-layer rows that sat out steps up to
date in closed form (lazy SGD: a step whose data gradient is zero is a linear map of (w, v), so k
of them are its k-th power).

Scalars travel as an :data:`OptimizerStep`, arrays as a :data:`FlatParams` of 1-D C arrays.

Assumes: ``fastmath=False`` (one rounding per operation, no contraction into FMA, as NumPy); the
row updates use the 64-byte vectors of :mod:`.vectors` on rows padded to whole vectors.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .jit import JIT, JIT_INLINE, cast_like, compiled, input_value
from .vectors import flush_subnormal, lanes, ld, vfma, vld, vmul, vsplat, vst

#: The scalars of one optimizer step, all in the parameters' dtype but the flags. solver: 0 SGD,
#: 1 Adam (int64). SGD: learning_rate, momentum, nesterovs_momentum, use_momentum (momentum != 0).
#: Adam: adam_learning_rate (the step size with the bias correction folded in), beta_1,
#: one_minus_beta_1, beta_2, one_minus_beta_2, epsilon. Both: weight_decay (alpha / rows of the
#: step), applied to the ranges a caller marks ``decay``. Fields a solver does not read still
#: hold a value of their type, so that every step has one numba type.
OptimizerStep = namedtuple("OptimizerStep", [
    "solver", "learning_rate", "momentum", "nesterovs_momentum", "use_momentum", "weight_decay",
    "adam_learning_rate", "beta_1", "one_minus_beta_1", "beta_2", "one_minus_beta_2", "epsilon"])

#: Flat 1-D C arrays of one shape: the parameters w and their optimizer state, s0 (SGD velocity or
#: Adam's first moment) and s1 (Adam's second moment; SGD passes s0 again).
FlatParams = namedtuple("FlatParams", ["w", "s0", "s1"])

#: The lazy first layer's bookkeeping: last[j], the step first-layer row j is up to date with;
#: powers[k], the 2 x 2 map M^k of k zero-gradient SGD steps as float64 (a00, a01, a10, a11);
#: use_momentum, whether the state has a velocity.
CatchUp = namedtuple("CatchUp", ["last", "powers", "use_momentum"])


# ----------------------------------------------------------------------------- ranges of parameters
@compiled(**JIT_INLINE)
def sgd_update(step, decay, w, v, g):
    """(w', v') of one SGD step of parameters w, velocity v and gradient g: scalars or vectors
    (:mod:`.vectors`), in the NumPy reference's operation order (weight decay when ``decay``)."""
    gi = g + step.weight_decay * w if decay else g
    if not step.use_momentum:
        return w - step.learning_rate * gi, v
    st = step.learning_rate * gi
    vi = v * step.momentum - st
    if step.nesterovs_momentum:
        return w + (step.momentum * vi - st), vi
    return w + vi, vi


@compiled(**JIT_INLINE)
def adam_update(step, decay, w, m, v, g):
    """(w', m', v') of one Adam step (bias correction folded into step.adam_learning_rate):
    scalars or vectors, in the NumPy reference's operation order, moments that come out
    subnormal stored as 0 (see base.Backend.adam_step for why)."""
    gi = g + step.weight_decay * w if decay else g
    mi = flush_subnormal(m * step.beta_1 + step.one_minus_beta_1 * gi)
    vi = flush_subnormal(v * step.beta_2 + step.one_minus_beta_2 * (gi * gi))
    return w - (step.adam_learning_rate * mi) / (np.sqrt(vi) + step.epsilon), mi, vi


@compiled(**JIT)  # a call per range; one copy compiles faster than inlined ones
def step_range(step, decay, params, g, u0, n):
    """The optimizer step on params.w[u0:u0+n] with gradient g (flat 1-D arrays); weight decay
    when ``decay``. Whole vectors first, then the rest element by element: the same formula
    (sgd_update, adam_update) either way, one rounding per operation as the NumPy reference."""
    w = params.w
    s0 = params.s0
    s1 = params.s1
    V = np.uint64(lanes(w))
    nv = n - n % V
    if step.solver == 0:
        momentum = step.use_momentum
        for i in range(np.uint64(0), nv, V):
            j = u0 + i
            wi, vi = sgd_update(step, decay, vld(w, j), vld(s0, j), vld(g, j))
            vst(w, j, wi)
            if momentum:
                vst(s0, j, vi)
        for j in range(u0 + nv, u0 + n):
            w[j], s0[j] = sgd_update(step, decay, w[j], s0[j], g[j])
    else:
        for i in range(np.uint64(0), nv, V):
            j = u0 + i
            wi, mi, vi = adam_update(step, decay, vld(w, j), vld(s0, j), vld(s1, j), vld(g, j))
            vst(w, j, wi)
            vst(s0, j, mi)
            vst(s1, j, vi)
        for j in range(u0 + nv, u0 + n):
            w[j], s0[j], s1[j] = adam_update(step, decay, w[j], s0[j], s1[j], g[j])


@compiled(**JIT_INLINE)
def step_and_clear(step, decay, params, g, u0, n):
    """step_range, then g[u0:u0+n] = 0: the fused epoch reuses its gradient buffer."""
    step_range(step, decay, params, g, u0, n)
    zero = cast_like(g, 0.0)
    for i in range(n):
        g[u0 + i] = zero


@compiled(**JIT)
def step_rows(step, decay, params, g, lo, hi, rows, nrows):
    """step_and_clear on params.w[lo:hi]; with nrows >= 0, on the rows w[lo + j*hi : +hi] for j
    in rows[:nrows] instead (hi is then the row length)."""
    nseg = 1 if nrows < 0 else nrows
    for seg in range(nseg):
        if nrows < 0:
            u0 = np.uint64(lo)
            n = np.uint64(hi - lo)
        else:
            u0 = np.uint64(lo + rows[seg] * hi)
            n = np.uint64(hi)
        step_and_clear(step, decay, params, g, u0, n)


@compiled(**JIT_INLINE)
def sum_chunks_and_step(step, decay, params, g, nch, items, q):
    """Item q = (lo, hi, decays) of a parallel step's update: g[0, lo:hi] += g[1, lo:hi] + ...
    (chunk order; those are zeroed), then step_and_clear on the range (weight decay where the
    step's ``decay`` and the item's flag say so)."""
    zero = cast_like(params.w, 0.0)
    g0 = g[0]
    u0 = np.uint64(items[q, 0])
    n = np.uint64(items[q, 1] - items[q, 0])
    for c in range(1, nch):
        gc = g[c]
        for i in range(n):
            g0[u0 + i] += gc[u0 + i]
            gc[u0 + i] = zero
    step_and_clear(step, decay and items[q, 2] != 0, params, g0, u0, n)


# ----------------------------------------------------------------------------- rows, gradient on the fly
@compiled(**JIT_INLINE)
def sgd_row(step, decay, params, o, P, x, dz, do):
    """SGD step of w[o:o+P] (velocity s0[o:o+P]) whose gradient is x * dz[do:do+P], formed on
    the fly: step_range's formula (sgd_update) on that gradient, without storing it."""
    w = params.w
    s0 = params.s0
    V = lanes(w)
    xs = vsplat(w, x)
    for c0 in range(0, P, V):
        wi, vi = sgd_update(step, decay, vld(w, o + c0), vld(s0, o + c0), xs * vld(dz, do + c0))
        vst(w, o + c0, wi)
        if step.use_momentum:
            vst(s0, o + c0, vi)


@compiled(**JIT_INLINE)
def adam_row(step, decay, params, o, P, x, dz, do):
    """Adam step of w[o:o+P] (moments s0, s1 there) whose gradient is x * dz[do:do+P], formed
    on the fly: step_range's formula (adam_update) on that gradient, without storing it."""
    w = params.w
    s0 = params.s0
    s1 = params.s1
    V = lanes(w)
    xs = vsplat(w, x)
    for c0 in range(0, P, V):
        wi, mi, vi = adam_update(step, decay, vld(w, o + c0), vld(s0, o + c0), vld(s1, o + c0),
                                 xs * vld(dz, do + c0))
        vst(w, o + c0, wi)
        vst(s0, o + c0, mi)
        vst(s1, o + c0, vi)


@compiled(**JIT)
def step_read_rows(step, decay, params, src, layer, p0, p1, dz, last, s):
    """SGD step of the first layer's rows that the nonzeros p0..p1 of one input row read (a
    batch of one; src: blocks.Inputs, layer: the first layout.Layer): the gradient of row j is
    x_j * dz[act_at : +width], formed on the fly; last[j] = s + 1. Rows of zero inputs are left
    for a later catch-up."""
    ind = src.indices
    val = src.values
    lut = src.lut
    sc = src.x_scale
    wo = layer.weight_at
    P = layer.width
    do = layer.act_at
    for p in range(p0, p1):
        j = np.int64(ld(ind, p))
        last[j] = s + 1
        sgd_row(step, decay, params, wo + j * P, P, input_value(ld(val, p), lut, sc), dz, do)


@compiled(**JIT)
def step_dense_rows(step, decay, params, x, xo, nin, dz, do, wo, P):
    """The optimizer step (SGD or Adam, by step.solver) of a layer's rows w[wo + k*P : +P],
    k < nin, for a batch of one: the gradient of row k is x[xo + k] * dz[do:do+P]. SGD skips
    rows of zero inputs (ReLU zeros) where that leaves them unchanged (no momentum, no decay);
    Adam steps every row (its moments move on a zero gradient too)."""
    if step.solver == 0:
        skip_zeros = not (step.use_momentum or decay)
        for k in range(nin):
            xk = ld(x, xo + k)
            if skip_zeros and xk == cast_like(x, 0.0):
                continue
            sgd_row(step, decay, params, wo + k * P, P, xk, dz, do)
    else:
        for k in range(nin):
            adam_row(step, decay, params, wo + k * P, P, ld(x, xo + k), dz, do)


# ----------------------------------------------------------------------------- lazy catch-up
@compiled(**JIT)
def zero_grad_powers(steps, learning_rate, momentum, weight_decay, nesterovs_momentum,
                     use_momentum):
    """M^k for k = 0..steps, float64 (steps + 1, 4): the SGD map of (w, v) over one step whose
    data gradient is zero (g = weight_decay w): v' = momentum v - learning_rate g; w' = w + v',
    or w + momentum v' - learning_rate g with Nesterov's momentum."""
    lam = np.float64(learning_rate) * np.float64(weight_decay)
    mu = np.float64(momentum)
    if not use_momentum:
        m00, m01, m10, m11 = 1.0 - lam, 0.0, 0.0, 1.0
    elif nesterovs_momentum:
        m00, m01, m10, m11 = 1.0 - lam * (1.0 + mu), mu * mu, -lam, mu
    else:
        m00, m01, m10, m11 = 1.0 - lam, mu, -lam, mu
    pw = np.empty((steps + 1, 4), np.float64)
    pw[0, 0], pw[0, 1], pw[0, 2], pw[0, 3] = 1.0, 0.0, 0.0, 1.0
    for k in range(1, steps + 1):
        a, b, c, d = pw[k - 1, 0], pw[k - 1, 1], pw[k - 1, 2], pw[k - 1, 3]
        pw[k, 0] = m00 * a + m01 * c
        pw[k, 1] = m00 * b + m01 * d
        pw[k, 2] = m10 * a + m11 * c
        pw[k, 3] = m10 * b + m11 * d
    return pw


@compiled(**JIT)
def catch_up_rows(catch, params, wo, P, rows, nrows, s):
    """Bring rows rows[:nrows] (every row of the layer when nrows < 0, then ``-nrows`` rows) of
    the layer at w[wo:] (rows of P) from step last[j] to step s, in float64:
    (w, v) <- M^k (w, v), k = s - last[j]. Sets last[j] = s."""
    last = catch.last
    pw = catch.powers
    w = params.w
    s0 = params.s0
    total = -nrows if nrows < 0 else nrows
    uP = np.uint64(P)
    for q in range(total):
        j = q if nrows < 0 else rows[q]
        k = s - last[j]
        last[j] = s
        if k <= 0:
            continue
        u0 = np.uint64(wo + j * P)
        a_ = pw[k, 0]
        b_ = pw[k, 1]
        if catch.use_momentum:
            c_ = pw[k, 2]
            d_ = pw[k, 3]
            for i in range(uP):
                x = np.float64(w[u0 + i])
                v = np.float64(s0[u0 + i])
                w[u0 + i] = cast_like(w, a_ * x + b_ * v)
                s0[u0 + i] = cast_like(w, c_ * x + d_ * v)
        else:
            for i in range(uP):
                w[u0 + i] = cast_like(w, a_ * np.float64(w[u0 + i]))


@compiled(**JIT_INLINE)
def _catch_up_vec(catch, params, o, P, k):
    """k zero-gradient SGD steps at once on w[o:o+P] (and velocity s0[o:o+P]), M^k in the
    parameters' dtype with FMA (the per-example path, where speed matters)."""
    w = params.w
    s0 = params.s0
    pw = catch.powers
    V = lanes(w)
    A = vsplat(w, pw[k, 0])
    if catch.use_momentum:
        B = vsplat(w, pw[k, 1])
        C = vsplat(w, pw[k, 2])
        D = vsplat(w, pw[k, 3])
        for c0 in range(0, P, V):
            x = vld(w, o + c0)
            v = vld(s0, o + c0)
            vst(w, o + c0, vfma(A, x, vmul(B, v)))
            vst(s0, o + c0, vfma(C, x, vmul(D, v)))
    else:
        for c0 in range(0, P, V):
            vst(w, o + c0, vmul(A, vld(w, o + c0)))


@compiled(**JIT)
def catch_up_read_rows(catch, params, ind, p0, p1, wo, P, s):
    """Bring the first-layer rows (at w[wo:], rows of P) that the nonzeros p0..p1 read (their
    inputs ind[p0:p1]) from their last step to step s."""
    last = catch.last
    for p in range(p0, p1):
        j = np.int64(ld(ind, p))
        k = s - last[j]
        if k > 0:
            _catch_up_vec(catch, params, wo + j * P, P, k)
            last[j] = s
