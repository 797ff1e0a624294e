"""Numba implementations of dandelion's Ops, registered with PyTensor's Numba dispatcher on import.

Every Op family registers through ``source_cache.register_numba_op``, so PyTensor's cache
of its compiled functions is keyed on the family's source; C callbacks are compiled with
``source_cache.source_cfunc`` for the same reason.
"""

from dandelion.ops.numba import (  # noqa: F401
    attention,
    batch_norm,
    conv,
    ctc,
    dense_dot,
    edit_distance,
    gru,
    lstm,
    pool,
)
