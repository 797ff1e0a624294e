"""JAX implementations of ``LSTMSequence`` and ``LSTMSequenceGrad``.

The forward recursion is one ``lax.scan``; the backward another, in reverse, carrying
only dh, dc (B, H) and the peephole sums; ``dW_hid`` is one contraction over all
T * B rows after the loop. The step equations are ``dandelion.ops.lstm_sequence_numpy``'s,
run on ``jax.numpy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.lstm_sequence import LSTMSequence
from dandelion.ops.lstm_sequence_grad import LSTMSequenceGrad
from dandelion.ops.lstm_sequence_numpy import backward_step, forward_step


def _split_inputs(op, inputs):
    """``(peep (3, H) or None, h0, c0, mask or None, rest)`` from the Op's inputs after the leading ones."""
    k = 3 if op.peephole else 0
    peep = jnp.stack(inputs[:k]) if op.peephole else None
    h0, c0 = inputs[k], inputs[k + 1]
    mask = inputs[k + 2] if op.has_mask else None
    return peep, h0, c0, mask, inputs[k + 2 + int(op.has_mask) :]


def _ones_mask(T, B, dtype):
    return jnp.ones((T, B), dtype=dtype)


@jax_funcify.register(LSTMSequence)
def jax_funcify_LSTMSequence(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    peephole, has_mask = op.peephole, op.has_mask

    def lstm_sequence(gate_input, W_hid, *rest):
        peep, h0, c0, mask, _ = _split_inputs(op, [x.astype(dtype) for x in rest])
        gate_input, W_hid = gate_input.astype(dtype), W_hid.astype(dtype)
        if mask is None:
            mask = _ones_mask(gate_input.shape[0], gate_input.shape[1], dtype)

        def step(carry, inputs):
            h, c = carry
            g_t, m_t = inputs
            h_new, c_new, gates_t = forward_step(jnp, g_t + h @ W_hid, c, peep, peephole)
            if has_mask:
                keep = (m_t != 0)[:, None]
                h_new, c_new = jnp.where(keep, h_new, h), jnp.where(keep, c_new, c)
            return (h_new, c_new), (h_new, c_new, gates_t)

        _, (hs, cs, gates) = jax.lax.scan(step, (h0, c0), (gate_input, mask))
        return hs, cs, gates

    return lstm_sequence


@jax_funcify.register(LSTMSequenceGrad)
def jax_funcify_LSTMSequenceGrad(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    peephole, has_mask, clip = op.peephole, op.has_mask, op.grad_clipping

    def lstm_sequence_grad(W_hid, *rest):
        W_hid = W_hid.astype(dtype)
        peep, h0, c0, mask, forward = _split_inputs(op, [x.astype(dtype) for x in rest])
        hs, cs, gates, d_hs, d_cs = forward
        T, B, H = hs.shape
        if mask is None:
            mask = _ones_mask(T, B, dtype)
        c_prev_seq = jnp.concatenate([c0[None], cs[:-1]], axis=0)
        h_prev_seq = jnp.concatenate([h0[None], hs[:-1]], axis=0)
        peep_zero = jnp.zeros((3, H), dtype=dtype)

        def step(carry, inputs):
            dh, dc, d_peep = carry
            gates_t, c_new, c_prev, dh_t, dc_t, m_t = inputs
            dh, dc = dh + dh_t, dc + dc_t
            keep = (m_t != 0)[:, None]
            da, dc_prev, peep_terms = backward_step(
                jnp, gates_t, c_new, c_prev, jnp.where(keep, dh, 0), jnp.where(keep, dc, 0), peep, peephole
            )
            if peephole:
                d_peep = d_peep + jnp.stack([term.sum(axis=0) for term in peep_terms])
            if clip > 0:
                da = jnp.clip(da, -clip, clip)
            dh_prev = da @ W_hid.T
            if has_mask:
                # A skipped step hands its gradients to the previous state untouched.
                dh_prev = dh_prev + jnp.where(keep, 0, dh)
                dc_prev = dc_prev + jnp.where(keep, 0, dc)
            return (dh_prev, dc_prev, d_peep), da

        zeros = jnp.zeros((B, H), dtype=dtype)
        (d_h0, d_c0, d_peep), d_gate_input = jax.lax.scan(
            step, (zeros, zeros, peep_zero), (gates, cs, c_prev_seq, d_hs, d_cs, mask), reverse=True
        )
        d_W_hid = jnp.einsum("tbh,tbg->hg", h_prev_seq, d_gate_input)
        peep_grads = [d_peep[0], d_peep[1], d_peep[2]] if peephole else []
        return (d_gate_input, d_W_hid, *peep_grads, d_h0, d_c0)

    return lstm_sequence_grad
