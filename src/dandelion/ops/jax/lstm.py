"""JAX implementations of ``LSTMSequenceOp`` and ``LSTMSequenceGradOp``.

The forward recursion is one ``lax.scan``; the backward another, in reverse, carrying
only dh, dc (B, H), with the factors that do not depend on the cotangents computed for
all steps before it; ``dW_hid`` and the peephole gradients are contractions over all
T * B rows after the loop. The steps are ``dandelion.ops.lstm_numpy``'s (and so the
cell arithmetic ``dandelion.ops.recurrent_cells``'s), run on ``jax.numpy``.

On CPU, where the C kernels could be built (``dandelion.ops.jax.lstm_native``), both Ops
call them as XLA custom calls instead; ``lax.platform_dependent`` keeps the scans for
every other platform.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.jax.lstm_native import native_lstm_targets
from dandelion.ops.jax.native_targets import per_platform
from dandelion.ops.lstm import LSTMSequenceGradOp, LSTMSequenceOp
from dandelion.ops.lstm_numpy import backward_factors, backward_step, forward_step, peephole_grads

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


def _kernel_options(op, inputs, dtype):
    """``(peep (3, H), mask (T, B))`` as the kernels read them (a (1, 1) dummy where unused), and the call's attributes."""
    peep, _, _, mask, _ = _split_inputs(op, inputs)
    unused = jnp.zeros((1, 1), dtype=dtype)
    attributes = {"peephole": np.int64(op.peephole), "has_mask": np.int64(op.has_mask)}
    return (unused if peep is None else peep), (unused if mask is None else mask), attributes


def sum_over_steps_of_outer(a, b):
    """``sum_t a_t^T @ b_t`` for (T, B, m) and (T, B, n): one product of (T * B, .) matrices.

    Written as an einsum over (t, b), XLA copied both operands into (b, t) order first
    (5 ms of W1's 65 at T=100, AMD EPYC). The recurrent gradients' ``dW_hid``.
    """
    T, B = a.shape[:2]
    rows_a, rows_b = a.reshape(T * B, a.shape[2]), b.reshape(T * B, b.shape[2])
    return jax.lax.dot_general(rows_a, rows_b, (((0,), (0,)), ((), ())))


def _d_W_hid(h0, hs, d_gate_input):
    """``sum_t h_{t-1}^T @ d_gate_input_t``."""
    return sum_over_steps_of_outer(jnp.concatenate([h0[None], hs[:-1]], axis=0), d_gate_input)


def _native_forward(op, dtype, target):
    def lstm_sequence(gate_input, W_hid, *rest):
        rest = [x.astype(dtype) for x in rest]
        gate_input, W_hid = gate_input.astype(dtype), W_hid.astype(dtype)
        op.check_shapes(gate_input, W_hid, rest)  # the kernels trust them
        peep, mask, attributes = _kernel_options(op, rest, dtype)
        _, h0, c0, _, _ = _split_inputs(op, rest)
        (T, B, _), H = gate_input.shape, W_hid.shape[0]
        shapes = [jax.ShapeDtypeStruct(shape, dtype) for shape in ((T, B, H), (T, B, H), (T, B, 4 * H))]
        return tuple(jax.ffi.ffi_call(target, shapes)(gate_input, W_hid, peep, h0, c0, mask, **attributes))

    return lstm_sequence


def _native_backward(op, dtype, target):
    def lstm_sequence_grad(W_hid, *rest):
        W_hid = W_hid.astype(dtype)
        rest = [x.astype(dtype) for x in rest]
        op.check_shapes(W_hid, rest)  # the kernels trust them
        peep, mask, attributes = _kernel_options(op, rest, dtype)
        _, h0, c0, _, forward = _split_inputs(op, rest)
        hs = forward[0]
        T, B, H = hs.shape
        shapes = [(T, B, 4 * H), (3, H), (B, H), (B, H)]
        call = jax.ffi.ffi_call(target, [jax.ShapeDtypeStruct(shape, dtype) for shape in shapes])
        d_gi, d_peep, d_h0, d_c0 = call(W_hid, peep, h0, c0, mask, *forward, **attributes, grad_clipping=np.dtype(dtype).type(op.grad_clipping))
        d_W_hid = _d_W_hid(h0, hs, d_gi)
        return (d_gi, d_W_hid, *(list(d_peep) if op.peephole else []), d_h0, d_c0)

    return lstm_sequence_grad


@jax_funcify.register(LSTMSequenceOp)
def jax_funcify_LSTMSequenceOp(op, node, **kwargs):
    return per_platform(node, op, native_lstm_targets, _native_forward, _scan_forward, 0)


@jax_funcify.register(LSTMSequenceGradOp)
def jax_funcify_LSTMSequenceGradOp(op, node, **kwargs):
    return per_platform(node, op, native_lstm_targets, _native_backward, _scan_backward, 1)


def _scan_forward(op, dtype):
    has_mask = op.has_mask

    def lstm_sequence(gate_input, W_hid, *rest):
        op.check_shapes(gate_input, W_hid, rest)
        peep, h0, c0, mask, _ = _split_inputs(op, [x.astype(dtype) for x in rest])
        gate_input, W_hid = gate_input.astype(dtype), W_hid.astype(dtype)

        def step(carry, inputs):
            h, c = carry
            g_t, m_t = inputs if has_mask else (inputs, None)
            keep = None if m_t is None else m_t != 0
            h_new, c_new, gates_t = forward_step(jnp, g_t + h @ W_hid, h, c, peep, keep)
            return (h_new, c_new), (h_new, c_new, gates_t)

        _, (hs, cs, gates) = jax.lax.scan(step, (h0, c0), (gate_input, mask) if has_mask else gate_input, unroll=UNROLL)
        return hs, cs, gates

    return lstm_sequence


def _scan_backward(op, dtype):
    peephole, has_mask, clip = op.peephole, op.has_mask, op.grad_clipping

    def lstm_sequence_grad(W_hid, *rest):
        op.check_shapes(W_hid, rest)
        W_hid = W_hid.astype(dtype)
        peep, h0, c0, mask, forward = _split_inputs(op, [x.astype(dtype) for x in rest])
        hs, cs, gates, d_hs, d_cs = forward
        B, H = hs.shape[1:]
        c_prev_seq = jnp.concatenate([c0[None], cs[:-1]], axis=0)
        W_t = W_hid.T

        def step(carry, inputs):
            dh, dc = carry
            factors_t, dh_t, dc_t, *m_t = inputs
            keep = (m_t[0] != 0) if has_mask else None
            dh, dc, da, raw = backward_step(jnp, dh + dh_t, dc + dc_t, factors_t, peep, keep, W_t, clip)
            return (dh, dc), (da, raw) if peephole and clip > 0 else da

        zeros = jnp.zeros((B, H), dtype=dtype)
        sequences = (backward_factors(jnp, gates, cs, c_prev_seq), d_hs, d_cs, *([mask] if has_mask else []))
        (d_h0, d_c0), per_step = jax.lax.scan(step, (zeros, zeros), sequences, reverse=True, unroll=UNROLL)
        d_gate_input, raw = per_step if peephole and clip > 0 else (per_step, per_step)
        # Sums over all steps of the unclipped pre-activation gradients times the cell.
        peep_grads = list(peephole_grads(jnp, raw, cs, c_prev_seq)) if peephole else []
        d_W_hid = _d_W_hid(h0, hs, d_gate_input)
        return (d_gate_input, d_W_hid, *peep_grads, d_h0, d_c0)

    return lstm_sequence_grad
