"""JAX implementations of ``LSTMSequence`` and ``LSTMSequenceGrad``.

The forward recursion is one ``lax.scan``; the backward another, in reverse, carrying
only dh, dc (B, H), with the factors that do not depend on the cotangents computed for
all steps before it; ``dW_hid`` and the peephole gradients are contractions over all
T * B rows after the loop. ``forward_step`` and ``backward_factors`` are
``dandelion.ops.lstm_sequence_numpy``'s, run on ``jax.numpy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.lstm_sequence import LSTMSequence
from dandelion.ops.lstm_sequence_grad import LSTMSequenceGrad
from dandelion.ops.lstm_sequence_numpy import backward_factors, forward_step

# Steps per loop iteration: XLA's CPU while loop costs about as much per iteration as a
# step's gate arithmetic, and unrolling a few steps measured fastest on W1 (T=50).
UNROLL = 5


def _split_inputs(op, inputs):
    """``(peep (3, H) or None, h0, c0, mask or None, rest)`` from the Op's inputs after the leading ones."""
    k = 3 if op.peephole else 0
    peep = jnp.stack(inputs[:k]) if op.peephole else None
    h0, c0 = inputs[k], inputs[k + 1]
    mask = inputs[k + 2] if op.has_mask else None
    return peep, h0, c0, mask, inputs[k + 2 + int(op.has_mask) :]


@jax_funcify.register(LSTMSequence)
def jax_funcify_LSTMSequence(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    peephole, has_mask = op.peephole, op.has_mask

    def lstm_sequence(gate_input, W_hid, *rest):
        peep, h0, c0, mask, _ = _split_inputs(op, [x.astype(dtype) for x in rest])
        gate_input, W_hid = gate_input.astype(dtype), W_hid.astype(dtype)
        def step(carry, inputs):
            h, c = carry
            g_t, m_t = inputs if has_mask else (inputs, None)
            h_new, c_new, gates_t = forward_step(jnp, g_t + h @ W_hid, c, peep, peephole)
            if has_mask:
                keep = (m_t != 0)[:, None]
                h_new, c_new = jnp.where(keep, h_new, h), jnp.where(keep, c_new, c)
            return (h_new, c_new), (h_new, c_new, gates_t)

        _, (hs, cs, gates) = jax.lax.scan(step, (h0, c0), (gate_input, mask) if has_mask else gate_input, unroll=UNROLL)
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
        c_prev_seq = jnp.concatenate([c0[None], cs[:-1]], axis=0)
        h_prev_seq = jnp.concatenate([h0[None], hs[:-1]], axis=0)
        k_o, k_c, k_ifg, f = backward_factors(jnp, gates, cs, c_prev_seq)

        def step(carry, inputs):
            dh, dc = carry
            k_o_t, k_c_t, k_ifg_t, f_t, dh_t, dc_t, *m_t = inputs
            dh, dc = dh + dh_t, dc + dc_t
            if has_mask:
                keep = (m_t[0] != 0)[:, None]
                dh_pass, dc_pass = jnp.where(keep, 0, dh), jnp.where(keep, 0, dc)
                dh, dc = jnp.where(keep, dh, 0), jnp.where(keep, dc, 0)
            da_o = dh * k_o_t
            dc_new = dc + dh * k_c_t
            if peephole:
                dc_new = dc_new + da_o * peep[2]
            da_ifg = k_ifg_t * dc_new[:, None, :]
            dc_prev = dc_new * f_t
            if peephole:
                dc_prev = dc_prev + da_ifg[:, 0] * peep[0] + da_ifg[:, 1] * peep[1]
            raw = jnp.concatenate([da_ifg.reshape(B, 3 * H), da_o], axis=1)
            da = jnp.clip(raw, -clip, clip) if clip > 0 else raw
            dh_prev = da @ W_hid.T
            if has_mask:
                # A skipped step hands its gradients to the previous state untouched.
                dh_prev, dc_prev = dh_prev + dh_pass, dc_prev + dc_pass
            return (dh_prev, dc_prev), (da, raw) if peephole and clip > 0 else da

        zeros = jnp.zeros((B, H), dtype=dtype)
        (d_h0, d_c0), per_step = jax.lax.scan(
            step, (zeros, zeros), (k_o, k_c, k_ifg, f, d_hs, d_cs, *([mask] if has_mask else [])), reverse=True, unroll=UNROLL
        )
        d_gate_input, raw = per_step if peephole and clip > 0 else (per_step, per_step)
        peep_grads = []
        if peephole:
            # Sums over all steps of the unclipped pre-activation gradients times the cell.
            raw4 = raw.reshape(T, B, 4, H)
            peep_grads = [
                jnp.einsum("tbh,tbh->h", raw4[:, :, 0], c_prev_seq),
                jnp.einsum("tbh,tbh->h", raw4[:, :, 1], c_prev_seq),
                jnp.einsum("tbh,tbh->h", raw4[:, :, 3], cs),
            ]
        d_W_hid = jnp.einsum("tbh,tbg->hg", h_prev_seq, d_gate_input)
        return (d_gate_input, d_W_hid, *peep_grads, d_h0, d_c0)

    return lstm_sequence_grad
