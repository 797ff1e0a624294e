"""``Conv2D``: batched, grouped, strided, dilated 2-D convolution (or cross-correlation)."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.scalar import upcast

from dandelion._compat import ShapeInferringOp
from dandelion.ops import conv_numpy
from dandelion.ops.conv_c import ConvCOp
from dandelion.ops.conv_common import (
    ConvParams,
    as_float_tensor,
    check_groups,
    flip_filters,
    static_or_symbolic_hw,
)
from dandelion.ops.conv_geometry import conv_output_length


class Conv2D(ConvParams, ShapeInferringOp, ConvCOp):
    """``y[b, o] = sum_c x[b, c] (*) w[o, c]`` per group; inputs x (B, C, H, W), w (O, C//g, kh, kw).

    ``flip=True`` flips the filters (true convolution); ``pad`` is explicit ``(ph, pw)``.
    Output (B, O, H_out, W_out) with ``H_out = (H + 2 ph - dilation_h (kh - 1) - 1) // stride_h + 1``.
    """

    __props__ = ConvParams.__props__
    conv_mode = 0
    op_name = "conv2d"

    def output_hw(self, in_hw, kernel):
        return tuple(
            conv_output_length(n, k, s, p, d) for n, k, s, p, d in zip(in_hw, kernel, self.stride, self.pad, self.dilation)
        )

    def make_node(self, x, w):
        x = as_float_tensor("conv2d", "input", x, 4)
        w = as_float_tensor("conv2d", "filters", w, 4)
        check_groups("conv2d", x.type.shape[1], w.type.shape[0], w.type.shape[1], self.num_groups)
        out_hw = self.output_hw(x.type.shape[2:], w.type.shape[2:])
        if any(n is not None and n < 1 for n in out_hw):
            raise ValueError(
                f"conv2d: the (padded) input {x.type.shape[2:]} with pad {self.pad} is smaller than the dilated "
                f"filter {w.type.shape[2:]} (dilation {self.dilation}): output size would be {out_hw}"
            )
        dtype = upcast(x.dtype, w.dtype)
        out = pt.tensor(dtype=dtype, shape=(x.type.shape[0], w.type.shape[0], *out_hw))
        return Apply(self, [x, w], [out])

    def effective_filters(self, w):
        return flip_filters(w) if self.flip else w

    def perform(self, node, inputs, output_storage):
        x, w = inputs
        if x.shape[1] != w.shape[1] * self.num_groups:
            raise ValueError(f"conv2d: input has {x.shape[1]} channels, filters expect {w.shape[1]} * {self.num_groups}")
        out_hw = self.output_hw(x.shape[2:], w.shape[2:])
        if min(out_hw) < 1:
            raise ValueError(f"conv2d: input {x.shape} too small for filters {w.shape} with pad {self.pad}")
        out = conv_numpy.conv2d_forward(
            x, self.effective_filters(w), self.stride, self.pad, self.dilation, self.num_groups, out_hw
        )
        output_storage[0][0] = out.astype(node.outputs[0].dtype, copy=False)

    def output_shapes(self, node, input_shapes):
        xs, ws = input_shapes
        hw = [
            (n + 2 * p - ((k - 1) * d + 1)) // s + 1
            for n, k, s, p, d in zip(xs[2:], ws[2:], self.stride, self.pad, self.dilation)
        ]
        return [(xs[0], ws[0], *hw)]

    def pullback(self, inputs, outputs, cotangents):
        from dandelion.ops.conv2d_grad_filters import Conv2DGradFilters
        from dandelion.ops.conv2d_grad_input import Conv2DGradInput

        x, w = inputs
        (gy,) = cotangents
        props = self._props_dict()
        gx = Conv2DGradInput(**props)(w, gy, static_or_symbolic_hw(x))
        gw = Conv2DGradFilters(**props)(x, gy, static_or_symbolic_hw(w))
        return [gx.astype(x.dtype), gw.astype(w.dtype)]
