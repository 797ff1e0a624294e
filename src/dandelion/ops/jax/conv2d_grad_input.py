"""JAX implementation of ``Conv2DGradInput`` (the transpose of the forward convolution)."""

from __future__ import annotations

import jax
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.conv2d_grad_input import Conv2DGradInput
from dandelion.ops.jax.conv_common import make_jax_conv, static_pair, zeros


@jax_funcify.register(Conv2DGradInput)
def jax_funcify_Conv2DGradInput(op, node, **kwargs):
    conv = make_jax_conv(op)
    dtype = node.outputs[0].dtype
    height, width = static_pair(
        node,
        (2, 3),
        2,
        "image size (H, W) it produces",
        "give conv2d's input, or conv2d_transpose's input and filters, static shapes (or pass output_size)",
    )

    def conv2d_grad_input(w, gy, in_hw):
        w = w.astype(dtype)
        x_shape = (gy.shape[0], w.shape[1] * op.num_groups, height, width)
        _, pullback = jax.vjp(lambda x: conv(x, w), zeros(x_shape, dtype))
        return pullback(gy.astype(dtype))[0]

    return conv2d_grad_input
