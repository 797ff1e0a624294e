"""JAX implementations of the convolution Op family (``dandelion.ops.conv``).

The forward convolution is ``jax.lax.conv_general_dilated``; its adjoints are taken with
``jax.vjp`` of it, so XLA emits the transposed convolutions itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.conv import Conv2dGradFiltersOp, Conv2dGradInputOp, Conv2dOp


def make_jax_conv(op):
    """Cross-correlation (after the optional flip) with ``op``'s static parameters."""
    padding = [(p, p) for p in op.pad]

    def conv(x, w):
        if op.flip:
            w = w[:, :, ::-1, ::-1]
        return jax.lax.conv_general_dilated(
            x,
            w,
            window_strides=op.stride,
            padding=padding,
            rhs_dilation=op.dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=op.num_groups,
        )

    return conv


def static_pair(node, output_axes, input_index, what, remedy):
    """The static (H, W) a JAX kernel needs: from the output type, else a constant input.

    ``what`` names the pair and ``remedy`` says which graph input needs a static shape.
    """
    static = tuple(node.outputs[0].type.shape[i] for i in output_axes)
    if all(n is not None for n in static):
        return static
    data = getattr(node.inputs[input_index], "data", None)
    if data is not None:
        return tuple(int(v) for v in data)
    raise NotImplementedError(f"JAX needs the static {what} for {node.op}, unknown in this graph; {remedy}")


def make_adjoint(op, node, static_hw, primal_shape, apply_conv):
    """``adjoint(known, gy, hw)``: the pullback of ``apply_conv(primal, known)`` at ``gy``.

    ``primal_shape(known, gy, static_hw)`` is the shape of the argument the adjoint
    differentiates in (x or w), which must be static under JAX tracing.
    """
    conv = make_jax_conv(op)
    dtype = node.outputs[0].dtype

    def adjoint(known, gy, hw):
        known = known.astype(dtype)
        zeros = jnp.zeros(primal_shape(known, gy, static_hw), dtype=dtype)
        _, pullback = jax.vjp(lambda primal: apply_conv(conv, primal, known), zeros)
        return pullback(gy.astype(dtype))[0]

    return adjoint


@jax_funcify.register(Conv2dOp)
def jax_funcify_Conv2dOp(op, node, **kwargs):
    conv = make_jax_conv(op)
    dtype = node.outputs[0].dtype

    def conv2d(x, w):
        return conv(x.astype(dtype), w.astype(dtype))

    return conv2d


@jax_funcify.register(Conv2dGradInputOp)
def jax_funcify_Conv2dGradInputOp(op, node, **kwargs):
    in_hw = static_pair(
        node,
        (2, 3),
        2,
        "image size (H, W) it produces",
        "give conv2d's input, or conv2d_transpose's input and filters, static shapes (or pass output_size)",
    )
    return make_adjoint(
        op,
        node,
        in_hw,
        lambda w, gy, hw: (gy.shape[0], w.shape[1] * op.num_groups, *hw),
        lambda conv, x, w: conv(x, w),
    )


@jax_funcify.register(Conv2dGradFiltersOp)
def jax_funcify_Conv2dGradFiltersOp(op, node, **kwargs):
    kernel_hw = static_pair(
        node,
        (2, 3),
        2,
        "filter size (kh, kw)",
        "declare the filters with a static shape (pt.tensor(name, shape=(O, C, kh, kw)), or a shared variable)",
    )
    return make_adjoint(
        op,
        node,
        kernel_hw,
        lambda x, gy, hw: (gy.shape[1], x.shape[1] // op.num_groups, *hw),
        lambda conv, w, x: conv(x, w),
    )
