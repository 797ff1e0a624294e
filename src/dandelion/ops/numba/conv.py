"""Numba implementations of the convolution Op family (``dandelion.ops.conv``).

Each Op's function checks its arguments, allocates the output and calls one of the
C callbacks of ``conv_cfuncs`` (see there for why callbacks). Output sizes come from
``geometry.conv_output_length`` itself, jitted.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.conv import Conv2dGradFiltersOp, Conv2dGradInputOp, Conv2dOp
from dandelion.ops.geometry import conv_output_length
from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.conv_cfuncs import CONV_SOURCES, N_PARAMS, conv_cfuncs
from dandelion.ops.numba.source_cache import register_numba_op

out_size = numba_basic.numba_njit(conv_output_length)


@numba_basic.numba_njit
def conv_params(x_shape, w_shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip):
    """The int64 parameter vector of ``dandelion.ops.numba.conv_cfuncs``."""
    p = np.empty(N_PARAMS, dtype=np.int64)
    for i in range(4):
        p[i] = x_shape[i]
        p[4 + i] = w_shape[i]
    p[8], p[9] = ho, wo
    p[10], p[11], p[12], p[13], p[14], p[15] = sh, sw, ph, pw, dh, dw
    p[16] = groups
    p[17] = 1 if flip else 0
    return p


def _setup(op, node, kernel_index):
    """Output dtype, C-buffer converters of the two array inputs, the callback, and the props."""
    dtype = np.dtype(node.outputs[0].dtype)
    buffers = tuple(as_c_buffer(node.inputs[i].dtype, dtype) for i in (0, 1))
    kernel = conv_cfuncs(dtype.name)[kernel_index]
    return dtype, buffers, kernel, (*op.stride, *op.pad, *op.dilation, op.num_groups, op.flip)


@register_numba_op(Conv2dOp, CONV_SOURCES)
def numba_funcify_Conv2dOp(op, node, **kwargs):
    dtype, (x_buffer, w_buffer), forward, (sh, sw, ph, pw, dh, dw, groups, flip) = _setup(op, node, 0)

    @numba_basic.numba_njit
    def conv2d(x, w):
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


@register_numba_op(Conv2dGradInputOp, CONV_SOURCES)
def numba_funcify_Conv2dGradInputOp(op, node, **kwargs):
    dtype, (w_buffer, gy_buffer), grad_input, (sh, sw, ph, pw, dh, dw, groups, flip) = _setup(op, node, 1)

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


@register_numba_op(Conv2dGradFiltersOp, CONV_SOURCES)
def numba_funcify_Conv2dGradFiltersOp(op, node, **kwargs):
    dtype, (x_buffer, gy_buffer), grad_filters, (sh, sw, ph, pw, dh, dw, groups, flip) = _setup(op, node, 2)

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
