"""Graph-build and run-time checks shared by the fused recurrent Op families (``lstm``, ``gru``).

Each function takes ``where``, the name of the user-facing function its errors name.
"""

from __future__ import annotations

import numbers

import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.scalar import upcast


def check_grad_clipping(where, grad_clipping):
    """``grad_clipping`` as a float; raises unless it is a number >= 0."""
    if not isinstance(grad_clipping, numbers.Real) or grad_clipping < 0:
        raise ValueError(f"{where}: grad_clipping must be a number >= 0 (0 disables clipping), got {grad_clipping!r}")
    return float(grad_clipping)


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


def check_gate_shapes(where, gate_input, W_hid, n_gates):
    """Static checks of ``gate_input`` (T, B, n H) and ``W_hid`` (H, n H), n = ``n_gates``."""
    gs, ws = gate_input.type.shape, W_hid.type.shape
    if ws[1] is not None and ws[0] is not None and ws[1] != n_gates * ws[0]:
        raise ValueError(f"{where}: W_hid must have shape (H, {n_gates}H), got static shape {ws}")
    if gs[2] is not None and gs[2] % n_gates != 0:
        raise ValueError(f"{where}: gate_input's last axis must be {n_gates}H, got {gs[2]}")


def check_runtime(where, shapes, T, B, H):
    """Raise when the concrete shapes ``[(argument, shape, expected), ...]`` disagree."""
    for argument, shape, expected in shapes:
        if tuple(shape) != tuple(expected):
            raise ValueError(f"{where}: {argument} must have shape {tuple(expected)} (T={T}, B={B}, H={H}), got {tuple(shape)}")


def sequence_mask(where, mask, like):
    """A (T, B) mask as 0/1 in ``like``'s float dtype (what the fused Ops take)."""
    like = pt.as_tensor_variable(like)
    mask = pt.as_tensor_variable(mask)
    if mask.ndim != 2:
        raise ValueError(f"{where}: seq_mask must have ndim 2 (T, B), got ndim {mask.ndim}")
    return pt.neq(mask, 0).astype(like.dtype)


def connected_cotangent(cotangent, output):
    """``cotangent`` in ``output``'s dtype, zeros when it is disconnected."""
    if isinstance(cotangent.type, DisconnectedType):
        return pt.zeros_like(output)
    return cotangent.astype(output.dtype)
