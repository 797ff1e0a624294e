"""The convolution kernels behind C function pointers, compiled once per dtype and cached on disk.

Calling a plain ``njit`` kernel from each Op's Numba function made Numba link and
re-optimise the kernel's whole IR into every compiled graph (seconds per convolution
configuration). Each kernel is a ``cfunc`` instead, exported to the JIT linker under a
symbol name and declared to callers as an external function: a new configuration costs
only its thin wrapper, and the wrapper stays cacheable on disk (a raw function pointer
would be a "dynamic global" and disable PyTensor's Numba cache). Arrays cross as
C-contiguous buffers plus an int64 parameter vector:
``[B, C, H, W, O, Cg, kh, kw, H_out, W_out, sh, sw, ph, pw, dh, dw, groups, flip]``.

Their on-disk cache is keyed on the source of ``CONV_SOURCES`` (``source_cache``).
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops.numba.callbacks import export
from dandelion.ops.numba.conv_kernels import conv2d_forward, conv2d_grad_filters, conv2d_grad_input
from dandelion.ops.numba.source_cache import source_cfunc

N_PARAMS = 18

# The modules whose source the convolution's compiled Numba code depends on.
CONV_SOURCES = (
    "dandelion.ops.geometry",
    "dandelion.ops.numba.buffers",
    "dandelion.ops.numba.callbacks",
    "dandelion.ops.numba.conv",
    "dandelion.ops.numba.conv_cfuncs",
    "dandelion.ops.numba.conv_kernels",
)


@cache
def conv_cfuncs(dtype_name):
    """(forward, grad_input, grad_filters) external functions for ``dtype_name`` ('float32' or 'float64').

    Compiles (or loads from Numba's cache) the callbacks and registers their symbols;
    must run before any cached wrapper calling them is loaded, hence in funcify.
    """
    ptr = types.CPointer(getattr(types, dtype_name))
    signature = types.void(ptr, ptr, ptr, types.CPointer(types.int64))

    @source_cfunc(signature, CONV_SOURCES)
    def forward(x_ptr, w_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        x = carray(x_ptr, (p[0], p[1], p[2], p[3]))
        w = carray(w_ptr, (p[4], p[5], p[6], p[7]))
        out = carray(out_ptr, (p[0], p[4], p[8], p[9]))
        conv2d_forward(x, w, out, p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17] != 0)

    @source_cfunc(signature, CONV_SOURCES)
    def grad_input(w_ptr, gy_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        w = carray(w_ptr, (p[4], p[5], p[6], p[7]))
        gy = carray(gy_ptr, (p[0], p[4], p[8], p[9]))
        out = carray(out_ptr, (p[0], p[1], p[2], p[3]))
        conv2d_grad_input(w, gy, out, p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17] != 0)

    @source_cfunc(signature, CONV_SOURCES)
    def grad_filters(x_ptr, gy_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        x = carray(x_ptr, (p[0], p[1], p[2], p[3]))
        gy = carray(gy_ptr, (p[0], p[4], p[8], p[9]))
        out = carray(out_ptr, (p[4], p[5], p[6], p[7]))
        conv2d_grad_filters(x, gy, out, p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17] != 0)

    return export("conv2d", dtype_name, signature, (forward, grad_input, grad_filters))
