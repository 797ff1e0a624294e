"""NumPy kernels of the fused LSTM Op and its gradient (the Python backend's ``perform``, and
the C backend's without ``blas__ldflags``).

One loop over time with a BLAS product per step, written into preallocated buffers; the
cell arithmetic is ``dandelion.ops.recurrent_cells``'s on (B, H) blocks, with in-place
activations. ``forward_step`` and ``backward_step`` take the array namespace: the JAX
kernel runs them inside ``lax.scan``. The logistic function is written as
``(1 + tanh(x / 2)) / 2``, which equals ``1 / (1 + exp(-x))`` but cannot overflow.
"""

from __future__ import annotations

import numpy as np

from dandelion.ops.recurrent_cells import (
    carry_masked,
    clip_symmetric,
    lstm_cell,
    lstm_cell_backward,
    lstm_cell_backward_factors,
)


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
    da = clip_symmetric(xp, raw, grad_clipping) if grad_clipping > 0 else raw
    dh_prev = da @ W_t
    if keep is not None:
        dh_prev, dc_prev = dh_prev + dh_pass, dc_prev + dc_pass
    return dh_prev, dc_prev, da, raw


def peephole_grads(xp, raw, cs, c_prev):
    """(w_ci, w_cf, w_co) gradients from the unclipped pre-activation cotangents raw (T, B, 4H)."""
    raw_i, raw_f, _, raw_o = _gate_blocks(raw, cs.shape[2])
    return xp.einsum("tbh,tbh->h", raw_i, c_prev), xp.einsum("tbh,tbh->h", raw_f, c_prev), xp.einsum("tbh,tbh->h", raw_o, cs)


def _sigmoid_inplace(x):
    """The logistic ``0.5 + 0.5 tanh(x / 2)`` computed in place in ``x`` (a buffer of the kernel)."""
    np.multiply(x, 0.5, out=x)
    np.tanh(x, out=x)
    np.multiply(x, 0.5, out=x)
    np.add(x, 0.5, out=x)
    return x


def _tanh_inplace(x):
    return np.tanh(x, out=x)


def _activated(x):
    """The gate activation ``lstm_cell`` applies, when the kernel has applied it already."""
    return x


def _one_pass_activation(H, dtype):
    """(scale, shift) (4H,) with ``tanh(a * scale) * scale + shift`` the gate activations of a (B, 4H) block.

    The logistic is ``0.5 tanh(x / 2) + 0.5`` on the i, f, o blocks, tanh itself on g: four
    large ufunc calls per step instead of four per gate (at B * H ~ 10^4 their overhead,
    not the arithmetic, is what costs).
    """
    scale = np.full(4 * H, 0.5, dtype=dtype)
    shift = np.full(4 * H, 0.5, dtype=dtype)
    scale[2 * H : 3 * H] = 1
    shift[2 * H : 3 * H] = 0
    return scale, shift


def _where_inplace(keep, new, previous):
    """``carry_masked``'s select, written into ``new`` (a buffer of the kernel); ``keep`` broadcasts."""
    np.copyto(new, previous, where=~keep)
    return new


def _store(block, value):
    """Write ``value`` into ``block`` unless it was computed there in place already."""
    if not np.may_share_memory(block, value):
        block[...] = value


def lstm_forward(gate_input, W_hid, peep, h0, c0, mask, peephole, has_mask):
    """Run the recurrence forward.

    gate_input (T, B, 4H), W_hid (H, 4H), peep (3, H) rows ``w_ci, w_cf, w_co``
    (read when ``peephole``), h0 and c0 (B, H), mask (T, B) (read when ``has_mask``).
    Returns hs, cs (T, B, H), the states after each step, and gates (T, B, 4H), the
    activations ``i, f, g, o`` each step computed (also on masked steps, where the
    gradient ignores them).

    Each step's pre-activations are formed in ``gates[t]`` (one product into it, then
    the input added) and ``lstm_cell`` runs on its blocks with in-place activations, so
    the gate activations land where the output keeps them; a step allocates only the
    few (B, H) temporaries of the new cell and state.
    """
    T, B, G = gate_input.shape
    H = G // 4
    dtype = np.result_type(gate_input, W_hid)
    hs = np.empty((T, B, H), dtype=dtype)
    cs = np.empty_like(hs)
    gates = np.empty((T, B, G), dtype=dtype)
    W_hid = np.asarray(W_hid, dtype=dtype)
    h, c = np.asarray(h0, dtype=dtype), np.asarray(c0, dtype=dtype)
    w_ci, w_cf, w_co = (peep[0], peep[1], peep[2]) if peephole else (None, None, None)
    scale, shift = _one_pass_activation(H, dtype)
    for t in range(T):
        a = gates[t]
        np.matmul(h, W_hid, out=a)
        a += gate_input[t]
        blocks = _gate_blocks(a, H)
        if peephole:
            # the peephole terms enter before the activations (and o's waits for the new cell)
            *acts, c_new, h_new = lstm_cell(*blocks, c, c * w_ci, c * w_cf, w_co, _sigmoid_inplace, _tanh_inplace, np.tanh)
            for block, value in zip(blocks, acts, strict=True):
                _store(block, value)
        else:
            # all four activations as one in-place pass over the (B, 4H) block; the cell then combines them
            a *= scale
            np.tanh(a, out=a)
            a *= scale
            a += shift
            *_, c_new, h_new = lstm_cell(*blocks, c, None, None, None, _activated, _activated, np.tanh)
        if has_mask:
            keep = mask[t] != 0
            h_new, c_new = carry_masked(_where_inplace, keep, h_new, h), carry_masked(_where_inplace, keep, c_new, c)
        hs[t], cs[t] = h_new, c_new
        h, c = hs[t], cs[t]
    return hs, cs, gates


