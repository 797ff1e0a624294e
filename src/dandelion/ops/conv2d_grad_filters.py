"""``Conv2DGradFilters``: the adjoint of ``Conv2D`` in its filters."""

from __future__ import annotations

import numpy as np
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


class Conv2DGradFilters(ConvParams, ShapeInferringOp, ConvCOp):
    """Gradient of ``Conv2D(props)(x, w)`` with respect to w, given the output cotangent.

    Inputs: x (B, C, H, W), gy (B, O, H_out, W_out) and ``kernel_hw`` (2,) int, the filter
    size (kh, kw). Output (O, C//g, kh, kw). Linear in x and in gy: its gradients are a
    ``Conv2DGradInput`` (in x) and a ``Conv2D`` (in gy).
    """

    __props__ = ConvParams.__props__
    conv_mode = 2
    op_name = "conv2d_grad_filters"

    def make_node(self, x, gy, kernel_hw):
        x = as_float_tensor("conv2d_grad_filters", "input", x, 4)
        gy = as_float_tensor("conv2d_grad_filters", "output_grad", gy, 4)
        kernel_hw, static_k = as_hw_vector("conv2d_grad_filters", "filter_shape", kernel_hw)
        channels, out_channels = x.type.shape[1], gy.type.shape[1]
        check_groups("conv2d_grad_filters", None, out_channels, None, self.num_groups)
        if channels is not None and channels % self.num_groups != 0:
            raise ValueError(f"conv2d_grad_filters: num_groups={self.num_groups} must divide the input's {channels} channels")
        self.check_sizes(x.type.shape[2:], static_k, gy.type.shape[2:])
        cg = None if channels is None else channels // self.num_groups
        out = pt.tensor(dtype=upcast(x.dtype, gy.dtype), shape=(out_channels, cg, *static_k))
        return Apply(self, [x, gy, kernel_hw], [out])

    def perform(self, node, inputs, output_storage):
        x, gy, kernel_hw = inputs
        kernel = tuple(int(v) for v in kernel_hw)
        if x.shape[0] != gy.shape[0] or x.shape[1] % self.num_groups or gy.shape[1] % self.num_groups:
            raise ValueError(f"conv2d_grad_filters: inconsistent input {x.shape} and output_grad {gy.shape}")
        self.check_sizes(x.shape[2:], kernel, gy.shape[2:])
        out = conv_numpy.conv2d_filter_grad(x, gy, self.stride, self.pad, self.dilation, self.num_groups, kernel)
        if self.flip:
            out = flip_filters(out)
        output_storage[0][0] = np.ascontiguousarray(out, dtype=node.outputs[0].dtype)

    def output_shapes(self, node, input_shapes):
        xs, gys, _ = input_shapes
        kernel_hw = node.inputs[2]
        return [(gys[1], xs[1] // self.num_groups, kernel_hw[0], kernel_hw[1])]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        from dandelion.ops.conv2d import Conv2D
        from dandelion.ops.conv2d_grad_input import Conv2DGradInput

        x, gy, kernel_hw = inputs
        (w_bar,) = cotangents
        props = self._props_dict()
        # <w_bar, F(x, gy)> = <conv(x, w_bar), gy>, bilinear in x and gy.
        g_gy = Conv2D(**props)(x, w_bar)
        g_x = Conv2DGradInput(**props)(w_bar, gy, static_or_symbolic_hw(x))
        return [g_x.astype(x.dtype), g_gy.astype(gy.dtype), disconnected_type()]
