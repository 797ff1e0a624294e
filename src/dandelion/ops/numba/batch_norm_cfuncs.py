"""The BatchNorm kernels behind exported C callbacks (see ``conv_cfuncs`` for why).

Buffers are C-contiguous; the int64 parameter vector is
``[P, K, S, subtract_mean, scale_by_inv_std, has_gamma, has_beta]`` and eps travels as a
float64 argument. Absent inputs (gamma, beta) are passed as any buffer and never read.
Their on-disk cache is keyed on the source of ``BATCH_NORM_SOURCES`` (``source_cache``).
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops.numba.batch_norm_kernels import backward, forward
from dandelion.ops.numba.callbacks import export
from dandelion.ops.numba.source_cache import source_cfunc

N_PARAMS = 7

# The modules whose source BatchNorm's compiled Numba code depends on.
BATCH_NORM_SOURCES = (
    "dandelion.ops.batch_norm",
    "dandelion.ops.numba.batch_norm",
    "dandelion.ops.numba.batch_norm_cfuncs",
    "dandelion.ops.numba.batch_norm_kernels",
    "dandelion.ops.numba.buffers",
    "dandelion.ops.numba.callbacks",
)


@cache
def batch_norm_cfuncs(dtype_name):
    """``(forward, backward)`` external functions for ``dtype_name``; compiles or loads them and registers their symbols."""
    ptr = types.CPointer(getattr(types, dtype_name))
    iptr = types.CPointer(types.int64)
    forward_signature = types.void(ptr, ptr, ptr, ptr, ptr, ptr, iptr, types.float64)
    backward_signature = types.void(ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, iptr)

    @source_cfunc(forward_signature, BATCH_NORM_SOURCES)
    def batch_norm_forward(x_ptr, gamma_ptr, beta_ptr, y_ptr, mean_ptr, inv_ptr, p_ptr, eps):
        p = carray(p_ptr, (N_PARAMS,))
        full, K = (p[0], p[1], p[2]), p[1]
        forward(
            carray(x_ptr, full), carray(gamma_ptr, (K,)), carray(beta_ptr, (K,)), carray(y_ptr, full),
            carray(mean_ptr, (K,)), carray(inv_ptr, (K,)), eps, p[3] != 0, p[4] != 0, p[5] != 0, p[6] != 0,
        )  # fmt: skip

    @source_cfunc(backward_signature, BATCH_NORM_SOURCES)
    def batch_norm_backward(x_ptr, gamma_ptr, mean_ptr, inv_ptr, gy_ptr, gmean_ptr, ginv_ptr, dx_ptr, dgamma_ptr, dbeta_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        full, K = (p[0], p[1], p[2]), p[1]
        backward(
            carray(x_ptr, full), carray(gamma_ptr, (K,)), carray(mean_ptr, (K,)), carray(inv_ptr, (K,)),
            carray(gy_ptr, full), carray(gmean_ptr, (K,)), carray(ginv_ptr, (K,)), carray(dx_ptr, full),
            carray(dgamma_ptr, (K,)), carray(dbeta_ptr, (K,)), p[3] != 0, p[4] != 0, p[5] != 0,
        )  # fmt: skip

    (forward_external,) = export("batch_norm", dtype_name, forward_signature, (batch_norm_forward,))
    (backward_external,) = export("batch_norm", dtype_name, backward_signature, (batch_norm_backward,))
    return forward_external, backward_external
