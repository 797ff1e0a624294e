"""NumPy kernels of the fused GRU Op and its gradient (the Python backend's ``perform``, and
the C backend's without ``blas__ldflags``).

One loop over time with a BLAS product per step; the cell arithmetic is
``dandelion.ops.recurrent_cells``'s on (B, H) blocks. ``forward_step``,
``backward_factors`` and ``backward_step`` take the array namespace: the JAX kernel runs
them inside ``lax.scan``. The logistic function is written as ``(1 + tanh(x / 2)) / 2``,
which equals ``1 / (1 + exp(-x))`` but cannot overflow.

The forward pass keeps, per step, ``[r | u | candidate | c_h]`` (T, B, 4H): the gates,
the candidate and the candidate block of ``h_prev @ W_hid``, all the backward needs
besides the states.
"""

from __future__ import annotations

import numpy as np

from dandelion.ops.recurrent_cells import (
    carry_masked,
    clip_symmetric,
    gru_cell,
    gru_cell_backward,
    gru_cell_backward_factors,
)


def _blocks(a, H, count):
    """The ``count`` H-wide blocks of the last axis of ``a``."""
    return [a[..., k * H : (k + 1) * H] for k in range(count)]


def forward_step(xp, g, hid, h, keep):
    """One step from ``g = gate_input[t]`` and ``hid = h @ W_hid`` (B, 3H), and h (B, H).

    ``xp`` is the array namespace (``numpy`` here, ``jax.numpy`` in the JAX kernel);
    ``keep`` the (B,) step mask or None. Returns ``(h_new, cache)`` with cache (B, 4H)
    the step's ``[r | u | candidate | c_h]``.
    """

    def sigmoid(x):
        return 0.5 + 0.5 * xp.tanh(0.5 * x)

    H = h.shape[-1]
    c_h = _blocks(hid, H, 3)[2]
    r, u, candidate, h_new = gru_cell(*_blocks(g, H, 3), *_blocks(hid, H, 3), h, sigmoid, xp.tanh)
    if keep is not None:
        h_new = carry_masked(xp.where, keep, h_new, h)
    return h_new, xp.concatenate([r, u, candidate, c_h], axis=-1)


def backward_factors(cache, h_prev):
    """``gru_cell_backward_factors`` for all steps at once, and the gates r, u.

    cache (T, B, 4H) from the forward pass, h_prev (T, B, H) the states before each
    step; returns ``k_r, k_u, k_c, r, u``, each (T, B, H).
    """
    r, u, candidate, c_h = _blocks(cache, h_prev.shape[-1], 4)
    return (*gru_cell_backward_factors(r, u, candidate, c_h, h_prev), r, u)


def backward_step(xp, dh, factors, keep, W_t, grad_clipping):
    """One step of back-propagation through time.

    dh (B, H): the cotangent reaching the step's (masked) output state, from later steps
    and from the outputs; ``factors``: the step's slice of ``backward_factors``; ``keep``:
    the (B,) step mask or None; W_t = W_hid.T (3H, H). The clip applies to the computed
    state, before the mask, so a skipped step passes ``dh`` on unclipped. Returns
    ``(dh_prev, d_gate_input, d_hid)``: the previous state's cotangent and those of the
    step's ``gate_input`` and ``h_prev @ W_hid`` blocks (B, 3H).
    """
    d = clip_symmetric(xp, dh, grad_clipping) if grad_clipping > 0 else dh
    if keep is not None:
        d = carry_masked(xp.where, keep, d, xp.zeros_like(d))
    da_r, da_u, da_c, dc_h, dh_direct = gru_cell_backward(d, *factors)
    d_hid = xp.concatenate([da_r, da_u, dc_h], axis=-1)
    dh_prev = dh_direct + d_hid @ W_t
    if keep is not None:
        dh_prev = carry_masked(xp.where, keep, dh_prev, dh)
    return dh_prev, xp.concatenate([da_r, da_u, da_c], axis=-1), d_hid


def previous_states(xp, h0, hs):
    """(T, B, H): the state before each step, ``h0`` then ``hs[:-1]``."""
    return xp.concatenate([h0[None], hs[:-1]], axis=0)


def gru_forward(gate_input, W_hid, h0, mask, has_mask):
    """Run the recurrence forward.

    gate_input (T, B, 3H), W_hid (H, 3H), h0 (B, H), mask (T, B) (read when
    ``has_mask``). Returns hs (T, B, H), the states after each step (a masked step
    repeats the previous state), and cache (T, B, 4H) ``[r | u | candidate | c_h]``
    (computed on masked steps too, where the gradient ignores them).
    """
    T, B, G = gate_input.shape
    H = G // 3
    dtype = np.result_type(gate_input, W_hid)
    hs = np.empty((T, B, H), dtype=dtype)
    cache = np.empty((T, B, 4 * H), dtype=dtype)
    W_hid = np.asarray(W_hid, dtype=dtype)
    h = np.asarray(h0, dtype=dtype)
    hid = np.empty((B, 3 * H), dtype=dtype)
    for t in range(T):
        np.matmul(h, W_hid, out=hid)
        keep = mask[t] != 0 if has_mask else None
        hs[t], cache[t] = forward_step(np, gate_input[t], hid, h, keep)
        h = hs[t]
    return hs, cache


def gru_backward(W_hid, h0, mask, hs, cache, d_hs, grad_clipping, has_mask):
    """Back-propagate the cotangent ``d_hs`` (T, B, H) through ``gru_forward``.

    The recursion carries only dh (B, H) and one ``d_hid @ W_hid.T`` per step; ``dW_hid``
    is one product over all T * B rows after the loop. Returns d_gate_input (T, B, 3H),
    d_W_hid (H, 3H), d_h0 (B, H).
    """
    T, B, H = hs.shape
    dtype = hs.dtype
    h0 = np.asarray(h0, dtype=dtype)
    d_gate_input = np.empty((T, B, 3 * H), dtype=dtype)
    d_hid = np.empty((T, B, 3 * H), dtype=dtype)
    dh = np.zeros((B, H), dtype=dtype)
    if T == 0:
        return d_gate_input, np.zeros((H, 3 * H), dtype=dtype), dh
    h_prev = previous_states(np, h0, hs)
    factors = backward_factors(cache, h_prev)
    W_t = np.ascontiguousarray(W_hid.T, dtype=dtype)
    for t in range(T - 1, -1, -1):
        keep = mask[t] != 0 if has_mask else None
        dh, d_gate_input[t], d_hid[t] = backward_step(np, dh + d_hs[t], [k[t] for k in factors], keep, W_t, grad_clipping)
    d_W_hid = h_prev.reshape(T * B, H).T @ d_hid.reshape(T * B, 3 * H)
    return d_gate_input, d_W_hid, dh
