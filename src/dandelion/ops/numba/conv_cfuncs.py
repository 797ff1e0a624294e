"""The convolution kernels behind C function pointers, compiled once per dtype and cached on disk.

Calling a plain ``njit`` kernel from each Op's Numba function made Numba link and
re-optimise the kernel's whole IR into every compiled graph (seconds per convolution
configuration). Each kernel is a ``cfunc`` instead, exported to the JIT linker under a
symbol name and declared to callers as an external function: a new configuration costs
only its thin wrapper, and the wrapper stays cacheable on disk (a raw function pointer
would be a "dynamic global" and disable PyTensor's Numba cache). Arrays cross as
C-contiguous buffers plus an int64 parameter vector:
``[B, C, H, W, O, Cg, kh, kw, H_out, W_out, sh, sw, ph, pw, dh, dw, groups, flip, kernel]``.

Their on-disk cache is keyed on the source of ``CONV_SOURCES`` (``source_cache``).
"""

from __future__ import annotations

from functools import cache

from numba import carray, types

from dandelion.ops.numba.callbacks import export
from dandelion.ops.numba.conv_kernels import conv2d_forward, conv2d_grad_filters, conv2d_grad_input
from dandelion.ops.numba.source_cache import source_cfunc

N_PARAMS = 19

# The modules whose source the convolution's compiled Numba code depends on.
CONV_SOURCES = (
    "dandelion.ops.geometry",
    "dandelion.ops.numba.blas",
    "dandelion.ops.numba.buffers",
    "dandelion.ops.numba.callbacks",
    "dandelion.ops.numba.conv",
    "dandelion.ops.numba.conv_cfuncs",
    "dandelion.ops.numba.conv_kernels",
)


FORWARD, GRAD_INPUT, GRAD_FILTERS = 0, 1, 2


@cache
def conv_cfuncs(dtype_name):
    """The one external function of the family for ``dtype_name`` ('float32' or 'float64').

    One callback serves the three Ops, picked by the parameter vector's last entry
    (``FORWARD``, ``GRAD_INPUT``, ``GRAD_FILTERS``): the kernels share im2col, the filter
    layout and the BLAS products, which three callbacks compiled three times.
    Compiles (or loads from Numba's cache) the callback and registers its symbol; must
    run before any cached wrapper calling it is loaded, hence in funcify.
    """
    ptr = types.CPointer(getattr(types, dtype_name))
    signature = types.void(ptr, ptr, ptr, types.CPointer(types.int64))

    @source_cfunc(signature, CONV_SOURCES)
    def conv(a_ptr, b_ptr, out_ptr, p_ptr):
        p = carray(p_ptr, (N_PARAMS,))
        image, filters = (p[0], p[1], p[2], p[3]), (p[4], p[5], p[6], p[7])
        output = (p[0], p[4], p[8], p[9])
        sh, sw, ph, pw, dh, dw, groups, flip = p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17] != 0
        if p[18] == FORWARD:
            conv2d_forward(carray(a_ptr, image), carray(b_ptr, filters), carray(out_ptr, output), sh, sw, ph, pw, dh, dw, groups, flip)
        elif p[18] == GRAD_INPUT:
            conv2d_grad_input(carray(a_ptr, filters), carray(b_ptr, output), carray(out_ptr, image), sh, sw, ph, pw, dh, dw, groups, flip)
        else:
            conv2d_grad_filters(carray(a_ptr, image), carray(b_ptr, output), carray(out_ptr, filters), sh, sw, ph, pw, dh, dw, groups, flip)

    return export("conv2d", dtype_name, signature, (conv,))[0]
