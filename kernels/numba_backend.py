"""Numba backend: every kernel compiled for the CPU with ``@njit(cache=True)``, plus a fused epoch.

Kernels
    Each contract kernel is a compiled loop nest in the operand dtype (float32 or float64), with no
    ``fastmath``: element-wise kernels and the optimizer steps round exactly as the NumPy
    reference does (bit for bit), reductions differ from it only in summation order. Work of at
    least :attr:`NumbaBackend.parallel_min_elements` elements runs in ``prange`` chunks of rows
    (columns for ``col_sum``); parallel reductions use a fixed decomposition, so results do not
    depend on the thread count. ``matmul`` is ``np.dot`` inside compiled code (SciPy's BLAS, as
    fast as NumPy's here): transposed views reach BLAS as Fortran-ordered operands, never copied;
    only operands with other strides go to ``np.matmul``.

Fused epoch
    :meth:`NumbaBackend.fused_epoch` runs a whole epoch of mini-batch training (any depth, both
    outputs and target forms, SGD with or without (Nesterov) momentum, Adam, L2 decay) in one
    compiled call and computes what ``fastfnn.trainer.composed_epoch`` computes, up to rounding
    (summation order, FMA). It works on vector-padded flat copies of the parameters, runs rows
    through the whole network in blocks of 16 with hand-vectorized loops (accumulators in
    registers), and applies the optimizer once per mini-batch.

    * Sparse inputs (at most :attr:`NumbaBackend.sparse_max_density` nonzeros; MNIST has ~19%):
      the first layer visits only the nonzero inputs, from a CSR copy of X that is built once and
      cached while X lives unchanged (a sampled fingerprint notices in-place edits). Any batch
      size takes this path.
    * Plain SGD on sparse inputs with batches of at most :attr:`NumbaBackend.lazy_max_rows` rows
      (per-example SGD) updates only the first-layer rows the step's inputs touch; the other rows'
      zero-gradient steps (weight decay, momentum) are applied later in closed form, when a row is
      next read or at the end of the epoch. With batch 1 no gradient is stored at all: each
      touched first-layer row is updated directly from ``x_j * dz``, the other layers' rows from
      their inputs and deltas the same way.
    * Dense inputs take the fused path for batches of at most
      :attr:`NumbaBackend.dense_fused_max_rows` rows; larger dense batches run composed (BLAS).
    * Steps of at least 2 x :attr:`NumbaBackend.fused_rows_per_chunk` rows split into up to
      :attr:`NumbaBackend.fused_chunks` row chunks run in parallel; the split depends on the
      batch size only, so results are bitwise reproducible whatever the thread count. With a
      wide sparse first layer, each chunk files its rows' nonzeros by input, and the optimizer
      step sums that layer's gradient row by row of W from those buckets, in parallel over
      ranges of rows (no per-chunk copy of the largest gradient to reduce).

Compilation is lazy (first call of each signature; the fused epoch takes tens of seconds per
dtype and input kind the first time) and cached on disk (``__pycache__`` next to this file, or
``$NUMBA_CACHE_DIR``); without any writable cache location kernels compile in every process.
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref

import numpy as np
from threadpoolctl import threadpool_limits

from .base import ACTIVATIONS, Backend

try:  # numba is a hard dependency, but a broken install must still report cleanly
    import numba
    from numba import njit, prange, types
    from numba.extending import overload
    from numba.typed import List as _TypedList
    _IMPORT_ERROR = ""
except Exception as exc:  # pragma: no cover - exercised only without numba
    numba = None
    _IMPORT_ERROR = f"numba cannot be imported ({type(exc).__name__}: {exc})"
    prange = range
    _TypedList = None

    def njit(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda fn: fn

    def overload(*args, **kwargs):
        return lambda fn: fn


#: Activation names as the small integers compiled code branches on.
_ACT_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}  # identity, relu, sigmoid, tanh
_IDENTITY = _ACT_CODES["identity"]
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_JIT = dict(cache=True, fastmath=False)
_JIT_PAR = dict(cache=True, fastmath=False, parallel=True)
# Helpers called per row or per element: inlined into their callers at the Numba IR level. A
# real call would increment and decrement the reference count of every array argument, two
# atomic operations each, which costs more than the helper's work.
_JIT_INLINE = dict(cache=True, fastmath=False, inline="always")


def _compiled(**options):
    """``njit(**options)``; where no cache location is writable, the same without the cache."""
    def decorate(fn):
        try:
            return njit(**options)(fn)
        except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
            if "cannot cache" not in str(exc):
                raise
            return njit(**dict(options, cache=False))(fn)
    return decorate


# ----------------------------------------------------------------------------- typed scalars
def _cst(like, value):
    """``value`` cast to the float dtype of array ``like`` (compiled code only)."""
    raise NotImplementedError


@overload(_cst, inline="always")
def _ol_cst(like, value):
    dt = like.dtype if isinstance(like, types.Array) else like
    if dt == types.float32:
        return lambda like, value: np.float32(value)
    return lambda like, value: np.float64(value)


def _xval(v, lut, sc):
    """An input value as the compute dtype: ``lut[v]`` for uint8, else ``T(v) * sc``."""
    raise NotImplementedError


@overload(_xval, inline="always")
def _ol_xval(v, lut, sc):
    if isinstance(v, types.Integer) and v.bitwidth == 8 and not v.signed:
        return lambda v, lut, sc: lut[v]
    if lut.dtype == types.float32:
        return lambda v, lut, sc: np.float32(v) * sc
    return lambda v, lut, sc: np.float64(v) * sc


# ----------------------------------------------------------------------------- SIMD vectors
# A 64-byte vector of the compute dtype (16 float32 or 8 float64) as a first-class value of
# compiled code, so that accumulators live in registers: with ``fastmath=False`` LLVM keeps
# accumulations over memory in memory, and numba does not run the SLP vectorizer. The few
# operations below are LLVM vector instructions (FMA: one rounding, as in BLAS kernels); they
# address 1-D C arrays by element offset and are used on buffers padded to whole vectors.
if numba is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic
    from numba.extending import models as _models
    from numba.extending import register_model as _register_model

    class _VecType(types.Type):
        def __init__(self, dtype):
            self.dtype = dtype
            self.lanes = 64 // (dtype.bitwidth // 8)
            super().__init__(name=f"FastFNNVec({dtype}x{self.lanes})")

    @_register_model(_VecType)
    class _VecModel(_models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            elem = _ir.FloatType() if fe_type.dtype == types.float32 else _ir.DoubleType()
            super().__init__(dmm, fe_type, _ir.VectorType(elem, fe_type.lanes))

    def _vec_suffix(vt):
        return f"v{vt.lanes}f{vt.dtype.bitwidth}"

    def _elem_ptr(context, builder, aryty, ary, off):
        arr = context.make_array(aryty)(context, builder, ary)
        return builder.gep(arr.data, [off])

    @_intrinsic
    def _lanes(typingctx, like):
        """Lanes of a vector of ``like``'s dtype (a compile-time constant)."""
        n = 64 // (like.dtype.bitwidth // 8)

        def codegen(context, builder, sig, args):
            return _ir.Constant(_ir.IntType(64), n)
        return types.int64(like), codegen

    @_intrinsic
    def _vzero(typingctx, like):
        vt = _VecType(like.dtype)

        def codegen(context, builder, sig, args):
            return _ir.Constant(context.get_value_type(vt), None)
        return vt(like), codegen

    @_intrinsic
    def _vsplat(typingctx, like, x):
        vt = _VecType(like.dtype)

        def codegen(context, builder, sig, args):
            ty = context.get_value_type(vt)
            xv = context.cast(builder, args[1], sig.args[1], like.dtype)
            v = builder.insert_element(_ir.Constant(ty, _ir.Undefined), xv,
                                       _ir.Constant(_ir.IntType(32), 0))
            return builder.shuffle_vector(
                v, v, _ir.Constant(_ir.VectorType(_ir.IntType(32), vt.lanes), [0] * vt.lanes))
        return vt(like, x), codegen

    @_intrinsic
    def _vld(typingctx, a, off):
        """Load lanes a[off:off+lanes] (all in bounds)."""
        vt = _VecType(a.dtype)

        def codegen(context, builder, sig, args):
            ty = context.get_value_type(vt)
            ptr = builder.bitcast(_elem_ptr(context, builder, sig.args[0], args[0], args[1]),
                                  ty.as_pointer())
            return builder.load(ptr, align=a.dtype.bitwidth // 8)
        return vt(a, off), codegen

    @_intrinsic
    def _vst(typingctx, a, off, v):
        """Store all lanes of v at a[off:off+lanes]."""
        def codegen(context, builder, sig, args):
            ty = context.get_value_type(sig.args[2])
            ptr = builder.bitcast(_elem_ptr(context, builder, sig.args[0], args[0], args[1]),
                                  ty.as_pointer())
            builder.store(args[2], ptr, align=a.dtype.bitwidth // 8)
            return context.get_dummy_value()
        return types.none(a, off, v), codegen

    @_intrinsic
    def _vfma(typingctx, x, y, acc):
        """x * y + acc with one rounding per lane (as BLAS kernels do)."""
        def codegen(context, builder, sig, args):
            ty = context.get_value_type(sig.args[0])
            fn = _cgutils.get_or_insert_function(builder.module, _ir.FunctionType(ty, [ty] * 3),
                                                 f"llvm.fma.{_vec_suffix(sig.args[0])}")
            return builder.call(fn, args)
        return x(x, y, acc), codegen

    @_intrinsic
    def _vadd(typingctx, x, y):
        def codegen(context, builder, sig, args):
            return builder.fadd(args[0], args[1])
        return x(x, y), codegen

    @_intrinsic
    def _vsub(typingctx, x, y):
        def codegen(context, builder, sig, args):
            return builder.fsub(args[0], args[1])
        return x(x, y), codegen

    @_intrinsic
    def _vmul(typingctx, x, y):
        def codegen(context, builder, sig, args):
            return builder.fmul(args[0], args[1])
        return x(x, y), codegen

    @_intrinsic
    def _vrelu(typingctx, x):
        """0 where x < 0, else x (lane by lane, as the scalar ReLU: NaN and -0.0 pass)."""
        def codegen(context, builder, sig, args):
            zero = _ir.Constant(args[0].type, None)
            return builder.select(builder.fcmp_ordered("<", args[0], zero), zero, args[0])
        return x(x), codegen

    @_intrinsic
    def _vstep(typingctx, x):
        """1 where x > 0, else 0 (lane by lane: ReLU's derivative, as _act_grad_rows has it)."""
        def codegen(context, builder, sig, args):
            ty = args[0].type
            return builder.select(builder.fcmp_ordered(">", args[0], _ir.Constant(ty, None)),
                                  _ir.Constant(ty, [1.0] * sig.args[0].lanes),
                                  _ir.Constant(ty, None))
        return x(x), codegen

    @_intrinsic
    def _vst_sums(typingctx, out, off, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12,
                  v13, v14, v15):
        """out[off + j] = the sum of the lanes of vj, j < 16: each sum by _vhsum's halving tree
        (the same roundings), but the 16 trees share their shuffles: pairs of vectors are
        reduced together, halves of lanes into one vector, until each lane holds one sum."""
        vt = v0

        def codegen(context, builder, sig, args):
            lanes = vt.lanes
            i32 = _ir.IntType(32)
            vecs = list(args[2:])
            for g in range(0, 16, lanes):  # float64: two groups of 8 vectors
                cur = vecs[g:g + lanes]
                seg = lanes  # each vector: lanes // seg segments of seg lanes, one per sum
                while len(cur) > 1:
                    half = seg // 2
                    lo = [b + j * seg + t for b in (0, lanes) for j in range(lanes // seg)
                          for t in range(half)]
                    lo_mask = _ir.Constant(_ir.VectorType(i32, lanes), lo)
                    hi_mask = _ir.Constant(_ir.VectorType(i32, lanes), [i + half for i in lo])
                    nxt = []
                    for x, y in zip(cur[0::2], cur[1::2]):
                        nxt.append(builder.fadd(builder.shuffle_vector(x, y, lo_mask),
                                                builder.shuffle_vector(x, y, hi_mask)))
                    cur = nxt
                    seg = half
                ptr = _elem_ptr(context, builder, sig.args[0], args[0],
                                builder.add(args[1], _ir.Constant(args[1].type, g)))
                builder.store(cur[0], builder.bitcast(ptr, cur[0].type.as_pointer()),
                              align=out.dtype.bitwidth // 8)
            return context.get_dummy_value()
        return types.none(out, off, *([vt] * 16)), codegen

    @_intrinsic
    def _vhsum(typingctx, v):
        """Sum of the lanes by a fixed halving tree (deterministic)."""
        def codegen(context, builder, sig, args):
            x = args[0]
            n = sig.args[0].lanes
            i32 = _ir.IntType(32)
            while n > 1:
                h = n // 2
                lo = builder.shuffle_vector(x, x, _ir.Constant(_ir.VectorType(i32, h),
                                                               list(range(h))))
                hi = builder.shuffle_vector(x, x, _ir.Constant(_ir.VectorType(i32, h),
                                                               list(range(h, n))))
                x = builder.fadd(lo, hi)
                n = h
            return builder.extract_element(x, _ir.Constant(i32, 0))
        return v.dtype(v), codegen
else:  # pragma: no cover
    _lanes = _vzero = _vsplat = _vld = _vst = _vfma = _vadd = _vsub = _vmul = None
    _vrelu = _vstep = _vst_sums = _vhsum = None


# ----------------------------------------------------------------------------- scalar helpers
@_compiled(**_JIT_INLINE)
def _sigmoid(z):
    one = _cst(z, 1.0)
    e = np.exp(-np.abs(z))
    if z >= 0:
        return one / (one + e)
    return e / (one + e)


@_compiled(**_JIT_INLINE)
def _chunk(total, nchunks, c):
    """Bounds of chunk c of ``range(total)`` split into ``nchunks`` near-equal parts."""
    total = np.int64(total)
    nchunks = np.int64(nchunks)
    c = np.int64(c)  # a prange index may be unsigned: keep the arithmetic in int64
    base = total // nchunks
    extra = total % nchunks
    lo = c * base + min(c, extra)
    hi = lo + base + (1 if c < extra else 0)
    return lo, hi


# ----------------------------------------------------------------------------- matmul
@_compiled(**_JIT)
def _matmul(a, b, out):
    np.dot(a, b, out)


# ----------------------------------------------------------------------------- bias + activation
@_compiled(**_JIT)
def _bias_act_rows(z, b, act, r0, r1):
    n = z.shape[1]
    if act == 0:
        for i in range(r0, r1):
            for j in range(n):
                z[i, j] = z[i, j] + b[j]
    elif act == 1:
        zero = _cst(z, 0.0)
        for i in range(r0, r1):
            for j in range(n):
                v = z[i, j] + b[j]
                z[i, j] = zero if v < zero else v
    elif act == 2:
        for i in range(r0, r1):
            for j in range(n):
                z[i, j] = _sigmoid(z[i, j] + b[j])
    else:
        for i in range(r0, r1):
            for j in range(n):
                z[i, j] = np.tanh(z[i, j] + b[j])


@_compiled(**_JIT)
def _bias_act_ser(z, b, act):
    _bias_act_rows(z, b, act, 0, z.shape[0])


@_compiled(**_JIT_PAR)
def _bias_act_par(z, b, act, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(z.shape[0], nchunks, c)
        _bias_act_rows(z, b, act, lo, hi)


# ----------------------------------------------------------------------------- activation grad
@_compiled(**_JIT)
def _act_grad_rows(da, a, act, r0, r1):
    n = da.shape[1]
    one = _cst(da, 1.0)
    zero = _cst(da, 0.0)
    if act == 1:
        for i in range(r0, r1):
            for j in range(n):
                da[i, j] = da[i, j] * (one if a[i, j] > zero else zero)
    elif act == 2:
        for i in range(r0, r1):
            for j in range(n):
                v = a[i, j]
                da[i, j] = da[i, j] * (v * (one - v))
    elif act == 3:
        for i in range(r0, r1):
            for j in range(n):
                v = a[i, j]
                da[i, j] = da[i, j] * (one - v * v)


@_compiled(**_JIT)
def _act_grad_ser(da, a, act):
    _act_grad_rows(da, a, act, 0, da.shape[0])


@_compiled(**_JIT_PAR)
def _act_grad_par(da, a, act, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(da.shape[0], nchunks, c)
        _act_grad_rows(da, a, act, lo, hi)


# ----------------------------------------------------------------------------- output losses
@_compiled(**_JIT_INLINE)
def _first_argmax(z, i):
    """np.argmax of row i: the first maximum, or the first NaN when there is one."""
    k = z.shape[1]
    best = z[i, 0]
    arg = 0
    if best != best:
        return 0
    for j in range(1, k):
        v = z[i, j]
        if v != v:
            return j
        if v > best:
            best = v
            arg = j
    return arg


@_compiled(**_JIT_INLINE)
def _softmax_xent_row(logits, y, dlogits, i, scale):
    """One row of softmax + cross-entropy + gradient; returns (loss as float64, correct 0/1)."""
    k = logits.shape[1]
    label = y
    mx = logits[i, 0]
    for j in range(1, k):
        v = logits[i, j]
        if v > mx or v != v:
            mx = v
    amax = _first_argmax(logits, i)
    s = _cst(logits, 0.0)
    for j in range(k):
        s += np.exp(logits[i, j] - mx)
    log_norm = np.log(s)
    loss = log_norm - (logits[i, label] - mx)
    one = _cst(logits, 1.0)
    for j in range(k):
        p = np.exp((logits[i, j] - mx) - log_norm)
        if j == label:
            p = p - one
        dlogits[i, j] = p * scale
    return np.float64(loss), 1 if amax == label else 0


@_compiled(**_JIT_INLINE)
def _sigmoid_bce_elem(z, t, scale):
    """(loss term as float64, gradient) of one logit z against target t (both dtype T)."""
    zero = _cst(z, 0.0)
    one = _cst(z, 1.0)
    e = np.exp(-np.abs(z))
    pos = z if z > zero else zero
    if z != z:
        pos = z
    loss = (pos - t * z) + np.log1p(e)
    if z >= zero:
        sg = one / (one + e)
    else:
        sg = e / (one + e)
    return np.float64(loss), (sg - t) * scale


@_compiled(**_JIT_INLINE)
def _bce_label_row(logits, label, dlogits, i, scale):
    k = logits.shape[1]
    amax = _first_argmax(logits, i)
    total = 0.0
    for j in range(k):
        t = _cst(logits, 1.0) if j == label else _cst(logits, 0.0)
        lo, g = _sigmoid_bce_elem(logits[i, j], t, scale)
        total += lo
        dlogits[i, j] = g
    return total, 1 if amax == label else 0


@_compiled(**_JIT_INLINE)
def _bce_multi_row(logits, targets, r, dlogits, i, scale):
    k = logits.shape[1]
    total = 0.0
    ok = 1
    half = _cst(logits, 0.5)
    zero = _cst(logits, 0.0)
    for j in range(k):
        t = _cst(logits, targets[r, j])
        z = logits[i, j]
        if (z > zero) != (t > half):
            ok = 0
        lo, g = _sigmoid_bce_elem(z, t, scale)
        total += lo
        dlogits[i, j] = g
    return total, ok


@_compiled(**_JIT)
def _check_labels(y, k):
    for i in range(y.shape[0]):
        if y[i] < 0 or y[i] >= k:
            return i
    return -1


def _loss_row(kind, logits, targets, r, dlogits, i, scale):
    """Loss row i of logits against targets row r: kind 0 softmax, 1 sigmoid (compiled code only).

    Integer label vectors serve both outputs; (n, k) indicator matrices only the sigmoid one.
    """
    raise NotImplementedError


@overload(_loss_row, inline="always")
def _ol_loss_row(kind, logits, targets, r, dlogits, i, scale):
    if targets.ndim == 1:
        def impl(kind, logits, targets, r, dlogits, i, scale):
            if kind == 0:
                return _softmax_xent_row(logits, targets[r], dlogits, i, scale)
            return _bce_label_row(logits, targets[r], dlogits, i, scale)
        return impl

    def impl2(kind, logits, targets, r, dlogits, i, scale):
        return _bce_multi_row(logits, targets, r, dlogits, i, scale)
    return impl2


@_compiled(**_JIT)
def _loss_rows(kind, logits, targets, dlogits, scale, loss, correct, r0, r1):
    for i in range(r0, r1):
        loss[i], correct[i] = _loss_row(kind, logits, targets, i, dlogits, i, scale)


@_compiled(**_JIT_PAR)
def _loss_par(kind, logits, targets, dlogits, scale, stats, nchunks):
    m = logits.shape[0]
    loss = np.empty(m, np.float64)
    correct = np.empty(m, np.int64)
    for c in prange(nchunks):
        lo, hi = _chunk(m, nchunks, c)
        _loss_rows(kind, logits, targets, dlogits, scale, loss, correct, lo, hi)
    total = 0.0
    hits = 0
    for i in range(m):
        total += loss[i]
        hits += correct[i]
    stats[0] += total
    stats[1] += hits


@_compiled(**_JIT)
def _loss_ser(kind, logits, targets, dlogits, scale, stats):
    total = 0.0
    hits = 0
    for i in range(logits.shape[0]):
        lo, ok = _loss_row(kind, logits, targets, i, dlogits, i, scale)
        total += lo
        hits += ok
    stats[0] += total
    stats[1] += hits


# ----------------------------------------------------------------------------- softmax
@_compiled(**_JIT)
def _softmax_rows(z, r0, r1):
    k = z.shape[1]
    for i in range(r0, r1):
        mx = z[i, 0]
        for j in range(1, k):
            v = z[i, j]
            if v > mx or v != v:
                mx = v
        s = _cst(z, 0.0)
        for j in range(k):
            e = np.exp(z[i, j] - mx)
            z[i, j] = e
            s += e
        for j in range(k):
            z[i, j] = z[i, j] / s


@_compiled(**_JIT)
def _softmax_ser(z):
    _softmax_rows(z, 0, z.shape[0])


@_compiled(**_JIT_PAR)
def _softmax_par(z, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(z.shape[0], nchunks, c)
        _softmax_rows(z, lo, hi)


# ----------------------------------------------------------------------------- column sum
@_compiled(**_JIT)
def _col_sum_cols(dz, out, c0, c1):
    """out[c0:c1] = sum over rows, row after row (the order NumPy uses for axis 0)."""
    zero = _cst(out, 0.0)
    for j in range(c0, c1):
        out[j] = zero
    for i in range(dz.shape[0]):
        for j in range(c0, c1):
            out[j] = out[j] + dz[i, j]


@_compiled(**_JIT)
def _col_sum_ser(dz, out):
    _col_sum_cols(dz, out, 0, dz.shape[1])


@_compiled(**_JIT_PAR)
def _col_sum_par(dz, out, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(dz.shape[1], nchunks, c)
        _col_sum_cols(dz, out, lo, hi)


# ----------------------------------------------------------------------------- optimizers
# The contract's sgd_step and adam_step run _step_seg (defined with the fused epoch below) on
# flat views; the arguments one solver does not read are passed as the other's, for one type
# signature.
@_compiled(**_JIT)
def _sgd_ser(p, g, v, lr, mom, nesterov, wd, use_wd, use_mom):
    _step_seg(np.int64(0), p, g, v, v, np.uint64(0), np.uint64(p.shape[0]), lr, mom, nesterov, wd,
              use_wd, use_mom, lr, lr, lr, lr, lr, lr)


@_compiled(**_JIT_PAR)
def _sgd_par(p, g, v, lr, mom, nesterov, wd, use_wd, use_mom, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(p.shape[0], nchunks, c)
        _step_seg(np.int64(0), p, g, v, v, np.uint64(lo), np.uint64(hi - lo), lr, mom, nesterov,
                  wd, use_wd, use_mom, lr, lr, lr, lr, lr, lr)


@_compiled(**_JIT)
def _adam_ser(p, g, m, v, lr_t, b1, c1, b2, c2, eps, wd, use_wd):
    _step_seg(np.int64(1), p, g, m, v, np.uint64(0), np.uint64(p.shape[0]), lr_t, b1, bool(False),
              wd, use_wd, bool(False), lr_t, b1, c1, b2, c2, eps)


@_compiled(**_JIT_PAR)
def _adam_par(p, g, m, v, lr_t, b1, c1, b2, c2, eps, wd, use_wd, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(p.shape[0], nchunks, c)
        _step_seg(np.int64(1), p, g, m, v, np.uint64(lo), np.uint64(hi - lo), lr_t, b1,
                  bool(False), wd, use_wd, bool(False), lr_t, b1, c1, b2, c2, eps)


# ------------------------------------------------------------------------- gather / take / argmax
@_compiled(**_JIT)
def _fix_index(idx, n):
    """Position of the first index outside [-n, n) (NumPy's valid range), or -1."""
    for i in range(idx.shape[0]):
        j = idx[i]
        if j < -n or j >= n:
            return i
    return -1


@_compiled(**_JIT)
def _gather_rows(X, idx, out, lut, sc, r0, r1):
    n = X.shape[0]
    d = X.shape[1]
    for i in range(r0, r1):
        r = idx[i]
        if r < 0:
            r += n
        for j in range(d):
            out[i, j] = _xval(X[r, j], lut, sc)


@_compiled(**_JIT)
def _gather_ser(X, idx, out, lut, sc):
    _gather_rows(X, idx, out, lut, sc, 0, idx.shape[0])


@_compiled(**_JIT_PAR)
def _gather_par(X, idx, out, lut, sc, nchunks):
    for c in prange(nchunks):
        lo, hi = _chunk(idx.shape[0], nchunks, c)
        _gather_rows(X, idx, out, lut, sc, lo, hi)


@_compiled(**_JIT)
def _take1(y, idx, out):
    n = y.shape[0]
    for i in range(idx.shape[0]):
        r = idx[i]
        if r < 0:
            r += n
        out[i] = y[r]


@_compiled(**_JIT)
def _take2(y, idx, out):
    n = y.shape[0]
    for i in range(idx.shape[0]):
        r = idx[i]
        if r < 0:
            r += n
        for j in range(y.shape[1]):
            out[i, j] = y[r, j]


@_compiled(**_JIT)
def _argmax_rows(z, out):
    for i in range(z.shape[0]):
        out[i] = _first_argmax(z, i)


# ----------------------------------------------------------------------------- sparse copy of X
@_compiled(**_JIT_PAR)
def _csr_count(X, counts, nchunks):
    n, d = X.shape
    for c in prange(nchunks):
        lo, hi = _chunk(n, nchunks, c)
        for i in range(lo, hi):
            k = 0
            for j in range(d):
                k += X[i, j] != 0
            counts[i] = k


@_compiled(**_JIT_PAR)
def _csr_fill(X, ptr, ind, val, nchunks):
    n, d = X.shape
    for c in prange(nchunks):
        lo, hi = _chunk(n, nchunks, c)
        row_ind = np.empty(d + 1, ind.dtype)
        row_val = np.empty(d + 1, val.dtype)
        for i in range(lo, hi):
            k = 0
            for j in range(d):  # branch-free compaction: always write, advance on nonzero
                v = X[i, j]
                row_ind[k] = j
                row_val[k] = v
                k += v != 0
            p = ptr[i]
            for q in range(k):
                ind[p + q] = row_ind[q]
                val[p + q] = row_val[q]


@_compiled(**_JIT)
def _fingerprint(Xb, step):
    """A cheap checksum of the bytes of every ``step``-th row (and the last) of Xb (uint8 view)."""
    n, d = Xb.shape
    s1 = np.uint64(0)
    s2 = np.uint64(0)
    i = 0
    while True:
        w = np.uint64(i * d + 1)
        for j in range(d):
            b = np.uint64(Xb[i, j])
            s1 += b
            s2 += b * (w + np.uint64(j))
        if i == n - 1:
            break
        i = min(i + step, n - 1)
    return s1 ^ (s2 * np.uint64(1099511628211))


# ----------------------------------------------------------------------------- sparse fused engine
# The epoch runs on flat working copies of the parameters and optimizer state (copied in at the
# start, out at the end) whose rows are padded to whole vectors, so every vector access is a
# plain load and each layer's update is one contiguous loop. Rows go through the network in
# blocks of _BLOCK_ROWS: forward layer by layer, the loss, backward layer by layer, the step's
# gradients accumulating in a buffer laid out like the parameters. Layer 0 visits only the
# nonzero inputs of a row (CSR). The optimizer step runs once per mini-batch, after all its rows.
# Offsets are unsigned in the loops so that numba emits no negative-index wraparound (which
# would stop LLVM from vectorizing).
_BLOCK_ROWS = 16
_UPDATE_PIECE = 8192  # elements per work item of the parallel optimizer step


if numba is not None:
    @_intrinsic
    def _ld(typingctx, a, off):
        """a.ravel()[off] for a 1-D C array (no negative-index wraparound, no bounds check)."""
        def codegen(context, builder, sig, args):
            return builder.load(_elem_ptr(context, builder, sig.args[0], args[0], args[1]))
        return a.dtype(a, off), codegen

    @_intrinsic
    def _st(typingctx, a, off, x):
        """a[off] = x for a 1-D C array (x cast to a's dtype)."""
        def codegen(context, builder, sig, args):
            v = context.cast(builder, args[2], sig.args[2], a.dtype)
            builder.store(v, _elem_ptr(context, builder, sig.args[0], args[0], args[1]))
            return context.get_dummy_value()
        return types.none(a, off, x), codegen
else:  # pragma: no cover
    _ld = _st = None


@_compiled(**_JIT_INLINE)
def _act_scalar(v, act):
    """sigmoid (act 2) or tanh (act 3) of v; identity and ReLU go by whole vectors."""
    if act == 2:
        return _sigmoid(v)
    return np.tanh(v)


@_compiled(**_JIT_INLINE)
def _fwd_pass(ind, p0, p1, val, dv, lut, sc, w, wo, P, out, oo, wide):
    """One pass of _fwd_rows over 8 vectors of outputs (``wide``) or 4: out[oo:oo+8V or 4V] =
    sum over p of x_p * w[wo + ind[p]*P : +8V or 4V]. ``wide`` is a constant at each call
    site, so the inlined copy keeps no test in its loop."""
    V = _lanes(w)
    a0 = _vzero(w)
    a1 = a0
    a2 = a0
    a3 = a0
    a4 = a0
    a5 = a0
    a6 = a0
    a7 = a0
    for p in range(p0, p1):
        xs = _vsplat(w, _xval(_ld(val, dv + p), lut, sc))
        base = wo + np.int64(_ld(ind, p)) * P
        a0 = _vfma(xs, _vld(w, base), a0)
        a1 = _vfma(xs, _vld(w, base + V), a1)
        a2 = _vfma(xs, _vld(w, base + 2 * V), a2)
        a3 = _vfma(xs, _vld(w, base + 3 * V), a3)
        if wide:
            a4 = _vfma(xs, _vld(w, base + 4 * V), a4)
            a5 = _vfma(xs, _vld(w, base + 5 * V), a5)
            a6 = _vfma(xs, _vld(w, base + 6 * V), a6)
            a7 = _vfma(xs, _vld(w, base + 7 * V), a7)
    _vst(out, oo, a0)
    _vst(out, oo + V, a1)
    _vst(out, oo + 2 * V, a2)
    _vst(out, oo + 3 * V, a3)
    if wide:
        _vst(out, oo + 4 * V, a4)
        _vst(out, oo + 5 * V, a5)
        _vst(out, oo + 6 * V, a6)
        _vst(out, oo + 7 * V, a7)


@_compiled(**_JIT_INLINE)
def _fwd_rows(ind, p0, p1, val, dv, lut, sc, w, wo, P, out, oo):
    """out[oo:oo+P] = sum over p in p0..p1 of x_p * w[wo + ind[p]*P : +P], x_p = val[dv + p]
    as the compute dtype (_xval). A sparse input row: its CSR nonzeros (dv = 0). A dense input
    vector of n values at val[o:o+n]: ind = an arange, p0 = 0, p1 = n, dv = o."""
    V = _lanes(w)
    c0 = 0
    while c0 < P:
        nb = (P - c0) // V
        if nb >= 8:  # eight vectors per pass: each index and value loaded once per 8
            _fwd_pass(ind, p0, p1, val, dv, lut, sc, w, wo + c0, P, out, oo + c0, True)
            c0 += 8 * V
        elif nb >= 4:
            _fwd_pass(ind, p0, p1, val, dv, lut, sc, w, wo + c0, P, out, oo + c0, False)
            c0 += 4 * V
        elif nb >= 2:
            a0 = _vzero(w)
            a1 = a0
            a2 = a0
            a3 = a0
            p = p0
            while p + 1 < p1:
                x0 = _vsplat(w, _xval(_ld(val, dv + p), lut, sc))
                x1 = _vsplat(w, _xval(_ld(val, dv + p + 1), lut, sc))
                base0 = wo + np.int64(_ld(ind, p)) * P + c0
                base1 = wo + np.int64(_ld(ind, p + 1)) * P + c0
                a0 = _vfma(x0, _vld(w, base0), a0)
                a1 = _vfma(x0, _vld(w, base0 + V), a1)
                a2 = _vfma(x1, _vld(w, base1), a2)
                a3 = _vfma(x1, _vld(w, base1 + V), a3)
                p += 2
            if p < p1:
                x0 = _vsplat(w, _xval(_ld(val, dv + p), lut, sc))
                base0 = wo + np.int64(_ld(ind, p)) * P + c0
                a0 = _vfma(x0, _vld(w, base0), a0)
                a1 = _vfma(x0, _vld(w, base0 + V), a1)
            _vst(out, oo + c0, _vadd(a0, a2))
            _vst(out, oo + c0 + V, _vadd(a1, a3))
            c0 += 2 * V
        else:
            a0 = _vzero(w)
            a1 = a0
            a2 = a0
            a3 = a0
            p = p0
            wc = wo + c0
            while p + 3 < p1:
                a0 = _vfma(_vsplat(w, _xval(_ld(val, dv + p), lut, sc)),
                           _vld(w, wc + np.int64(_ld(ind, p)) * P), a0)
                a1 = _vfma(_vsplat(w, _xval(_ld(val, dv + p + 1), lut, sc)),
                           _vld(w, wc + np.int64(_ld(ind, p + 1)) * P), a1)
                a2 = _vfma(_vsplat(w, _xval(_ld(val, dv + p + 2), lut, sc)),
                           _vld(w, wc + np.int64(_ld(ind, p + 2)) * P), a2)
                a3 = _vfma(_vsplat(w, _xval(_ld(val, dv + p + 3), lut, sc)),
                           _vld(w, wc + np.int64(_ld(ind, p + 3)) * P), a3)
                p += 4
            while p < p1:
                a0 = _vfma(_vsplat(w, _xval(_ld(val, dv + p), lut, sc)),
                           _vld(w, wc + np.int64(_ld(ind, p)) * P), a0)
                p += 1
            _vst(out, oo + c0, _vadd(_vadd(a0, a1), _vadd(a2, a3)))
            c0 += V


@_compiled(**_JIT_INLINE)
def _bias_act_flat(a, oo, w, bo, P, n, act):
    """a[oo:oo+n] = act(a[oo:oo+n] + w[bo:bo+n]) (act code 0..3); identity and ReLU as whole
    vectors over the P padded lanes (their padding holds 0 and stays 0)."""
    if act <= 1:
        for c0 in range(0, P, _lanes(w)):
            v = _vadd(_vld(a, oo + c0), _vld(w, bo + c0))
            _vst(a, oo + c0, _vrelu(v) if act == 1 else v)
    else:
        for q in range(n):
            _st(a, oo + q, _act_scalar(_ld(a, oo + q) + _ld(w, bo + q), act))


@_compiled(**_JIT)  # a call per block of rows: compiled once, not inlined into each caller
def _fwd_dense(x, xo, xs, nin, w, wo, bo, P, n, act, out, oo, bs, iota, lut):
    """Rows i < bs of a dense layer: out[oo + i*P : +P] = act(x[xo + i*xs : +nin] @ W + b),
    W = w[wo:] as nin rows of P, b = w[bo:bo+n]; x already in the compute dtype."""
    one = _cst(w, 1.0)
    for i in range(bs):
        _fwd_rows(iota, 0, nin, x, xo + i * xs, lut, one, w, wo, P, out, oo + i * P)
        _bias_act_flat(out, oo + i * P, w, bo, P, n, act)


@_compiled(**_JIT_INLINE)
def _grad_sparse(ind, val, p0, p1, lut, sc, dz, do, P, g, go):
    """g[go + j*P : +P] += x * dz[do:do+P] over the nonzeros (j, x) at p0..p1."""
    V = _lanes(g)
    c0 = 0
    while c0 < P:
        nb = (P - c0) // V
        if nb >= 4:
            d0 = _vld(dz, do + c0)
            d1 = _vld(dz, do + c0 + V)
            d2 = _vld(dz, do + c0 + 2 * V)
            d3 = _vld(dz, do + c0 + 3 * V)
            for p in range(p0, p1):
                xs = _vsplat(g, _xval(_ld(val, p), lut, sc))
                base = go + np.int64(_ld(ind, p)) * P + c0
                _vst(g, base, _vfma(xs, d0, _vld(g, base)))
                _vst(g, base + V, _vfma(xs, d1, _vld(g, base + V)))
                _vst(g, base + 2 * V, _vfma(xs, d2, _vld(g, base + 2 * V)))
                _vst(g, base + 3 * V, _vfma(xs, d3, _vld(g, base + 3 * V)))
            c0 += 4 * V
        elif nb >= 2:
            d0 = _vld(dz, do + c0)
            d1 = _vld(dz, do + c0 + V)
            for p in range(p0, p1):
                xs = _vsplat(g, _xval(_ld(val, p), lut, sc))
                base = go + np.int64(_ld(ind, p)) * P + c0
                _vst(g, base, _vfma(xs, d0, _vld(g, base)))
                _vst(g, base + V, _vfma(xs, d1, _vld(g, base + V)))
            c0 += 2 * V
        else:
            d0 = _vld(dz, do + c0)
            gc = go + c0
            for p in range(p0, p1):
                base = gc + np.int64(_ld(ind, p)) * P
                _vst(g, base, _vfma(_vsplat(g, _xval(_ld(val, p), lut, sc)), d0, _vld(g, base)))
            c0 += V


@_compiled(**_JIT_INLINE)
def _grad_col(g, row, P, dz, do, x, xo, xs, ri, e0, e1):
    """g[row:row+P] += sum over e in e0..e1 of x[xo + e*xs] * dz[do + ri[e]*P : +P], summed in e
    order in registers (one load and one store of the row of g). A sparse column: x, ri = the
    values and rows of its nonzeros (xs = 1); a dense input k of a block: x = the activations
    (xo = their offset + k, xs = their row stride), ri = an arange."""
    V = _lanes(g)
    c0 = 0
    while c0 < P:
        nb = (P - c0) // V
        if nb >= 4:
            g0 = _vld(g, row + c0)
            g1 = _vld(g, row + c0 + V)
            g2 = _vld(g, row + c0 + 2 * V)
            g3 = _vld(g, row + c0 + 3 * V)
            for e in range(e0, e1):
                xv = _vsplat(g, _ld(x, xo + e * xs))
                base = do + np.int64(ri[e]) * P + c0
                g0 = _vfma(xv, _vld(dz, base), g0)
                g1 = _vfma(xv, _vld(dz, base + V), g1)
                g2 = _vfma(xv, _vld(dz, base + 2 * V), g2)
                g3 = _vfma(xv, _vld(dz, base + 3 * V), g3)
            _vst(g, row + c0, g0)
            _vst(g, row + c0 + V, g1)
            _vst(g, row + c0 + 2 * V, g2)
            _vst(g, row + c0 + 3 * V, g3)
            c0 += 4 * V
        elif nb >= 2:
            g0 = _vld(g, row + c0)
            g1 = _vld(g, row + c0 + V)
            for e in range(e0, e1):
                xv = _vsplat(g, _ld(x, xo + e * xs))
                base = do + np.int64(ri[e]) * P + c0
                g0 = _vfma(xv, _vld(dz, base), g0)
                g1 = _vfma(xv, _vld(dz, base + V), g1)
            _vst(g, row + c0, g0)
            _vst(g, row + c0 + V, g1)
            c0 += 2 * V
        else:
            g0 = _vld(g, row + c0)
            for e in range(e0, e1):
                xv = _vsplat(g, _ld(x, xo + e * xs))
                g0 = _vfma(xv, _vld(dz, do + np.int64(ri[e]) * P + c0), g0)
            _vst(g, row + c0, g0)
            c0 += V


@_compiled(**_JIT)  # a call per block of rows; one copy compiles faster than an inlined one
def _grad_sparse_block(ptr, ind, val, lut, sc, order, first, bs, dz, do, P, g, go, cstart, cfill,
                       ci, cx):
    """The block's rows' contributions to the first layer's weight gradient, column by column:
    the nonzeros of the bs rows (order[first:first+bs]) are sorted by input j (a stable counting
    sort into ci/cx, so i ascends within a column), then each touched row j of g gets them by
    _grad_col (one read-modify-write of the row, not one per nonzero)."""
    d = cstart.shape[0] - 1
    for j in range(d + 1):
        cstart[j] = 0
    for i in range(bs):
        r = order[first + i]
        for p in range(ptr[r], ptr[r + 1]):
            cstart[np.int64(ind[p]) + 1] += 1
    for j in range(d):
        cstart[j + 1] += cstart[j]
        cfill[j] = cstart[j]
    for i in range(bs):
        r = order[first + i]
        for p in range(ptr[r], ptr[r + 1]):
            j = np.int64(ind[p])
            q = cfill[j]
            ci[q] = i
            cx[q] = _xval(val[p], lut, sc)
            cfill[j] = q + 1
    for j in range(d):
        if cstart[j] < cstart[j + 1]:
            _grad_col(g, go + j * P, P, dz, do, cx, 0, 1, ci, cstart[j], cstart[j + 1])


@_compiled(**_JIT)  # a call per block of rows
def _grad_dense(a, ao, Pa, nin, dz, do, P, bs, g, go, iota):
    """g[go + k*P : +P] += sum_i a[ao + i*Pa + k] * dz[do + i*P : +P] for k < nin, i < bs
    (iota: an arange of at least bs)."""
    for k in range(nin):
        _grad_col(g, go + k * P, P, dz, do, a, ao + k, Pa, iota, 0, bs)


@_compiled(**_JIT_INLINE)
def _vdact(a, act):
    """act'(z) lane by lane through the stored activation a = act(z) (act 1, 2 or 3): the
    operations of _act_grad_rows and of the NumPy reference."""
    if act == 1:
        return _vstep(a)
    one = _vsplat(a, 1.0)
    if act == 2:
        return _vmul(a, _vsub(one, a))
    return _vsub(one, _vmul(a, a))


@_compiled(**_JIT)  # a call per block of rows
def _back_dense(w, wo, P, nin, dz, do, bs, a, ao, Pa, act):
    """dz[ao + i*Pa + k] = (w[wo + k*P : +P] . dz[do + i*P : +P]) * act'(a[ao + i*Pa + k]):
    sixteen inputs k at a time, so the sixteen dot products overlap and share one reduction
    (_vst_sums); then act' over the row's whole vectors (padding lanes hold 0 and stay 0)."""
    V = _lanes(w)
    k16 = nin - nin % 16
    for i in range(bs):
        drow = do + i * P
        orow = ao + i * Pa
        for k0 in range(0, k16, 16):
            r = wo + k0 * P
            s0 = _vzero(w)
            s1 = s0
            s2 = s0
            s3 = s0
            s4 = s0
            s5 = s0
            s6 = s0
            s7 = s0
            s8 = s0
            s9 = s0
            s10 = s0
            s11 = s0
            s12 = s0
            s13 = s0
            s14 = s0
            s15 = s0
            for c0 in range(0, P, V):
                d = _vld(dz, drow + c0)
                s0 = _vfma(_vld(w, r + c0), d, s0)
                s1 = _vfma(_vld(w, r + P + c0), d, s1)
                s2 = _vfma(_vld(w, r + 2 * P + c0), d, s2)
                s3 = _vfma(_vld(w, r + 3 * P + c0), d, s3)
                s4 = _vfma(_vld(w, r + 4 * P + c0), d, s4)
                s5 = _vfma(_vld(w, r + 5 * P + c0), d, s5)
                s6 = _vfma(_vld(w, r + 6 * P + c0), d, s6)
                s7 = _vfma(_vld(w, r + 7 * P + c0), d, s7)
                s8 = _vfma(_vld(w, r + 8 * P + c0), d, s8)
                s9 = _vfma(_vld(w, r + 9 * P + c0), d, s9)
                s10 = _vfma(_vld(w, r + 10 * P + c0), d, s10)
                s11 = _vfma(_vld(w, r + 11 * P + c0), d, s11)
                s12 = _vfma(_vld(w, r + 12 * P + c0), d, s12)
                s13 = _vfma(_vld(w, r + 13 * P + c0), d, s13)
                s14 = _vfma(_vld(w, r + 14 * P + c0), d, s14)
                s15 = _vfma(_vld(w, r + 15 * P + c0), d, s15)
            _vst_sums(dz, orow + k0, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13,
                      s14, s15)
        for k in range(k16, nin):
            acc = _vzero(w)
            for c0 in range(0, P, V):
                acc = _vfma(_vld(w, wo + k * P + c0), _vld(dz, drow + c0), acc)
            _st(dz, orow + k, _vhsum(acc))
        if act != 0:
            for c0 in range(0, Pa, V):
                _vst(dz, orow + c0, _vmul(_vld(dz, orow + c0), _vdact(_vld(a, orow + c0), act)))


@_compiled(**_JIT_INLINE)
def _softmax_xent_flat(z, zo, k, label, d, do, scale):
    """Softmax cross-entropy of z[zo:zo+k] against ``label``, gradient into d[do:do+k] (may not
    alias z). Returns (loss as float64, 1 if the first argmax is the label else 0)."""
    mx = _ld(z, zo)
    amax = 0
    for j in range(1, k):
        v = _ld(z, zo + j)
        if v > mx or (v != v and mx == mx):
            mx = v
            amax = j
    if _ld(z, zo) != _ld(z, zo):
        amax = 0
    s = _cst(z, 0.0)
    for j in range(k):  # the exponentials wait in d (one exp per logit, not two)
        e = np.exp(_ld(z, zo + j) - mx)
        _st(d, do + j, e)
        s += e
    log_norm = np.log(s)
    loss = log_norm - (_ld(z, zo + label) - mx)
    one = _cst(z, 1.0)
    for j in range(k):
        p = _ld(d, do + j) / s  # = exp(shifted - log_norm) up to rounding
        if j == label:
            p = p - one
        _st(d, do + j, p * scale)
    return np.float64(loss), 1 if amax == label else 0


@_compiled(**_JIT_INLINE)
def _bce_label_flat(z, zo, k, label, d, do, scale):
    mx = _ld(z, zo)
    amax = 0
    total = 0.0
    for j in range(k):
        v = _ld(z, zo + j)
        if j > 0 and (v > mx or (v != v and mx == mx)):
            mx = v
            amax = j
        t = _cst(z, 1.0) if j == label else _cst(z, 0.0)
        lo, gr = _sigmoid_bce_elem(v, t, scale)
        total += lo
        _st(d, do + j, gr)
    if _ld(z, zo) != _ld(z, zo):
        amax = 0
    return total, 1 if amax == label else 0


@_compiled(**_JIT_INLINE)
def _bce_multi_flat(z, zo, k, targets, r, d, do, scale):
    total = 0.0
    ok = 1
    half = _cst(z, 0.5)
    zero = _cst(z, 0.0)
    for j in range(k):
        t = _cst(z, targets[r, j])
        v = _ld(z, zo + j)
        if (v > zero) != (t > half):
            ok = 0
        lo, gr = _sigmoid_bce_elem(v, t, scale)
        total += lo
        _st(d, do + j, gr)
    return total, ok


@_compiled(**_JIT_INLINE)
def _loss_flat(kind, z, zo, k, labels, indicators, r, d, do, scale):
    """Loss of logits z[zo:zo+k] against row r of the targets, gradient into d[do:do+k].
    kind 0: softmax + labels; 1: sigmoid + labels; 2: sigmoid + (n, k) indicators. Both target
    arrays are always passed (one of them a dummy) so that one compiled epoch serves all three."""
    if kind == 0:
        return _softmax_xent_flat(z, zo, k, labels[r], d, do, scale)
    if kind == 1:
        return _bce_label_flat(z, zo, k, labels[r], d, do, scale)
    return _bce_multi_flat(z, zo, k, indicators, r, d, do, scale)


@_compiled(**_JIT_INLINE)
def _dense_input(l, xb, a, aoff, d, P):
    """Layer l's dense input in _rows_flat as (array, offset of row 0, row stride): the gathered
    block xb for the first layer, else the previous layer's activations in a."""
    if l == 0:
        return xb, np.int64(0), d
    return a, aoff[l - 1], P[l - 1]


@_compiled(**_JIT)
def _rows_flat(X, sparse, ptr, ind, val, lut, sc, labels, indicators, order, start, r0, r1, L,
               nin, nout, P, woff, wboff, aoff, w, act, out_kind, scale, g, a, dz, xb, res, c,
               grads, keep, bcnt, bi, bx, cstart, cfill, ci, cx, iota, block_min):
    """Forward, loss and backward of rows r0..r1 of the step starting at ``start``; gradients
    accumulate in g (laid out like w; only when ``grads``, else the caller steps from the
    activations in a and the deltas in dz), loss and correct rows in res[c]. Sparse inputs come
    from the CSR (ptr, ind, val); dense ones are gathered block by block into xb. With a sparse
    first layer and ``keep`` of more than one element (a parallel step), the rows' first-layer
    deltas are stored there (row i of the step at keep[i*P0:]) instead of accumulating that
    layer's weight gradient, and the rows' nonzeros are filed by input j into buckets of
    cap = bx.shape[0] // d entries: the k-th nonzero of input j goes to bi[j*cap + k] (its row i
    of the step) and bx[j*cap + k] (its value), with bcnt[j] = k + 1 (rows in ascending order).
    cstart, cfill, ci, cx: scratch of _grad_sparse_block, one element each when a block's
    first-layer gradient is not summed column by column (not a wide sparse layer). iota:
    an arange as long as the widest layer input and the block (the rows of a dense input)."""
    V = _lanes(w)
    d = nin[0]
    blocked = grads and cstart.shape[0] > 1  # _sp_epoch sized the scratch for it
    by_rows = keep.shape[0] > 1
    cap = bx.shape[0] // d
    if by_rows:
        for j in range(d):
            bcnt[j] = 0
    for b0 in range(r0, r1, _BLOCK_ROWS):
        bs = min(_BLOCK_ROWS, r1 - b0)
        if not sparse:
            for i in range(bs):
                r = order[start + b0 + i]
                for k in range(d):
                    xb[i * d + k] = _xval(X[r, k], lut, sc)
        for l in range(L):
            Pl = P[l]
            n_out = nout[l]
            bo = wboff[l]
            code = act if l < L - 1 else 0
            if l == 0 and sparse:
                for i in range(bs):
                    oo = aoff[0] + i * Pl
                    r = order[start + b0 + i]
                    _fwd_rows(ind, ptr[r], ptr[r + 1], val, 0, lut, sc, w, woff[0], Pl, a, oo)
                    _bias_act_flat(a, oo, w, bo, Pl, n_out, code)
            else:
                src, so, sp = _dense_input(l, xb, a, aoff, d, P)
                _fwd_dense(src, so, sp, nin[l], w, woff[l], bo, Pl, n_out, code, a, aoff[l], bs,
                           iota, lut)
        Pl = P[L - 1]
        ao = aoff[L - 1]
        total = 0.0
        hits = 0
        for i in range(bs):
            lo, ok = _loss_flat(out_kind, a, ao + i * Pl, nout[L - 1], labels, indicators,
                                order[start + b0 + i], dz, ao + i * Pl, scale)
            total += lo
            hits += ok
        res[c, 0] += total
        res[c, 1] += hits
        for l in range(L - 1, -1, -1):
            Pl = P[l]
            do = aoff[l]
            gbo = wboff[l]
            if grads:
                for i in range(bs):
                    for c0 in range(0, Pl, V):
                        _vst(g, gbo + c0, _vadd(_vld(g, gbo + c0), _vld(dz, do + i * Pl + c0)))
            if grads and (l > 0 or not sparse):
                src, so, sp = _dense_input(l, xb, a, aoff, d, P)
                _grad_dense(src, so, sp, nin[l], dz, do, Pl, bs, g, woff[l], iota)
            if l > 0:
                _back_dense(w, woff[l], Pl, nin[l], dz, do, bs, a, aoff[l - 1], P[l - 1], act)
            elif not (grads and sparse):
                pass  # dense inputs: done above; no grads: the caller steps from dz
            elif by_rows:  # parallel step: layer 0 is done later, by rows of W0
                for i in range(bs):
                    for c0 in range(0, Pl, V):
                        _vst(keep, (b0 + i) * Pl + c0, _vld(dz, do + i * Pl + c0))
                    r = order[start + b0 + i]
                    for p in range(ptr[r], ptr[r + 1]):
                        j = np.int64(ind[p])
                        k = bcnt[j]
                        bi[j * cap + k] = b0 + i
                        bx[j * cap + k] = _xval(val[p], lut, sc)
                        bcnt[j] = k + 1
            elif blocked and bs >= block_min:
                _grad_sparse_block(ptr, ind, val, lut, sc, order, start + b0, bs, dz, do, Pl, g,
                                   woff[0], cstart, cfill, ci, cx)
            else:
                for i in range(bs):
                    r = order[start + b0 + i]
                    _grad_sparse(ind, val, ptr[r], ptr[r + 1], lut, sc, dz, do + i * Pl, Pl, g,
                                 woff[0])


@_compiled(**_JIT_PAR)
def _rows_flat_par(X, sparse, ptr, ind, val, lut, sc, labels, indicators, order, start, m, L,
                   nin, nout, P, woff, wboff, aoff, w, act, out_kind, scale, g, a, dz, xb, res,
                   nchunks, keep, bcnt, bi, bx, cstart, cfill, ci, cx, iota, block_min):
    """_rows_flat over a fixed split of the step's m rows into nchunks chunks, chunk c
    accumulating into g[c] (so the summation order never depends on the thread count). The
    arguments of both _rows_flat calls have the same (non-literal) types: one compilation."""
    for c in prange(nchunks):
        lo, hi = _chunk(m, nchunks, c)
        _rows_flat(X, sparse, ptr, ind, val, lut, sc, labels, indicators, order, start, lo, hi, L,
                   nin, nout, P, woff, wboff, aoff, w, act, out_kind, scale, g[c], a[c], dz[c],
                   xb[c], res, np.int64(c), bool(True), keep, bcnt[c], bi[c], bx[c], cstart[c],
                   cfill[c], ci[c], cx[c], iota, block_min)


@_compiled(**_JIT)
def _upd_flat(solver, w, g, s0, s1, lo, hi, rows, nrows, lr, mom, nesterov, wd, use_wd, use_mom,
              lr_t, b1, c1, b2, c2, eps):
    """The optimizer step on w[lo:hi] with gradient g[lo:hi], state s0 (sgd velocity / adam m)
    and s1 (adam v); zeroes g[lo:hi]. The NumPy reference's operation order. With nrows >= 0,
    on the segments w[lo + j*hi : +hi] for j in rows[:nrows] instead."""
    nseg = 1 if nrows < 0 else nrows
    for seg in range(nseg):
        if nrows < 0:
            u0 = np.uint64(lo)
            n = np.uint64(hi - lo)
        else:
            u0 = np.uint64(lo + rows[seg] * hi)
            n = np.uint64(hi)
        _upd_seg(solver, w, g, s0, s1, u0, n, lr, mom, nesterov, wd, use_wd, use_mom, lr_t, b1,
                 c1, b2, c2, eps)


@_compiled(**_JIT)  # a call per range; one copy compiles faster than inlined ones
def _step_seg(solver, w, g, s0, s1, u0, n, lr, mom, nesterov, wd, use_wd, use_mom, lr_t, b1, c1,
              b2, c2, eps):
    """The optimizer step on w[u0:u0+n] (flat 1-D arrays) with gradient g and state s0 (SGD
    velocity, Adam m) and s1 (Adam v): solver 0 is SGD (momentum when use_mom, Nesterov's when
    nesterov), 1 Adam (lr_t, b1, c1 = 1 - b1, b2, c2 = 1 - b2, eps); L2 decay wd when use_wd.
    The NumPy reference's operation order, one rounding per operation. It serves the contract's
    sgd_step and adam_step and the fused epoch alike."""
    if solver == 0:
        if not use_mom:
            if use_wd:
                for i in range(n):
                    j = u0 + i
                    w[j] = w[j] - lr * (g[j] + wd * w[j])
            else:
                for i in range(n):
                    j = u0 + i
                    w[j] = w[j] - lr * g[j]
        elif nesterov:
            if use_wd:
                for i in range(n):
                    j = u0 + i
                    step = lr * (g[j] + wd * w[j])
                    vi = s0[j] * mom - step
                    s0[j] = vi
                    w[j] = w[j] + (mom * vi - step)
            else:
                for i in range(n):
                    j = u0 + i
                    step = lr * g[j]
                    vi = s0[j] * mom - step
                    s0[j] = vi
                    w[j] = w[j] + (mom * vi - step)
        else:
            if use_wd:
                for i in range(n):
                    j = u0 + i
                    vi = s0[j] * mom - lr * (g[j] + wd * w[j])
                    s0[j] = vi
                    w[j] = w[j] + vi
            else:
                for i in range(n):
                    j = u0 + i
                    vi = s0[j] * mom - lr * g[j]
                    s0[j] = vi
                    w[j] = w[j] + vi
    else:
        if use_wd:
            for i in range(n):
                j = u0 + i
                gi = g[j] + wd * w[j]
                mi = s0[j] * b1 + c1 * gi
                vi = s1[j] * b2 + c2 * (gi * gi)
                s0[j] = mi
                s1[j] = vi
                w[j] = w[j] - (lr_t * mi) / (np.sqrt(vi) + eps)
        else:
            for i in range(n):
                j = u0 + i
                gi = g[j]
                mi = s0[j] * b1 + c1 * gi
                vi = s1[j] * b2 + c2 * (gi * gi)
                s0[j] = mi
                s1[j] = vi
                w[j] = w[j] - (lr_t * mi) / (np.sqrt(vi) + eps)


@_compiled(**_JIT_INLINE)
def _upd_seg(solver, w, g, s0, s1, u0, n, lr, mom, nesterov, wd, use_wd, use_mom, lr_t, b1, c1,
             b2, c2, eps):
    """_step_seg, then g[u0:u0+n] = 0: the fused epoch reuses its gradient buffer."""
    _step_seg(solver, w, g, s0, s1, u0, n, lr, mom, nesterov, wd, use_wd, use_mom, lr_t, b1, c1,
              b2, c2, eps)
    zero = _cst(g, 0.0)
    for i in range(n):
        g[u0 + i] = zero


@_compiled(**_JIT_INLINE)
def _upd_item(items, q, solver, w, g, nch, s0, s1, lr, mom, nesterov, wd, use_wd, use_mom, lr_t,
              b1, c1, b2, c2, eps):
    """Item q = (lo, hi, decay) of a parallel step's update: g[0, lo:hi] += g[1, lo:hi] + ...
    (chunk order; those are zeroed), then _upd_seg on the range (weight decay where decay)."""
    zero = _cst(w, 0.0)
    g0 = g[0]
    u0 = np.uint64(items[q, 0])
    n = np.uint64(items[q, 1] - items[q, 0])
    for c in range(1, nch):
        gc = g[c]
        for i in range(n):
            g0[u0 + i] += gc[u0 + i]
            gc[u0 + i] = zero
    _upd_seg(solver, w, g0, s0, s1, u0, n, lr, mom, nesterov, wd, use_wd and items[q, 2] != 0,
             use_mom, lr_t, b1, c1, b2, c2, eps)


@_compiled(**_JIT_PAR)
def _upd_par(bcnt, bi, bx, keep, P0, d, nparts, solver, w, g, nch, s0, s1, items, lr, mom,
             nesterov, wd, use_wd, use_mom, lr_t, b1, c1, b2, c2, eps):
    """The optimizer step of a parallel step. Work items 0..nparts-1 each own a range of
    first-layer rows j < d: they sum x_ij * keep[i] over the step's rows i in order, from the
    buckets of input j that the nch chunks filed (see _rows_flat; chunk c's rows precede chunk
    c + 1's), and update those rows, so that layer needs no reduction and its sums do not depend
    on the thread count (d = 0: no such layer, the chunk sums cover every parameter). Every
    other parameter is in ``items``, taken by _upd_item (chunk gradients summed in chunk
    order); part q takes items q, q + nparts, ... (prange hands each thread one contiguous
    range of iterations, so a first-layer part per iteration keeps the threads evenly
    loaded)."""
    g0 = g[0]
    cap = bx.shape[1] // max(d, 1)
    for q in prange(nparts):
        ja, jb = _chunk(d, nparts, q)
        for j in range(ja, jb):
            for c in range(nch):
                if bcnt[c, j] > 0:
                    _grad_col(g0, j * P0, P0, keep, 0, bx[c], 0, 1, bi[c], j * cap,
                              j * cap + bcnt[c, j])
        _upd_seg(solver, w, g0, s0, s1, np.uint64(ja * P0), np.uint64((jb - ja) * P0), lr,
                 mom, nesterov, wd, use_wd, use_mom, lr_t, b1, c1, b2, c2, eps)
        for it in range(q, items.shape[0], nparts):
            _upd_item(items, it, solver, w, g, nch, s0, s1, lr, mom, nesterov, wd, use_wd,
                      use_mom, lr_t, b1, c1, b2, c2, eps)


@_compiled(**_JIT)
def _catch_up_flat(w, s0, wo, P, rows, nrows, last, s, pw, use_mom):
    """Bring rows rows[:nrows] (every row of the layer when nrows < 0, then ``-nrows`` rows) of
    the layer at w[wo:] from step last[j] to step s: those steps had a zero data gradient, so
    (w, v) <- M^k (w, v) with M^k = pw[k] (float64), k = s - last[j]. Sets last[j] = s."""
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
        if use_mom:
            c_ = pw[k, 2]
            d_ = pw[k, 3]
            for i in range(uP):
                x = np.float64(w[u0 + i])
                v = np.float64(s0[u0 + i])
                w[u0 + i] = _cst(w, a_ * x + b_ * v)
                s0[u0 + i] = _cst(w, c_ * x + d_ * v)
        else:
            for i in range(uP):
                w[u0 + i] = _cst(w, a_ * np.float64(w[u0 + i]))


@_compiled(**_JIT)
def _zero_grad_powers(steps, lr, mom, wd, nesterov, use_mom):
    """M^k for k = 0..steps: the SGD map of (w, v) over one step whose data gradient is zero
    (g = wd w): v' = mom v - lr g; w' = w + v', or w + mom v' - lr g with Nesterov."""
    lam = np.float64(lr) * np.float64(wd)
    mu = np.float64(mom)
    if not use_mom:
        m00, m01, m10, m11 = 1.0 - lam, 0.0, 0.0, 1.0
    elif nesterov:
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


@_compiled(**_JIT)
def _pack(mats, vecs, L, n_state, P, woff, wboff, bufs, back):
    """Copy parameters (k = 0) and optimizer state (k = 1, 2) between the caller's arrays and the
    padded flat buffers bufs[k] (to the buffers when back is False, else from them)."""
    for k in range(n_state + 1):
        buf = bufs[k]
        for l in range(L):
            W = mats[k * L + l]
            b = vecs[k * L + l]
            nin, no = W.shape
            for r in range(nin):
                o = woff[l] + r * P[l]
                for c in range(no):
                    if back:
                        W[r, c] = buf[o + c]
                    else:
                        buf[o + c] = W[r, c]
            for c in range(no):
                if back:
                    b[c] = buf[wboff[l] + c]
                else:
                    buf[wboff[l] + c] = b[c]


@_compiled(**_JIT_INLINE)
def _catch_up_vec(w, s0, o, P, k, pw, use_mom):
    """k zero-gradient SGD steps at once on w[o:o+P] (and velocity s0[o:o+P]), M^k = pw[k]."""
    V = _lanes(w)
    A = _vsplat(w, pw[k, 0])
    if use_mom:
        B = _vsplat(w, pw[k, 1])
        C = _vsplat(w, pw[k, 2])
        D = _vsplat(w, pw[k, 3])
        for c0 in range(0, P, V):
            x = _vld(w, o + c0)
            v = _vld(s0, o + c0)
            _vst(w, o + c0, _vfma(A, x, _vmul(B, v)))
            _vst(s0, o + c0, _vfma(C, x, _vmul(D, v)))
    else:
        for c0 in range(0, P, V):
            _vst(w, o + c0, _vmul(A, _vld(w, o + c0)))


@_compiled(**_JIT)
def _lazy_rows_catch_up(ind, val, p0, p1, w, s0, wo, P, last, s, pw, use_mom):
    """Bring the first-layer rows the nonzeros p0..p1 read from their last step to step s."""
    for p in range(p0, p1):
        j = np.int64(_ld(ind, p))
        k = s - last[j]
        if k > 0:
            _catch_up_vec(w, s0, wo + j * P, P, k, pw, use_mom)
            last[j] = s


@_compiled(**_JIT_INLINE)
def _sgd_row(w, s0, o, P, x, dz, do, lr, mom, nesterov, wd, use_wd, use_mom):
    """SGD step of w[o:o+P] (velocity s0[o:o+P]) whose gradient is x * dz[do:do+P], formed on
    the fly: the operations of _upd_seg on that gradient, without storing it."""
    V = _lanes(w)
    xs = _vsplat(w, x)
    LR = _vsplat(w, lr)
    MOM = _vsplat(w, mom)
    WD = _vsplat(w, wd)
    for c0 in range(0, P, V):
        g = _vmul(xs, _vld(dz, do + c0))
        v = _vld(w, o + c0)
        if use_wd:
            g = _vadd(g, _vmul(WD, v))
        step = _vmul(LR, g)
        if not use_mom:
            _vst(w, o + c0, _vsub(v, step))
        else:
            vi = _vsub(_vmul(_vld(s0, o + c0), MOM), step)
            _vst(s0, o + c0, vi)
            if nesterov:
                _vst(w, o + c0, _vadd(v, _vsub(_vmul(MOM, vi), step)))
            else:
                _vst(w, o + c0, _vadd(v, vi))


@_compiled(**_JIT)
def _lazy_row_update(ind, val, p0, p1, lut, sc, dz, do, w, s0, wo, P, last, s, lr, mom, nesterov,
                     wd, use_wd, use_mom):
    """SGD step of the first-layer rows read by one input row (a batch of one): the gradient of
    row j is x_j * dz, formed on the fly; rows of zero inputs are left for a later catch-up."""
    for p in range(p0, p1):
        j = np.int64(_ld(ind, p))
        last[j] = s + 1
        _sgd_row(w, s0, wo + j * P, P, _xval(_ld(val, p), lut, sc), dz, do, lr, mom, nesterov,
                 wd, use_wd, use_mom)


@_compiled(**_JIT)
def _dense_rows_update(x, xo, nin, dz, do, w, s0, wo, P, lr, mom, nesterov, wd, use_wd, use_mom):
    """SGD step of a layer's weight rows w[wo + k*P : +P], k < nin, for a batch of one: the
    gradient of row k is x[xo + k] * dz[do:do+P]. Rows of zero inputs (ReLU zeros) have a zero
    gradient and are skipped when that leaves them unchanged (no momentum, no decay)."""
    skip_zeros = not (use_mom or use_wd)
    for k in range(nin):
        xk = _ld(x, xo + k)
        if skip_zeros and xk == _cst(x, 0.0):
            continue
        _sgd_row(w, s0, wo + k * P, P, xk, dz, do, lr, mom, nesterov, wd, use_wd, use_mom)


@_compiled(**_JIT)
def _sp_epoch(X, sparse, ptr, ind, val, lut, sc, labels, indicators, order, rows, mats, vecs, act,
              out_kind, solver, lr64, mom64, nesterov, beta1, beta2, eps64, alpha, t, stats,
              max_chunks, rows_per_chunk, lazy_max_rows, nparts, block_min):
    """One epoch on sparse inputs (see the section comment). Returns the new Adam step count."""
    n_state = 1 if solver == 0 else 2
    L = len(mats) // (n_state + 1)
    W0 = mats[0]
    V = _lanes(W0)
    d = W0.shape[0]
    nin = np.empty(L, np.int64)
    nout = np.empty(L, np.int64)
    P = np.empty(L, np.int64)
    woff = np.empty(L, np.int64)
    wboff = np.empty(L, np.int64)
    aoff = np.empty(L, np.int64)
    wsize = 0
    asize = 0
    for l in range(L):
        nin[l] = mats[l].shape[0]
        nout[l] = mats[l].shape[1]
        P[l] = (nout[l] + V - 1) // V * V
        woff[l] = wsize
        wsize += nin[l] * P[l]
        wboff[l] = wsize
        wsize += P[l]
        aoff[l] = asize
        asize += _BLOCK_ROWS * P[l]
    bufs = np.zeros((3, wsize), W0.dtype)
    _pack(mats, vecs, L, n_state, P, woff, wboff, bufs, bool(False))
    w = bufs[0]
    s0 = bufs[1]
    s1 = bufs[2]
    nch_max = max(1, min(max_chunks, rows // rows_per_chunk))
    g = np.zeros((nch_max, wsize), W0.dtype)
    a = np.zeros((nch_max, asize), W0.dtype)
    dz = np.zeros((nch_max, asize), W0.dtype)
    res = np.zeros((nch_max, 2), np.float64)
    xb = np.zeros((nch_max, 1 if sparse else _BLOCK_ROWS * d), W0.dtype)
    nitems = 0
    for l in range(L):
        nitems += (nin[l] * P[l] + _UPDATE_PIECE - 1) // _UPDATE_PIECE + 1
    items = np.empty((nitems, 3), np.int64)  # (lo, hi, decay) pieces of the flat parameters
    q = 0
    q_w0 = 0  # items[q_w0:] leaves out the first layer's weights (woff[0] == 0)
    for l in range(L):
        if l == 1:
            q_w0 = q - 1
        for lo in range(woff[l], wboff[l], _UPDATE_PIECE):
            items[q, 0] = lo
            items[q, 1] = min(lo + _UPDATE_PIECE, wboff[l])
            items[q, 2] = 1
            q += 1
        items[q, 0] = wboff[l]
        items[q, 1] = wboff[l] + P[l]
        items[q, 2] = 0
        q += 1
    if L == 1:
        q_w0 = q - 1
    rest = items[q_w0:]  # first-layer bias, then the other layers
    # The parts of a parallel step's update: one per thread, each a range of at least 16
    # first-layer rows when that layer is summed by rows (the sums do not depend on the split).
    w0_parts = max(1, min(nparts, d // 16))
    by_rows = sparse and d * P[0] > 8 * rows  # else: the chunk sums are cheaper to reduce
    keep = np.zeros(rows * P[0] if (by_rows and nch_max > 1) else 1, W0.dtype)
    # per chunk, the first-layer nonzeros of its rows filed by input (see _rows_flat): room for
    # every row of the largest chunk of any step
    cap = 0
    if by_rows and nch_max > 1:
        for m_step in (rows, order.shape[0] % rows):
            nch_step = max(1, min(nch_max, m_step // rows_per_chunk))
            if nch_step > 1:
                cap = max(cap, (m_step + nch_step - 1) // nch_step)
    bcnt = np.zeros((nch_max, d), np.int64)
    bi = np.empty((nch_max, max(1, cap * d)), np.int32)
    bx = np.empty((nch_max, max(1, cap * d)), W0.dtype)
    # per chunk, scratch of _grad_sparse_block (a wide sparse first layer's gradient, by blocks)
    sort = sparse and P[0] >= 4 * V
    cstart = np.empty((nch_max, d + 1 if sort else 1), np.int64)
    cfill = np.empty((nch_max, d if sort else 1), np.int64)
    ci = np.empty((nch_max, _BLOCK_ROWS * d if sort else 1), np.int32)
    cx = np.empty((nch_max, _BLOCK_ROWS * d if sort else 1), W0.dtype)
    iota = np.arange(max(_BLOCK_ROWS, nin.max()))  # dense inputs k of a layer, rows i of a block
    no_keep = np.zeros(1, W0.dtype)
    g0 = g[0]
    a0 = a[0]
    dz0 = dz[0]
    xb0 = xb[0]
    lr = _cst(W0, lr64)
    mom = _cst(W0, mom64)
    use_mom = mom64 != 0.0
    b1 = _cst(W0, beta1)
    c1 = _cst(W0, 1.0 - beta1)
    b2 = _cst(W0, beta2)
    c2 = _cst(W0, 1.0 - beta2)
    eps = _cst(W0, eps64)
    n = order.shape[0]
    nsteps = (n + rows - 1) // rows
    lazy = sparse and solver == 0 and rows <= lazy_max_rows
    lazy_skip = lazy and not use_mom and alpha == 0.0  # untouched rows do not change at all
    catch = lazy and not lazy_skip
    last = np.zeros(d, np.int64)
    flag = np.zeros(d, np.uint8)
    touched = np.empty(d, np.int64)
    if catch:
        pw = _zero_grad_powers(nsteps, lr, mom, _cst(W0, alpha / rows), nesterov, use_mom)
    else:
        pw = np.zeros((1, 4), np.float64)
    P0 = P[0]
    # typed (not literal) constant arguments: a literal would compile the callee once more
    sgd = np.int64(0)
    zero_i = np.int64(0)  # _upd_par: no first-layer parts; _dense_rows_update: offset 0
    one_i = np.int64(1)
    all_rows = np.int64(-1)
    no_decay = bool(False)
    one = np.ones(1, W0.dtype)  # the input of a bias
    s = np.int64(0)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        scale = _cst(W0, 1.0 / m)
        wd = _cst(W0, alpha / m)
        use_wd = alpha / m != 0.0
        lazy_step = lazy and m == rows
        one_row = lazy_step and rows == 1
        nt = np.int64(0)
        r_one = order[start]
        if one_row:  # bring the rows of W0 this input reads up to date
            if catch:
                _lazy_rows_catch_up(ind, val, ptr[r_one], ptr[r_one + 1], w, s0, woff[0], P0,
                                    last, s, pw, use_mom)
        elif lazy_step:  # the rows of W0 this step reads: list them, bring them up to date
            for i in range(m):
                r = order[start + i]
                for p in range(ptr[r], ptr[r + 1]):
                    j = np.int64(ind[p])
                    if flag[j] == 0:
                        flag[j] = 1
                        touched[nt] = j
                        nt += 1
            for q in range(nt):
                flag[touched[q]] = 0
            if catch:
                _catch_up_flat(w, s0, woff[0], P0, touched, nt, last, s, pw, use_mom)
        elif catch:  # a shorter last step: bring every row up to date first
            _catch_up_flat(w, s0, woff[0], P0, touched, -d, last, s, pw, use_mom)
        nch = max(1, min(nch_max, m // rows_per_chunk))
        if nch > 1:
            _rows_flat_par(X, sparse, ptr, ind, val, lut, sc, labels, indicators, order, start, m,
                           L, nin, nout, P, woff, wboff, aoff, w, act, out_kind, scale, g, a, dz,
                           xb, res, nch, keep, bcnt, bi, bx, cstart, cfill, ci, cx, iota,
                           block_min)
        else:
            _rows_flat(X, sparse, ptr, ind, val, lut, sc, labels, indicators, order, start,
                       np.int64(0), m, L, nin, nout, P, woff, wboff, aoff, w, act, out_kind, scale,
                       g0, a0, dz0, xb0, res, np.int64(0), not one_row, no_keep, bcnt[0], bi[0],
                       bx[0], cstart[0], cfill[0], ci[0], cx[0], iota, block_min)
        total = 0.0
        hits = 0.0
        for c in range(nch):
            total += res[c, 0]
            hits += res[c, 1]
            res[c, 0] = 0.0
            res[c, 1] = 0.0
        stats[0] += total
        stats[1] += hits
        if solver == 1:
            t += 1
            lr_t = _cst(W0, lr64 * math.sqrt(1.0 - math.pow(beta2, float(t)))
                        / (1.0 - math.pow(beta1, float(t))))
        else:
            lr_t = lr
        if nch > 1 and by_rows:  # first layer by rows of W0, the rest summed over chunks
            _upd_par(bcnt, bi, bx, keep, P0, d, w0_parts, solver, w, g, nch, s0, s1, rest, lr,
                     mom, nesterov, wd, use_wd, use_mom, lr_t, b1, c1, b2, c2, eps)
            s += 1
            continue
        if nch > 1:  # the chunks' gradients are summed inside the parallel update
            _upd_par(bcnt, bi, bx, keep, P0, zero_i, nparts, solver, w, g, nch, s0, s1, items,
                     lr, mom, nesterov, wd, use_wd, use_mom, lr_t, b1, c1, b2, c2, eps)
            s += 1
            continue
        if one_row:  # per-example SGD: every layer steps from a0 and dz0, no gradient stored
            _lazy_row_update(ind, val, ptr[r_one], ptr[r_one + 1], lut, sc, dz0, aoff[0], w, s0,
                             woff[0], P0, last, s, lr, mom, nesterov, wd, use_wd, use_mom)
            for l in range(L):
                if l > 0:
                    _dense_rows_update(a0, aoff[l - 1], nin[l], dz0, aoff[l], w, s0, woff[l], P[l],
                                       lr, mom, nesterov, wd, use_wd, use_mom)
                _dense_rows_update(one, zero_i, one_i, dz0, aoff[l], w, s0, wboff[l], P[l], lr,
                                   mom, nesterov, wd, no_decay, use_mom)
            s += 1
            continue
        for l in range(L):
            if l == 0 and lazy_step:
                _upd_flat(sgd, w, g0, s0, s1, woff[0], P0, touched, nt, lr, mom, nesterov, wd,
                          use_wd, use_mom, lr_t, b1, c1, b2, c2, eps)
                if catch:
                    for q in range(nt):
                        last[touched[q]] = s + 1
            else:
                _upd_flat(solver, w, g0, s0, s1, woff[l], wboff[l], touched, all_rows, lr, mom,
                          nesterov, wd, use_wd, use_mom, lr_t, b1, c1, b2, c2, eps)
                if l == 0 and catch:
                    for j in range(d):
                        last[j] = s + 1
            _upd_flat(solver, w, g0, s0, s1, wboff[l], wboff[l] + P[l], touched, all_rows, lr,
                      mom, nesterov, wd, no_decay, use_mom, lr_t, b1, c1, b2, c2, eps)
        s += 1
    if catch:
        _catch_up_flat(w, s0, woff[0], P0, touched, -d, last, nsteps, pw, use_mom)
    _pack(mats, vecs, L, n_state, P, woff, wboff, bufs, bool(True))
    return t


# ----------------------------------------------------------------------------- the backend
class NumbaBackend(Backend):
    """CPU kernels compiled by Numba (float32/float64), with a fused one-call epoch."""

    name = "numba"
    xp = np

    #: Kernels on fewer elements run on one thread. Mini-batch kernels stay serial on purpose: in
    #: a composed step they alternate with BLAS calls, and two busy-waiting thread pools (OpenMP
    #: here, OpenBLAS there) on few cores slow each other down by whole scheduler time slices.
    parallel_min_elements = 1 << 22
    #: The fused epoch visits only nonzero inputs when X has at most this fraction of nonzeros.
    sparse_max_density = 0.5
    #: Dense inputs (not sparse enough) take the fused path only for batches of at most this
    #: many rows; larger batches run composed, where BLAS does the GEMMs faster.
    dense_fused_max_rows = 64
    #: Fused epoch: a step of m rows is split into min(fused_chunks, m // fused_rows_per_chunk)
    #: row chunks run in parallel, each summing its own gradient (a sparse first layer's is summed
    #: afterwards by rows of W). The split depends on m only, not on the thread count, so neither
    #: does the result.
    fused_chunks = 4
    fused_rows_per_chunk = 16
    #: Sparse fused SGD with batches of at most this many rows updates only the first-layer rows
    #: its inputs touch; the zero-gradient steps of the others are applied in closed form later.
    lazy_max_rows = 4
    #: Blocks of at least this many rows sum a wide (>= 4 vectors) first layer's weight gradient
    #: input by input (one read-modify-write of each touched row of W per block, not per row).
    block_grad_min_rows = 4

    def __init__(self):
        self._csr_cache = {}
        self._list_cache = {}

    # ------------------------------------------------------------------ plumbing
    @classmethod
    def availability(cls):
        if numba is None:
            return False, _IMPORT_ERROR
        return True, ""

    @contextlib.contextmanager
    def thread_limit(self, n_threads):
        if n_threads is None:
            yield
            return
        previous = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            with threadpool_limits(limits=n_threads, user_api="blas"):  # np.dot's BLAS
                yield
        finally:
            numba.set_num_threads(previous)

    def describe(self):
        info = {"numba": numba.__version__ if numba is not None else "unavailable",
                "numpy": np.__version__}
        if numba is None:
            return info
        info["threads"] = str(numba.get_num_threads())
        try:
            info["threading_layer"] = numba.threading_layer()
        except ValueError:  # only known once a parallel kernel has run
            layer = numba.config.THREADING_LAYER
            info["threading_layer"] = f"not yet chosen (requested: {layer})"
        info["cache"] = _cache_info()
        info["blas"] = _blas_info()
        return info

    # ------------------------------------------------------------------ helpers
    def _chunks(self, rows, elements):
        """Number of parallel chunks for ``rows`` rows of ``elements`` elements in all, or 1."""
        if elements < self.parallel_min_elements or rows < 2:
            return 1
        threads = numba.get_num_threads()
        if threads < 2:
            return 1
        return int(max(1, min(rows // 16, 4 * threads)))

    # ------------------------------------------------------------------ kernels
    def matmul(self, a, b, out, trans_a=False, trans_b=False):
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        if _blas_ready(a) and _blas_ready(b) and out.flags.c_contiguous and \
                a.dtype == b.dtype == out.dtype and a.dtype in _FLOATS and a.size and b.size:
            _matmul(a, b, out)
        else:  # odd layouts or empty operands: NumPy's matmul (no numba copy of 'A' arrays)
            np.matmul(a, b, out=out)
        return out

    def bias_act(self, z, b, act):
        code = _act_code(act)
        nch = self._chunks(z.shape[0], z.size)
        if nch > 1:
            _bias_act_par(z, b, code, nch)
        else:
            _bias_act_ser(z, b, code)
        return z

    def act_grad(self, da, a, act):
        code = _act_code(act)
        if code == _IDENTITY:
            return da
        nch = self._chunks(da.shape[0], da.size)
        if nch > 1:
            _act_grad_par(da, a, code, nch)
        else:
            _act_grad_ser(da, a, code)
        return da

    def softmax_xent(self, logits, y, dlogits, stats, scale):
        _check_label_range(y, logits.shape[1])
        sc = logits.dtype.type(scale)
        nch = self._chunks(logits.shape[0], logits.size)
        if nch > 1:
            _loss_par(0, logits, y, dlogits, sc, stats, nch)
        else:
            _loss_ser(0, logits, y, dlogits, sc, stats)
        return dlogits

    def sigmoid_bce(self, logits, targets, dlogits, stats, scale):
        if targets.ndim == 1:
            _check_label_range(targets, logits.shape[1])
        sc = logits.dtype.type(scale)
        nch = self._chunks(logits.shape[0], logits.size)
        if nch > 1:
            _loss_par(1, logits, targets, dlogits, sc, stats, nch)
        else:
            _loss_ser(1, logits, targets, dlogits, sc, stats)
        return dlogits

    def softmax(self, z):
        nch = self._chunks(z.shape[0], z.size)
        if nch > 1:
            _softmax_par(z, nch)
        else:
            _softmax_ser(z)
        return z

    def col_sum(self, dz, out):
        nch = self._chunks(dz.shape[1], dz.size)
        if nch > 1:
            _col_sum_par(dz, out, min(nch, dz.shape[1]))
        else:
            _col_sum_ser(dz, out)
        return out

    def sgd_step(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        flat = _flat_views(param, grad, velocity)
        if flat is None:  # not all C-contiguous: the reference formula
            from .numpy_backend import NumpyBackend
            return NumpyBackend.sgd_step(self, param, grad, velocity, lr, momentum, nesterov,
                                         weight_decay)
        p, g, v = flat
        T = param.dtype.type
        args = (T(lr), T(momentum), bool(nesterov), T(weight_decay), bool(weight_decay),
                momentum != 0)
        nch = self._chunks(p.shape[0], p.size)
        if nch > 1:
            _sgd_par(p, g, v, *args, nch)
        else:
            _sgd_ser(p, g, v, *args)
        return param

    def adam_step(self, param, grad, m, v, lr_t, beta1, beta2, eps, weight_decay):
        flat = _flat_views(param, grad, m, v)
        if flat is None:
            from .numpy_backend import NumpyBackend
            return NumpyBackend.adam_step(self, param, grad, m, v, lr_t, beta1, beta2, eps,
                                          weight_decay)
        p, g, m1, v1 = flat
        T = param.dtype.type
        args = (T(lr_t), T(beta1), T(1 - beta1), T(beta2), T(1 - beta2), T(eps),
                T(weight_decay), bool(weight_decay))
        nch = self._chunks(p.shape[0], p.size)
        if nch > 1:
            _adam_par(p, g, m1, v1, *args, nch)
        else:
            _adam_ser(p, g, m1, v1, *args)
        return param

    def gather(self, X, idx, out, scale):
        if X.ndim != 2 or out.ndim != 2 or out.dtype not in _FLOATS:
            from .numpy_backend import NumpyBackend
            return NumpyBackend.gather(self, X, idx, out, scale)
        bad = _fix_index(idx, X.shape[0])
        if bad >= 0:
            raise IndexError(f"index {idx[bad]} is out of bounds for axis 0 with size {X.shape[0]}")
        lut, sc = _lut_for(X.dtype, out.dtype, scale)
        nch = self._chunks(idx.shape[0], out.size)
        if nch > 1:
            _gather_par(X, idx, out, lut, sc, nch)
        else:
            _gather_ser(X, idx, out, lut, sc)
        return out

    def take(self, y, idx, out):
        bad = _fix_index(idx, y.shape[0])
        if bad >= 0:
            raise IndexError(f"index {idx[bad]} is out of bounds for axis 0 with size {y.shape[0]}")
        if y.ndim == 1 and out.ndim == 1:
            _take1(y, idx, out)
        elif y.ndim == 2 and out.ndim == 2:
            _take2(y, idx, out)
        else:
            np.take(y, idx, axis=0, out=out)
        return out

    def argmax_rows(self, z, out):
        _argmax_rows(z, out)
        return out

    # ------------------------------------------------------------------ fused epoch
    def fused_epoch_supported(self, job):
        try:
            coefs, intercepts = list(job.coefs), list(job.intercepts)
            if not coefs or len(coefs) != len(intercepts):
                return False
            dtype = coefs[0].dtype
            if dtype not in _FLOATS:
                return False
            if job.activation not in _ACT_CODES or job.output not in ("softmax", "sigmoid"):
                return False
            if job.solver not in ("sgd", "adam"):
                return False
            n_state = 2 if job.solver == "sgd" else 4
            if len(job.opt_state) != n_state:
                return False
            arrays = coefs + intercepts + [a for s in job.opt_state for a in s]
            if not all(isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
                       for a in arrays):
                return False
            for k in range(n_state):
                like = coefs if k % 2 == 0 else intercepts
                if len(job.opt_state[k]) != len(like) or any(
                        s.shape != p.shape for s, p in zip(job.opt_state[k], like)):
                    return False
            X, targets, order = job.X, job.targets, job.order
            if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == coefs[0].shape[0]
                    and (X.dtype == np.uint8 or X.dtype in _FLOATS)):
                return False
            if order is not None and not (isinstance(order, np.ndarray) and order.ndim == 1
                                          and order.dtype.kind in "iu"):
                return False
            k = coefs[-1].shape[1]
            if not isinstance(targets, np.ndarray) or targets.shape[0] != X.shape[0]:
                return False
            if targets.ndim == 1:
                if targets.dtype.kind not in "iu":
                    return False
            elif not (targets.ndim == 2 and job.output == "sigmoid" and targets.shape[1] == k):
                return False
            if int(job.batch_size) < 1:
                return False
            if not (isinstance(job.stats, np.ndarray) and job.stats.dtype == np.float64):
                return False
            rows = min(int(job.batch_size), X.shape[0])
            return rows <= self.dense_fused_max_rows or self._sparse_of(X) is not None
        except (AttributeError, TypeError):
            return False

    def fused_epoch(self, job):
        coefs, intercepts = list(job.coefs), list(job.intercepts)
        dtype = coefs[0].dtype
        X = job.X if job.X.flags.c_contiguous else np.ascontiguousarray(job.X)
        if job.order is None:  # stored order: batches are slices of X
            order = _arange(X.shape[0])
        else:
            order = np.ascontiguousarray(job.order, dtype=np.int64)
            bad = _fix_index(order, X.shape[0])
            if bad >= 0:
                raise IndexError(f"order holds {order[bad]}, out of range for {X.shape[0]} rows")
            if order.shape[0] and order.min() < 0:
                order = np.where(order < 0, order + X.shape[0], order)
        n = order.shape[0]
        if n == 0:
            return
        k = coefs[-1].shape[1]
        if job.targets.ndim == 1:
            labels = np.ascontiguousarray(job.targets, dtype=np.int64)
            _check_label_range(labels, k)
            indicators = np.zeros((1, 1), dtype)
            kind = 0 if job.output == "softmax" else 1
        else:
            labels = np.zeros(1, np.int64)
            indicators = np.ascontiguousarray(job.targets, dtype=dtype)
            kind = 2
        lut, sc = _lut_for(X.dtype, dtype, job.x_scale)
        sparse = self._sparse_of(X)
        if sparse is None:
            ptr = np.zeros(1, np.int64)
            ind = np.zeros(1, np.uint16)
            val = np.zeros(1, X.dtype)
        else:
            ptr, ind, val = sparse
        rows = min(int(job.batch_size), n)
        if job.solver == "sgd":
            mats = coefs + list(job.opt_state[0])
            vecs = intercepts + list(job.opt_state[1])
        else:
            mats = coefs + list(job.opt_state[0]) + list(job.opt_state[2])
            vecs = intercepts + list(job.opt_state[1]) + list(job.opt_state[3])
        t = _sp_epoch(
            X, sparse is not None, ptr, ind, val, lut, sc, labels, indicators, order, rows,
            self._typed(mats), self._typed(vecs), _ACT_CODES[job.activation], kind,
            0 if job.solver == "sgd" else 1, float(job.learning_rate),
            float(job.momentum), bool(job.nesterovs_momentum), float(job.beta_1), float(job.beta_2),
            float(job.epsilon), float(job.alpha), int(job.t), job.stats, self.fused_chunks,
            self.fused_rows_per_chunk, self.lazy_max_rows, numba.get_num_threads(),
            self.block_grad_min_rows)
        job.t = int(t)

    def _typed(self, arrays):
        """A numba typed List of ``arrays``, reused while it holds the very same arrays."""
        key = tuple(id(a) for a in arrays)
        hit = self._list_cache.get(key)
        if hit is not None and all(x is y for x, y in zip(hit[0], arrays)):
            return hit[1]
        lst = _TypedList.empty_list(numba.typeof(arrays[0]))
        for a in arrays:
            lst.append(a)
        if len(self._list_cache) > 32:
            self._list_cache.clear()
        self._list_cache[key] = (list(arrays), lst)
        return lst

    def _sparse_of(self, X):
        """(indptr, indices, values) of X when it is sparse enough, else None; cached per X."""
        n, d = X.shape
        if n == 0 or d == 0:
            return None
        key = id(X)
        step = max(1, n // 256)
        fp = int(_fingerprint(X.view(np.uint8).reshape(n, -1), step))
        entry = self._csr_cache.get(key)
        ident = (X.__array_interface__["data"][0], X.shape, X.strides, X.dtype.str, fp)
        if entry is not None and entry[0]() is X and entry[1] == ident:
            return entry[2]
        counts = np.empty(n, np.int64)
        nch = max(1, min(n // 256, 4 * numba.get_num_threads()))
        _csr_count(X, counts, nch)
        ptr = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        nnz = int(ptr[-1])
        result = None
        if nnz <= self.sparse_max_density * n * d:
            ind = np.empty(max(nnz, 1), np.uint16 if d <= 65536 else np.int32)
            val = np.empty(max(nnz, 1), X.dtype)
            _csr_fill(X, ptr, ind, val, nch)
            result = (ptr, ind, val)
        try:
            ref = weakref.ref(X, lambda _r, key=key, cache=self._csr_cache: cache.pop(key, None))
        except TypeError:
            return result
        self._csr_cache.clear()  # one X at a time: the training set
        self._csr_cache[key] = (ref, ident, result)
        return result


# ----------------------------------------------------------------------------- module helpers
def _act_code(act):
    try:
        return _ACT_CODES[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}") from None


def _check_label_range(y, k):
    bad = _check_labels(y, k)
    if bad >= 0:
        raise IndexError(f"label {y[bad]} at row {bad} is outside [0, {k})")


def _blas_ready(a):
    return a.ndim == 2 and (a.flags.c_contiguous or a.flags.f_contiguous)


def _flat_views(*arrays):
    if not all(a.flags.c_contiguous for a in arrays):
        return None
    return tuple(a.reshape(-1) for a in arrays)


_ARANGES: dict = {}


def _arange(n):
    """A cached read-only ``np.arange(n)`` (int64), the row order of an unshuffled epoch."""
    a = _ARANGES.get(n)
    if a is None:
        a = np.arange(n, dtype=np.int64)
        a.flags.writeable = False
        _ARANGES.clear()
        _ARANGES[n] = a
    return a


_LUTS: dict = {}


def _lut_for(x_dtype, out_dtype, scale):
    """(lut, sc): uint8 inputs map through a 256-entry table ``T(u) * T(scale)``; others use sc."""
    out_dtype = np.dtype(out_dtype)
    T = out_dtype.type
    sc = T(scale)
    key = (np.dtype(x_dtype).str, out_dtype.str, float(scale))
    lut = _LUTS.get(key)
    if lut is None:
        if np.dtype(x_dtype) == np.uint8:
            lut = np.arange(256).astype(out_dtype)
            if scale != 1:
                lut *= scale
        else:
            lut = np.zeros(1, out_dtype)
        if len(_LUTS) > 64:
            _LUTS.clear()
        _LUTS[key] = lut
    return lut, sc


def _cache_info():
    """Where numba keeps this module's compiled kernels, as numba itself resolved it."""
    impl = getattr(getattr(_bias_act_ser, "_cache", None), "_impl", None)
    locator = getattr(impl, "locator", None)
    if locator is None:  # NullCache: no writable location was found
        return "no cache (no writable location: kernels compile in every process)"
    path = locator.get_cache_path()
    kind = "NUMBA_CACHE_DIR" if os.environ.get("NUMBA_CACHE_DIR") and \
        os.path.abspath(path).startswith(os.path.abspath(os.environ["NUMBA_CACHE_DIR"])) \
        else type(locator).__name__
    return f"{path} ({kind})"


def _blas_info():
    try:
        import scipy
        cfg = scipy.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        return f"scipy {scipy.__version__}: {name}"
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"unknown ({type(exc).__name__})"
