"""Numba implementation of ``Conv2D``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion.ops.conv2d import Conv2D
from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.conv_cfuncs import conv_cfuncs
from dandelion.ops.numba.conv_common import conv_params, out_size


@register_funcify_default_op_cache_key(Conv2D)
def numba_funcify_Conv2D(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    w_buffer = as_c_buffer(node.inputs[1].dtype, dtype)
    forward, _, _ = conv_cfuncs(dtype.name)
    (sh, sw), (ph, pw), (dh, dw), groups, flip = op.stride, op.pad, op.dilation, op.num_groups, op.flip

    @numba_basic.numba_njit
    def conv2d(x, w):
        # astype gives the C-contiguous buffers the callback reads
        xc, wc = x_buffer(x), w_buffer(w)
        if xc.shape[1] != wc.shape[1] * groups:
            raise ValueError("conv2d: input channels disagree with filters.shape[1] * num_groups")
        ho = out_size(xc.shape[2], wc.shape[2], sh, ph, dh)
        wo = out_size(xc.shape[3], wc.shape[3], sw, pw, dw)
        if ho < 1 or wo < 1:
            raise ValueError("conv2d: the padded input is smaller than the dilated filter")
        out = np.empty((xc.shape[0], wc.shape[0], ho, wo), dtype=dtype)
        params = conv_params(xc.shape, wc.shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip)
        forward(xc.ctypes, wc.ctypes, out.ctypes, params.ctypes)
        return out

    return conv2d
