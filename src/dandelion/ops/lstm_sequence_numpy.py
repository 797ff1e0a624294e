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


def backward_factors(xp, gates, cs, c_prev):
    """What the backward recursion multiplies by at each step, for all steps at once.

    gates (T, B, 4H) and cs, c_prev (T, B, H) from the forward pass. With dh, dc the
    cotangents of a step's h and c (after the mask):
    ``da_o = dh * k_o``, ``dc_new = dc + dh * k_c [+ da_o * w_co]``,
    ``(da_i, da_f, da_g) = k_ifg * dc_new`` and ``dc_prev = dc_new * f [+ da_i * w_ci + da_f * w_cf]``.
    Returns k_o, k_c (T, B, H), k_ifg (T, B, 3, H) and f (T, B, H).
    """
    T, B, H = cs.shape
    g4 = gates.reshape(T, B, 4, H)
    i, f, g, o = g4[:, :, 0], g4[:, :, 1], g4[:, :, 2], g4[:, :, 3]
    tanh_c = xp.tanh(cs)
    k_o = tanh_c * o * (1 - o)
    k_c = o * (1 - tanh_c * tanh_c)
    k_ifg = xp.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], axis=2)
    return k_o, k_c, k_ifg, f


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
    dtype = np.result_type(gate_input, W_hid)
    hs = np.empty((T, B, H), dtype=dtype)
    cs = np.empty((T, B, H), dtype=dtype)
    gates = np.empty((T, B, G), dtype=dtype)
    # Few large in-place ufunc calls per step (their overhead, not the arithmetic, is what
    # costs at B * H ~ 10^4): sigmoid(a) = (1 + tanh(a / 2)) / 2 on the i, f, o blocks and
    # tanh on the g block are one ``tanh(a * scale) * scale + shift``.
    scale = np.full(G, 0.5, dtype=dtype)
    scale[2 * H : 3 * H] = 1
    shift = np.full(G, 0.5, dtype=dtype)
    shift[2 * H : 3 * H] = 0
    n_act = 3 * H if peephole else G  # with peepholes, o waits for the new cell
    h, c = np.asarray(h0, dtype=dtype), np.asarray(c0, dtype=dtype)
    for t in range(T):
        a = gates[t]
        np.dot(h, W_hid, out=a)
        a += gate_input[t]
        if peephole:
            a[:, :H] += c * peep[0]
            a[:, H : 2 * H] += c * peep[1]
        act = a[:, :n_act]
        act *= scale[:n_act]
        np.tanh(act, out=act)
        act *= scale[:n_act]
        act += shift[:n_act]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        c_new, h_new = cs[t], hs[t]
        np.multiply(f, c, out=c_new)
        c_new += i * g
        if peephole:
            o += c_new * peep[2]
            o[...] = _sigmoid(np, o)
        np.tanh(c_new, out=h_new)
        h_new *= o
        if has_mask:
            drop = mask[t] == 0
            h_new[drop] = h[drop]
            c_new[drop] = c[drop]
        h, c = h_new, c_new
    return hs, cs, gates


def lstm_backward(W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, grad_clipping, peephole, has_mask):
    """Back-propagate cotangents ``d_hs``, ``d_cs`` (T, B, H) through ``lstm_forward``.

    The recursion carries only dh, dc (B, H) and one ``dA @ W_hid.T`` per step; the
    weight and peephole gradients are formed over all T * B rows after the loop.
    ``grad_clipping`` > 0 clips the gradient reaching ``gate_input + h @ W_hid`` (before
    the peepholes are added) at every step; a masked step passes dh and dc through
    untouched. Returns d_gate_input (T, B, 4H), d_W_hid (H, 4H), d_peep (3, H),
    d_h0, d_c0 (B, H).
    """
    T, B, H = hs.shape
    dtype = hs.dtype
    c_prev = np.concatenate([np.asarray(c0, dtype=dtype)[None], cs[:-1]], axis=0)
    k_o, k_c, k_ifg, f = backward_factors(np, gates, cs, c_prev)
    d_gate_input = np.empty((T, B, 4 * H), dtype=dtype)
    raw = np.empty_like(d_gate_input) if grad_clipping > 0 else d_gate_input  # unclipped, for the peepholes
    raw4 = raw.reshape(T, B, 4, H)
    W_t = np.ascontiguousarray(W_hid.T, dtype=dtype)
    dh = np.zeros((B, H), dtype=dtype)
    dc = np.zeros((B, H), dtype=dtype)
    dc_new = np.empty((B, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        dh += d_hs[t]
        dc += d_cs[t]
        if has_mask:
            keep = (mask[t] != 0)[:, None]
            dh_pass, dc_pass = np.where(keep, 0, dh), np.where(keep, 0, dc)
            dh *= keep
            dc *= keep
        r = raw4[t]
        np.multiply(dh, k_o[t], out=r[:, 3])
        np.multiply(dh, k_c[t], out=dc_new)
        dc_new += dc
        if peephole:
            dc_new += r[:, 3] * peep[2]
        np.multiply(k_ifg[t], dc_new[:, None, :], out=r[:, :3])
        dc = dc_new * f[t]
        if peephole:
            dc += r[:, 0] * peep[0]
            dc += r[:, 1] * peep[1]
        if grad_clipping > 0:
            np.clip(raw[t], -grad_clipping, grad_clipping, out=d_gate_input[t])
        dh = d_gate_input[t] @ W_t
        if has_mask:
            # A skipped step hands its gradients to the previous state untouched.
            dh += dh_pass
            dc += dc_pass
    d_peep = np.zeros((3, H), dtype=dtype)
    if peephole:
        d_peep[0] = np.einsum("tbh,tbh->h", raw4[:, :, 0], c_prev)
        d_peep[1] = np.einsum("tbh,tbh->h", raw4[:, :, 1], c_prev)
        d_peep[2] = np.einsum("tbh,tbh->h", raw4[:, :, 3], cs)
    h_prev = np.concatenate([np.asarray(h0, dtype=dtype)[None], hs[:-1]], axis=0).reshape(T * B, H)
    d_W_hid = h_prev.T @ d_gate_input.reshape(T * B, 4 * H)
    return d_gate_input, d_W_hid, d_peep, dh, dc
