"""JAX implementation of ``Conv2DGradFilters`` (the transpose of the forward convolution in w)."""

from __future__ import annotations

import jax
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.conv2d_grad_filters import Conv2DGradFilters
from dandelion.ops.jax.conv_common import make_jax_conv, static_pair, zeros


@jax_funcify.register(Conv2DGradFilters)
def jax_funcify_Conv2DGradFilters(op, node, **kwargs):
    conv = make_jax_conv(op)
    dtype = node.outputs[0].dtype
    kh, kw = static_pair(
        node,
        (2, 3),
        2,
        "filter size (kh, kw)",
        "declare the filters with a static shape (pt.tensor(name, shape=(O, C, kh, kw)), or a shared variable)",
    )

    def conv2d_grad_filters(x, gy, kernel_hw):
        x = x.astype(dtype)
        w_shape = (gy.shape[1], x.shape[1] // op.num_groups, kh, kw)
        _, pullback = jax.vjp(lambda w: conv(x, w), zeros(w_shape, dtype))
        return pullback(gy.astype(dtype))[0]

    return conv2d_grad_filters
