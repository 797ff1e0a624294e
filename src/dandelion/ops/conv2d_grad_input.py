"""``Conv2DGradInput``: the adjoint of ``Conv2D`` in its input, i.e. the transposed convolution."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.scalar import upcast

from dandelion._compat import ShapeInferringOp
from dandelion.ops import conv_numpy
from dandelion.ops.conv_c import ConvCOp
from dandelion.ops.conv_common import (
    ConvParams,
    as_float_tensor,
    as_hw_vector,
    check_groups,
    flip_filters,
    static_or_symbolic_hw,
)


class Conv2DGradInput(ConvParams, ShapeInferringOp, ConvCOp):
    """Gradient of ``Conv2D(props)(x, w)`` with respect to x, given the output cotangent.

    Inputs: w (O, C//g, kh, kw), gy (B, O, H_out, W_out) and ``in_hw`` (2,) int, the
    image size (H, W) of x, which a strided convolution cannot recover from gy alone.
    Output (B, C, H, W). Linear in w and in gy, so its own gradients are a ``Conv2D``
    (in gy) and a ``Conv2DGradFilters`` (in w).
    """

    __props__ = ConvParams.__props__
    conv_mode = 1
    op_name = "conv2d_grad_input"

    def make_node(self, w, gy, in_hw):
        w = as_float_tensor("conv2d_grad_input", "filters", w, 4)
        gy = as_float_tensor("conv2d_grad_input", "output_grad", gy, 4)
        in_hw, static_hw = as_hw_vector("conv2d_grad_input", "input_shape", in_hw)
        check_groups("conv2d_grad_input", None, w.type.shape[0], w.type.shape[1], self.num_groups)
        if gy.type.shape[1] is not None and w.type.shape[0] is not None and gy.type.shape[1] != w.type.shape[0]:
            raise ValueError(
                f"conv2d_grad_input: output_grad has {gy.type.shape[1]} channels, filters have {w.type.shape[0]} output channels"
            )
        self.check_sizes(static_hw, w.type.shape[2:], gy.type.shape[2:])
        channels = None if w.type.shape[1] is None else w.type.shape[1] * self.num_groups
        out = pt.tensor(dtype=upcast(w.dtype, gy.dtype), shape=(gy.type.shape[0], channels, *static_hw))
        return Apply(self, [w, gy, in_hw], [out])

    def perform(self, node, inputs, output_storage):
        w, gy, in_hw = inputs
        in_hw = tuple(int(v) for v in in_hw)
        if gy.shape[1] != w.shape[0]:
            raise ValueError(f"conv2d_grad_input: output_grad has {gy.shape[1]} channels, filters {w.shape[0]}")
        self.check_sizes(in_hw, w.shape[2:], gy.shape[2:])
        w_eff = flip_filters(w) if self.flip else w
        out = conv_numpy.conv2d_input_grad(w_eff, gy, self.stride, self.pad, self.dilation, self.num_groups, in_hw)
        output_storage[0][0] = out.astype(node.outputs[0].dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        ws, gys, _ = input_shapes
        in_hw = node.inputs[2]
        return [(gys[0], ws[1] * self.num_groups, in_hw[0], in_hw[1])]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        from dandelion.ops.conv2d import Conv2D
        from dandelion.ops.conv2d_grad_filters import Conv2DGradFilters

        w, gy, in_hw = inputs
        (gx_bar,) = cotangents
        props = self._props_dict()
        # <gx_bar, A_w^T gy> = <A_w gx_bar, gy>: the forward convolution of gx_bar is the
        # cotangent of gy, and its filter gradient against gy the cotangent of w.
        g_gy = Conv2D(**props)(gx_bar, w)
        g_w = Conv2DGradFilters(**props)(gx_bar, gy, static_or_symbolic_hw(w))
        return [g_w.astype(w.dtype), g_gy.astype(gy.dtype), disconnected_type()]
