"""The pooling kernels behind exported C callbacks (see ``conv_cfuncs`` for why).

Buffers are C-contiguous and read in the canonical (N, D, H, W) layout; the int64
parameter vector is ``[N, D, H, W, D_out, H_out, W_out, ws (3), stride (3), pad (3), mode, adaptive]``.
Their on-disk cache is keyed on the source of ``POOL_SOURCES`` (``source_cache``).
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops.numba.callbacks import export
from dandelion.ops.numba.pool_kernels import max_pool_gather, pool_backward, pool_forward
from dandelion.ops.numba.source_cache import source_cfunc

N_PARAMS = 18

# The modules whose source the pooling's compiled Numba code depends on.
POOL_SOURCES = (
    "dandelion.ops.geometry",
    "dandelion.ops.numba.buffers",
    "dandelion.ops.numba.callbacks",
    "dandelion.ops.numba.pool",
    "dandelion.ops.numba.pool_cfuncs",
    "dandelion.ops.numba.pool_kernels",
    "dandelion.ops.numba.pool_tiled",
)


@cache
def pool_cfuncs(dtype_name):
    """(forward, backward, gather) external functions for ``dtype_name``; registers their symbols."""
    ptr = types.CPointer(getattr(types, dtype_name))
    iptr = types.CPointer(types.int64)
    signature = types.void(ptr, ptr, ptr, iptr)

    @source_cfunc(signature, POOL_SOURCES)
    def forward(x_ptr, unused_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        x = carray(x_ptr, (p[0], p[1], p[2], p[3]))
        out = carray(out_ptr, (p[0], p[4], p[5], p[6]))
        pool_forward(x, out, (p[7], p[8], p[9]), (p[10], p[11], p[12]), (p[13], p[14], p[15]), p[17], p[16])

    @source_cfunc(signature, POOL_SOURCES)
    def backward(x_ptr, gy_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        x = carray(x_ptr, (p[0], p[1], p[2], p[3]))
        gy = carray(gy_ptr, (p[0], p[4], p[5], p[6]))
        out = carray(out_ptr, (p[0], p[1], p[2], p[3]))
        pool_backward(x, gy, out, (p[7], p[8], p[9]), (p[10], p[11], p[12]), (p[13], p[14], p[15]), p[17], p[16])

    @source_cfunc(signature, POOL_SOURCES)
    def gather(x_ptr, g_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        x = carray(x_ptr, (p[0], p[1], p[2], p[3]))
        g = carray(g_ptr, (p[0], p[1], p[2], p[3]))
        out = carray(out_ptr, (p[0], p[4], p[5], p[6]))
        max_pool_gather(x, g, out, (p[7], p[8], p[9]), (p[10], p[11], p[12]), (p[13], p[14], p[15]), p[17])

    return export("pool", dtype_name, signature, (forward, backward, gather))
