"""Numba implementations of the fused attention Ops (``dandelion.ops.attention``).

Per (batch * head) slice, the products go through ``dot_into`` (NumPy's OpenBLAS GEMM)
and the softmax is one pass per row over the slice's scores, in the weights output
itself; the algorithm is the C kernels' (``dandelion.ops.c.attention``). The constants
are of the node's dtype, so float32 graphs compute in float32 as the graph path does.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.attention import AttentionGradOp, AttentionOp
from dandelion.ops.numba.blas import dot_into
from dandelion.ops.numba.exp32 import exp32
from dandelion.ops.numba.source_cache import register_numba_op

ATTENTION_SOURCES = (
    "dandelion.ops.exp32",
    "dandelion.ops.numba.exp32",
    "dandelion.ops.numba.blas",
    "dandelion.ops.numba.attention",
)


def _constants(node):
    dtype = np.dtype(node.outputs[0].dtype)
    return dtype, dtype.type(0), dtype.type(1), dtype.type(-np.inf)


@register_numba_op(AttentionOp, ATTENTION_SOURCES)
def numba_funcify_AttentionOp(op, node, **kwargs):
    dtype, zero, one, neg_inf = _constants(node)
    scale, causal, has_dropout = dtype.type(op.scale), op.causal, op.has_dropout
    # float32: dandelion.ops.exp32, which vectorises (np.exp calls libm's scalar expf)
    exp = exp32 if dtype == np.float32 else np.exp

    @numba_basic.numba_njit(boundscheck=False)
    def softmax_rows(P):
        Lq, Lk = P.shape
        for i in range(Lq):
            kept = min(i + 1, Lk) if causal else Lk
            shift = neg_inf
            for j in range(kept):
                shift = max(shift, P[i, j])
            # the graph's shift: an infinite maximum (nothing kept) shifts by 0 so exp gives zeros, not NaN
            if np.isinf(shift):
                shift = zero
            total = zero
            for j in range(kept):
                e = exp(P[i, j] - shift)
                P[i, j] = e
                total += e
            for j in range(kept, Lk):
                P[i, j] = zero
            if not total > zero:
                total = one
            for j in range(kept):
                P[i, j] = P[i, j] / total

    @numba_basic.numba_njit(boundscheck=False)
    def forward(q, k, v, multiplier):
        q, k, v = np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v)
        N, Lq, E = q.shape
        Lk, Ev = k.shape[1], v.shape[2]
        if k.shape[0] != N or v.shape[0] != N or k.shape[2] != E or v.shape[1] != Lk:
            raise ValueError("attention: q (N, Lq, E), k (N, Lk, E) and v (N, Lk, Ev) disagree in N, Lk or E")
        if has_dropout and multiplier.shape != (N, Lq, Lk):
            raise ValueError("attention: the dropout multiplier must have shape (N, Lq, Lk)")
        out = np.empty((N, Lq, Ev), dtype=dtype)
        weights = np.empty((N, Lq, Lk), dtype=dtype)
        dropped = np.empty((Lq, Lk), dtype=dtype)
        for n in range(N):
            P = weights[n]
            dot_into(q[n], k[n].T, P, False)
            P *= scale
            softmax_rows(P)
            if has_dropout:
                dropped[:] = P * multiplier[n]
                dot_into(dropped, v[n], out[n], False)
            else:
                dot_into(P, v[n], out[n], False)
        return out, weights

    if has_dropout:

        @numba_basic.numba_njit
        def attention(q, k, v, multiplier):
            return forward(q, k, v, np.ascontiguousarray(multiplier))

    else:

        @numba_basic.numba_njit
        def attention(q, k, v):
            return forward(q, k, v, np.empty((0, 0, 0), dtype=dtype))

    return attention


@register_numba_op(AttentionGradOp, ATTENTION_SOURCES)
def numba_funcify_AttentionGradOp(op, node, **kwargs):
    dtype, zero, _, _ = _constants(node)
    scale, has_dropout = dtype.type(op.scale), op.has_dropout

    @numba_basic.numba_njit(boundscheck=False)
    def backward(q, k, v, weights, multiplier, d_out):
        q, k, v = np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v)
        weights, d_out = np.ascontiguousarray(weights), np.ascontiguousarray(d_out)
        N, Lq, E = q.shape
        Lk, Ev = k.shape[1], v.shape[2]
        if k.shape[0] != N or v.shape[0] != N or k.shape[2] != E or v.shape[1] != Lk:
            raise ValueError("attention_grad: q (N, Lq, E), k (N, Lk, E) and v (N, Lk, Ev) disagree in N, Lk or E")
        if weights.shape != (N, Lq, Lk) or d_out.shape != (N, Lq, Ev):
            raise ValueError("attention_grad: weights must be (N, Lq, Lk) and output_grad (N, Lq, Ev)")
        if has_dropout and multiplier.shape != (N, Lq, Lk):
            raise ValueError("attention_grad: the dropout multiplier must have shape (N, Lq, Lk)")
        dq = np.empty((N, Lq, E), dtype=dtype)
        dk = np.empty((N, Lk, E), dtype=dtype)
        dv = np.empty((N, Lk, Ev), dtype=dtype)
        dropped = np.empty((Lq, Lk), dtype=dtype)
        dS = np.empty((Lq, Lk), dtype=dtype)
        for n in range(N):
            P = weights[n]
            if has_dropout:
                dropped[:] = P * multiplier[n]
                dot_into(dropped.T, d_out[n], dv[n], False)
            else:
                dot_into(P.T, d_out[n], dv[n], False)
            dot_into(d_out[n], v[n].T, dS, False)
            if has_dropout:
                dS *= multiplier[n]
            for i in range(Lq):
                r = zero
                for j in range(Lk):
                    r += dS[i, j] * P[i, j]
                for j in range(Lk):
                    dS[i, j] = P[i, j] * (dS[i, j] - r) * scale
            dot_into(dS, k[n], dq[n], False)
            dot_into(dS.T, q[n], dk[n], False)
        return dq, dk, dv

    if has_dropout:

        @numba_basic.numba_njit
        def attention_grad(q, k, v, weights, multiplier, d_out):
            return backward(q, k, v, weights, np.ascontiguousarray(multiplier), d_out)

    else:

        @numba_basic.numba_njit
        def attention_grad(q, k, v, weights, d_out):
            return backward(q, k, v, weights, np.empty((0, 0, 0), dtype=dtype), d_out)

    return attention_grad
