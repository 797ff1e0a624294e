"""JAX implementation of ``PoolGrad`` (the pullback of ``reduce_window``)."""

from __future__ import annotations

import jax
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.jax.pool_common import make_jax_pool
from dandelion.ops.pool_grad import PoolGrad


@jax_funcify.register(PoolGrad)
def jax_funcify_PoolGrad(op, node, **kwargs):
    pool = make_jax_pool(op)
    dtype = node.outputs[0].dtype

    def pool_grad(x, gy):
        _, pullback = jax.vjp(pool, x.astype(dtype))
        return pullback(gy.astype(dtype))[0]

    return pool_grad
