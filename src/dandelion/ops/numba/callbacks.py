"""C callbacks (``cfunc``) exported to Numba's JIT linker under stable symbol names.

A compiled graph calls a kernel family's callbacks as external functions by symbol, not
through a raw function pointer (a "dynamic global" that would make the graph uncachable
on disk); see ``conv_cfuncs`` for why kernels sit behind callbacks at all.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from numba import types


def export(family, dtype_name, signature, callbacks):
    """Registers each callback as ``dandelion_<family>_<name>_<dtype_name>``; their external functions, in order."""
    externals = []
    for callback in callbacks:
        symbol = f"dandelion_{family}_{callback.__name__}_{dtype_name}"
        llvm.add_symbol(symbol, callback.address)
        externals.append(types.ExternalFunction(symbol, signature))
    return tuple(externals)
