"""Graph-build-time argument checks with messages that name module, argument and values."""

from __future__ import annotations

import pytensor.tensor as pt


def check_option(where, argument, value, allowed):
    if value not in allowed:
        raise ValueError(f"{where}: {argument} must be one of {tuple(allowed)}, got {value!r}")
    return value


def check_ndim(where, argument, x, expected):
    """``expected`` is an int or a collection of allowed ndims."""
    x = pt.as_tensor_variable(x)
    allowed = (expected,) if isinstance(expected, int) else tuple(expected)
    if x.ndim not in allowed:
        wanted = allowed[0] if len(allowed) == 1 else f"one of {allowed}"
        raise ValueError(f"{where}: {argument} must have ndim {wanted}, got ndim {x.ndim} (static shape {x.type.shape})")
    return x


def check_axis_length(where, argument, x, axis, expected, meaning="size"):
    """Fail if the static length of ``axis`` is known and differs from ``expected``."""
    actual = x.type.shape[axis]
    if actual is not None and expected is not None and actual != expected:
        raise ValueError(
            f"{where}: {argument} axis {axis} ({meaning}) must be {expected}, got {actual} (static shape {x.type.shape})"
        )
    return x


def check_shape(where, argument, x, expected):
    """Compare every known static length with ``expected`` (None entries are free)."""
    x = check_ndim(where, argument, x, len(expected))
    for actual, wanted in zip(x.type.shape, expected):
        if actual is not None and wanted is not None and actual != wanted:
            raise ValueError(f"{where}: {argument} must have shape {tuple(expected)}, got static shape {x.type.shape}")
    return x


def total_dim(where, argument, dims):
    """``input_dims`` as (total, parts): an int or a list of positive ints."""
    parts = [dims] if isinstance(dims, (int,)) else list(dims)
    if not parts or not all(isinstance(p, int) and p > 0 for p in parts):
        raise ValueError(f"{where}: {argument} must be a positive int or a list of positive ints, got {dims!r}")
    return sum(parts), parts
