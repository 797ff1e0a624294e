"""Numba implementation of ``MaxPoolGather``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.pool_cfuncs import pool_cfuncs
from dandelion.ops.numba.pool_common import make_geometry
from dandelion.ops.pool_grad_grad import MaxPoolGather


@register_funcify_default_op_cache_key(MaxPoolGather)
def numba_funcify_MaxPoolGather(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    g_buffer = as_c_buffer(node.inputs[1].dtype, dtype)
    _, _, gather = pool_cfuncs(dtype.name)
    geometry = make_geometry(node.inputs[0].ndim, op.nd, op)

    @numba_basic.numba_njit
    def max_pool_gather(x, g):
        xc, gc = x_buffer(x), g_buffer(g)
        if gc.shape != xc.shape:
            raise ValueError("max_pool_gather: g must have the shape of x")
        params, pooled = geometry(xc.shape)
        out = np.empty(pooled, dtype=dtype)
        gather(xc.ctypes, gc.ctypes, out.ctypes, params.ctypes)
        return out

    return max_pool_gather
