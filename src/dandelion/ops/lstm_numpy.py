"""NumPy kernels of the fused LSTM Op and its gradient (the Python/C backends' ``perform``).

One loop over time with a BLAS product per step; the cell arithmetic is
``dandelion.ops.recurrent_cells``'s on (B, H) blocks. ``forward_step`` and
``backward_step`` take the array namespace, so the JAX kernel runs the same steps
inside ``lax.scan``. The logistic function is written as ``(1 + tanh(x / 2)) / 2``,
which equals ``1 / (1 + exp(-x))`` but cannot overflow.
"""

from __future__ import annotations

import numpy as np

from dandelion.ops.recurrent_cells import carry_masked, lstm_cell, lstm_cell_backward, lstm_cell_backward_factors


def _gate_blocks(a, H):
    """``[i | f | g | o]`` blocks of the last axis of ``a`` (..., 4H)."""
    return a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]


def forward_step(xp, a, h, c, peep, keep):
    """One step from ``a = gate_input[t] + h @ W_hid`` (B, 4H) and h, c (B, H).

    ``xp`` is the array namespace (``numpy`` here, ``jax.numpy`` in the JAX kernel);
    ``peep`` the (3, H) peepholes or None; ``keep`` the (B,) step mask or None.
    Returns ``(h_new, c_new, gates)`` with gates the activations ``[i | f | g | o]``.
    """

    def sigmoid(x):
        return 0.5 + 0.5 * xp.tanh(0.5 * x)

    peep_i, peep_f, w_co = (c * peep[0], c * peep[1], peep[2]) if peep is not None else (None, None, None)
    i, f, g, o, c_new, h_new = lstm_cell(*_gate_blocks(a, c.shape[1]), c, peep_i, peep_f, w_co, sigmoid, xp.tanh, xp.tanh)
    if keep is not None:
        h_new, c_new = carry_masked(xp.where, keep, h_new, h), carry_masked(xp.where, keep, c_new, c)
    return h_new, c_new, xp.concatenate([i, f, g, o], axis=-1)


def backward_factors(xp, gates, cs, c_prev):
    """``lstm_cell_backward_factors`` for all steps at once.

    gates (T, B, 4H), cs and c_prev (T, B, H) from the forward pass; returns the factors
    ``k_o, k_c, k_i, k_f, k_g`` and the forget gate f, each (T, B, H).
    """
    i, f, g, o = _gate_blocks(gates, cs.shape[2])
    return (*lstm_cell_backward_factors(i, f, g, o, c_prev, cs, xp.tanh), f)


def backward_step(xp, dh, dc, factors, peep, keep, W_t, grad_clipping):
    """One step of back-propagation through time.

    dh, dc (B, H): cotangents reaching the step's h and c (from later steps and from
    the outputs); ``factors``: the step's slice of ``backward_factors``; ``keep``: the
    (B,) step mask or None; W_t = W_hid.T. Returns ``(dh_prev, dc_prev, da, raw)``:
    the cotangents of the previous states, of the step's pre-activations (B, 4H)
    clipped to ``grad_clipping`` when > 0, and unclipped (for the peepholes).
    """
    if keep is not None:
        # A skipped step hands its gradients to the previous state untouched.
        zeros = xp.zeros_like(dh)
        dh_pass, dc_pass = carry_masked(xp.where, keep, zeros, dh), carry_masked(xp.where, keep, zeros, dc)
        dh, dc = carry_masked(xp.where, keep, dh, zeros), carry_masked(xp.where, keep, dc, zeros)
    w = (peep[0], peep[1], peep[2]) if peep is not None else (None, None, None)
    da_i, da_f, da_g, da_o, dc_prev = lstm_cell_backward(dh, dc, *factors, *w)
    raw = xp.concatenate([da_i, da_f, da_g, da_o], axis=-1)
    da = xp.clip(raw, -grad_clipping, grad_clipping) if grad_clipping > 0 else raw
    dh_prev = da @ W_t
    if keep is not None:
        dh_prev, dc_prev = dh_prev + dh_pass, dc_prev + dc_pass
    return dh_prev, dc_prev, da, raw


def peephole_grads(xp, raw, cs, c_prev):
    """(w_ci, w_cf, w_co) gradients from the unclipped pre-activation cotangents raw (T, B, 4H)."""
    raw_i, raw_f, _, raw_o = _gate_blocks(raw, cs.shape[2])
    return xp.einsum("tbh,tbh->h", raw_i, c_prev), xp.einsum("tbh,tbh->h", raw_f, c_prev), xp.einsum("tbh,tbh->h", raw_o, cs)


def lstm_forward(gate_input, W_hid, peep, h0, c0, mask, peephole, has_mask):
    """Run the recurrence forward.

    gate_input (T, B, 4H), W_hid (H, 4H), peep (3, H) rows ``w_ci, w_cf, w_co``
    (read when ``peephole``), h0 and c0 (B, H), mask (T, B) (read when ``has_mask``).
    Returns hs, cs (T, B, H), the states after each step, and gates (T, B, 4H), the
    activations ``i, f, g, o`` each step computed (also on masked steps, where the
    gradient ignores them).
    """
    T, B, G = gate_input.shape
    dtype = np.result_type(gate_input, W_hid)
    hs = np.empty((T, B, G // 4), dtype=dtype)
    cs = np.empty_like(hs)
    gates = np.empty((T, B, G), dtype=dtype)
    h, c = np.asarray(h0, dtype=dtype), np.asarray(c0, dtype=dtype)
    a = np.empty((B, G), dtype=dtype)
    for t in range(T):
        np.dot(h, W_hid, out=a)
        a += gate_input[t]
        keep = mask[t] != 0 if has_mask else None
        h, c, gates[t] = forward_step(np, a, h, c, peep if peephole else None, keep)
        hs[t], cs[t] = h, c
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
    factors = backward_factors(np, gates, cs, c_prev)
    d_gate_input = np.empty((T, B, 4 * H), dtype=dtype)
    raw = np.empty_like(d_gate_input) if peephole else None  # unclipped, for the peepholes
    W_t = np.ascontiguousarray(W_hid.T, dtype=dtype)
    dh = np.zeros((B, H), dtype=dtype)
    dc = np.zeros((B, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        keep = mask[t] != 0 if has_mask else None
        step_factors = [k[t] for k in factors]
        dh, dc, d_gate_input[t], raw_t = backward_step(
            np, dh + d_hs[t], dc + d_cs[t], step_factors, peep if peephole else None, keep, W_t, grad_clipping
        )
        if peephole:
            raw[t] = raw_t
    d_peep = np.zeros((3, H), dtype=dtype)
    if peephole:
        d_peep[:] = peephole_grads(np, raw, cs, c_prev)
    h_prev = np.concatenate([np.asarray(h0, dtype=dtype)[None], hs[:-1]], axis=0).reshape(T * B, H)
    d_W_hid = h_prev.T @ d_gate_input.reshape(T * B, 4 * H)
    return d_gate_input, d_W_hid, d_peep, dh, dc
