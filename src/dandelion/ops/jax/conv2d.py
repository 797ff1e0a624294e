"""JAX implementation of ``Conv2D`` (``jax.lax.conv_general_dilated``)."""

from __future__ import annotations

from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.conv2d import Conv2D
from dandelion.ops.jax.conv_common import make_jax_conv


@jax_funcify.register(Conv2D)
def jax_funcify_Conv2D(op, node, **kwargs):
    conv = make_jax_conv(op)
    dtype = node.outputs[0].dtype

    def conv2d(x, w):
        return conv(x.astype(dtype), w.astype(dtype))

    return conv2d
