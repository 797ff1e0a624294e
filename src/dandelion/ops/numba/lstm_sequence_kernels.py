"""Numba loops of the fused LSTM: one BLAS ``np.dot`` per step, the gate arithmetic as
explicit loops over (B, H) so that no step allocates temporaries.

Same equations as ``dandelion.ops.lstm_sequence_numpy`` (which documents them); the
kernels write into caller-allocated C-contiguous outputs. Inputs are validated by the
callers (``lstm_sequence_cfuncs`` runs these behind C callbacks).

libm's scalar ``tanh`` dominated the float32 kernels (five calls per hidden unit and
step, none vectorised), so the float32 kernels use a rational approximation accurate to
3e-8, far below float32 resolution; the float64 kernels keep ``math.tanh``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload
from pytensor.link.numba.dispatch import basic as numba_basic


@numba_basic.numba_njit(inline="always")
def rational_tanh(x):
    """tanh as an odd rational function (degree 13 over 6 in x), |error| < 3e-8.

    The coefficients are the published minimax fit that Eigen and XLA use for float32
    tanh; beyond |x| = 9 tanh is 1 to float32 precision.
    """
    x = min(max(x, -9.0), 9.0)
    x2 = x * x
    p = -2.76076847742355e-16
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 - 8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    q = 1.19825839466702e-06
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return x * p / q


def _tanh(like, x):
    """tanh in a kernel whose arrays have ``like``'s dtype (resolved at compile time)."""
    return math.tanh(x)


@overload(_tanh, inline="always")
def _tanh_for_dtype(like, x):
    if like.dtype == types.float32:
        return lambda like, x: rational_tanh(x)
    return lambda like, x: math.tanh(x)


@numba_basic.numba_njit(inline="always")
def _sigmoid(like, x):
    return 0.5 + 0.5 * _tanh(like, 0.5 * x)


@numba_basic.numba_njit(boundscheck=False)
def lstm_forward(gate_input, W_hid, peep, h0, c0, mask, peephole, has_mask, hs, cs, gates):
    T, B, _ = gate_input.shape
    H = W_hid.shape[0]
    h = h0.copy()
    c = c0.copy()
    for t in range(T):
        a = np.dot(h, W_hid)
        for b in range(B):
            keep = (not has_mask) or mask[t, b] != 0
            for j in range(H):
                c_prev = c[b, j]
                a_i = a[b, j] + gate_input[t, b, j]
                a_f = a[b, H + j] + gate_input[t, b, H + j]
                a_g = a[b, 2 * H + j] + gate_input[t, b, 2 * H + j]
                a_o = a[b, 3 * H + j] + gate_input[t, b, 3 * H + j]
                if peephole:
                    a_i += c_prev * peep[0, j]
                    a_f += c_prev * peep[1, j]
                i = _sigmoid(gates, a_i)
                f = _sigmoid(gates, a_f)
                g = _tanh(gates, a_g)
                c_new = f * c_prev + i * g
                if peephole:
                    a_o += c_new * peep[2, j]
                o = _sigmoid(gates, a_o)
                gates[t, b, j] = i
                gates[t, b, H + j] = f
                gates[t, b, 2 * H + j] = g
                gates[t, b, 3 * H + j] = o
                if keep:
                    h[b, j] = o * _tanh(gates, c_new)
                    c[b, j] = c_new
                hs[t, b, j] = h[b, j]
                cs[t, b, j] = c[b, j]


@numba_basic.numba_njit(boundscheck=False)
def lstm_backward(
    W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, grad_clipping, peephole, has_mask,
    d_gate_input, d_W_hid, d_peep, d_h0, d_c0,
):  # fmt: skip
    T, B, H = hs.shape
    W_t = np.ascontiguousarray(W_hid.T)
    dh = np.zeros((B, H), dtype=hs.dtype)
    dc = np.zeros((B, H), dtype=hs.dtype)
    dh_pass = np.zeros((B, H), dtype=hs.dtype)
    da = np.empty((B, 4 * H), dtype=hs.dtype)
    d_peep[:] = 0
    clip = grad_clipping > 0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            keep = (not has_mask) or mask[t, b] != 0
            for j in range(H):
                dh_j = dh[b, j] + d_hs[t, b, j]
                dc_j = dc[b, j] + d_cs[t, b, j]
                if not keep:
                    # A skipped step hands its gradients to the previous state untouched.
                    dh_pass[b, j] = dh_j
                    dc[b, j] = dc_j
                    da[b, j] = 0
                    da[b, H + j] = 0
                    da[b, 2 * H + j] = 0
                    da[b, 3 * H + j] = 0
                    continue
                dh_pass[b, j] = 0
                c_prev = cs[t - 1, b, j] if t > 0 else c0[b, j]
                c_new = cs[t, b, j]
                i = gates[t, b, j]
                f = gates[t, b, H + j]
                g = gates[t, b, 2 * H + j]
                o = gates[t, b, 3 * H + j]
                tanh_c = _tanh(hs, c_new)
                da_o = dh_j * tanh_c * o * (1 - o)
                dc_new = dc_j + dh_j * o * (1 - tanh_c * tanh_c)
                if peephole:
                    dc_new += da_o * peep[2, j]
                    d_peep[2, j] += da_o * c_new
                da_i = dc_new * g * i * (1 - i)
                da_f = dc_new * c_prev * f * (1 - f)
                da_g = dc_new * i * (1 - g * g)
                dc_prev = dc_new * f
                if peephole:
                    dc_prev += da_i * peep[0, j] + da_f * peep[1, j]
                    d_peep[0, j] += da_i * c_prev
                    d_peep[1, j] += da_f * c_prev
                if clip:
                    da_i = min(max(da_i, -grad_clipping), grad_clipping)
                    da_f = min(max(da_f, -grad_clipping), grad_clipping)
                    da_g = min(max(da_g, -grad_clipping), grad_clipping)
                    da_o = min(max(da_o, -grad_clipping), grad_clipping)
                da[b, j] = da_i
                da[b, H + j] = da_f
                da[b, 2 * H + j] = da_g
                da[b, 3 * H + j] = da_o
                dc[b, j] = dc_prev
        d_gate_input[t] = da
        dh = np.dot(da, W_t)
        if has_mask:
            dh += dh_pass
    d_h0[:] = dh
    d_c0[:] = dc
    h_prev = np.empty((T, B, H), dtype=hs.dtype)
    h_prev[0] = h0
    h_prev[1:] = hs[:-1]
    d_W_hid[:] = np.dot(h_prev.reshape(T * B, H).T, d_gate_input.reshape(T * B, 4 * H))
