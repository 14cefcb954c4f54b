"""Register-blocked forward, backward and weight-gradient loops of the fused epoch.

Each works on the padded flat buffers of :mod:`.layout` with the vectors of :mod:`.vectors`:
several vectors of a weight row accumulate in registers while the inputs stream past, so every
input value and every weight row is loaded once per pass. A sparse first layer visits only the
nonzero inputs of a row (its CSR entries); dense inputs go through the same loops with an arange
as their indices. Summation orders are fixed (inputs in order, rows in order), so results do not
depend on the thread count.

Assumes: 64-byte vectors, 32 vector registers (AVX-512): ``_fwd_pass`` holds 8 accumulators,
``grad_col`` 4 and ``back_dense`` 16 sums plus their operands. On AVX2 (16 registers of 32 bytes)
each vector takes two registers and ``back_dense`` spills; see :mod:`.vectors` for the numbers.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .elementary import activation
from .jit import JIT, JIT_INLINE, cast_like, compiled, input_value
from .vectors import (ld, lanes, st, vadd, vfma, vhsum, vld, vmul, vrelu, vsplat, vst,
                      vst_sums, vstep, vsub, vzero)

#: Input rows as fwd_rows, grad_sparse and grad_sparse_block read them: row r's entries are
#: p = indptr[r] .. indptr[r + 1], entry p is input indices[p] with value values[dv + p], which
#: jit.input_value turns into the compute dtype with lut (uint8) or x_scale. The epoch's sparse
#: inputs: their CSR copy (dv = 0). A dense row of n values at x[o:o+n]: indices an arange of at
#: least n, values x, dv = o (indptr is not read: the caller gives the entries 0..n).
Inputs = namedtuple("Inputs", ["indptr", "indices", "values", "lut", "x_scale"])


@compiled(**JIT_INLINE)
def _fwd_pass(src, p0, p1, dv, w, wo, P, out, oo, wide):
    """One pass of fwd_rows over 8 vectors of outputs (``wide``) or 4: out[oo:oo+8V or 4V] =
    sum over p of x_p * w[wo + ind[p]*P : +8V or 4V]. ``wide`` is a constant at each call
    site, so the inlined copy keeps no test in its loop."""
    ind = src.indices
    val = src.values
    lut = src.lut
    sc = src.x_scale
    V = lanes(w)
    a0 = vzero(w)
    a1 = a0
    a2 = a0
    a3 = a0
    a4 = a0
    a5 = a0
    a6 = a0
    a7 = a0
    for p in range(p0, p1):
        xs = vsplat(w, input_value(ld(val, dv + p), lut, sc))
        base = wo + np.int64(ld(ind, p)) * P
        a0 = vfma(xs, vld(w, base), a0)
        a1 = vfma(xs, vld(w, base + V), a1)
        a2 = vfma(xs, vld(w, base + 2 * V), a2)
        a3 = vfma(xs, vld(w, base + 3 * V), a3)
        if wide:
            a4 = vfma(xs, vld(w, base + 4 * V), a4)
            a5 = vfma(xs, vld(w, base + 5 * V), a5)
            a6 = vfma(xs, vld(w, base + 6 * V), a6)
            a7 = vfma(xs, vld(w, base + 7 * V), a7)
    vst(out, oo, a0)
    vst(out, oo + V, a1)
    vst(out, oo + 2 * V, a2)
    vst(out, oo + 3 * V, a3)
    if wide:
        vst(out, oo + 4 * V, a4)
        vst(out, oo + 5 * V, a5)
        vst(out, oo + 6 * V, a6)
        vst(out, oo + 7 * V, a7)


@compiled(**JIT_INLINE)
def fwd_rows(src, p0, p1, dv, w, wo, P, out, oo):
    """out[oo:oo+P] = sum over p in p0..p1 of x_p * w[wo + ind[p]*P : +P], with x_p and ind
    from ``src`` (see Inputs). A sparse input row: its CSR nonzeros (dv = 0). A dense input
    vector of n values at values[o:o+n]: indices an arange, p0 = 0, p1 = n, dv = o."""
    ind = src.indices
    val = src.values
    lut = src.lut
    sc = src.x_scale
    V = lanes(w)
    c0 = 0
    while c0 < P:
        nb = (P - c0) // V
        if nb >= 8:  # eight vectors per pass: each index and value loaded once per 8
            _fwd_pass(src, p0, p1, dv, w, wo + c0, P, out, oo + c0, True)
            c0 += 8 * V
        elif nb >= 4:
            _fwd_pass(src, p0, p1, dv, w, wo + c0, P, out, oo + c0, False)
            c0 += 4 * V
        elif nb >= 2:
            a0 = vzero(w)
            a1 = a0
            a2 = a0
            a3 = a0
            p = p0
            while p + 1 < p1:
                x0 = vsplat(w, input_value(ld(val, dv + p), lut, sc))
                x1 = vsplat(w, input_value(ld(val, dv + p + 1), lut, sc))
                base0 = wo + np.int64(ld(ind, p)) * P + c0
                base1 = wo + np.int64(ld(ind, p + 1)) * P + c0
                a0 = vfma(x0, vld(w, base0), a0)
                a1 = vfma(x0, vld(w, base0 + V), a1)
                a2 = vfma(x1, vld(w, base1), a2)
                a3 = vfma(x1, vld(w, base1 + V), a3)
                p += 2
            if p < p1:
                x0 = vsplat(w, input_value(ld(val, dv + p), lut, sc))
                base0 = wo + np.int64(ld(ind, p)) * P + c0
                a0 = vfma(x0, vld(w, base0), a0)
                a1 = vfma(x0, vld(w, base0 + V), a1)
            vst(out, oo + c0, vadd(a0, a2))
            vst(out, oo + c0 + V, vadd(a1, a3))
            c0 += 2 * V
        else:
            a0 = vzero(w)
            a1 = a0
            a2 = a0
            a3 = a0
            p = p0
            wc = wo + c0
            while p + 3 < p1:
                a0 = vfma(vsplat(w, input_value(ld(val, dv + p), lut, sc)),
                          vld(w, wc + np.int64(ld(ind, p)) * P), a0)
                a1 = vfma(vsplat(w, input_value(ld(val, dv + p + 1), lut, sc)),
                          vld(w, wc + np.int64(ld(ind, p + 1)) * P), a1)
                a2 = vfma(vsplat(w, input_value(ld(val, dv + p + 2), lut, sc)),
                          vld(w, wc + np.int64(ld(ind, p + 2)) * P), a2)
                a3 = vfma(vsplat(w, input_value(ld(val, dv + p + 3), lut, sc)),
                          vld(w, wc + np.int64(ld(ind, p + 3)) * P), a3)
                p += 4
            while p < p1:
                a0 = vfma(vsplat(w, input_value(ld(val, dv + p), lut, sc)),
                          vld(w, wc + np.int64(ld(ind, p)) * P), a0)
                p += 1
            vst(out, oo + c0, vadd(vadd(a0, a1), vadd(a2, a3)))
            c0 += V


@compiled(**JIT)  # a call per row: one copy a signature, not one at each of its inlined callers
def _smooth_act_row(a, oo, w, bo, P, n, act):
    """bias_act_row of the sigmoid (act 2) and tanh (3), by elementary's vector functions; the
    sigmoid's padding lanes (1/2) are set back to 0."""
    for c0 in range(0, P, lanes(w)):
        vst(a, oo + c0, activation(vadd(vld(a, oo + c0), vld(w, bo + c0)), act))
    if act == 2:
        zero = cast_like(w, 0.0)
        for q in range(n, P):
            st(a, oo + q, zero)


