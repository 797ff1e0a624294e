"""JAX implementation of ``DenseDot`` (which only Numba graphs get from the rewrite): ``jnp.dot``."""

from __future__ import annotations

from pytensor.link.jax.dispatch.basic import jax_funcify

from dandelion.ops.dense_dot import DenseDot


@jax_funcify.register(DenseDot)
def jax_funcify_DenseDot(op, node=None, **kwargs):
    import jax.numpy as jnp

    def dense_dot(x, y):
        return jnp.dot(x, y)

    return dense_dot
