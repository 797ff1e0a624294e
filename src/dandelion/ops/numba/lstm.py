"""Numba implementations of ``LSTMSequenceOp`` and ``LSTMSequenceGradOp``.

Each graph compiles only a thin wrapper that packs the inputs into C-contiguous
buffers and calls the cached kernels of ``lstm_cfuncs``. The wrappers differ
by the Ops' optional inputs (peepholes, mask), chosen here at funcify time.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.lstm import LSTMSequenceGradOp, LSTMSequenceOp
from dandelion.ops.numba.lstm_cfuncs import LSTM_SOURCES, N_PARAMS, lstm_cfuncs
from dandelion.ops.numba.source_cache import register_numba_op


@numba_basic.numba_njit
def _params(T, B, H, peephole, has_mask):
    p = np.empty(N_PARAMS, dtype=np.int64)
    p[0], p[1], p[2] = T, B, H
    p[3] = 1 if peephole else 0
    p[4] = 1 if has_mask else 0
    return p


@numba_basic.numba_njit
def _peep(w_ci, w_cf, w_co):
    peep = np.empty((3, w_ci.shape[0]), dtype=w_ci.dtype)
    peep[0], peep[1], peep[2] = w_ci, w_cf, w_co
    return peep


@register_numba_op(LSTMSequenceOp, LSTM_SOURCES)
def numba_funcify_LSTMSequenceOp(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    forward, _ = lstm_cfuncs(dtype.name)
    peephole, has_mask = op.peephole, op.has_mask

    @numba_basic.numba_njit
    def run(gate_input, W_hid, peep, h0, c0, mask):
        T, B, G = gate_input.shape
        H = W_hid.shape[0]
        if G != 4 * H or W_hid.shape[1] != 4 * H or peep.shape[1] != H:
            raise ValueError("lstm_sequence: gate_input (T, B, 4H), W_hid (H, 4H) and the peepholes (H,) disagree")
        if h0.shape[0] != B or h0.shape[1] != H or c0.shape[0] != B or c0.shape[1] != H:
            raise ValueError("lstm_sequence: h0 and c0 must have shape (B, H)")
        if mask.shape[0] != T or mask.shape[1] != B:
            raise ValueError("lstm_sequence: seq_mask must have shape (T, B)")
        gi, w = np.ascontiguousarray(gate_input), np.ascontiguousarray(W_hid)
        h0c, c0c, maskc = np.ascontiguousarray(h0), np.ascontiguousarray(c0), np.ascontiguousarray(mask)
        hs = np.empty((T, B, H), dtype=dtype)
        cs = np.empty((T, B, H), dtype=dtype)
        gates = np.empty((T, B, 4 * H), dtype=dtype)
        p = _params(T, B, H, peephole, has_mask)
        forward(gi.ctypes, w.ctypes, peep.ctypes, h0c.ctypes, c0c.ctypes, maskc.ctypes, hs.ctypes, cs.ctypes, gates.ctypes, p.ctypes)
        return hs, cs, gates

    @numba_basic.numba_njit
    def peep_mask(gate_input, W_hid, w_ci, w_cf, w_co, h0, c0, mask):
        return run(gate_input, W_hid, _peep(w_ci, w_cf, w_co), h0, c0, mask)

    @numba_basic.numba_njit
    def peep_only(gate_input, W_hid, w_ci, w_cf, w_co, h0, c0):
        ones = np.ones((gate_input.shape[0], gate_input.shape[1]), dtype=dtype)
        return run(gate_input, W_hid, _peep(w_ci, w_cf, w_co), h0, c0, ones)

    @numba_basic.numba_njit
    def mask_only(gate_input, W_hid, h0, c0, mask):
        return run(gate_input, W_hid, np.zeros((3, W_hid.shape[0]), dtype=dtype), h0, c0, mask)

    @numba_basic.numba_njit
    def plain(gate_input, W_hid, h0, c0):
        ones = np.ones((gate_input.shape[0], gate_input.shape[1]), dtype=dtype)
        return run(gate_input, W_hid, np.zeros((3, W_hid.shape[0]), dtype=dtype), h0, c0, ones)

    variants = {(True, True): peep_mask, (True, False): peep_only, (False, True): mask_only, (False, False): plain}
    return variants[(peephole, has_mask)]


@register_numba_op(LSTMSequenceGradOp, LSTM_SOURCES)
def numba_funcify_LSTMSequenceGradOp(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    _, backward = lstm_cfuncs(dtype.name)
    peephole, has_mask, grad_clipping = op.peephole, op.has_mask, op.grad_clipping

    @numba_basic.numba_njit
    def run(W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs):
        T, B, H = hs.shape
        for shape in (cs.shape, d_hs.shape, d_cs.shape):
            if shape[0] != T or shape[1] != B or shape[2] != H:
                raise ValueError("lstm_sequence_grad: hs, cs, d_hs and d_cs must have the same shape (T, B, H)")
        if gates.shape[2] != 4 * H or W_hid.shape[0] != H or W_hid.shape[1] != 4 * H or h0.shape[0] != B:
            raise ValueError("lstm_sequence_grad: gates, W_hid or h0 disagree with hs (T, B, H)")
        hs_c, cs_c, gates_c = np.ascontiguousarray(hs), np.ascontiguousarray(cs), np.ascontiguousarray(gates)
        d_hs_c, d_cs_c = np.ascontiguousarray(d_hs), np.ascontiguousarray(d_cs)
        w, h0c, c0c, maskc = np.ascontiguousarray(W_hid), np.ascontiguousarray(h0), np.ascontiguousarray(c0), np.ascontiguousarray(mask)
        d_gate_input = np.empty((T, B, 4 * H), dtype=dtype)
        d_W_hid = np.empty((H, 4 * H), dtype=dtype)
        d_peep = np.empty((3, H), dtype=dtype)
        d_h0 = np.empty((B, H), dtype=dtype)
        d_c0 = np.empty((B, H), dtype=dtype)
        p = _params(T, B, H, peephole, has_mask)
        backward(
            w.ctypes, peep.ctypes, h0c.ctypes, c0c.ctypes, maskc.ctypes,
            hs_c.ctypes, cs_c.ctypes, gates_c.ctypes, d_hs_c.ctypes, d_cs_c.ctypes,
            d_gate_input.ctypes, d_W_hid.ctypes, d_peep.ctypes, d_h0.ctypes, d_c0.ctypes, p.ctypes, grad_clipping,
        )  # fmt: skip
        return d_gate_input, d_W_hid, d_peep, d_h0, d_c0

    @numba_basic.numba_njit
    def peep_mask(W_hid, w_ci, w_cf, w_co, h0, c0, mask, hs, cs, gates, d_hs, d_cs):
        dg, dw, dp, dh0, dc0 = run(W_hid, _peep(w_ci, w_cf, w_co), h0, c0, mask, hs, cs, gates, d_hs, d_cs)
        return dg, dw, dp[0].copy(), dp[1].copy(), dp[2].copy(), dh0, dc0

    @numba_basic.numba_njit
    def peep_only(W_hid, w_ci, w_cf, w_co, h0, c0, hs, cs, gates, d_hs, d_cs):
        ones = np.ones((hs.shape[0], hs.shape[1]), dtype=dtype)
        dg, dw, dp, dh0, dc0 = run(W_hid, _peep(w_ci, w_cf, w_co), h0, c0, ones, hs, cs, gates, d_hs, d_cs)
        return dg, dw, dp[0].copy(), dp[1].copy(), dp[2].copy(), dh0, dc0

    @numba_basic.numba_njit
    def mask_only(W_hid, h0, c0, mask, hs, cs, gates, d_hs, d_cs):
        peep = np.zeros((3, W_hid.shape[0]), dtype=dtype)
        dg, dw, _, dh0, dc0 = run(W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs)
        return dg, dw, dh0, dc0

    @numba_basic.numba_njit
    def plain(W_hid, h0, c0, hs, cs, gates, d_hs, d_cs):
        ones = np.ones((hs.shape[0], hs.shape[1]), dtype=dtype)
        peep = np.zeros((3, W_hid.shape[0]), dtype=dtype)
        dg, dw, _, dh0, dc0 = run(W_hid, peep, h0, c0, ones, hs, cs, gates, d_hs, d_cs)
        return dg, dw, dh0, dc0

    variants = {(True, True): peep_mask, (True, False): peep_only, (False, True): mask_only, (False, False): plain}
    return variants[(peephole, has_mask)]
