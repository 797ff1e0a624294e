"""The fused GRU kernels behind C function pointers, compiled once per dtype and cached on disk.

As ``lstm_cfuncs``: a graph's Numba function calls the kernels as external symbols and
compiles only a thin wrapper. Arrays cross as C-contiguous buffers plus an int64 vector
``[T, B, H, has_mask]``; the backward kernel also takes a (T, B, 3H) scratch buffer and
``grad_clipping`` as a float64.

Behind the symbols are, where a C++ compiler is at hand, the C backend's kernels built as
a library (``native_gru``, one SciPy GEMM per step), else the Numba loops of
``gru_kernels`` as cfuncs (no C++ compiler, or its build failed).
``DANDELION_NATIVE_KERNELS=0`` keeps the Numba loops.
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops import native
from dandelion.ops.c import gru_kernels as c_gru_kernels
from dandelion.ops.numba.callbacks import export, export_entry_points
from dandelion.ops.numba.gru_kernels import gru_backward, gru_forward
from dandelion.ops.numba.source_cache import source_cfunc

# every module whose code the compiled GRU functions contain or call (see source_cache)
GRU_SOURCES = (
    "dandelion.ops.recurrent_cells",
    "dandelion.ops.numba.blas",
    "dandelion.ops.numba.callbacks",
    "dandelion.ops.numba.activations",
    "dandelion.ops.numba.gru_kernels",
    "dandelion.ops.numba.gru_cfuncs",
    "dandelion.ops.numba.gru",
)

N_PARAMS = 4


@cache
def native_gru():
    """{dtype: (forward, backward) addresses} of the library build of the C kernels, or None."""
    library = native.load_kernels("gru", c_gru_kernels.native_code(), "gru")
    return None if library is None else native.entry_addresses(library, "gru")


@cache
def gru_cfuncs(dtype_name):
    """(forward, backward) external functions for ``dtype_name`` ('float32' or 'float64').

    Must run before a cached wrapper calling them is loaded, hence in funcify.
    """
    ptr = types.CPointer(getattr(types, dtype_name))
    params = types.CPointer(types.int64)
    forward_signature = types.void(*([ptr] * 6), params)
    backward_signature = types.void(*([ptr] * 10), params, types.float64)
    built = native_gru()
    if built is not None:
        return export_entry_points("gru_sequence", dtype_name, (forward_signature, backward_signature), built[dtype_name])

    @source_cfunc(forward_signature, GRU_SOURCES)
    def forward(gi_p, w_p, h0_p, mask_p, hs_p, cache_p, p_p):
        p = carray(p_p, (N_PARAMS,))
        T, B, H = p[0], p[1], p[2]
        gru_forward(
            carray(gi_p, (T, B, 3 * H)),
            carray(w_p, (H, 3 * H)),
            carray(h0_p, (B, H)),
            carray(mask_p, (T, B)),
            p[3] != 0,
            carray(hs_p, (T, B, H)),
            carray(cache_p, (T, B, 4 * H)),
        )

    @source_cfunc(backward_signature, GRU_SOURCES)
    def backward(w_p, h0_p, mask_p, hs_p, cache_p, dhs_p, dgi_p, dw_p, dh0_p, dhid_p, p_p, clip):
        p = carray(p_p, (N_PARAMS,))
        T, B, H = p[0], p[1], p[2]
        gru_backward(
            carray(w_p, (H, 3 * H)),
            carray(h0_p, (B, H)),
            carray(mask_p, (T, B)),
            carray(hs_p, (T, B, H)),
            carray(cache_p, (T, B, 4 * H)),
            carray(dhs_p, (T, B, H)),
            clip,
            p[3] != 0,
            carray(dgi_p, (T, B, 3 * H)),
            carray(dw_p, (H, 3 * H)),
            carray(dh0_p, (B, H)),
            carray(dhid_p, (T, B, 3 * H)),
        )

    return export("gru_sequence", dtype_name, forward_signature, (forward,)) + export(
        "gru_sequence", dtype_name, backward_signature, (backward,)
    )
