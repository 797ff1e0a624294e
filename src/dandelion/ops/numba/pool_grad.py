"""Numba implementation of ``PoolGrad``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.pool_cfuncs import pool_cfuncs
from dandelion.ops.numba.pool_common import make_geometry
from dandelion.ops.pool_grad import PoolGrad


@register_funcify_default_op_cache_key(PoolGrad)
def numba_funcify_PoolGrad(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    gy_buffer = as_c_buffer(node.inputs[1].dtype, dtype)
    _, backward, _ = pool_cfuncs(dtype.name)
    geometry = make_geometry(node.inputs[0].ndim, op.nd, op)

    @numba_basic.numba_njit
    def pool_grad(x, gy):
        xc, gyc = x_buffer(x), gy_buffer(gy)
        params, pooled = geometry(xc.shape)
        if gyc.shape != pooled:
            raise ValueError("pool_grad: output_grad does not have the pooled shape")
        out = np.empty(xc.shape, dtype=dtype)
        backward(xc.ctypes, gyc.ctypes, out.ctypes, params.ctypes)
        return out

    return pool_grad
