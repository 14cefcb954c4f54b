"""The output layer's math, defined once for the contract kernels and the fused epoch.

The row maximum and first argmax, softmax cross-entropy, sigmoid binary cross-entropy (class
labels or multi-label indicators), and the regression losses (half squared error of an identity
output, Poisson deviance of an exponential one), each fused with its gradient. Every function
reads one row of logits ``z[zo:zo+k]`` of a 1-D array and writes the gradient to ``d[do:do+k]``:
the contract kernels pass row views ``logits[i]`` (offset 0, any strides), the fused epoch its
flat activation buffers and the row's offset. The loss comes back as float64, with 1 if the row
counts as correct, else 0.

Assumes: scalar code in the logits' dtype (float32 or float64), ``fastmath=False``; every function
is inlined into its caller.
"""

from __future__ import annotations

import numpy as np

from .jit import JIT_INLINE, cast_like, compiled


@compiled(**JIT_INLINE)
def _logistic(z, e):
    """1 / (1 + exp(-z)) from e = exp(-|z|), without overflow for any z."""
    one = cast_like(z, 1.0)
    if z >= 0:
        return one / (one + e)
    return e / (one + e)


@compiled(**JIT_INLINE)
def logit_max(z, zo, k):
    """(maximum, first argmax) of z[zo:zo+k] (k >= 1); a NaN wins, the first one (as NumPy's
    max and argmax)."""
    mx = z[zo]
    amax = 0
    for j in range(1, k):
        v = z[zo + j]
        if v > mx or (v != v and mx == mx):
            mx = v
            amax = j
    return mx, amax


@compiled(**JIT_INLINE)
def exp_sum(z, zo, k, mx, d, do, keep):
    """The sum of exp(z[zo + j] - mx) over j < k; with ``keep`` (a constant at each call site)
    each exponential is also stored in d[do + j] (d may be z itself)."""
    s = cast_like(z, 0.0)
    for j in range(k):
        e = np.exp(z[zo + j] - mx)
        if keep:
            d[do + j] = e
        s += e
    return s


@compiled(**JIT_INLINE)
def softmax_xent(z, zo, k, label, d, do, scale, exps_kept, eps):
    """Softmax cross-entropy of z[zo:zo+k] against class ``label`` smoothed by ``eps`` (float64:
    the target row (1 - eps) onehot + eps / k; 0 computes exactly the plain one); the gradient
    (softmax - target) * scale goes to d[do:do+k], which may be z[zo:zo+k] itself. Returns
    (loss as float64, 1 if the first argmax is the label else 0).

    ``exps_kept`` (a constant at each call site) picks one of two roundings of the softmax. True:
    each exp(z_j - max) is kept in d and divided by their sum, one exp per logit (the fused
    epoch). False: exp(z_j - max - log(sum)), two exps per logit (the contract kernel). They
    differ in the last bit, so an exact merge would change the results of one path; each keeps
    the one it always had."""
    mx, amax = logit_max(z, zo, k)
    z_label = z[zo + label]  # read before d (maybe z) is written
    shifted_sum = cast_like(z, 0.0)
    if eps != 0.0:  # -sum_j t_j (z_j - max) needs every shifted logit, before d is written
        for j in range(k):
            shifted_sum += z[zo + j] - mx
    s = exp_sum(z, zo, k, mx, d, do, exps_kept)
    log_norm = np.log(s)
    loss = log_norm - (z_label - mx)
    if eps != 0.0:
        loss = log_norm - ((1.0 - eps) * (z_label - mx) + (eps / k) * shifted_sum)
    hit = cast_like(z, 1.0 - eps)
    spread = cast_like(z, eps / k)
    for j in range(k):
        if exps_kept:
            p = d[do + j] / s  # = exp(shifted - log_norm) up to rounding
        else:
            p = np.exp((z[zo + j] - mx) - log_norm)
        if j == label:
            p = p - hit
        if eps != 0.0:
            p = p - spread
        d[do + j] = p * scale
    return np.float64(loss), 1 if amax == label else 0


@compiled(**JIT_INLINE)
def bce_element(z, t, scale):
    """(loss term as float64, gradient) of one logit z against target t (both of z's dtype):
    softplus(z) - t z, written so that neither branch overflows, and (sigmoid(z) - t) * scale."""
    zero = cast_like(z, 0.0)
    e = np.exp(-np.abs(z))
    pos = z if z > zero else zero
    if z != z:
        pos = z
    loss = (pos - t * z) + np.log1p(e)
    return np.float64(loss), (_logistic(z, e) - t) * scale


