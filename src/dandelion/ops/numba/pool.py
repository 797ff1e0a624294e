"""Numba implementations of the pooling Op family (``dandelion.ops.pool``).

Each Op's function computes the canonical (N, D, H, W) geometry, allocates the output and
calls one of the C callbacks of ``pool_cfuncs``. Pooled lengths come from
``geometry.pool_output_length`` itself, jitted (an adaptive Op's are its ``output_size``).
"""

from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.tuple import tuple_setitem
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.geometry import pool_output_length
from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.pool_cfuncs import N_PARAMS, POOL_SOURCES, pool_cfuncs
from dandelion.ops.numba.pool_kernels import BACKWARD, FORWARD, GATHER
from dandelion.ops.numba.source_cache import register_numba_op
from dandelion.ops.pool import MODE_CODES, MaxPoolGatherOp, PoolGradOp, PoolOp

pooled_length = numba_basic.numba_njit(pool_output_length)


def canonical_params(op):
    """ws, stride, pad as 3-tuples (leading 1 / 1 / 0 for unpooled axes) and the mode code."""
    extra = 3 - op.nd
    ws = (1,) * extra + op.ws
    stride = (1,) * extra + op.stride
    pad = (0,) * extra + op.pad
    return ws, stride, pad, MODE_CODES[op.mode]


def make_geometry(ndim, nd, op, kernel):
    """njit ``geometry(shape) -> (params, pooled_shape)`` for an ndim array pooled on its last ``nd`` axes.

    ``kernel`` (``pool_kernels.FORWARD``, ``BACKWARD``, ``GATHER``) goes last in the params.
    """
    ws, st, pad, mode = canonical_params(op)
    ignore_border = op.ignore_border
    adaptive = op.output_size is not None
    # the pooled lengths of an adaptive Op, leading 1 for unpooled axes (unused otherwise)
    sizes = (1,) * (3 - nd) + (op.output_size if adaptive else (1,) * nd)

    @numba_basic.numba_njit
    def geometry(shape):
        spatial = [1, 1, 1]
        for axis in range(nd):
            spatial[2 - axis] = shape[ndim - 1 - axis]
        n = 1
        for axis in range(ndim - nd):
            n *= shape[axis]
        p = np.empty(N_PARAMS, dtype=np.int64)
        p[0] = n
        pooled = shape
        for axis in range(3):
            p[1 + axis] = spatial[axis]
            if adaptive:
                # an empty axis leaves bins without pixels: reported as a window too large
                length = sizes[axis] if spatial[axis] > 0 else 0
            else:
                length = pooled_length(spatial[axis], ws[axis], st[axis], pad[axis], ignore_border)
            p[4 + axis] = length
            p[7 + axis], p[10 + axis], p[13 + axis] = ws[axis], st[axis], pad[axis]
            if axis >= 3 - nd:
                pooled = tuple_setitem(pooled, ndim - 3 + axis, length)
        p[16] = mode
        p[17] = adaptive
        p[18] = kernel
        return p, pooled

    return geometry


def _setup(op, node, kernel_index, n_arrays):
    """Output dtype, C-buffer converters of the array inputs, the callback and the geometry function.

    ``kernel_index``: ``pool_kernels.FORWARD``, ``BACKWARD`` or ``GATHER``.
    """
    dtype = np.dtype(node.outputs[0].dtype)
    buffers = tuple(as_c_buffer(node.inputs[i].dtype, dtype) for i in range(n_arrays))
    return dtype, buffers, pool_cfuncs(dtype.name), make_geometry(node.inputs[0].ndim, op.nd, op, kernel_index)


@register_numba_op(PoolOp, POOL_SOURCES)
def numba_funcify_PoolOp(op, node, **kwargs):
    dtype, (x_buffer,), forward, geometry = _setup(op, node, FORWARD, 1)

    @numba_basic.numba_njit
    def pool(x):
        xc = x_buffer(x)
        params, pooled = geometry(xc.shape)
        if params[4] < 1 or params[5] < 1 or params[6] < 1:
            raise ValueError("pool: window larger than the padded input with ignore_border=True")
        out = np.empty(pooled, dtype=dtype)
        forward(xc.ctypes, xc.ctypes, out.ctypes, params.ctypes)
        return out

    return pool


def make_two_input(op, node, kernel_index, output_pooled, shape_error):
    """njit ``f(x, b)`` of ``PoolGradOp`` (b = gy, pooled; output shaped as x) or
    ``MaxPoolGatherOp`` (b = g, shaped as x; output pooled, ``output_pooled``)."""
    dtype, (x_buffer, b_buffer), kernel, geometry = _setup(op, node, kernel_index, 2)

    @numba_basic.numba_njit
    def two_input(x, b):
        xc, bc = x_buffer(x), b_buffer(b)
        params, pooled = geometry(xc.shape)
        if bc.shape != (xc.shape if output_pooled else pooled):
            raise ValueError(shape_error)
        out = np.empty(pooled if output_pooled else xc.shape, dtype=dtype)
        kernel(xc.ctypes, bc.ctypes, out.ctypes, params.ctypes)
        return out

    return two_input


@register_numba_op(PoolGradOp, POOL_SOURCES)
def numba_funcify_PoolGradOp(op, node, **kwargs):
    return make_two_input(op, node, BACKWARD, False, "pool_grad: output_grad does not have the pooled shape")


@register_numba_op(MaxPoolGatherOp, POOL_SOURCES)
def numba_funcify_MaxPoolGatherOp(op, node, **kwargs):
    return make_two_input(op, node, GATHER, True, "max_pool_gather: g must have the shape of x")
