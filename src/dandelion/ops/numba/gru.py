"""Numba implementations of ``GRUSequenceOp`` and ``GRUSequenceGradOp``.

Each graph compiles only a thin wrapper that packs the inputs into C-contiguous
buffers and calls the cached kernels of ``gru_cfuncs``; the wrappers differ by
whether the Ops take a mask, chosen here at funcify time.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.gru import GRUSequenceGradOp, GRUSequenceOp
from dandelion.ops.numba.gru_cfuncs import GRU_SOURCES, N_PARAMS, gru_cfuncs
from dandelion.ops.numba.source_cache import register_numba_op


@numba_basic.numba_njit
def _params(T, B, H, has_mask):
    p = np.empty(N_PARAMS, dtype=np.int64)
    p[0], p[1], p[2] = T, B, H
    p[3] = 1 if has_mask else 0
    return p


@register_numba_op(GRUSequenceOp, GRU_SOURCES)
def numba_funcify_GRUSequenceOp(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    forward, _ = gru_cfuncs(dtype.name)
    has_mask = op.has_mask

    @numba_basic.numba_njit
    def run(gate_input, W_hid, h0, mask):
        T, B, G = gate_input.shape
        H = W_hid.shape[0]
        if G != 3 * H or W_hid.shape[1] != 3 * H:
            raise ValueError("gru_sequence: gate_input (T, B, 3H) and W_hid (H, 3H) disagree")
        if h0.shape[0] != B or h0.shape[1] != H:
            raise ValueError("gru_sequence: h0 must have shape (B, H)")
        if mask.shape[0] != T or mask.shape[1] != B:
            raise ValueError("gru_sequence: seq_mask must have shape (T, B)")
        gi, w = np.ascontiguousarray(gate_input), np.ascontiguousarray(W_hid)
        h0c, maskc = np.ascontiguousarray(h0), np.ascontiguousarray(mask)
        hs = np.empty((T, B, H), dtype=dtype)
        cache = np.empty((T, B, 4 * H), dtype=dtype)
        forward(gi.ctypes, w.ctypes, h0c.ctypes, maskc.ctypes, hs.ctypes, cache.ctypes, _params(T, B, H, has_mask).ctypes)
        return hs, cache

    if has_mask:
        return run

    @numba_basic.numba_njit
    def unmasked(gate_input, W_hid, h0):
        return run(gate_input, W_hid, h0, np.ones((gate_input.shape[0], gate_input.shape[1]), dtype=dtype))

    return unmasked


@register_numba_op(GRUSequenceGradOp, GRU_SOURCES)
def numba_funcify_GRUSequenceGradOp(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    _, backward = gru_cfuncs(dtype.name)
    has_mask, grad_clipping = op.has_mask, op.grad_clipping

    @numba_basic.numba_njit
    def run(W_hid, h0, mask, hs, cache, d_hs):
        T, B, H = hs.shape
        if d_hs.shape[0] != T or d_hs.shape[1] != B or d_hs.shape[2] != H:
            raise ValueError("gru_sequence_grad: hs and d_hs must have the same shape (T, B, H)")
        if cache.shape[0] != T or cache.shape[1] != B or cache.shape[2] != 4 * H:
            raise ValueError("gru_sequence_grad: cache must have shape (T, B, 4H)")
        if W_hid.shape[0] != H or W_hid.shape[1] != 3 * H or h0.shape[0] != B or h0.shape[1] != H:
            raise ValueError("gru_sequence_grad: W_hid or h0 disagree with hs (T, B, H)")
        if mask.shape[0] != T or mask.shape[1] != B:
            raise ValueError("gru_sequence_grad: seq_mask must have shape (T, B)")
        hs_c, cache_c, d_hs_c = np.ascontiguousarray(hs), np.ascontiguousarray(cache), np.ascontiguousarray(d_hs)
        w, h0c, maskc = np.ascontiguousarray(W_hid), np.ascontiguousarray(h0), np.ascontiguousarray(mask)
        d_gate_input = np.empty((T, B, 3 * H), dtype=dtype)
        d_W_hid = np.empty((H, 3 * H), dtype=dtype)
        d_h0 = np.empty((B, H), dtype=dtype)
        d_hid = np.empty((T, B, 3 * H), dtype=dtype)  # the kernels' scratch
        p = _params(T, B, H, has_mask)
        backward(
            w.ctypes, h0c.ctypes, maskc.ctypes, hs_c.ctypes, cache_c.ctypes, d_hs_c.ctypes,
            d_gate_input.ctypes, d_W_hid.ctypes, d_h0.ctypes, d_hid.ctypes, p.ctypes, grad_clipping,
        )  # fmt: skip
        return d_gate_input, d_W_hid, d_h0

    if has_mask:
        return run

    @numba_basic.numba_njit
    def unmasked(W_hid, h0, hs, cache, d_hs):
        return run(W_hid, h0, np.ones((hs.shape[0], hs.shape[1]), dtype=dtype), hs, cache, d_hs)

    return unmasked
