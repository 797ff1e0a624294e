"""JAX implementation of ``MaxPoolGather`` (the tangent map of max ``reduce_window``)."""

from __future__ import annotations

import jax
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.jax.pool_common import make_jax_pool
from dandelion.ops.pool_grad_grad import MaxPoolGather


@jax_funcify.register(MaxPoolGather)
def jax_funcify_MaxPoolGather(op, node, **kwargs):
    pool = make_jax_pool(op)
    dtype = node.outputs[0].dtype

    def max_pool_gather(x, g):
        return jax.jvp(pool, (x.astype(dtype),), (g.astype(dtype),))[1]

    return max_pool_gather
