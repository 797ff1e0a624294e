"""Numba loops of the fused LSTM: per step one BLAS product into a preallocated buffer,
then one vectorised pass per batch row over the hidden units.

The arithmetic of a hidden unit is ``dandelion.ops.recurrent_cells``'s, jitted from
that source and inlined; the kernels write into caller-allocated C-contiguous
outputs. Inputs are validated by the callers (``lstm_cfuncs`` runs these behind C
callbacks).

What keeps the per-row passes vectorised (LLVM's loop vectoriser; checked by counting
vector instructions in ``tests/test_numba_lstm_kernels.py``):

- ``error_model="numpy"``: under Numba's default ("python") model every division
  checks for zero and may raise, a branch that stops vectorisation;
- each row pass writes few arrays (the gate buffer in place, h and c), so that LLVM's
  runtime alias checks stay within its budget;
- float32 kernels stay float32: float32 constants here, no numeric literals in the
  cell definition (Numba would type them int64 or float64 and promote), and the
  rational tanh of ``dandelion.ops.numba.activations`` instead of libm's scalar call.

The peepholes, the mask and the clipping are run-time flags of one compiled kernel (one
cache entry per dtype); absent peepholes are zeros, which leave the results unchanged.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.numba.activations import rational_tanh32, sigmoid32, sigmoid64, tanh64
from dandelion.ops.numba.blas import dot_into
from dandelion.ops.recurrent_cells import lstm_cell, lstm_cell_backward, lstm_cell_backward_factors

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
            a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid32, rational_tanh32, rational_tanh32
        )
    return lambda like, a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co: lstm_cell_jit(
        a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid64, tanh64, tanh64
    )


def _factors(like, i, f, g, o, c_prev, c):
    """``lstm_cell_backward_factors`` with the tanh of ``like``'s dtype."""


@overload(_factors, inline="always")
def _factors_for_dtype(like, i, f, g, o, c_prev, c):
    if like.dtype == types.float32:
        return lambda like, i, f, g, o, c_prev, c: lstm_cell_backward_factors_jit(i, f, g, o, c_prev, c, rational_tanh32)
    return lambda like, i, f, g, o, c_prev, c: lstm_cell_backward_factors_jit(i, f, g, o, c_prev, c, tanh64)


@numba_basic.numba_njit(boundscheck=False, error_model="numpy")
def forward_row(z, gate_input, c_prev, peep, h, c):
    """One batch row of one step, in place.

    z (4H): ``h_prev @ W_hid`` on entry, the gate activations ``[i | f | g | o]`` on exit;
    gate_input (4H); c_prev (H); peep (3, H); h, c (H): the new states.
    """
    H = c.shape[0]
    for j in range(H):
        cp = c_prev[j]
        i, f, g, o, c_new, h_new = _cell(
            z,
            z[j] + gate_input[j],
            z[H + j] + gate_input[H + j],
            z[2 * H + j] + gate_input[2 * H + j],
            z[3 * H + j] + gate_input[3 * H + j],
            cp,
            cp * peep[0, j],
            cp * peep[1, j],
            peep[2, j],
        )
        z[j] = i
        z[H + j] = f
        z[2 * H + j] = g
        z[3 * H + j] = o
        c[j] = c_new
        h[j] = h_new


@numba_basic.numba_njit(boundscheck=False, error_model="numpy")
def backward_row(gates, c_prev, c, dh, dc, peep, da):
    """One batch row of one step of back-propagation through time.

    gates (4H): the step's activations; c_prev, c (H): its cells; dh (H): the cotangent
    reaching h; dc (H): the one reaching c, replaced by the one of c_prev; peep (3, H);
    da (4H): the pre-activations' cotangents (unclipped).
    """
    H = c.shape[0]
    for j in range(H):
        f = gates[H + j]
        k_o, k_c, k_i, k_f, k_g = _factors(gates, gates[j], f, gates[2 * H + j], gates[3 * H + j], c_prev[j], c[j])
        da_i, da_f, da_g, da_o, dc_prev = lstm_cell_backward_jit(
            dh[j], dc[j], k_o, k_c, k_i, k_f, k_g, f, peep[0, j], peep[1, j], peep[2, j]
        )
        da[j] = da_i
        da[H + j] = da_f
        da[2 * H + j] = da_g
        da[3 * H + j] = da_o
        dc[j] = dc_prev


