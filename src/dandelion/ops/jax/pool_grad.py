"""JAX implementation of ``PoolGrad``: reshaping for tiling windows, else the pullback of ``reduce_window``."""

from __future__ import annotations

import jax
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.jax.pool_common import make_jax_pool, make_tiled_pool_grad, tiles
from dandelion.ops.pool_grad import PoolGrad


@jax_funcify.register(PoolGrad)
def jax_funcify_PoolGrad(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    if tiles(op):
        tiled = make_tiled_pool_grad(op)

        def tiled_pool_grad(x, gy):
            return tiled(x.astype(dtype), gy.astype(dtype))

        return tiled_pool_grad
    pool = make_jax_pool(op)

    def pool_grad(x, gy):
        _, pullback = jax.vjp(pool, x.astype(dtype))
        return pullback(gy.astype(dtype))[0]

    return pool_grad
