"""SIMD vectors as values of compiled code, and unchecked element access.

A vector is 64 bytes of the compute dtype (16 float32 or 8 float64 lanes) held as an LLVM vector
value, so that accumulators live in registers: with ``fastmath=False`` LLVM keeps accumulations
over memory in memory, and numba does not run the SLP vectorizer. The operations are single LLVM
vector instructions (``vfma``: one rounding per lane, as in BLAS kernels); they address 1-D C
arrays by element offset and are used on buffers padded to whole vectors. ``ld``/``st`` read and
write one element by offset without numba's negative-index wraparound (which would stop LLVM from
vectorizing the loops around them); ``pointer_to`` turns an array's address into a pointer.

Assumes: 64-byte vector registers (AVX-512), 32 of them. Other x86-64 CPUs run the same code (LLVM
splits each vector into the registers there are, lanes and roundings unchanged, so results stay
the same bit for bit) but slower. Measured on an AVX-512 machine with the code compiled for AVX2
(NUMBA_CPU_NAME=haswell, AVX-512 features off): every vector takes two 32-byte registers, and the
16-accumulator inner loop of ``blocks.back_dense`` spills (36 vector moves to and from the stack
per 32 FMAs; none for AVX-512); the seed's fused epochs took 1.13-1.28x as long (batch 128 and
32; batch 1 up to 1.16x). A 32-byte variant with 8 accumulators would suit AVX2 machines.
:func:`registers_hold_vectors` says which kind of CPU Numba compiles for (the backend routes
sparse inputs by it).
"""

from __future__ import annotations

import operator

import numpy as np

from .jit import numba, types

VECTOR_BYTES = 64


def registers_hold_vectors() -> bool:
    """Whether the CPU Numba compiles for has vector registers of VECTOR_BYTES (AVX-512F), as
    Numba sees it: ``NUMBA_CPU_FEATURES`` when set, else the host's features. False without
    Numba."""
    if numba is None:
        return False
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in features.split(",")


