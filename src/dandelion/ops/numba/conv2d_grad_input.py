"""Numba implementation of ``Conv2DGradInput``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion.ops.conv2d_grad_input import Conv2DGradInput
from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.conv_cfuncs import conv_cfuncs
from dandelion.ops.numba.conv_common import conv_params, out_size


@register_funcify_default_op_cache_key(Conv2DGradInput)
def numba_funcify_Conv2DGradInput(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    w_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    gy_buffer = as_c_buffer(node.inputs[1].dtype, dtype)
    _, grad_input, _ = conv_cfuncs(dtype.name)
    (sh, sw), (ph, pw), (dh, dw), groups, flip = op.stride, op.pad, op.dilation, op.num_groups, op.flip

    @numba_basic.numba_njit
    def conv2d_grad_input(w, gy, in_hw):
        wc, gyc = w_buffer(w), gy_buffer(gy)
        h, wd = in_hw[0], in_hw[1]
        ho, wo = gyc.shape[2], gyc.shape[3]
        if gyc.shape[1] != wc.shape[0]:
            raise ValueError("conv2d_grad_input: output_grad channels disagree with filters.shape[0]")
        if out_size(h, wc.shape[2], sh, ph, dh) != ho or out_size(wd, wc.shape[3], sw, pw, dw) != wo:
            raise ValueError("conv2d_grad_input: input_shape disagrees with the output gradient's size")
        out = np.empty((gyc.shape[0], wc.shape[1] * groups, h, wd), dtype=dtype)
        params = conv_params(out.shape, wc.shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip)
        grad_input(wc.ctypes, gyc.ctypes, out.ctypes, params.ctypes)
        return out

    return conv2d_grad_input
