"""C code of the fused GRU Ops (``dandelion.ops.gru``): not written yet, the Ops' ``perform`` runs."""

from __future__ import annotations


class GRUForwardCOp:
    """``GRUSequenceOp``'s C implementation (none yet)."""


class GRUBackwardCOp:
    """``GRUSequenceGradOp``'s C implementation (none yet)."""
