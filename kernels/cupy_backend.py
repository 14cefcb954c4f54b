"""CuPy backend: the kernels on a CUDA GPU (cuBLAS GEMMs, fused element-wise CUDA kernels).

Every reduction that feeds ``stats`` is a per-row value summed by CuPy's deterministic reductions
(no atomics), so a fixed seed gives bitwise the same model run after run on one GPU. Nothing here
synchronises with the host; the trainer reads ``stats`` once per epoch.
"""

from __future__ import annotations

import functools

import numpy as np

from .base import Backend

try:
    import cupy
except ImportError:  # an optional extra: availability() says how to get it
    cupy = None

_ACT_CODES = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}

# z = act(z + b): one read and one write of z (b indexed by column).
_BIAS_ACT = r"""
T v = z + b[i % n];
if (code == 1) v = v > (T)0 ? v : (T)0;
else if (code == 2) { T e = exp(-fabs(v)); v = v >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e); }
else if (code == 3) v = tanh(v);
z = v;
"""

# da *= act'(z), written through the stored activation a.
_ACT_GRAD = r"""
if (code == 1) da = a > (T)0 ? da : (T)0;
else if (code == 2) da = da * (a * ((T)1 - a));
else if (code == 3) da = da * ((T)1 - a * a);
"""

# One thread per row: stable softmax, cross-entropy, first-argmax correctness and the gradient.
_SOFTMAX_XENT = r"""
extern "C" __global__ void softmax_xent_{T}(const {T}* logits, const long long* y, {T}* dlogits,
        double* row_loss, double* row_correct, const {T} scale, const int m, const int k) {
    int i = blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= m) return;
    const {T}* z = logits + (long long)i * k;
    {T}* d = dlogits + (long long)i * k;
    int best = 0;
    {T} mx = z[0];
    for (int j = 1; j < k; ++j) if (z[j] > mx) { mx = z[j]; best = j; }
    {T} total = 0;
    for (int j = 0; j < k; ++j) total += exp(z[j] - mx);
    {T} log_norm = log(total);
    long long label = y[i];
    row_loss[i] = (double)(log_norm - (z[label] - mx));
    row_correct[i] = best == label ? 1.0 : 0.0;
    for (int j = 0; j < k; ++j) {
        {T} p = exp(z[j] - mx - log_norm);
        d[j] = (p - (j == label ? ({T})1 : ({T})0)) * scale;
    }
}
"""

_SIGMOID_BCE = r"""
T e = exp(-fabs(z));
T p = z >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
loss = (double)((z > (T)0 ? z : (T)0) - t * z + log1p(e));
d = (p - t) * scale;
"""

_SGD = r"""
T g = grad + decay * param;
if (momentum == (T)0) { param -= lr * g; }
else {
    vel = momentum * vel - lr * g;
    param += nesterov ? momentum * vel - lr * g : vel;
}
"""

_ADAM = r"""
T g = grad + decay * param;
m1 = beta1 * m1 + ((T)1 - beta1) * g;
m2 = beta2 * m2 + ((T)1 - beta2) * g * g;
param -= lr_t * m1 / (sqrt(m2) + eps);
"""

_GATHER = "out = (T)X[idx[i / d] * d + i % d] * scale;"


@functools.lru_cache(maxsize=None)
def _elementwise(name):
    """Compile (once, cached by CuPy on disk too) the element-wise kernel ``name``."""
    specs = {
        "bias_act": ("raw T b, int32 code, int64 n", "T z", _BIAS_ACT),
        "act_grad": ("T a, int32 code", "T da", _ACT_GRAD),
        "sigmoid_bce": ("T z, T t, T scale", "T d, float64 loss", _SIGMOID_BCE),
        "sgd": ("T grad, T lr, T momentum, bool nesterov, T decay", "T param, T vel", _SGD),
        "adam": ("T grad, T lr_t, T beta1, T beta2, T eps, T decay", "T param, T m1, T m2", _ADAM),
        "gather": ("raw S X, raw int64 idx, int64 d, T scale", "T out", _GATHER),
    }
    in_params, out_params, body = specs[name]
    return cupy.ElementwiseKernel(in_params, out_params, body, f"fastfnn_{name}")


@functools.lru_cache(maxsize=None)
def _softmax_xent_kernel(dtype_name):
    ctype = {"float32": "float", "float64": "double"}[dtype_name]
    source = _SOFTMAX_XENT.replace("{T}", ctype)
    return cupy.RawKernel(source, f"softmax_xent_{ctype}")


class CupyBackend(Backend):
    """Kernels on the current CUDA device through CuPy."""

    name = "cupy"
    xp = cupy

    @classmethod
    def availability(cls):
        if cupy is None:
            return False, ("CuPy is not installed (pip install 'fastfnn[cuda12]' or "
                           "'fastfnn[cuda13]')")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            return False, f"cupy is installed but CUDA does not answer ({exc})"
        if count == 0:
            return False, "cupy is installed but no CUDA device is visible"
        return True, ""

    def to_numpy(self, a):
        return cupy.asnumpy(a)

    def synchronize(self):
        cupy.cuda.get_current_stream().synchronize()

    def describe(self):
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return {"cupy": cupy.__version__,
                "cuda runtime": str(cupy.cuda.runtime.runtimeGetVersion()),
                "gpu": props["name"].decode(),
                "gpu memory": f"{props['totalGlobalMem'] / 2**30:.1f} GiB"}

    def matmul(self, a, b, out, trans_a=False, trans_b=False):
        return cupy.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)

    def bias_act(self, z, b, act):
        return _elementwise("bias_act")(b, _ACT_CODES[act], z.shape[1], z)

    def act_grad(self, da, a, act):
        if act != "identity":
            _elementwise("act_grad")(a, _ACT_CODES[act], da)
        return da

    def softmax_xent(self, logits, y, dlogits, stats, scale):
        m, k = logits.shape
        row_loss = cupy.empty(m, np.float64)
        row_correct = cupy.empty(m, np.float64)
        threads = 128
        _softmax_xent_kernel(logits.dtype.name)(
            ((m + threads - 1) // threads,), (threads,),
            (logits, y, dlogits, row_loss, row_correct, logits.dtype.type(scale), np.int32(m),
             np.int32(k)))
        stats[0] += row_loss.sum()
        stats[1] += row_correct.sum()
        return dlogits

    def sigmoid_bce(self, logits, targets, dlogits, stats, scale):
        onehot, correct = self._bce_targets(logits, targets)
        loss = cupy.empty(logits.shape, np.float64)
        _elementwise("sigmoid_bce")(logits, onehot, logits.dtype.type(scale), dlogits, loss)
        stats[0] += loss.sum()
        stats[1] += correct.sum(dtype=np.float64)
        return dlogits

    def sgd_step(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        t = param.dtype.type
        _elementwise("sgd")(grad, t(lr), t(momentum), bool(nesterov), t(weight_decay), param,
                            velocity)
        return param

    def adam_step(self, param, grad, m, v, lr_t, beta1, beta2, eps, weight_decay):
        t = param.dtype.type
        _elementwise("adam")(grad, t(lr_t), t(beta1), t(beta2), t(eps), t(weight_decay), param,
                             m, v)
        return param

    def gather(self, X, idx, out, scale):
        return _elementwise("gather")(X, idx, X.shape[1], out.dtype.type(scale), out)
