"""JAX implementations of ``GRUSequenceOp`` and ``GRUSequenceGradOp``.

As ``jax/lstm``: the forward recursion is one ``lax.scan``; the backward another, in
reverse, carrying only dh (B, H), with the factors that do not depend on the cotangent
computed for all steps before it; ``dW_hid`` is one contraction over all T * B rows
after the loop. The steps are ``dandelion.ops.gru_numpy``'s (and so the cell arithmetic
``dandelion.ops.recurrent_cells``'s), run on ``jax.numpy``.

On CPU, where the C kernels could be built (``dandelion.ops.jax.gru_native``), both Ops
call them as XLA custom calls instead; ``lax.platform_dependent`` keeps the scans for
every other platform.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.gru import GRUSequenceGradOp, GRUSequenceOp
from dandelion.ops.gru_numpy import backward_factors, backward_step, forward_step, previous_states
from dandelion.ops.jax.gru_native import native_gru_targets
from dandelion.ops.jax.lstm import UNROLL, sum_over_steps_of_outer
from dandelion.ops.jax.native_targets import per_platform


@jax_funcify.register(GRUSequenceOp)
def jax_funcify_GRUSequenceOp(op, node, **kwargs):
    return per_platform(node, op, native_gru_targets, _native_forward, _scan_forward, 0)


@jax_funcify.register(GRUSequenceGradOp)
def jax_funcify_GRUSequenceGradOp(op, node, **kwargs):
    return per_platform(node, op, native_gru_targets, _native_backward, _scan_backward, 1)


def _mask_or_dummy(mask, dtype):
    """The (T, B) mask as the kernels read it, or a (1, 1) dummy where the Op has none."""
    return mask[0] if mask else jnp.zeros((1, 1), dtype=dtype)


def _native_forward(op, dtype, target):
    def gru_sequence(gate_input, W_hid, h0, *mask):
        gate_input, W_hid, h0 = gate_input.astype(dtype), W_hid.astype(dtype), h0.astype(dtype)
        mask = [m.astype(dtype) for m in mask]
        op.check_shapes(gate_input, W_hid, h0, mask)  # the kernels trust them
        (T, B, _), H = gate_input.shape, W_hid.shape[0]
        shapes = [jax.ShapeDtypeStruct(shape, dtype) for shape in ((T, B, H), (T, B, 4 * H))]
        call = jax.ffi.ffi_call(target, shapes)
        hs, cache = call(gate_input, W_hid, h0, _mask_or_dummy(mask, dtype), has_mask=np.int64(op.has_mask))
        return hs, cache

    return gru_sequence


def _native_backward(op, dtype, target):
    def gru_sequence_grad(W_hid, h0, *rest):
        W_hid, h0 = W_hid.astype(dtype), h0.astype(dtype)
        *mask, hs, cache, d_hs = [x.astype(dtype) for x in rest]
        op.check_shapes(W_hid, h0, mask, hs, cache, d_hs)  # the kernels trust them
        T, B, H = hs.shape
        # the last output is the kernels' scratch (the cotangents of h_prev @ W_hid), unused after the call
        shapes = [jax.ShapeDtypeStruct(shape, dtype) for shape in ((T, B, 3 * H), (H, 3 * H), (B, H), (T, B, 3 * H))]
        call = jax.ffi.ffi_call(target, shapes)
        options = {"has_mask": np.int64(op.has_mask), "grad_clipping": np.dtype(dtype).type(op.grad_clipping)}
        d_gate_input, d_W_hid, d_h0, _ = call(W_hid, h0, _mask_or_dummy(mask, dtype), hs, cache, d_hs, **options)
        return d_gate_input, d_W_hid, d_h0

    return gru_sequence_grad


def _scan_forward(op, dtype):
    has_mask = op.has_mask

    def gru_sequence(gate_input, W_hid, h0, *mask):
        op.check_shapes(gate_input, W_hid, h0, mask)
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


def _scan_backward(op, dtype):
    has_mask, clip = op.has_mask, op.grad_clipping

    def gru_sequence_grad(W_hid, h0, *rest):
        W_hid, h0 = W_hid.astype(dtype), h0.astype(dtype)
        *mask, hs, cache, d_hs = [x.astype(dtype) for x in rest]
        op.check_shapes(W_hid, h0, mask, hs, cache, d_hs)
        h_prev = previous_states(jnp, h0, hs)
        W_t = W_hid.T

        def step(dh, inputs):
            factors_t, dh_t, *m_t = inputs
            keep = (m_t[0] != 0) if has_mask else None
            dh, d_gate_input_t, d_hid_t = backward_step(jnp, dh + dh_t, factors_t, keep, W_t, clip)
            return dh, (d_gate_input_t, d_hid_t)

        sequences = (backward_factors(cache, h_prev), d_hs, *mask)
        d_h0, (d_gate_input, d_hid) = jax.lax.scan(step, jnp.zeros_like(h0), sequences, reverse=True, unroll=UNROLL)
        return d_gate_input, sum_over_steps_of_outer(h_prev, d_hid), d_h0

    return gru_sequence_grad
