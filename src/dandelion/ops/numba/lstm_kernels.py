"""Numba loops of the fused LSTM: one BLAS ``np.dot`` per step, the gate arithmetic as
explicit loops over (B, H) so that no step allocates temporaries.

The arithmetic of a hidden unit is ``dandelion.ops.recurrent_cells``'s, jitted from
that source and inlined; the kernels write into caller-allocated C-contiguous
outputs. Inputs are validated by the callers (``lstm_cfuncs`` runs these behind C
callbacks).

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

from dandelion.ops.recurrent_cells import lstm_cell, lstm_cell_backward, lstm_cell_backward_factors


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


@numba_basic.numba_njit(inline="always")
def sigmoid32(x):
    return 0.5 + 0.5 * rational_tanh(0.5 * x)


@numba_basic.numba_njit(inline="always")
def sigmoid64(x):
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@numba_basic.numba_njit(inline="always")
def tanh64(x):
    return math.tanh(x)


# The one cell definition, jitted; each kernel inlines it with its dtype's activations.
lstm_cell_jit = numba_basic.numba_njit(inline="always")(lstm_cell)
lstm_cell_backward_factors_jit = numba_basic.numba_njit(inline="always")(lstm_cell_backward_factors)
lstm_cell_backward_jit = numba_basic.numba_njit(inline="always")(lstm_cell_backward)


def _cell(like, a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co):
    """``lstm_cell`` with the activations of ``like``'s dtype (chosen at compile time)."""


@overload(_cell, inline="always")
def _cell_for_dtype(like, a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co):
    # Activations reach the jitted cell as compile-time functions: passed at run time
    # (or captured in a closure) they would keep the cfuncs from being cached.
    if like.dtype == types.float32:
        return lambda like, a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co: lstm_cell_jit(
            a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid32, rational_tanh, rational_tanh
        )
    return lambda like, a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co: lstm_cell_jit(
        a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid64, tanh64, tanh64
    )


def _factors(like, i, f, g, o, c_prev, c):
    """``lstm_cell_backward_factors`` with the tanh of ``like``'s dtype."""


@overload(_factors, inline="always")
def _factors_for_dtype(like, i, f, g, o, c_prev, c):
    if like.dtype == types.float32:
        return lambda like, i, f, g, o, c_prev, c: lstm_cell_backward_factors_jit(i, f, g, o, c_prev, c, rational_tanh)
    return lambda like, i, f, g, o, c_prev, c: lstm_cell_backward_factors_jit(i, f, g, o, c_prev, c, tanh64)


@numba_basic.numba_njit(boundscheck=False)
def lstm_forward(gate_input, W_hid, peep, h0, c0, mask, peephole, has_mask, hs, cs, gates):
    T, B, _ = gate_input.shape
    H = W_hid.shape[0]
    if not peephole:
        peep = np.zeros_like(peep)  # whose terms are exactly zero
    h = h0.copy()
    c = c0.copy()
    for t in range(T):
        a = np.dot(h, W_hid)
        for b in range(B):
            keep = (not has_mask) or mask[t, b] != 0
            for j in range(H):
                c_prev = c[b, j]
                i, f, g, o, c_new, h_new = _cell(
                    gates,
                    a[b, j] + gate_input[t, b, j],
                    a[b, H + j] + gate_input[t, b, H + j],
                    a[b, 2 * H + j] + gate_input[t, b, 2 * H + j],
                    a[b, 3 * H + j] + gate_input[t, b, 3 * H + j],
                    c_prev,
                    c_prev * peep[0, j],
                    c_prev * peep[1, j],
                    peep[2, j],
                )
                gates[t, b, j] = i
                gates[t, b, H + j] = f
                gates[t, b, 2 * H + j] = g
                gates[t, b, 3 * H + j] = o
                if keep:
                    h[b, j] = h_new
                    c[b, j] = c_new
                hs[t, b, j] = h[b, j]
                cs[t, b, j] = c[b, j]


@numba_basic.numba_njit(boundscheck=False)
def lstm_backward(
    W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, grad_clipping, peephole, has_mask,
    d_gate_input, d_W_hid, d_peep, d_h0, d_c0,
):  # fmt: skip
    T, B, H = hs.shape
    if not peephole:
        peep = np.zeros_like(peep)
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
                f = gates[t, b, H + j]
                k_o, k_c, k_i, k_f, k_g = _factors(
                    hs, gates[t, b, j], f, gates[t, b, 2 * H + j], gates[t, b, 3 * H + j], c_prev, cs[t, b, j]
                )
                da_i, da_f, da_g, da_o, dc_prev = lstm_cell_backward_jit(
                    dh_j, dc_j, k_o, k_c, k_i, k_f, k_g, f, peep[0, j], peep[1, j], peep[2, j]
                )
                if peephole:
                    d_peep[0, j] += da_i * c_prev
                    d_peep[1, j] += da_f * c_prev
                    d_peep[2, j] += da_o * cs[t, b, j]
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
