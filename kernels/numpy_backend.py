"""NumPy reference backend: the definition every other backend is tested against."""

from __future__ import annotations

import contextlib

import numpy as np
from threadpoolctl import threadpool_limits

from .base import Backend


class NumpyBackend(Backend):
    """Every kernel in plain vectorised NumPy (BLAS for the GEMMs), float32 or float64."""

    name = "numpy"
    xp = np

    @classmethod
    def availability(cls):
        return True, ""

    def thread_limit(self, n_threads):
        if n_threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=n_threads, user_api="blas")

    def describe(self):
        return {"numpy": np.__version__}

    def matmul(self, a, b, out, trans_a=False, trans_b=False):
        # .T is a view: BLAS reads the transposed operand in place.
        a, b = (a.T if trans_a else a), (b.T if trans_b else b)
        if a.shape[1] == 1:
            # An outer product (batch of 1): np.dot hands it to BLAS, np.matmul loops (4x slower).
            return np.dot(a, b, out=out)
        return np.matmul(a, b, out=out)

    def bias_act(self, z, b, act):
        z += b
        if act == "relu":
            np.maximum(z, 0, out=z)
        elif act == "sigmoid":
            _sigmoid_inplace(z)
        elif act == "tanh":
            np.tanh(z, out=z)
        elif act != "identity":
            raise ValueError(f"unknown activation {act!r}")
        return z

    def act_grad(self, da, a, act):
        if act == "relu":
            da *= a > 0
        elif act == "sigmoid":
            da *= a * (1 - a)
        elif act == "tanh":
            da *= 1 - a * a
        elif act != "identity":
            raise ValueError(f"unknown activation {act!r}")
        return da

    def softmax_xent(self, logits, y, dlogits, stats, scale):
        # Few, whole-array NumPy calls: at small batches the per-call overhead is the cost.
        rows = np.arange(y.shape[0])
        stats[1] += np.count_nonzero(logits.argmax(axis=1) == y)
        np.subtract(logits, logits.max(axis=1, keepdims=True), out=dlogits)
        label_logit = dlogits[rows, y]
        np.exp(dlogits, out=dlogits)
        total = np.add.reduce(dlogits, axis=1, keepdims=True)
        stats[0] += np.add.reduce(np.log(total[:, 0]) - label_logit, dtype=np.float64)
        dlogits *= scale / total
        dlogits[rows, y] -= scale
        return dlogits

    def sigmoid_bce(self, logits, targets, dlogits, stats, scale):
        if targets.ndim == 1:
            onehot = np.zeros(logits.shape, dtype=logits.dtype)
            onehot[np.arange(len(targets)), targets] = 1
            correct = np.argmax(logits, axis=1) == targets
        else:
            onehot = targets.astype(logits.dtype, copy=False)
            correct = np.all((logits > 0) == (onehot > 0.5), axis=1)
        # softplus(z) - t z, written so that neither branch overflows for |z| large.
        loss = np.maximum(logits, 0) - onehot * logits + np.log1p(np.exp(-np.abs(logits)))
        stats[0] += float(np.sum(loss, dtype=np.float64))
        stats[1] += int(np.count_nonzero(correct))
        dlogits[...] = logits
        _sigmoid_inplace(dlogits)
        dlogits -= onehot
        dlogits *= scale
        return dlogits

    def softmax(self, z):
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def col_sum(self, dz, out):
        return np.add.reduce(dz, axis=0, out=out)

    def sgd_step(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        g = grad + weight_decay * param if weight_decay else grad
        if momentum == 0:
            param -= lr * g
            return param
        velocity *= momentum
        velocity -= lr * g
        if nesterov:
            param += momentum * velocity - lr * g
        else:
            param += velocity
        return param

    def adam_step(self, param, grad, m, v, lr_t, beta1, beta2, eps, weight_decay):
        g = grad + weight_decay * param if weight_decay else grad
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        param -= lr_t * m / (np.sqrt(v) + eps)
        return param

    def gather(self, X, idx, out, scale):
        if X.dtype == out.dtype and scale == 1:
            return np.take(X, idx, axis=0, out=out)
        # One pass: the cast and the scaling in the dtype of out (float32(x) * float32(scale)).
        return np.multiply(X[idx], out.dtype.type(scale), out=out)

    def take(self, y, idx, out):
        return np.take(y, idx, axis=0, out=out)

    def argmax_rows(self, z, out):
        return np.argmax(z, axis=1, out=out)


def _sigmoid_inplace(z):
    """Overflow-free logistic function, in place: exp is only taken of -|z|."""
    e = np.exp(-np.abs(z))
    positive = z >= 0
    np.divide(1, 1 + e, out=z, where=positive)
    np.divide(e, 1 + e, out=z, where=~positive)
    return z