@compiled(**JIT_INLINE)
def bias_act_row(a, oo, w, bo, P, n, act):
    """a[oo:oo+n] = act(a[oo:oo+n] + w[bo:bo+n]) (act code 0..3, elementary.activation) as
    whole vectors over the P padded lanes; their padding holds 0 and stays 0. Identity and ReLU
    inline, the sigmoid and tanh in one call (_smooth_act_row)."""
    if act <= 1:
        for c0 in range(0, P, lanes(w)):
            v = vadd(vld(a, oo + c0), vld(w, bo + c0))
            vst(a, oo + c0, vrelu(v) if act == 1 else v)
    else:
        _smooth_act_row(a, oo, w, bo, P, n, act)


@compiled(**JIT)  # a call per block of rows: compiled once, not inlined into each caller
def fwd_dense(layer, x, xo, xs, w, out, bs, iota, lut):
    """Rows i < bs of a dense layer (a layout.Layer): out[oo + i*P : +P] = act(x[xo + i*xs :
    +n_in] @ W + b), oo = layer.act_at, P = layer.width; x already in the compute dtype (iota:
    an arange of at least n_in)."""
    nin, n, P, act = layer.n_in, layer.n_out, layer.width, layer.activation
    wo, bo, oo = layer.weight_at, layer.bias_at, layer.act_at
    src = Inputs(iota, iota, x, lut, cast_like(w, 1.0))
    for i in range(bs):
        fwd_rows(src, 0, nin, xo + i * xs, w, wo, P, out, oo + i * P)
        bias_act_row(out, oo + i * P, w, bo, P, n, act)


