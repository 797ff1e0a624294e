"""JAX implementations of ``GRUSequenceOp`` and ``GRUSequenceGradOp``.

As ``jax/lstm``: the forward recursion is one ``lax.scan``; the backward another, in
reverse, carrying only dh (B, H), with the factors that do not depend on the cotangent
computed for all steps before it; ``dW_hid`` is one contraction over all T * B rows
after the loop. The steps are ``dandelion.ops.gru_numpy``'s (and so the cell arithmetic
``dandelion.ops.recurrent_cells``'s), run on ``jax.numpy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.gru import GRUSequenceGradOp, GRUSequenceOp
from dandelion.ops.gru_numpy import backward_factors, backward_step, forward_step, previous_states
from dandelion.ops.jax.lstm import UNROLL


@jax_funcify.register(GRUSequenceOp)
def jax_funcify_GRUSequenceOp(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    has_mask = op.has_mask

    def gru_sequence(gate_input, W_hid, h0, *mask):
        gate_input, W_hid, h0 = gate_input.astype(dtype), W_hid.astype(dtype), h0.astype(dtype)

        def step(h, inputs):
            g_t, m_t = inputs if has_mask else (inputs, None)
            keep = None if m_t is None else m_t != 0
            h_new, cache_t = forward_step(jnp, g_t, h @ W_hid, h, keep)
            return h_new, (h_new, cache_t)

        sequences = (gate_input, mask[0]) if has_mask else gate_input
        _, (hs, cache) = jax.lax.scan(step, h0, sequences, unroll=UNROLL)
        return hs, cache

    return gru_sequence


@jax_funcify.register(GRUSequenceGradOp)
def jax_funcify_GRUSequenceGradOp(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    has_mask, clip = op.has_mask, op.grad_clipping

    def gru_sequence_grad(W_hid, h0, *rest):
        W_hid, h0 = W_hid.astype(dtype), h0.astype(dtype)
        *mask, hs, cache, d_hs = [x.astype(dtype) for x in rest]
        h_prev = previous_states(jnp, h0, hs)
        W_t = W_hid.T

        def step(dh, inputs):
            factors_t, dh_t, *m_t = inputs
            keep = (m_t[0] != 0) if has_mask else None
            dh, d_gate_input_t, d_hid_t = backward_step(jnp, dh + dh_t, factors_t, keep, W_t, clip)
            return dh, (d_gate_input_t, d_hid_t)

        sequences = (backward_factors(cache, h_prev), d_hs, *mask)
        d_h0, (d_gate_input, d_hid) = jax.lax.scan(step, jnp.zeros_like(h0), sequences, reverse=True, unroll=UNROLL)
        return d_gate_input, jnp.einsum("tbh,tbg->hg", h_prev, d_hid), d_h0

    return gru_sequence_grad
