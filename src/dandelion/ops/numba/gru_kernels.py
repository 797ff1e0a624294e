"""Numba loops of the fused GRU: per step one BLAS product (``dot_into``) into a preallocated buffer,
then one vectorised pass per batch row over the hidden units.

The arithmetic of a hidden unit is ``dandelion.ops.recurrent_cells``'s, jitted from
that source and inlined; the kernels write into caller-allocated C-contiguous
outputs. Inputs are validated by the callers (``gru_cfuncs`` runs these behind C
callbacks). What keeps the row passes vectorised is what ``lstm_kernels`` explains:
``error_model="numpy"``, few arrays written per pass, float32 kernels in float32
(``dandelion.ops.numba.activations``; no numeric literals in the cell definition).
``tests/test_numba_gru_kernels.py`` checks the vector instructions.

The mask and the clipping are run-time flags of one compiled kernel (one cache entry
per dtype); without clipping the bound is infinite.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.numba.activations import rational_tanh32, sigmoid32, sigmoid64, tanh64
from dandelion.ops.numba.blas import dot_into
from dandelion.ops.recurrent_cells import gru_cell, gru_cell_backward, gru_cell_backward_factors

# The one cell definition, jitted; the forward inlines it with its dtype's activations.
gru_cell_jit = numba_basic.numba_njit(inline="always")(gru_cell)
gru_cell_backward_factors_jit = numba_basic.numba_njit(inline="always")(gru_cell_backward_factors)
gru_cell_backward_jit = numba_basic.numba_njit(inline="always")(gru_cell_backward)


def _cell(like, r_x, u_x, c_x, r_h, u_h, c_h, h_prev):
    """``gru_cell`` with the activations of ``like``'s dtype (chosen at compile time)."""


@overload(_cell, inline="always")
def _cell_for_dtype(like, r_x, u_x, c_x, r_h, u_h, c_h, h_prev):
    # compile-time activations keep the cfuncs cacheable (see lstm_kernels._cell_for_dtype)
    if like.dtype == types.float32:
        return lambda like, r_x, u_x, c_x, r_h, u_h, c_h, h_prev: gru_cell_jit(
            r_x, u_x, c_x, r_h, u_h, c_h, h_prev, sigmoid32, rational_tanh32
        )
    return lambda like, r_x, u_x, c_x, r_h, u_h, c_h, h_prev: gru_cell_jit(
        r_x, u_x, c_x, r_h, u_h, c_h, h_prev, sigmoid64, tanh64
    )


@numba_basic.numba_njit(boundscheck=False, error_model="numpy")
def forward_row(z, gate_input, h_prev, h, cache):
    """One batch row of one step.

    z (3H): ``h_prev @ W_hid``; gate_input (3H); h_prev (H); h (H): the new state;
    cache (4H): receives ``[r | u | candidate | c_h]``.
    """
    H = h.shape[0]
    for j in range(H):
        c_h = z[2 * H + j]
        r, u, candidate, h_new = _cell(
            z, gate_input[j], gate_input[H + j], gate_input[2 * H + j], z[j], z[H + j], c_h, h_prev[j]
        )
        cache[j] = r
        cache[H + j] = u
        cache[2 * H + j] = candidate
        cache[3 * H + j] = c_h
        h[j] = h_new


@numba_basic.numba_njit(boundscheck=False, error_model="numpy")
def backward_row(cache, h_prev, dh, bound, d_gate_input, d_hid):
    """One batch row of one step of back-propagation through time.

    cache (4H): the step's ``[r | u | candidate | c_h]``; h_prev (H); dh (H): the
    cotangent reaching the new state, clipped to ``bound`` here and replaced by the part
    of h_prev's that does not pass through W_hid; d_gate_input, d_hid (3H): the
    cotangents of the step's input blocks and of ``h_prev @ W_hid``.
    """
    H = h_prev.shape[0]
    for j in range(H):
        r, u = cache[j], cache[H + j]
        k_r, k_u, k_c = gru_cell_backward_factors_jit(r, u, cache[2 * H + j], cache[3 * H + j], h_prev[j])
        da_r, da_u, da_c, dc_h, dh_direct = gru_cell_backward_jit(min(max(dh[j], -bound), bound), k_r, k_u, k_c, r, u)
        d_gate_input[j] = da_r
        d_gate_input[H + j] = da_u
        d_gate_input[2 * H + j] = da_c
        d_hid[j] = da_r
        d_hid[H + j] = da_u
        d_hid[2 * H + j] = dc_h
        dh[j] = dh_direct


@numba_basic.numba_njit(boundscheck=False)
def gru_forward(gate_input, W_hid, h0, mask, has_mask, hs, cache):
    T, B, _ = gate_input.shape
    z = np.empty((B, W_hid.shape[1]), dtype=hs.dtype)
    for t in range(T):
        h_prev = hs[t - 1] if t > 0 else h0
        dot_into(h_prev, W_hid, z, False)
        for b in range(B):
            forward_row(z[b], gate_input[t, b], h_prev[b], hs[t, b], cache[t, b])
            if has_mask and mask[t, b] == 0:
                # a skipped step carries the state over (its cache is still computed)
                hs[t, b] = h_prev[b]


@numba_basic.numba_njit(boundscheck=False)
def gru_backward(W_hid, h0, mask, hs, cache, d_hs, grad_clipping, has_mask, d_gate_input, d_W_hid, d_h0, d_hid):
    """d_hid (T, B, 3H): scratch for the cotangents of h_prev @ W_hid."""
    T, B, H = hs.shape
    W_t = W_hid.T  # a transposed view: BLAS reads it as such
    bound = np.full(1, grad_clipping if grad_clipping > 0 else np.inf, dtype=hs.dtype)[0]
    dh = d_h0  # the cotangent reaching the state after step t - 1; ends as d_h0
    dh[:] = 0
    for t in range(T - 1, -1, -1):
        h_prev = hs[t - 1] if t > 0 else h0
        for b in range(B):
            dh[b] += d_hs[t, b]
            if has_mask and mask[t, b] == 0:
                # a skipped step hands its cotangent to the previous state untouched
                d_gate_input[t, b] = 0
                d_hid[t, b] = 0
                continue
            backward_row(cache[t, b], h_prev[b], dh[b], bound, d_gate_input[t, b], d_hid[t, b])
        # dh += d_hid_t @ W_hid^T; skipped rows of d_hid are zero, so they add nothing
        dot_into(d_hid[t], W_t, dh, True)
    if T == 0:
        d_W_hid[:] = 0
        return
    # d_W_hid over all T * B rows: h0^T d_hid_0, plus one product over the other (T - 1) * B
    dot_into(h0.T, d_hid[0], d_W_hid, False)
    if T > 1:
        dot_into(hs[:-1].reshape((T - 1) * B, H).T, d_hid[1:].reshape((T - 1) * B, 3 * H), d_W_hid, True)
