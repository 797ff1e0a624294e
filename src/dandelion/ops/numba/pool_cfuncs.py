"""The pooling kernels behind exported C callbacks (see ``conv_cfuncs`` for why).

Buffers are C-contiguous and read in the canonical (N, D, H, W) layout; the int64
parameter vector is ``[N, D, H, W, D_out, H_out, W_out, ws (3), stride (3), pad (3), mode, adaptive, kernel]``
(kernel: ``pool_kernels.FORWARD``, ``BACKWARD`` or ``GATHER``).
Their on-disk cache is keyed on the source of ``POOL_SOURCES`` (``source_cache``).
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops.numba.callbacks import export
from dandelion.ops.numba.pool_kernels import BACKWARD, FORWARD, max_pool_gather, pool_backward, pool_forward
from dandelion.ops.numba.source_cache import source_cfunc

N_PARAMS = 19

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
    """The one external function of the family for ``dtype_name``; registers its symbol.

    One callback serves the three Ops, picked by the parameter vector's last entry
    (``FORWARD``, ``BACKWARD``, ``GATHER``): the three kernels share the loop nest of
    ``each_window``, and three callbacks compiled it three times (11 s of a cold start, 4 s
    as one).
    """
    ptr = types.CPointer(getattr(types, dtype_name))
    iptr = types.CPointer(types.int64)
    signature = types.void(ptr, ptr, ptr, iptr)

    @source_cfunc(signature, POOL_SOURCES)
    def pool(x_ptr, b_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        full, pooled = (p[0], p[1], p[2], p[3]), (p[0], p[4], p[5], p[6])
        ws, st, pad, mode, adaptive = (p[7], p[8], p[9]), (p[10], p[11], p[12]), (p[13], p[14], p[15]), p[16], p[17]
        x = carray(x_ptr, full)
        if p[18] == FORWARD:
            pool_forward(x, carray(out_ptr, pooled), ws, st, pad, adaptive, mode)
        elif p[18] == BACKWARD:
            pool_backward(x, carray(b_ptr, pooled), carray(out_ptr, full), ws, st, pad, adaptive, mode)
        else:
            max_pool_gather(x, carray(b_ptr, full), carray(out_ptr, pooled), ws, st, pad, adaptive)

    return export("pool", dtype_name, signature, (pool,))[0]
