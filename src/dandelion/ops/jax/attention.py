"""JAX implementations of ``AttentionOp`` and ``AttentionGradOp``: ``dandelion.ops.attention_numpy`` on ``jax.numpy``."""

from __future__ import annotations

import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.attention import AttentionGradOp, AttentionOp
from dandelion.ops.attention_numpy import attention_backward, attention_forward


@jax_funcify.register(AttentionOp)
def jax_funcify_AttentionOp(op, node, **kwargs):
    scale, causal = op.scale, op.causal

    def attention(q, k, v, *multiplier):
        return attention_forward(q, k, v, scale, causal, multiplier[0] if multiplier else None, xp=jnp)

    return attention


@jax_funcify.register(AttentionGradOp)
def jax_funcify_AttentionGradOp(op, node, **kwargs):
    scale = op.scale

    def attention_grad(q, k, v, weights, *rest):
        multiplier = rest[0] if len(rest) == 2 else None
        return attention_backward(q, k, v, weights, rest[-1], scale, multiplier, xp=jnp)

    return attention_grad
