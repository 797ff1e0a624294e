"""JAX implementations of the objective Ops, registered with PyTensor's JAX dispatcher.

Imported when PyTensor's JAX backend is first used (JAX is optional).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.objective.ctc_op import LOG_ZERO, CTCForward, CTCForwardGrad
from dandelion.objective.edit_distance import EditDistance


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


@jax_funcify.register(CTCForward)
def _jax_ctc_forward(op, node=None, **kwargs):
    return _jax_forward()


@jax_funcify.register(CTCForwardGrad)
def _jax_ctc_forward_grad(op, node=None, **kwargs):
    forward = _jax_forward()

    def ctc_forward_grad_jax(log_probs, extended, skip_ok, lengths, valid, output_grad):
        _, pullback = jax.vjp(lambda lp: forward(lp, extended, skip_ok, lengths, valid), log_probs)
        return pullback(output_grad.astype(log_probs.dtype))[0]

    return ctc_forward_grad_jax


@jax_funcify.register(EditDistance)
def _jax_edit_distance(op, node=None, **kwargs):
    def one(a, a_len, b, b_len):
        columns = jnp.arange(b.shape[0] + 1)

        def next_row(row, i_and_symbol):
            i, symbol = i_and_symbol
            # Deletions and substitutions come from the previous row; insertions chain
            # along the new row: new[j] = min_k<=j (partial[k] + j - k), a running minimum.
            cost = (symbol != b).astype(row.dtype)
            partial = jnp.concatenate([jnp.array([i], dtype=row.dtype), jnp.minimum(row[1:] + 1, row[:-1] + cost)])
            new = jax.lax.cummin(partial - columns) + columns
            return new, new

        first = columns.astype(jnp.int64)
        _, rows = jax.lax.scan(next_row, first, (jnp.arange(1, a.shape[0] + 1, dtype=jnp.int64), a))
        rows = jnp.concatenate([first[None, :], rows], axis=0)
        return rows[a_len, b_len]

    batched = jax.vmap(one)

    def batch_edit_distance(a, a_len, b, b_len):
        return batched(a, a_len, b, b_len).astype(jnp.int64)

    return batch_edit_distance
