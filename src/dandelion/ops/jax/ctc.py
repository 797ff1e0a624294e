"""JAX implementations of the CTC Op family (``dandelion.ops.ctc``): the forward recursion as
one ``jax.lax.scan``, its gradient by ``jax.vjp`` of it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.ctc import CTCForwardGradOp, CTCForwardOp
from dandelion.ops.ctc_numpy import LOG_ZERO


def _jax_forward():
    def forward(log_probs, extended, skip_ok, lengths, valid):
        dtype = log_probs.dtype
        neg = jnp.asarray(LOG_ZERO, dtype)
        emissions = jnp.take_along_axis(log_probs, extended[:, None, :].astype(jnp.int32), axis=2)
        skip = skip_ok.astype(bool)
        batch, states = extended.shape
        start = jnp.full((batch, states), neg).at[:, 0].set(0)

        def step(alpha, inputs):
            emission, is_valid = inputs
            pad = jnp.full((batch, 1), neg)
            prev1 = jnp.concatenate([pad, alpha[:, :-1]], axis=1)
            prev2 = jnp.where(skip, jnp.concatenate([pad, pad, alpha[:, :-2]], axis=1), neg)
            top = jnp.maximum(jnp.maximum(alpha, prev1), prev2)
            advanced = top + jnp.log(jnp.exp(alpha - top) + jnp.exp(prev1 - top) + jnp.exp(prev2 - top)) + emission
            return jnp.where(is_valid.astype(bool)[:, None], advanced, alpha), None

        alpha, _ = jax.lax.scan(step, start, (jnp.swapaxes(emissions, 0, 1), jnp.swapaxes(valid, 0, 1)))
        s = jnp.arange(states)[None, :]
        n = lengths[:, None]
        ends = jnp.where((s == 2 * n) | ((s == 2 * n - 1) & (n > 0)), alpha, neg)
        return jax.nn.logsumexp(ends, axis=1).astype(dtype)

    return forward


@jax_funcify.register(CTCForwardOp)
def jax_funcify_CTCForwardOp(op, node=None, **kwargs):
    return _jax_forward()


@jax_funcify.register(CTCForwardGradOp)
def jax_funcify_CTCForwardGradOp(op, node=None, **kwargs):
    forward = _jax_forward()

    def ctc_forward_grad_jax(log_probs, extended, skip_ok, lengths, valid, output_grad):
        _, pullback = jax.vjp(lambda lp: forward(lp, extended, skip_ok, lengths, valid), log_probs)
        return pullback(output_grad.astype(log_probs.dtype))[0]

    return ctc_forward_grad_jax
