"""What the Numba kernel tests read in a row pass's LLVM IR (``test_numba_lstm_kernels``, ``test_numba_gru_kernels``)."""

from __future__ import annotations

import re

from numba import types


def row_pass_ir(dispatcher, ranks, dtype):
    """The optimised LLVM IR of a jitted row pass, compiled for ``dtype`` arguments of ``ranks``
    (0: a scalar, else a C-contiguous array of that rank)."""
    scalar = getattr(types, dtype)
    signature = tuple(scalar if rank == 0 else types.Array(scalar, rank, "C") for rank in ranks)
    dispatcher.compile(signature)
    return dispatcher.inspect_llvm(signature)


def vector_lanes(ir, element):
    """The lane counts of the ``<n x element>`` vector types in ``ir``."""
    return [int(n) for n in re.findall(rf"<(\d+) x {element}>", ir)]
