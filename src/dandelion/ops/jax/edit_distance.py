"""JAX implementation of ``EditDistanceOp`` (``dandelion.ops.edit_distance``): one ``jax.lax.scan``
over the rows of the table, vectorised over the batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.edit_distance import EditDistanceOp


@jax_funcify.register(EditDistanceOp)
def jax_funcify_EditDistanceOp(op, node=None, **kwargs):
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
