"""The fused LSTM kernels behind C function pointers, compiled once per dtype and cached on disk.

As for the convolutions (``conv_cfuncs``): a graph's Numba function calls the kernels
as external symbols, so a new graph compiles only a thin wrapper instead of linking and
re-optimising the kernels' IR, and the wrapper stays cacheable. Arrays cross as
C-contiguous buffers plus an int64 vector ``[T, B, H, peephole, has_mask]``; the
backward kernel also takes ``grad_clipping`` as a float64.

Behind the symbols are, where a C++ compiler is at hand, the C backend's kernels built as
a library (``native_lstm``: float32 on a thread team with ``W_hid`` packed once, see
``dandelion.ops.c.lstm_packed``; W1's Numba training step went from 51 to 23-29 ms, AMD EPYC,
2 threads), else the Numba loops of ``lstm_kernels`` as cfuncs (no C++ compiler, or its
build failed). ``DANDELION_NATIVE_KERNELS=0`` keeps the
Numba loops.
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops import native
from dandelion.ops.c import lstm_kernels as c_lstm_kernels
from dandelion.ops.numba.callbacks import export, export_entry_points
from dandelion.ops.numba.lstm_kernels import lstm_backward, lstm_forward
from dandelion.ops.numba.source_cache import source_cfunc

# every module whose code the compiled LSTM functions contain or call (see source_cache)
LSTM_SOURCES = (
    "dandelion.ops.recurrent_cells",
    "dandelion.ops.numba.blas",
    "dandelion.ops.numba.callbacks",
    "dandelion.ops.numba.activations",
    "dandelion.ops.numba.lstm_kernels",
    "dandelion.ops.numba.lstm_cfuncs",
    "dandelion.ops.numba.lstm",
)

N_PARAMS = 5


@cache
def native_lstm():
    """{dtype: (forward, backward) addresses} of the library build of the C kernels, or None."""
    library = native.load_kernels("lstm", c_lstm_kernels.native_code(), "lstm")
    return None if library is None else native.entry_addresses(library, "lstm")


@cache
def lstm_cfuncs(dtype_name):
    """(forward, backward) external functions for ``dtype_name`` ('float32' or 'float64').

    Must run before a cached wrapper calling them is loaded, hence in funcify.
    """
    ptr = types.CPointer(getattr(types, dtype_name))
    params = types.CPointer(types.int64)
    forward_signature = types.void(*([ptr] * 9), params)
    backward_signature = types.void(*([ptr] * 15), params, types.float64)
    built = native_lstm()
    if built is not None:
        return export_entry_points("lstm_sequence", dtype_name, (forward_signature, backward_signature), built[dtype_name])

    @source_cfunc(forward_signature, LSTM_SOURCES)
    def forward(gi_p, w_p, peep_p, h0_p, c0_p, mask_p, hs_p, cs_p, gates_p, p_p):
        p = carray(p_p, (N_PARAMS,))
        T, B, H = p[0], p[1], p[2]
        lstm_forward(
            carray(gi_p, (T, B, 4 * H)),
            carray(w_p, (H, 4 * H)),
            carray(peep_p, (3, H)),
            carray(h0_p, (B, H)),
            carray(c0_p, (B, H)),
            carray(mask_p, (T, B)),
            p[3] != 0,
            p[4] != 0,
            carray(hs_p, (T, B, H)),
            carray(cs_p, (T, B, H)),
            carray(gates_p, (T, B, 4 * H)),
        )

    @source_cfunc(backward_signature, LSTM_SOURCES)
    def backward(w_p, peep_p, h0_p, c0_p, mask_p, hs_p, cs_p, gates_p, dhs_p, dcs_p, dgi_p, dw_p, dpeep_p, dh0_p, dc0_p, p_p, clip):
        p = carray(p_p, (N_PARAMS,))
        T, B, H = p[0], p[1], p[2]
        lstm_backward(
            carray(w_p, (H, 4 * H)),
            carray(peep_p, (3, H)),
            carray(h0_p, (B, H)),
            carray(c0_p, (B, H)),
            carray(mask_p, (T, B)),
            carray(hs_p, (T, B, H)),
            carray(cs_p, (T, B, H)),
            carray(gates_p, (T, B, 4 * H)),
            carray(dhs_p, (T, B, H)),
            carray(dcs_p, (T, B, H)),
            clip,
            p[3] != 0,
            p[4] != 0,
            carray(dgi_p, (T, B, 4 * H)),
            carray(dw_p, (H, 4 * H)),
            carray(dpeep_p, (3, H)),
            carray(dh0_p, (B, H)),
            carray(dc0_p, (B, H)),
        )

    return export("lstm_sequence", dtype_name, forward_signature, (forward,)) + export(
        "lstm_sequence", dtype_name, backward_signature, (backward,)
    )