@compiled(**JIT_INLINE)
def bce_labels(z, zo, k, label, d, do, scale):
    """Sigmoid cross-entropy of z[zo:zo+k] against the one-hot row of class ``label``, summed
    over the k outputs; gradient into d[do:do+k] (may alias z). Correct: first argmax = label."""
    amax = logit_max(z, zo, k)[1]
    total = 0.0
    for j in range(k):
        t = cast_like(z, 1.0) if j == label else cast_like(z, 0.0)
        lo, g = bce_element(z[zo + j], t, scale)
        total += lo
        d[do + j] = g
    return total, 1 if amax == label else 0


@compiled(**JIT_INLINE)
def bce_indicators(z, zo, k, targets, r, d, do, scale):
    """Sigmoid cross-entropy of z[zo:zo+k] against the 0/1 indicators targets[r, :k], summed;
    gradient into d[do:do+k] (may alias z). Correct: every (z > 0) matches (target > 0.5)."""
    total = 0.0
    ok = 1
    half = cast_like(z, 0.5)
    zero = cast_like(z, 0.0)
    for j in range(k):
        t = cast_like(z, targets[r, j])
        v = z[zo + j]
        if (v > zero) != (t > half):
            ok = 0
        lo, g = bce_element(v, t, scale)
        total += lo
        d[do + j] = g
    return total, ok


@compiled(**JIT_INLINE)
def squared_error(z, zo, k, targets, r, d, do, scale):
    """Half squared error of the identity output z[zo:zo+k] against targets[r, :k], averaged over
    the k outputs (scikit-learn's squared_loss); gradient (z - t) * scale into d[do:do+k] (may
    alias z). Never counts a row as correct."""
    total = 0.0
    for j in range(k):
        diff = z[zo + j] - cast_like(z, targets[r, j])
        total += np.float64(diff * diff)
        d[do + j] = diff * scale
    return 0.5 * total / k, 0


@compiled(**JIT_INLINE)
def poisson(z, zo, k, targets, r, d, do, scale):
    """Poisson deviance of the prediction p = exp(z[zo:zo+k]) against targets[r, :k] >= 0, summed
    over the outputs: xlogy(t, t / p) - t + p (scikit-learn's poisson_loss); gradient
    (p - t) * scale into d[do:do+k] (may alias z). Never counts a row as correct."""
    total = 0.0
    zero = cast_like(z, 0.0)
    for j in range(k):
        p = np.exp(z[zo + j])
        t = cast_like(z, targets[r, j])
        term = p - t
        if t > zero:
            term += t * np.log(t / p)
        total += np.float64(term)
        d[do + j] = (p - t) * scale
    return total, 0


#: The output kinds (``kind`` of :func:`output_loss` and :func:`any_output_loss`): the EpochJob
#: output and its targets.
SOFTMAX_LABELS, SIGMOID_LABELS, SIGMOID_INDICATORS, SQUARED_ERROR, POISSON = 0, 1, 2, 3, 4


@compiled(**JIT_INLINE)
def output_loss(kind, targets, r, z, zo, k, d, do, scale, eps):
    """Loss of the logits z[zo:zo+k] against row r of the targets, gradient into d[do:do+k]
    (here d does not alias z), for a classifier's kinds: SOFTMAX_LABELS, SIGMOID_LABELS or
    SIGMOID_INDICATORS. targets: a tuple with fields ``labels`` ((n,) int64) and ``indicators``
    ((n, k) float), both always present (one of them a dummy) so that one compiled epoch serves
    every kind; eps: the softmax output's label smoothing (float64)."""
    if kind == SOFTMAX_LABELS:
        return softmax_xent(z, zo, k, targets.labels[r], d, do, scale, True, eps)
    if kind == SIGMOID_LABELS:
        return bce_labels(z, zo, k, targets.labels[r], d, do, scale)
    return bce_indicators(z, zo, k, targets.indicators, r, d, do, scale)


@compiled(**JIT_INLINE)
def any_output_loss(kind, targets, r, z, zo, k, d, do, scale, eps):
    """:func:`output_loss` for every kind, SQUARED_ERROR and POISSON too (their targets are
    ``targets.indicators``). A separate function, so that an epoch without regression outputs or
    sample weights compiles only the classifier's kinds (see epoch.train_rows)."""
    if kind == SQUARED_ERROR:
        return squared_error(z, zo, k, targets.indicators, r, d, do, scale)
    if kind == POISSON:
        return poisson(z, zo, k, targets.indicators, r, d, do, scale)
    return output_loss(kind, targets, r, z, zo, k, d, do, scale, eps)