def lstm_backward(W_hid, peep, h0, c0, mask, hs, cs, gates, d_hs, d_cs, grad_clipping, peephole, has_mask):
    """Back-propagate cotangents ``d_hs``, ``d_cs`` (T, B, H) through ``lstm_forward``.

    The recursion carries only dh, dc (B, H) and one ``dA @ W_hid.T`` per step (into a
    preallocated buffer); the weight and peephole gradients are formed over all T * B
    rows after the loop. ``grad_clipping`` > 0 clips the gradient reaching
    ``gate_input + h @ W_hid`` (before the peepholes are added) at every step; a masked
    step passes dh and dc through untouched. Returns d_gate_input (T, B, 4H), d_W_hid
    (H, 4H), d_peep (3, H), d_h0, d_c0 (B, H).
    """
    T, B, H = hs.shape
    dtype = hs.dtype
    h0, c0 = np.asarray(h0, dtype=dtype), np.asarray(c0, dtype=dtype)
    d_gate_input = np.empty((T, B, 4 * H), dtype=dtype)
    d_peep = np.zeros((3, H), dtype=dtype)
    dh, dh_next = np.zeros((B, H), dtype=dtype), np.empty((B, H), dtype=dtype)
    dc = np.zeros((B, H), dtype=dtype)
    d_W_hid = np.zeros((H, 4 * H), dtype=dtype)
    if T == 0:
        return d_gate_input, d_W_hid, d_peep, dh, dc
    c_prev = np.concatenate([c0[None], cs[:-1]], axis=0)
    factors = backward_factors(np, gates, cs, c_prev)
    clipping = grad_clipping > 0
    # the peepholes take the unclipped cotangents; without clipping those are d_gate_input
    raw = np.empty_like(d_gate_input) if peephole and clipping else d_gate_input
    W_t = np.ascontiguousarray(W_hid.T, dtype=dtype)
    w = (peep[0], peep[1], peep[2]) if peephole else (None, None, None)
    for t in range(T - 1, -1, -1):
        dh += d_hs[t]
        dc += d_cs[t]
        *das, dc_prev = lstm_cell_backward(dh, dc, *(k[t] for k in factors), *w)
        d = raw[t]
        for block, value in zip(_gate_blocks(d, H), das, strict=True):
            block[...] = value
        keep = mask[t] != 0 if has_mask else None
        if keep is not None:
            # a skipped step hands its gradients to the previous state untouched
            carry_masked(_where_inplace, keep, d, 0)
            dc_prev = carry_masked(_where_inplace, keep, dc_prev, dc)
        if raw is not d_gate_input:
            np.clip(d, -grad_clipping, grad_clipping, out=d_gate_input[t])
        elif clipping:
            np.clip(d, -grad_clipping, grad_clipping, out=d)
        np.matmul(d_gate_input[t], W_t, out=dh_next)
        if keep is not None:
            carry_masked(_where_inplace, keep, dh_next, dh)
        dh, dh_next, dc = dh_next, dh, dc_prev
    if peephole:
        d_peep[:] = peephole_grads(np, raw, cs, c_prev)
    np.matmul(h0.T, d_gate_input[0], out=d_W_hid)
    if T > 1:
        d_W_hid += hs[:-1].reshape((T - 1) * B, H).T @ d_gate_input[1:].reshape((T - 1) * B, 4 * H)
    return d_gate_input, d_W_hid, d_peep, dh, dc
