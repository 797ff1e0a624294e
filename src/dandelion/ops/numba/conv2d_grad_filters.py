"""Numba implementation of ``Conv2DGradFilters``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion.ops.conv2d_grad_filters import Conv2DGradFilters
from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.conv_cfuncs import conv_cfuncs
from dandelion.ops.numba.conv_common import conv_params, out_size


@register_funcify_default_op_cache_key(Conv2DGradFilters)
def numba_funcify_Conv2DGradFilters(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    gy_buffer = as_c_buffer(node.inputs[1].dtype, dtype)
    _, _, grad_filters = conv_cfuncs(dtype.name)
    (sh, sw), (ph, pw), (dh, dw), groups, flip = op.stride, op.pad, op.dilation, op.num_groups, op.flip

    @numba_basic.numba_njit
    def conv2d_grad_filters(x, gy, kernel_hw):
        xc, gyc = x_buffer(x), gy_buffer(gy)
        kh, kw = kernel_hw[0], kernel_hw[1]
        ho, wo = gyc.shape[2], gyc.shape[3]
        if xc.shape[0] != gyc.shape[0] or xc.shape[1] % groups != 0 or gyc.shape[1] % groups != 0:
            raise ValueError("conv2d_grad_filters: input and output_grad disagree in batch size or groups")
        if out_size(xc.shape[2], kh, sh, ph, dh) != ho or out_size(xc.shape[3], kw, sw, pw, dw) != wo:
            raise ValueError("conv2d_grad_filters: filter_shape disagrees with the output gradient's size")
        out = np.empty((gyc.shape[1], xc.shape[1] // groups, kh, kw), dtype=dtype)
        params = conv_params(xc.shape, out.shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip)
        grad_filters(xc.ctypes, gyc.ctypes, out.ctypes, params.ctypes)
        return out

    return conv2d_grad_filters
