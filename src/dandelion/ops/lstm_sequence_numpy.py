"""NumPy kernels of the fused LSTM sequence Op and its gradient (the Python/C backends' ``perform``).

One loop over time with a BLAS product per step; everything else is elementwise on
(B, H) blocks. The per-step functions take the array namespace, so the JAX kernel
runs the same equations inside ``lax.scan``. Gate blocks are ``[input | forget | cell | output]`` as in
``dandelion.module.recurrent.steps``. The logistic function is written as
``(1 + tanh(x / 2)) / 2``, which equals ``1 / (1 + exp(-x))`` but cannot overflow.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(xp, x):
    return 0.5 + 0.5 * xp.tanh(0.5 * x)


def forward_step(xp, a, c, peep, peephole):
    """One step from ``a = gate_input[t] + h @ W_hid`` (B, 4H) and c (B, H).

    ``xp`` is the array namespace (``numpy`` here, ``jax.numpy`` in the JAX kernel).
    Returns ``(h_new, c_new, gates)`` with gates the activations ``[i | f | g | o]``.
    """
    H = c.shape[1]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    if peephole:
        a_i = a_i + c * peep[0]
        a_f = a_f + c * peep[1]
    i, f, g = _sigmoid(xp, a_i), _sigmoid(xp, a_f), xp.tanh(a_g)
    c_new = f * c + i * g
    if peephole:
        a_o = a_o + c_new * peep[2]
    o = _sigmoid(xp, a_o)
    return o * xp.tanh(c_new), c_new, xp.concatenate([i, f, g, o], axis=1)


def backward_step(xp, gates, c_new, c_prev, dh, dc, peep, peephole):
    """Cotangents through one unmasked step, before clipping.

    gates (B, 4H) and c_new (B, H) as the step computed them, c_prev (B, H), dh and dc
    (B, H) the cotangents of the step's h and c. Returns ``(da, dc_prev, peep_terms)``:
    da (B, 4H) of the gate pre-activations, dc_prev (B, H) (peephole paths included) and,
    with peepholes, the three (B, H) terms whose batch sums are the peephole gradients.
    """
    H = c_new.shape[1]
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    tanh_c = xp.tanh(c_new)
    da_o = dh * tanh_c * o * (1 - o)
    dc_new = dc + dh * o * (1 - tanh_c * tanh_c)
    if peephole:
        dc_new = dc_new + da_o * peep[2]
    da_i = dc_new * g * i * (1 - i)
    da_f = dc_new * c_prev * f * (1 - f)
    da_g = dc_new * i * (1 - g * g)
    dc_prev = dc_new * f
    peep_terms = None
    if peephole:
        dc_prev = dc_prev + da_i * peep[0] + da_f * peep[1]
        peep_terms = (da_i * c_prev, da_f * c_prev, da_o * c_new)
    return xp.concatenate([da_i, da_f, da_g, da_o], axis=1), dc_prev, peep_terms


def lstm_forward(gate_input, W_hid, peep, h0, c0, mask, peephole, has_mask):
    """Run the recurrence forward.

    gate_input (T, B, 4H), W_hid (H, 4H), peep (3, H) rows ``w_ci, w_cf, w_co``
    (read when ``peephole``), h0 and c0 (B, H), mask (T, B) (read when ``has_mask``).
    Returns hs, cs (T, B, H), the states after each step, and gates (T, B, 4H), the
    activations ``i, f, g, o`` each step computed (also on masked steps, where the
    gradient ignores them).
    """
    T, B, G = gate_input.shape
    H = G // 4
    dtype = gate_input.dtype
    hs = np.empty((T, B, H), dtype=dtype)
    cs = np.empty((T, B, H), dtype=dtype)
    gates = np.empty((T, B, G), dtype=dtype)
    h, c = h0, c0
    for t in range(T):
        h_new, c_new, gates[t] = forward_step(np, gate_input[t] + h @ W_hid, c, peep, peephole)
        if has_mask:
            keep = (mask[t] != 0)[:, None]
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        hs[t], cs[t] = h_new, c_new
        h, c = h_new, c_new
    return hs, cs, gates


def lstm_backward(W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, grad_clipping, peephole, has_mask):
    """Back-propagate cotangents ``d_hs``, ``d_cs`` (T, B, H) through ``lstm_forward``.

    The recursion carries only dh, dc (B, H) and one ``dA @ W_hid.T`` per step; the
    weight gradient is one product over all T * B rows after the loop. ``grad_clipping``
    > 0 clips the gradient reaching ``gate_input + h @ W_hid`` (before the peepholes are
    added) at every step; a masked step passes dh and dc through untouched.
    Returns d_gate_input (T, B, 4H), d_W_hid (H, 4H), d_peep (3, H), d_h0, d_c0 (B, H).
    """
    T, B, H = hs.shape
    dtype = hs.dtype
    d_gate_input = np.empty((T, B, 4 * H), dtype=dtype)
    d_peep = np.zeros((3, H), dtype=dtype)
    dh = np.zeros((B, H), dtype=dtype)
    dc = np.zeros((B, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        dh = dh + d_hs[t]
        dc = dc + d_cs[t]
        c_prev = cs[t - 1] if t > 0 else c0
        if has_mask:
            keep = (mask[t] != 0)[:, None]
            dh_pass, dc_pass = np.where(keep, 0, dh), np.where(keep, 0, dc)
            dh, dc = np.where(keep, dh, 0), np.where(keep, dc, 0)
        da, dc, peep_terms = backward_step(np, gates[t], cs[t], c_prev, dh, dc, peep, peephole)
        if peephole:
            d_peep += np.stack([term.sum(axis=0) for term in peep_terms])
        if grad_clipping > 0:
            da = np.clip(da, -grad_clipping, grad_clipping)
        d_gate_input[t] = da
        dh = da @ W_hid.T
        if has_mask:
            # A skipped step hands its gradients to the previous state untouched.
            dh, dc = dh + dh_pass, dc + dc_pass
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0).reshape(T * B, H)
    d_W_hid = h_prev.T @ d_gate_input.reshape(T * B, 4 * H)
    return d_gate_input, d_W_hid.astype(dtype, copy=False), d_peep, dh.astype(dtype, copy=False), dc.astype(dtype, copy=False)