if numba is not None:
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic, models, overload, register_model
    from numba.np.numpy_support import as_dtype

    class VecType(types.Type):
        """A VECTOR_BYTES vector of ``dtype`` (float32 or float64)."""

        def __init__(self, dtype):
            self.dtype = dtype
            self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8)
            super().__init__(name=f"FastFNNVec({dtype}x{self.lanes})")

    @register_model(VecType)
    class _VecModel(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            elem = ir.FloatType() if fe_type.dtype == types.float32 else ir.DoubleType()
            super().__init__(dmm, fe_type, ir.VectorType(elem, fe_type.lanes))

    def _vec_suffix(t):
        """LLVM's intrinsic suffix of a VecType or a float type: v8f64, f32, ..."""
        if isinstance(t, VecType):
            return f"v{t.lanes}f{t.dtype.bitwidth}"
        return f"f{t.bitwidth}"

    def _is_float_or_vector(t):
        return isinstance(t, VecType) or t in (types.float32, types.float64)

    def _splat(t, ir_type, value):
        """The IR constant ``value`` of ``ir_type``: in every lane when ``t`` is a VecType (of
        those lanes; ir_type a vector type), else the one value."""
        return ir.Constant(ir_type, [value] * t.lanes if isinstance(t, VecType) else value)

    def _llvm_call(builder, name, ret, args):
        """Call LLVM intrinsic ``name`` on args (IR values), returning IR type ``ret``."""
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ret, [a.type for a in args]), name)
        return builder.call(fn, args)

    def _elem_ptr(context, builder, aryty, ary, off):
        arr = context.make_array(aryty)(context, builder, ary)
        return builder.gep(arr.data, [off])

    @intrinsic
    def lanes(typingctx, like):
        """Lanes of a vector of ``like``'s dtype (a compile-time constant)."""
        n = VECTOR_BYTES // (like.dtype.bitwidth // 8)

        def codegen(context, builder, sig, args):
            return ir.Constant(ir.IntType(64), n)
        return types.int64(like), codegen

    @intrinsic
    def vzero(typingctx, like):
        """A vector of zeros of ``like``'s dtype."""
        vt = VecType(like.dtype)

        def codegen(context, builder, sig, args):
            return ir.Constant(context.get_value_type(vt), None)
        return vt(like), codegen

    @intrinsic
    def vsplat(typingctx, like, x):
        """A vector of ``like``'s dtype with x (cast to that dtype) in every lane."""
        vt = VecType(like.dtype)

        def codegen(context, builder, sig, args):
            ty = context.get_value_type(vt)
            xv = context.cast(builder, args[1], sig.args[1], like.dtype)
            v = builder.insert_element(ir.Constant(ty, ir.Undefined), xv,
                                       ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(ir.IntType(32), vt.lanes), [0] * vt.lanes))
        return vt(like, x), codegen

    @intrinsic
    def vld(typingctx, a, off):
        """Load lanes a[off:off+lanes] (all in bounds)."""
        vt = VecType(a.dtype)

        def codegen(context, builder, sig, args):
            ty = context.get_value_type(vt)
            ptr = builder.bitcast(_elem_ptr(context, builder, sig.args[0], args[0], args[1]),
                                  ty.as_pointer())
            return builder.load(ptr, align=a.dtype.bitwidth // 8)
        return vt(a, off), codegen

    @intrinsic
    def vst(typingctx, a, off, v):
        """Store all lanes of v at a[off:off+lanes]."""
        def codegen(context, builder, sig, args):
            ty = context.get_value_type(sig.args[2])
            ptr = builder.bitcast(_elem_ptr(context, builder, sig.args[0], args[0], args[1]),
                                  ty.as_pointer())
            builder.store(args[2], ptr, align=a.dtype.bitwidth // 8)
            return context.get_dummy_value()
        return types.none(a, off, v), codegen

    def _lanewise(name, doc, arity, emit):
        """An intrinsic ``v<name>`` of ``arity`` (1 to 3) operands of one type, a float or a
        vector, lane by lane: ``emit(builder, args, sig)`` gives its IR value."""
        def typed(*operands):
            if not (_is_float_or_vector(operands[0]) and len(set(operands)) == 1):
                return None
            return operands[0](*operands), codegen

        def codegen(context, builder, sig, args):
            return emit(builder, args, sig)

        op = {1: lambda typingctx, x: typed(x),
              2: lambda typingctx, x, y: typed(x, y),
              3: lambda typingctx, x, y, z: typed(x, y, z)}[arity]
        op.__name__ = op.__qualname__ = f"v{name}"
        op.__doc__ = doc
        return intrinsic(op)

    def _llvm_intrinsic(name):
        """emit for _lanewise: LLVM's ``llvm.<name>`` of the operands."""
        return lambda builder, args, sig: _llvm_call(
            builder, f"llvm.{name}.{_vec_suffix(sig.args[0])}", args[0].type, args)

    def _instruction(method):
        """emit for _lanewise: the LLVM IR builder's ``method`` (fadd, ...) of the operands."""
        return lambda builder, args, sig: getattr(builder, method)(*args)

    vadd = _lanewise("add", "x + y lane by lane.", 2, _instruction("fadd"))
    vsub = _lanewise("sub", "x - y lane by lane.", 2, _instruction("fsub"))
    vmul = _lanewise("mul", "x * y lane by lane.", 2, _instruction("fmul"))
    vdiv = _lanewise("div", "x / y lane by lane (correctly rounded, as the scalar division).", 2,
                     _instruction("fdiv"))
    vfma = _lanewise("fma", "x * y + acc with one rounding per lane (as BLAS kernels do).", 3,
                     _llvm_intrinsic("fma"))
    vsqrt = _lanewise("sqrt", "The square root of each lane (correctly rounded, as np.sqrt).", 1,
                      _llvm_intrinsic("sqrt"))
    vrint = _lanewise("rint", "Each lane rounded to the nearest integer, ties to even.", 1,
                      _llvm_intrinsic("rint"))
    vabs = _lanewise("abs", "|x| of each lane (the sign bit cleared; NaN stays NaN).", 1,
                     _llvm_intrinsic("fabs"))
    vcopysign = _lanewise("copysign", "|x| with the sign bit of y, lane by lane.", 2,
                          _llvm_intrinsic("copysign"))

    @intrinsic
    def where_less(typingctx, x, y, a, b):
        """a where x < y, else b, lane by lane (an ordered compare: b where either is NaN);
        floats too."""
        if not (_is_float_or_vector(x) and x == y == a == b):
            return None

        def codegen(context, builder, sig, args):
            return builder.select(builder.fcmp_ordered("<", args[0], args[1]), args[2], args[3])
        return x(x, y, a, b), codegen

    @intrinsic
    def pow2(typingctx, k):
        """2.0 ** k of each lane of k, which holds integers in the dtype's normal exponent
        range (-1022..1023 in float64, -126..127 in float32; NaN is taken as 0): the float
        built from its exponent bits. Floats too."""
        if not _is_float_or_vector(k):
            return None
        ft = k.dtype if isinstance(k, VecType) else k
        bits, mantissa = (64, 52) if ft == types.float64 else (32, 23)

        def codegen(context, builder, sig, args):
            ty = args[0].type
            int_ty = ir.IntType(bits)
            if isinstance(sig.args[0], VecType):
                int_ty = ir.VectorType(int_ty, sig.args[0].lanes)
            # NaN lanes to 0 first, so that no lane converts out of range (which LLVM makes
            # poison); llvm.fptosi.sat would do it too, but x86 gets it one lane at a time
            k = args[0]
            k = builder.select(builder.fcmp_ordered("ord", k, k), k, ir.Constant(ty, None))
            n = builder.fptosi(k, int_ty)
            biased = builder.add(n, _splat(sig.args[0], int_ty, (1 << (bits - mantissa - 2)) - 1))
            return builder.bitcast(builder.shl(biased, _splat(sig.args[0], int_ty, mantissa)), ty)
        return k(k), codegen

    # Arithmetic operators and np.sqrt on vectors, a scalar operand splatted to every lane: one
    # formula (the optimizer's, say) then serves scalars and vectors alike, with the same roundings.
    def _vector_operator(op, vop):
        @overload(op)
        def _impl(x, y):
            if isinstance(x, VecType) and isinstance(y, VecType):
                return lambda x, y: vop(x, y)
            if isinstance(x, VecType) and isinstance(y, (types.Float, types.Integer)):
                return lambda x, y: vop(x, vsplat(x, y))
            if isinstance(y, VecType) and isinstance(x, (types.Float, types.Integer)):
                return lambda x, y: vop(vsplat(y, x), y)
            return None

    for _op, _vop in ((operator.add, vadd), (operator.sub, vsub), (operator.mul, vmul),
                      (operator.truediv, vdiv)):
        _vector_operator(_op, _vop)

    @overload(np.sqrt)
    def _sqrt_impl(x):
        if isinstance(x, VecType):
            return lambda x: vsqrt(x)
        return None

    @intrinsic
    def vrelu(typingctx, x):
        """0 where x < 0, else x (lane by lane, as the scalar ReLU: NaN and -0.0 pass); floats
        too."""
        def codegen(context, builder, sig, args):
            zero = ir.Constant(args[0].type, None)
            return builder.select(builder.fcmp_ordered("<", args[0], zero), zero, args[0])
        return x(x), codegen

    @intrinsic
    def flush_subnormal(typingctx, x):
        """0 where x is subnormal (nonzero, |x| below its dtype's smallest normal number), else x
        (zeros keep their sign): a float or a vector, lane by lane. Compares and a select, no
        arithmetic on the subnormal."""
        if not _is_float_or_vector(x):
            return None
        ft = x.dtype if isinstance(x, VecType) else x
        tiny = float(np.finfo(as_dtype(ft)).tiny)

        def codegen(context, builder, sig, args):
            ty = args[0].type
            limit = _splat(sig.args[0], ty, tiny)
            magnitude = _llvm_call(builder, f"llvm.fabs.{_vec_suffix(sig.args[0])}", ty,
                                   [args[0]])
            zero = ir.Constant(ty, None)
            small = builder.and_(builder.fcmp_ordered("<", magnitude, limit),
                                 builder.fcmp_ordered("!=", args[0], zero))
            return builder.select(small, zero, args[0])
        return x(x), codegen

    @intrinsic
    def vstep(typingctx, x):
        """1 where x > 0, else 0 (lane by lane: ReLU's derivative, as the contract's act_grad)."""
        def codegen(context, builder, sig, args):
            ty = args[0].type
            return builder.select(builder.fcmp_ordered(">", args[0], ir.Constant(ty, None)),
                                  _splat(sig.args[0], ty, 1.0),
                                  ir.Constant(ty, None))
        return x(x), codegen

    @intrinsic
    def vst_sums(typingctx, out, off, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12,
                 v13, v14, v15):
        """out[off + j] = the sum of the lanes of vj, j < 16: each sum by vhsum's halving tree
        (the same roundings), but the 16 trees share their shuffles: pairs of vectors are
        reduced together, halves of lanes into one vector, until each lane holds one sum."""
        vt = v0

        def codegen(context, builder, sig, args):
            n = vt.lanes
            i32 = ir.IntType(32)
            vecs = list(args[2:])
            for g in range(0, 16, n):  # float64: two groups of 8 vectors
                cur = vecs[g:g + n]
                seg = n  # each vector: n // seg segments of seg lanes, one per sum
                while len(cur) > 1:
                    half = seg // 2
                    lo = [b + j * seg + t for b in (0, n) for j in range(n // seg)
                          for t in range(half)]
                    lo_mask = ir.Constant(ir.VectorType(i32, n), lo)
                    hi_mask = ir.Constant(ir.VectorType(i32, n), [i + half for i in lo])
                    nxt = []
                    for x, y in zip(cur[0::2], cur[1::2]):
                        nxt.append(builder.fadd(builder.shuffle_vector(x, y, lo_mask),
                                                builder.shuffle_vector(x, y, hi_mask)))
                    cur = nxt
                    seg = half
                ptr = _elem_ptr(context, builder, sig.args[0], args[0],
                                builder.add(args[1], ir.Constant(args[1].type, g)))
                builder.store(cur[0], builder.bitcast(ptr, cur[0].type.as_pointer()),
                              align=out.dtype.bitwidth // 8)
            return context.get_dummy_value()
        return types.none(out, off, *([vt] * 16)), codegen

    @intrinsic
    def vhsum(typingctx, v):
        """Sum of the lanes by a fixed halving tree (deterministic)."""
        def codegen(context, builder, sig, args):
            x = args[0]
            n = sig.args[0].lanes
            i32 = ir.IntType(32)
            while n > 1:
                h = n // 2
                lo = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(i32, h),
                                                              list(range(h))))
                hi = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(i32, h),
                                                              list(range(h, n))))
                x = builder.fadd(lo, hi)
                n = h
            return builder.extract_element(x, ir.Constant(i32, 0))
        return v.dtype(v), codegen

    @intrinsic
    def ld(typingctx, a, off):
        """a.ravel()[off] for a C array (no negative-index wraparound, no bounds check)."""
        def codegen(context, builder, sig, args):
            return builder.load(_elem_ptr(context, builder, sig.args[0], args[0], args[1]))
        return a.dtype(a, off), codegen

    @intrinsic
    def pointer_to(typingctx, address, like):
        """The int64 ``address`` as a pointer to ``like``'s dtype, for ``numba.carray``: memory
        that the caller keeps alive and that holds that dtype."""
        ptrty = types.CPointer(like.dtype)

        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(ptrty))
        return ptrty(address, like), codegen

    @intrinsic
    def st(typingctx, a, off, x):
        """a.ravel()[off] = x for a C array (x cast to a's dtype)."""
        def codegen(context, builder, sig, args):
            v = context.cast(builder, args[2], sig.args[2], a.dtype)
            builder.store(v, _elem_ptr(context, builder, sig.args[0], args[0], args[1]))
            return context.get_dummy_value()
        return types.none(a, off, x), codegen
else:  # pragma: no cover
    lanes = vzero = vsplat = vld = vst = vfma = vadd = vsub = vmul = vdiv = vsqrt = None
    vrint = vabs = vcopysign = where_less = pow2 = None
    vrelu = vstep = vst_sums = vhsum = ld = st = pointer_to = None
