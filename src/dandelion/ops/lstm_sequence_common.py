"""Props, input checks and input layout shared by ``LSTMSequence`` and ``LSTMSequenceGrad``."""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt
from pytensor.scalar import upcast

WHERE = "lstm_sequence"


def check_props(peephole, has_mask, grad_clipping):
    if not isinstance(grad_clipping, numbers.Real) or grad_clipping < 0:
        raise ValueError(f"{WHERE}: grad_clipping must be a number >= 0 (0 disables clipping), got {grad_clipping!r}")
    return bool(peephole), bool(has_mask), float(grad_clipping)


def as_float_tensors(where, named, ndims):
    """``[(argument, value), ...]`` as tensors of the given ndims, cast to their common float dtype."""
    tensors = []
    for (argument, value), ndim in zip(named, ndims, strict=True):
        var = pt.as_tensor_variable(value)
        if var.ndim != ndim:
            raise ValueError(f"{where}: {argument} must have ndim {ndim}, got ndim {var.ndim} (static shape {var.type.shape})")
        if not var.dtype.startswith("float"):
            raise TypeError(f"{where}: {argument} must have a float dtype, got {var.dtype}")
        tensors.append(var)
    dtype = upcast(*(var.dtype for var in tensors))
    return [var.astype(dtype) for var in tensors], dtype


def unify(where, sizes):
    """``sizes``: ``[(description, static length or None), ...]`` that must agree; the common value."""
    known = [(what, n) for what, n in sizes if n is not None]
    for what, n in known[1:]:
        if n != known[0][1]:
            raise ValueError(f"{where}: {what} is {n}, expected {known[0][1]} (from {known[0][0]})")
    return known[0][1] if known else None


def check_runtime(where, shapes, T, B, H):
    """Raise when the concrete shapes ``[(argument, shape, expected), ...]`` disagree."""
    for argument, shape, expected in shapes:
        if tuple(shape) != tuple(expected):
            raise ValueError(f"{where}: {argument} must have shape {tuple(expected)} (T={T}, B={B}, H={H}), got {tuple(shape)}")


def pack_peepholes(peepholes, H, dtype):
    """The kernels read the peepholes as one (3, H) array; zeros when there are none."""
    if not peepholes:
        return np.zeros((3, H), dtype=dtype)
    return np.stack([np.asarray(p, dtype=dtype) for p in peepholes])


class LSTMSequenceParams:
    """Mixin: the static options and the variable input layout of both Ops.

    peephole : bool
        Whether the inputs include the three (H,) peephole vectors.
    has_mask : bool
        Whether the inputs end with a (T, B) mask.
    grad_clipping : float
        Clip bound for the gradient of the gate pre-activations (0: none).
    """

    __props__ = ("peephole", "has_mask", "grad_clipping")

    def __init__(self, peephole=False, has_mask=False, grad_clipping=0.0):
        self.peephole, self.has_mask, self.grad_clipping = check_props(peephole, has_mask, grad_clipping)

    def n_peep(self):
        return 3 if self.peephole else 0

    def split_state_inputs(self, inputs):
        """``(peepholes, h0, c0, mask, rest)`` from ``[*peepholes, h0, c0, [mask], *rest]``."""
        k = self.n_peep()
        peepholes = list(inputs[:k])
        h0, c0 = inputs[k], inputs[k + 1]
        mask = inputs[k + 2] if self.has_mask else None
        rest = list(inputs[k + 2 + int(self.has_mask) :])
        return peepholes, h0, c0, mask, rest
