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
  cell definition (Numba would type them int64 or float64 and promote), and a rational
  tanh instead of libm's scalar call (accurate to 3e-8 in float64, to float32
  rounding in float32). The float64 kernels keep ``math.tanh``.

The peepholes, the mask and the clipping are run-time flags of one compiled kernel (one
cache entry per dtype); absent peepholes are zeros, which leave the results unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.numba.blas import dot_into
from dandelion.ops.recurrent_cells import lstm_cell, lstm_cell_backward, lstm_cell_backward_factors

# The published minimax fit that Eigen and XLA use for float32 tanh: odd, degree 13 over 6.
_TANH_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)  # fmt: skip
_TANH_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
_TANH_BOUND = 9.0  # beyond it tanh is 1 to float32 precision


def _rational_tanh(p, q, bound, one):
    """The rational tanh with coefficients ``p``, ``q``, clamp ``bound`` and ``one`` of one dtype."""

    def tanh(x):
        x = min(max(x, -bound), bound)
        x2 = x * x
        num = p[0]
        for k in range(1, len(p)):
            num = num * x2 + p[k]
        den = q[0]
        for k in range(1, len(q)):
            den = den * x2 + q[k]
        # rounded in float32 the ratio can pass 1 by an ulp near the clamp
        return min(max(x * num / den, -one), one)

    tanh.__doc__ = f"tanh as an odd rational function, |error| < 3e-8 in float64 (coefficients {type(bound).__name__})."
    return numba_basic.numba_njit(inline="always")(tanh)


rational_tanh = _rational_tanh(_TANH_P, _TANH_Q, _TANH_BOUND, 1.0)
rational_tanh32 = _rational_tanh(
    tuple(np.float32(c) for c in _TANH_P), tuple(np.float32(c) for c in _TANH_Q), np.float32(_TANH_BOUND), np.float32(1)
)
_HALF32 = np.float32(0.5)


@numba_basic.numba_njit(inline="always")
def sigmoid32(x):
    return _HALF32 + _HALF32 * rational_tanh32(_HALF32 * x)


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
