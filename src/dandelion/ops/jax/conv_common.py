"""The forward convolution in ``jax.lax``; its adjoints are taken with ``jax.vjp`` so XLA
emits the transposed convolutions itself."""

from __future__ import annotations

import jax
import jax.numpy as jnp


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


def zeros(shape, dtype):
    return jnp.zeros(shape, dtype=dtype)