@numba_basic.numba_njit(boundscheck=False, error_model="numpy")
def add_peephole_grads(da, c_prev, c, d_peep):
    """d_peep (3, H) += one row's peephole gradients, from its unclipped cotangents da (4H)."""
    H = c.shape[0]
    for j in range(H):
        d_peep[0, j] += da[j] * c_prev[j]
        d_peep[1, j] += da[H + j] * c_prev[j]
        d_peep[2, j] += da[3 * H + j] * c[j]


@numba_basic.numba_njit(boundscheck=False, error_model="numpy")
def clip_in_place(x, bound):
    for j in range(x.shape[0]):
        x[j] = min(max(x[j], -bound), bound)


@numba_basic.numba_njit(boundscheck=False)
def lstm_forward(gate_input, W_hid, peep, h0, c0, mask, peephole, has_mask, hs, cs, gates):
    T, B, _ = gate_input.shape
    if not peephole:
        peep = np.zeros_like(peep)  # whose terms are exactly zero
    for t in range(T):
        h_prev = hs[t - 1] if t > 0 else h0
        c_prev = cs[t - 1] if t > 0 else c0
        z = gates[t]
        dot_into(h_prev, W_hid, z, False)
        for b in range(B):
            forward_row(z[b], gate_input[t, b], c_prev[b], peep, hs[t, b], cs[t, b])
            if has_mask and mask[t, b] == 0:
                # a skipped step carries the states over (its gates are still computed)
                hs[t, b] = h_prev[b]
                cs[t, b] = c_prev[b]


@numba_basic.numba_njit(boundscheck=False)
def lstm_backward(
    W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, grad_clipping, peephole, has_mask,
    d_gate_input, d_W_hid, d_peep, d_h0, d_c0,
):  # fmt: skip
    T, B, H = hs.shape
    if not peephole:
        peep = np.zeros_like(peep)
    W_t = W_hid.T  # a transposed view: BLAS reads it as such
    clip = grad_clipping > 0
    bound = np.full(1, grad_clipping, dtype=hs.dtype)[0]
    dh = d_h0  # the cotangents reaching the states after step t - 1; end as d_h0, d_c0
    dc = d_c0
    dh[:] = 0
    dc[:] = 0
    dh_next = np.empty((B, H), dtype=hs.dtype)
    d_peep[:] = 0
    for t in range(T - 1, -1, -1):
        c_prev = cs[t - 1] if t > 0 else c0
        da = d_gate_input[t]
        for b in range(B):
            dh[b] += d_hs[t, b]
            dc[b] += d_cs[t, b]
            if has_mask and mask[t, b] == 0:
                # a skipped step hands its cotangents to the previous states untouched
                da[b] = 0
                continue
            backward_row(gates[t, b], c_prev[b], cs[t, b], dh[b], dc[b], peep, da[b])
            if peephole:
                add_peephole_grads(da[b], c_prev[b], cs[t, b], d_peep)
            if clip:
                clip_in_place(da[b], bound)
        if has_mask:
            dot_into(da, W_t, dh_next, False)
            for b in range(B):
                if mask[t, b] != 0:
                    dh[b] = dh_next[b]
        else:
            dot_into(da, W_t, dh, False)
    # d_W_hid over all T * B rows: h0^T dA_0, plus one product over the other (T - 1) * B
    dot_into(h0.T, d_gate_input[0], d_W_hid, False)
    if T > 1:
        dot_into(hs[:-1].reshape((T - 1) * B, H).T, d_gate_input[1:].reshape((T - 1) * B, 4 * H), d_W_hid, True)