@compiled(**JIT_INLINE)
def grad_sparse(src, p0, p1, dz, do, P, g, go):
    """g[go + j*P : +P] += x * dz[do:do+P] over the nonzeros (j, x) at p0..p1 of ``src``."""
    ind = src.indices
    val = src.values
    lut = src.lut
    sc = src.x_scale
    V = lanes(g)
    c0 = 0
    while c0 < P:
        nb = (P - c0) // V
        if nb >= 4:
            d0 = vld(dz, do + c0)
            d1 = vld(dz, do + c0 + V)
            d2 = vld(dz, do + c0 + 2 * V)
            d3 = vld(dz, do + c0 + 3 * V)
            for p in range(p0, p1):
                xs = vsplat(g, input_value(ld(val, p), lut, sc))
                base = go + np.int64(ld(ind, p)) * P + c0
                vst(g, base, vfma(xs, d0, vld(g, base)))
                vst(g, base + V, vfma(xs, d1, vld(g, base + V)))
                vst(g, base + 2 * V, vfma(xs, d2, vld(g, base + 2 * V)))
                vst(g, base + 3 * V, vfma(xs, d3, vld(g, base + 3 * V)))
            c0 += 4 * V
        elif nb >= 2:
            d0 = vld(dz, do + c0)
            d1 = vld(dz, do + c0 + V)
            for p in range(p0, p1):
                xs = vsplat(g, input_value(ld(val, p), lut, sc))
                base = go + np.int64(ld(ind, p)) * P + c0
                vst(g, base, vfma(xs, d0, vld(g, base)))
                vst(g, base + V, vfma(xs, d1, vld(g, base + V)))
            c0 += 2 * V
        else:
            d0 = vld(dz, do + c0)
            gc = go + c0
            for p in range(p0, p1):
                base = gc + np.int64(ld(ind, p)) * P
                vst(g, base, vfma(vsplat(g, input_value(ld(val, p), lut, sc)), d0, vld(g, base)))
            c0 += V


@compiled(**JIT_INLINE)
def grad_col(g, row, P, dz, do, x, xo, xs, ri, e0, e1):
    """g[row:row+P] += sum over e in e0..e1 of x[xo + e*xs] * dz[do + ri[e]*P : +P], summed in e
    order in registers (one load and one store of the row of g). A sparse column: x, ri = the
    values and rows of its nonzeros (xs = 1); a dense input k of a block: x = the activations
    (xo = their offset + k, xs = their row stride), ri = an arange."""
    V = lanes(g)
    c0 = 0
    while c0 < P:
        nb = (P - c0) // V
        if nb >= 4:
            g0 = vld(g, row + c0)
            g1 = vld(g, row + c0 + V)
            g2 = vld(g, row + c0 + 2 * V)
            g3 = vld(g, row + c0 + 3 * V)
            for e in range(e0, e1):
                xv = vsplat(g, ld(x, xo + e * xs))
                base = do + np.int64(ri[e]) * P + c0
                g0 = vfma(xv, vld(dz, base), g0)
                g1 = vfma(xv, vld(dz, base + V), g1)
                g2 = vfma(xv, vld(dz, base + 2 * V), g2)
                g3 = vfma(xv, vld(dz, base + 3 * V), g3)
            vst(g, row + c0, g0)
            vst(g, row + c0 + V, g1)
            vst(g, row + c0 + 2 * V, g2)
            vst(g, row + c0 + 3 * V, g3)
            c0 += 4 * V
        elif nb >= 2:
            g0 = vld(g, row + c0)
            g1 = vld(g, row + c0 + V)
            for e in range(e0, e1):
                xv = vsplat(g, ld(x, xo + e * xs))
                base = do + np.int64(ri[e]) * P + c0
                g0 = vfma(xv, vld(dz, base), g0)
                g1 = vfma(xv, vld(dz, base + V), g1)
            vst(g, row + c0, g0)
            vst(g, row + c0 + V, g1)
            c0 += 2 * V
        else:
            g0 = vld(g, row + c0)
            for e in range(e0, e1):
                xv = vsplat(g, ld(x, xo + e * xs))
                g0 = vfma(xv, vld(dz, do + np.int64(ri[e]) * P + c0), g0)
            vst(g, row + c0, g0)
            c0 += V


