"""JAX implementation of ``IndexBoundsCheck``: the condition goes to the host, which raises.

JAX cannot raise while tracing; ``io_callback`` runs on the host at execution time and
its exception ends the call (as a ``JaxRuntimeError`` carrying the message), before
any update is assigned. Being a side effect, the callback is never pruned.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.jax.dispatch.basic import jax_funcify

from dandelion.ops.index_bounds import IndexBoundsCheck


@jax_funcify.register(IndexBoundsCheck)
def jax_funcify_IndexBoundsCheck(op, node=None, **kwargs):
    import jax.numpy as jnp
    from jax.experimental import io_callback

    exc_type, msg = op.exc_type, op.msg

    def raise_unless(ok):
        if not bool(np.asarray(ok)):
            raise exc_type(msg)

    def index_bounds_check(value, *conds):
        ok = jnp.all(jnp.stack([jnp.all(cond) for cond in conds]))
        io_callback(raise_unless, None, ok)
        return value

    return index_bounds_check
