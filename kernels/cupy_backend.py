"""CuPy backend: dispatch of the contract's kernels to CUDA (``cuda/*.cu``) and cuBLAS on a GPU.

The CUDA C lives in ``kernels/cuda/`` (:mod:`.cuda_sources` says which files, instantiations and
compile options); this module checks arguments, picks the instantiation by dtype and launches, and
hands the epochs it can fuse to :mod:`.cupy_epoch`. Loss kernels reduce in one block in a fixed
order (no atomics) and add straight into ``stats``, so a fixed seed gives bitwise the same model on
one GPU, nothing allocates per step and nothing here waits for the host; the trainer reads
``stats`` once per epoch.

With ``FASTFNN_CUDA_EMULATE=1`` the same sources run on the CPU through :mod:`.cupy_emulation`
(imported as ``cupy``), which is how CI, without a GPU, runs this backend.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from . import cuda_sources, cupy_epoch
from .base import Backend

#: True when this process runs the CUDA kernels on the host emulation instead of a GPU.
EMULATED = os.environ.get("FASTFNN_CUDA_EMULATE") == "1"

if EMULATED:
    from . import cupy_emulation as cupy
else:
    try:
        import cupy
    except ImportError:  # an optional extra: availability() says how to get it
        cupy = None

#: Hidden activations as the kernels number them (enum Activation in cuda/common.cuh).
ACTIVATION_CODES = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}

_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
            np.dtype(np.int32): "int", np.dtype(np.int64): "long long",
            np.dtype(np.uint8): "unsigned char"}
_THREADS = 256  # threads per block; the loss kernels' FASTFNN_BLOCK
_MAX_BLOCKS = 4096  # element-wise kernels stride over what more blocks would cover
#: A null device pointer (CuPy passes a NumPy scalar by value, 8 bytes like a pointer).
_NULL = np.uint64(0)


@functools.lru_cache(maxsize=None)
def _module():
    """Every kernel, compiled once per process (CuPy keeps the binary in its disk cache too)."""
    return cupy.RawModule(code=cuda_sources.source(), options=cuda_sources.COMPILE_OPTIONS,
                          name_expressions=cuda_sources.instantiations())


@functools.lru_cache(maxsize=None)
def _kernel(template, *params):
    """The instantiation ``template<params...>`` (or the plain kernel ``template``); a param is a
    NumPy dtype (meaning its C type) or a literal C++ template argument such as ``"true"``."""
    if not params:
        return _module().get_function(template)
    args = ", ".join(p if isinstance(p, str) else _C_TYPES[np.dtype(p)] for p in params)
    return _module().get_function(f"{template}<{args}>")


def _grid(total):
    """Blocks for an element-wise kernel over ``total`` elements."""
    return (max(1, min(_MAX_BLOCKS, -(-total // _THREADS))),)


def _activation_code(act):
    try:
        return np.int32(ACTIVATION_CODES[act])
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; expected one of "
                         f"{sorted(ACTIVATION_CODES)}") from None


def _floats_alike(*arrays):
    """True when every array is C-contiguous and shares the first one's float32/float64 dtype."""
    dtype = arrays[0].dtype
    return dtype in (np.float32, np.float64) and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def _labels(y):
    """``y`` as the kernels read labels: a C-contiguous int32 or int64 vector, else TypeError."""
    if y.dtype not in (np.int32, np.int64) or not y.flags.c_contiguous:
        raise TypeError(f"labels must be a C-contiguous int32 or int64 vector, got {y.dtype} "
                        f"(C-contiguous: {y.flags.c_contiguous})")
    return y


def _weights(row_weight, dtype):
    """The kernels' row-weight pointer argument: the array (in ``dtype``), or a null pointer."""
    if row_weight is None:
        return _NULL
    if row_weight.dtype != dtype or not row_weight.flags.c_contiguous:
        raise TypeError(f"row_weight must be a C-contiguous {dtype} vector, got "
                        f"{row_weight.dtype} (C-contiguous: {row_weight.flags.c_contiguous})")
    return row_weight


