"""What the Numba kernel tests read in a row pass's LLVM IR (``test_numba_lstm_kernels``, ``test_numba_gru_kernels``)."""

from __future__ import annotations

import contextlib
import re

import numba
from numba import types
from numba.core import config

# What a user's process compiles at (Numba's default, NUMBA_OPT=3). The suite itself runs
# at NUMBA_OPT=1 (tests/conftest.py), where Numba 0.68's passes leave forward_row's float32
# loop scalar although it vectorises at the default level.
PRODUCTION_OPT = 3


@contextlib.contextmanager
def _numba_opt(level):
    saved = config.OPT
    config.OPT = type(saved)(level)
    try:
        yield
    finally:
        config.OPT = saved


def row_pass_ir(dispatcher, ranks, dtype):
    """The optimised LLVM IR of a jitted row pass at Numba's default optimisation level,
    compiled for ``dtype`` arguments of ``ranks`` (0: a scalar, else a C-contiguous array
    of that rank).

    A fresh, uncached copy of the kernel is compiled, so neither an earlier compilation
    in this process nor the on-disk cache (whose key does not record the level) answers.
    """
    scalar = getattr(types, dtype)
    signature = tuple(scalar if rank == 0 else types.Array(scalar, rank, "C") for rank in ranks)
    options = {key: value for key, value in dispatcher.targetoptions.items() if key not in ("cache", "nopython")}
    with _numba_opt(PRODUCTION_OPT):
        fresh = numba.njit(**options)(dispatcher.py_func)
        fresh.compile(signature)
        return fresh.inspect_llvm(signature)


def vector_lanes(ir, element):
    """The lane counts of the ``<n x element>`` vector types in ``ir``."""
    return [int(n) for n in re.findall(rf"<(\d+) x {element}>", ir)]
