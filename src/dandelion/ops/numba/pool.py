"""Numba implementation of ``Pool``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.pool_cfuncs import pool_cfuncs
from dandelion.ops.numba.pool_common import make_geometry
from dandelion.ops.pool import Pool


@register_funcify_default_op_cache_key(Pool)
def numba_funcify_Pool(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    forward, _, _ = pool_cfuncs(dtype.name)
    geometry = make_geometry(node.inputs[0].ndim, op.nd, op)

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