class CupyBackend(Backend):
    """Kernels on the current CUDA device through CuPy (or on its host emulation)."""

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
        return _probe()

    def to_numpy(self, a):
        return cupy.asnumpy(a)

    def synchronize(self):
        cupy.cuda.get_current_stream().synchronize()

    def describe(self):
        if EMULATED:
            return {"cupy": "emulated on the host CPU (FASTFNN_CUDA_EMULATE=1)"}
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return {"cupy": cupy.__version__,
                "cuda runtime": str(cupy.cuda.runtime.runtimeGetVersion()),
                "gpu": props["name"].decode(),
                "gpu memory": f"{props['totalGlobalMem'] / 2**30:.1f} GiB"}

    # ------------------------------------------------------------------ kernels
    def matmul(self, a, b, out, trans_a=False, trans_b=False):
        return cupy.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)

    def bias_act(self, z, b, act):
        code = _activation_code(act)
        if not _floats_alike(z, b):
            return super().bias_act(z, b, act)
        _kernel("bias_act", z.dtype)(_grid(z.size), (_THREADS,),
                                     (z, b, code, np.int64(z.size), np.int32(z.shape[1])))
        return z

    def act_grad(self, da, a, act):
        code = _activation_code(act)
        if act == "identity":
            return da
        if not _floats_alike(da, a):
            return super().act_grad(da, a, act)
        _kernel("act_grad", da.dtype)(_grid(da.size), (_THREADS,), (da, a, code, np.int64(da.size)))
        return da

    def softmax_xent(self, logits, y, dlogits, stats, scale, row_weight=None, label_smoothing=0.0):
        if label_smoothing:  # the reference on the device: a few launches more, for a rare option
            return super().softmax_xent(logits, y, dlogits, stats, scale, row_weight,
                                        label_smoothing)
        m, k = logits.shape
        _kernel("softmax_xent", logits.dtype, _labels(y).dtype)(
            (1,), (_THREADS,), self._loss_args(logits, y, dlogits, stats, scale, row_weight, m, k))
        return dlogits

    def sigmoid_bce(self, logits, targets, dlogits, stats, scale, row_weight=None):
        m, k = logits.shape
        if targets.ndim == 1:
            kernel = _kernel("sigmoid_bce_labels", logits.dtype, _labels(targets).dtype)
        else:
            targets = self._float_targets(targets, logits.dtype)
            kernel = _kernel("sigmoid_bce_indicators", logits.dtype)
        kernel((1,), (_THREADS,),
               self._loss_args(logits, targets, dlogits, stats, scale, row_weight, m, k))
        return dlogits

    def squared_error(self, out, targets, dout, stats, scale, row_weight=None):
        m, k = out.shape
        targets = self._float_targets(targets, out.dtype)
        _kernel("squared_error", out.dtype)(
            (1,), (_THREADS,), self._loss_args(out, targets, dout, stats, scale, row_weight, m, k))
        return dout

    def poisson(self, raw, targets, dout, stats, scale, row_weight=None):
        m, k = raw.shape
        targets = self._float_targets(targets, raw.dtype)
        _kernel("poisson", raw.dtype)(
            (1,), (_THREADS,), self._loss_args(raw, targets, dout, stats, scale, row_weight, m, k))
        return dout

    def softmax(self, z):
        if not _floats_alike(z):  # a strided view: the general default reads it right
            return super().softmax(z)
        m, k = z.shape
        _kernel("softmax_rows", z.dtype)(_grid(m), (_THREADS,), (z, np.int32(m), np.int32(k)))
        return z

    def col_sum(self, dz, out):
        if not _floats_alike(dz, out):
            return super().col_sum(dz, out)
        m, n = dz.shape
        _kernel("col_sum", dz.dtype)(_grid(n), (_THREADS,), (dz, out, np.int32(m), np.int32(n)))
        return out

    def argmax_rows(self, z, out):
        if not _floats_alike(z) or out.dtype != np.int64 or not out.flags.c_contiguous:
            return super().argmax_rows(z, out)
        m, k = z.shape
        _kernel("argmax_rows", z.dtype)(_grid(m), (_THREADS,), (z, out, np.int32(m), np.int32(k)))
        return out

    def sgd_step(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        t = param.dtype.type
        _kernel("sgd_step", param.dtype)(
            _grid(param.size), (_THREADS,),
            (param, grad, velocity, np.int64(param.size), np.int64(param.size), t(lr), _NULL,
             np.int32(0), t(momentum), np.int32(bool(nesterov)), t(weight_decay)))
        return param

    def adam_step(self, param, grad, m, v, lr_t, beta1, beta2, eps, weight_decay):
        t = param.dtype.type
        # 1 - beta in double on the host, then rounded once, as the NumPy reference does
        _kernel("adam_step", param.dtype)(
            _grid(param.size), (_THREADS,),
            (param, grad, m, v, np.int64(param.size), np.int64(param.size), t(lr_t), _NULL,
             np.int32(0), t(beta1), t(1 - beta1), t(beta2), t(1 - beta2), t(eps),
             t(weight_decay)))
        return param

    def gather(self, X, idx, out, scale):
        if (X.dtype not in (np.uint8, out.dtype) or not X.flags.c_contiguous
                or not _floats_alike(out)):
            return super().gather(X, idx, out, scale)
        _kernel("gather_rows", out.dtype, X.dtype, _labels(idx).dtype)(
            _grid(out.size), (_THREADS,),
            (X, idx, out, out.dtype.type(scale), np.int64(out.size), np.int32(X.shape[1])))
        return out

    def run_epoch(self, job):
        """The fused epoch (:mod:`.cupy_epoch`: ~11 launches per step, none allocating) for the
        jobs it covers, else the composed epoch; returns ``"fused"`` or ``"composed"``."""
        if cupy_epoch.covers(job):
            cupy_epoch.fused_epoch(self, job, _kernel, _NULL)
            return "fused"
        return super().run_epoch(job)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _loss_args(logits, targets, d, stats, scale, row_weight, m, k):
        """The argument tuple every loss kernel takes, checked."""
        if not _floats_alike(logits, d):
            raise TypeError(f"loss kernels need C-contiguous float32/float64 logits and gradient "
                            f"of one dtype, got {logits.dtype} and {d.dtype}")
        if stats.dtype != np.float64 or not stats.flags.c_contiguous:
            raise TypeError(f"stats must be a C-contiguous float64 array, got {stats.dtype}")
        return (logits, targets, d, _weights(row_weight, logits.dtype), stats,
                logits.dtype.type(scale), np.int32(m), np.int32(k))

    @staticmethod
    def _float_targets(targets, dtype):
        """(m, k) float targets in ``dtype`` and C order (a copy only when they are not)."""
        if targets.dtype == dtype and targets.flags.c_contiguous:
            return targets
        return cupy.ascontiguousarray(targets, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _probe():
    """(ok, reason): compile this backend's kernels and run one on one element, once per process.

    CuPy can count a device yet fail to compile (no CUDA headers without the ``[ctk]`` extra) or to
    launch (a driver too old for the toolkit); ``auto`` must then fall back instead of crashing.
    """
    try:
        x = cupy.array(np.array([-1.0], np.float32))
        _kernel("bias_act", np.float32)((1,), (1,), (x, cupy.array(np.array([3.0], np.float32)),
                                                     np.int32(1), np.int64(1), np.int32(1)))
        value = float(cupy.asnumpy(x)[0])
    except Exception as exc:  # noqa: BLE001 - any failure here means: do not use this backend
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        hint = ("the CUDA emulation compiles with g++" if EMULATED else
                "with cupy-cuda12x/13x install its [ctk] extra for the CUDA headers")
        return False, (f"cupy sees a CUDA device but the probe kernel failed "
                       f"({type(exc).__name__}: {first_line}); {hint}")
    if value != 2.0:
        return False, f"cupy's probe kernel computed {value} instead of 2.0"
    return True, ""
