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
from dandelion.ops.numba.conv_cfuncs import CONV_SOURCES, FORWARD, GRAD_FILTERS, GRAD_INPUT, N_PARAMS, conv_cfuncs
from dandelion.ops.numba.source_cache import register_numba_op

out_size = numba_basic.numba_njit(conv_output_length)


@numba_basic.numba_njit
def conv_params(x_shape, w_shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip, kernel):
    """The int64 parameter vector of ``dandelion.ops.numba.conv_cfuncs`` (``kernel``: its ``FORWARD``, ...)."""
    p = np.empty(N_PARAMS, dtype=np.int64)
    for i in range(4):
        p[i] = x_shape[i]
        p[4 + i] = w_shape[i]
    p[8], p[9] = ho, wo
    p[10], p[11], p[12], p[13], p[14], p[15] = sh, sw, ph, pw, dh, dw
    p[16] = groups
    p[17] = 1 if flip else 0
    p[18] = kernel
    return p


def _setup(op, node):
    """Output dtype, C-buffer converters of the two array inputs, the callback, and the props."""
    dtype = np.dtype(node.outputs[0].dtype)
    buffers = tuple(as_c_buffer(node.inputs[i].dtype, dtype) for i in (0, 1))
    return dtype, buffers, conv_cfuncs(dtype.name), (*op.stride, *op.pad, *op.dilation, op.num_groups, op.flip)


@register_numba_op(Conv2dOp, CONV_SOURCES)
def numba_funcify_Conv2dOp(op, node, **kwargs):
    dtype, (x_buffer, w_buffer), forward, (sh, sw, ph, pw, dh, dw, groups, flip) = _setup(op, node)

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
        params = conv_params(xc.shape, wc.shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip, FORWARD)
        forward(xc.ctypes, wc.ctypes, out.ctypes, params.ctypes)
        return out

    return conv2d


def make_adjoint(op, node, kernel_index, shapes, output_is_image, channel_error, size_error):
    """njit ``adjoint(a, gy, hw)`` of one of the two adjoint Ops (a is w or x, hw the output's last two lengths).

    ``shapes(a_shape, gy_shape, h, w) -> (image_shape, filter_shape, channels_ok)`` (njit)
    gives the shapes of the convolution the adjoint belongs to; its output is the image
    (``output_is_image``) or the filters.
    """
    dtype, (a_buffer, gy_buffer), kernel, (sh, sw, ph, pw, dh, dw, groups, flip) = _setup(op, node)

    @numba_basic.numba_njit
    def adjoint(a, gy, hw):
        ac, gyc = a_buffer(a), gy_buffer(gy)
        image, filters, channels_ok = shapes(ac.shape, gyc.shape, hw[0], hw[1])
        ho, wo = gyc.shape[2], gyc.shape[3]
        if not channels_ok:
            raise ValueError(channel_error)
        if out_size(image[2], filters[2], sh, ph, dh) != ho or out_size(image[3], filters[3], sw, pw, dw) != wo:
            raise ValueError(size_error)
        out = np.empty(image if output_is_image else filters, dtype=dtype)
        params = conv_params(image, filters, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip, kernel_index)
        kernel(ac.ctypes, gyc.ctypes, out.ctypes, params.ctypes)
        return out

    return adjoint


@register_numba_op(Conv2dGradInputOp, CONV_SOURCES)
def numba_funcify_Conv2dGradInputOp(op, node, **kwargs):
    groups = op.num_groups

    @numba_basic.numba_njit
    def shapes(w_shape, gy_shape, h, w):
        return (gy_shape[0], w_shape[1] * groups, h, w), w_shape, gy_shape[1] == w_shape[0]

    return make_adjoint(
        op,
        node,
        GRAD_INPUT,
        shapes,
        True,
        "conv2d_grad_input: output_grad channels disagree with filters.shape[0]",
        "conv2d_grad_input: input_shape disagrees with the output gradient's size",
    )


@register_numba_op(Conv2dGradFiltersOp, CONV_SOURCES)
def numba_funcify_Conv2dGradFiltersOp(op, node, **kwargs):
    groups = op.num_groups

    @numba_basic.numba_njit
    def shapes(x_shape, gy_shape, kh, kw):
        ok = x_shape[0] == gy_shape[0] and x_shape[1] % groups == 0 and gy_shape[1] % groups == 0
        return x_shape, (gy_shape[1], x_shape[1] // groups, kh, kw), ok

    return make_adjoint(
        op,
        node,
        GRAD_FILTERS,
        shapes,
        False,
        "conv2d_grad_filters: input and output_grad disagree in batch size or groups",
        "conv2d_grad_filters: filter_shape disagrees with the output gradient's size",
    )
