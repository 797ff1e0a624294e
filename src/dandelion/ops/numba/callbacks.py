"""C callbacks (``cfunc``) exported to Numba's JIT linker under stable symbol names.

A compiled graph calls a kernel family's callbacks as external functions by symbol, not
through a raw function pointer (a "dynamic global" that would make the graph uncachable
on disk); see ``conv_cfuncs`` for why kernels sit behind callbacks at all. The function
behind a symbol is a ``cfunc`` or, with ``export_address``, a function of a library
(``dandelion.ops.native``) with the same signature: a graph links whichever the process
registered.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from numba import types


def export_address(family, dtype_name, name, signature, address):
    """Registers the function at ``address`` as ``dandelion_<family>_<name>_<dtype_name>``; its external function."""
    symbol = f"dandelion_{family}_{name}_{dtype_name}"
    llvm.add_symbol(symbol, address)
    return types.ExternalFunction(symbol, signature)


def export_entry_points(family, dtype_name, signatures, addresses):
    """The (forward, backward) external functions of a native library's entry points (``native.entry_addresses``)."""
    names = ("forward", "backward")
    return tuple(export_address(family, dtype_name, *entry) for entry in zip(names, signatures, addresses, strict=True))


def export(family, dtype_name, signature, callbacks):
    """Registers each callback as ``dandelion_<family>_<name>_<dtype_name>``; their external functions, in order."""
    return tuple(export_address(family, dtype_name, c.__name__, signature, c.address) for c in callbacks)
