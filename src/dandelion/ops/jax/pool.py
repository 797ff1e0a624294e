"""JAX implementation of ``Pool`` (``jax.lax.reduce_window``)."""

from __future__ import annotations

from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.jax.pool_common import make_jax_pool
from dandelion.ops.pool import Pool


@jax_funcify.register(Pool)
def jax_funcify_Pool(op, node, **kwargs):
    return make_jax_pool(op)