@compiled(**JIT)  # a call per block of rows; one copy compiles faster than an inlined one
def grad_sparse_block(src, order, first, bs, dz, do, P, g, go, sort):
    """The first-layer weight gradient g[go:] (rows of P) of the block's bs sparse input rows
    order[first:first+bs] (of Inputs src), deltas at dz[do + i*P:], column by column: their
    nonzeros are sorted by input j (a stable counting sort into the layout.ColumnSort ``sort``,
    so rows ascend within a column), then each touched row j of g gets them by grad_col (one
    read-modify-write of the row, not one per nonzero)."""
    ptr = src.indptr
    ind = src.indices
    val = src.values
    cstart = sort.start
    cfill = sort.fill
    ci = sort.row
    cx = sort.value
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
            cx[q] = input_value(val[p], src.lut, src.x_scale)
            cfill[j] = q + 1
    for j in range(d):
        if cstart[j] < cstart[j + 1]:
            grad_col(g, go + j * P, P, dz, do, cx, 0, 1, ci, cstart[j], cstart[j + 1])


@compiled(**JIT)  # a call per block of rows
def grad_dense(layer, a, ao, Pa, dz, bs, g, iota):
    """A layer's weight gradient from a block of bs rows: g[go + k*P : +P] += sum_i
    a[ao + i*Pa + k] * dz[do + i*P : +P] for inputs k < n_in (go, P, do: the layout.Layer's
    weight_at, width and act_at; a, ao, Pa: its dense input, offset of row 0, row stride; iota:
    an arange of at least bs)."""
    P = layer.width
    do = layer.act_at
    go = layer.weight_at
    for k in range(layer.n_in):
        grad_col(g, go + k * P, P, dz, do, a, ao + k, Pa, iota, 0, bs)


@compiled(**JIT_INLINE)
def _vdact(a, act):
    """act'(z) lane by lane through the stored activation a = act(z) (act 1, 2 or 3): the
    operations of the contract's act_grad and of the NumPy reference."""
    if act == 1:
        return vstep(a)
    one = vsplat(a, 1.0)
    if act == 2:
        return vmul(a, vsub(one, a))
    return vsub(one, vmul(a, a))


@compiled(**JIT)  # a call per block of rows
def back_dense(layer, below, w, dz, a, bs):
    """Deltas of the layer ``below`` (layout.Layer l - 1) from those of ``layer`` (l) for bs
    rows: dz[ao + i*Pa + k] = (W_l[k] . dz[do + i*P : +P]) * act'(a[ao + i*Pa + k]) (do, P:
    layer's act_at and width; ao, Pa: below's). Sixteen inputs k at a time, so the sixteen dot
    products overlap and share one reduction (vst_sums); then act' over the row's whole vectors
    (padding lanes hold 0 and stay 0)."""
    V = lanes(w)
    wo, P, nin, do = layer.weight_at, layer.width, layer.n_in, layer.act_at
    ao, Pa, act = below.act_at, below.width, below.activation
    k16 = nin - nin % 16
    for i in range(bs):
        drow = do + i * P
        orow = ao + i * Pa
        for k0 in range(0, k16, 16):
            r = wo + k0 * P
            s0 = vzero(w)
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
                d = vld(dz, drow + c0)
                s0 = vfma(vld(w, r + c0), d, s0)
                s1 = vfma(vld(w, r + P + c0), d, s1)
                s2 = vfma(vld(w, r + 2 * P + c0), d, s2)
                s3 = vfma(vld(w, r + 3 * P + c0), d, s3)
                s4 = vfma(vld(w, r + 4 * P + c0), d, s4)
                s5 = vfma(vld(w, r + 5 * P + c0), d, s5)
                s6 = vfma(vld(w, r + 6 * P + c0), d, s6)
                s7 = vfma(vld(w, r + 7 * P + c0), d, s7)
                s8 = vfma(vld(w, r + 8 * P + c0), d, s8)
                s9 = vfma(vld(w, r + 9 * P + c0), d, s9)
                s10 = vfma(vld(w, r + 10 * P + c0), d, s10)
                s11 = vfma(vld(w, r + 11 * P + c0), d, s11)
                s12 = vfma(vld(w, r + 12 * P + c0), d, s12)
                s13 = vfma(vld(w, r + 13 * P + c0), d, s13)
                s14 = vfma(vld(w, r + 14 * P + c0), d, s14)
                s15 = vfma(vld(w, r + 15 * P + c0), d, s15)
            vst_sums(dz, orow + k0, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13,
                     s14, s15)
        for k in range(k16, nin):
            acc = vzero(w)
            for c0 in range(0, P, V):
                acc = vfma(vld(w, wo + k * P + c0), vld(dz, drow + c0), acc)
            st(dz, orow + k, vhsum(acc))
        if act != 0:
            for c0 in range(0, Pa, V):
                vst(dz, orow + c0, vmul(vld(dz, orow + c0), _vdact(vld(a, orow + c0), act)))
