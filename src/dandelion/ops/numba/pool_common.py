"""Shared pieces of the pooling Ops' Numba functions: canonical sizes and callback parameters."""

from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.tuple import tuple_setitem
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.numba.pool_cfuncs import N_PARAMS
from dandelion.ops.pool_common import MODE_CODES


def canonical_params(op):
    """ws, stride, pad as 3-tuples (leading 1 / 1 / 0 for unpooled axes) and the mode code."""
    extra = 3 - op.nd
    ws = (1,) * extra + op.ws
    stride = (1,) * extra + op.stride
    pad = (0,) * extra + op.pad
    return ws, stride, pad, MODE_CODES[op.mode]


def pooled_length(n, w, s, p, ignore_border):
    """Twin of ``dandelion.ops.conv_geometry.pool_output_length`` compiled for Numba."""
    padded = n + 2 * p
    if ignore_border:
        return max(0, (padded - w) // s + 1)
    if s >= w:
        return (padded - 1) // s + 1
    return max(0, (padded - 1 - w + s) // s) + 1


pooled_length_jit = numba_basic.numba_njit(pooled_length)


def make_geometry(ndim, nd, op):
    """njit ``geometry(shape) -> (params, pooled_shape)`` for an ndim array pooled on its last ``nd`` axes."""
    ws, st, pad, mode = canonical_params(op)
    ignore_border = op.ignore_border

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
            length = pooled_length_jit(spatial[axis], ws[axis], st[axis], pad[axis], ignore_border)
            p[4 + axis] = length
            p[7 + axis], p[10 + axis], p[13 + axis] = ws[axis], st[axis], pad[axis]
            if axis >= 3 - nd:
                pooled = tuple_setitem(pooled, ndim - 3 + axis, length)
        p[16] = mode
        return p, pooled

    return geometry
