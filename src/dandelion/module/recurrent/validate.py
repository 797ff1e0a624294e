"""Constructor and graph-build-time checks shared by the recurrent modules."""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt

from dandelion.config import floatx
from dandelion.module.checks import check_axis_length, check_ndim, check_shape, total_dim


def check_options(where, input_dims, hidden_dim, initializer, grad_clipping, hidden_activation, truncate_gradient=-1):
    """Validate constructor arguments; returns ``(input_dim, parts)``."""
    input_dim, parts = total_dim(where, "input_dims", input_dims)
    if not isinstance(hidden_dim, numbers.Integral) or isinstance(hidden_dim, bool) or hidden_dim <= 0:
        raise ValueError(f"{where}: hidden_dim must be a positive int, got {hidden_dim!r}")
    if not callable(initializer):
        raise TypeError(f"{where}: initializer must be an initializer (callable with a shape), got {initializer!r}")
    if not isinstance(grad_clipping, numbers.Real) or grad_clipping < 0:
        raise ValueError(f"{where}: grad_clipping must be a number >= 0 (0 disables clipping), got {grad_clipping!r}")
    if not callable(hidden_activation):
        raise TypeError(f"{where}: hidden_activation must be callable, got {hidden_activation!r}")
    if not isinstance(truncate_gradient, numbers.Integral) or not (truncate_gradient == -1 or truncate_gradient > 0):
        raise ValueError(f"{where}: truncate_gradient must be -1 (full BPTT) or a positive int, got {truncate_gradient!r}")
    return input_dim, parts


def zeros(size):
    return np.zeros(size, dtype=floatx())


def peephole_init(initializer, hidden_dim):
    # Sampled as an (H, 1) matrix and flattened, as the Theano-era library did, so a
    # seeded initializer draws the same values and fan-based initializers work.
    return np.reshape(np.asarray(initializer((hidden_dim, 1))), (hidden_dim,))


def check_sequence(where, argument, x, ndim, input_dim):
    x = check_ndim(where, argument, x, ndim)
    return check_axis_length(where, argument, x, -1, input_dim, "feature size, input_dims")


def check_mask(where, argument, mask, expected):
    """``mask`` with the static shape ``expected`` (None entries are free)."""
    if mask is None:
        return None
    return check_shape(where, argument, pt.as_tensor_variable(mask), expected)


def initial_state(where, argument, given, learned, batch, batch_static, hidden_dim, dtype):
    """(B, H) initial state: the given tensor, the learned (H,) vector broadcast, or zeros.

    batch : symbolic batch size; batch_static : its static value or None.
    """
    if given is not None:
        given = check_shape(where, argument, pt.as_tensor_variable(given), (batch_static, hidden_dim))
        given = pt.specify_shape(given, (batch_static, hidden_dim))
        return given.astype(dtype)
    size = batch if batch_static is None else batch_static
    if learned is not None:
        return pt.alloc(learned.astype(dtype), size, hidden_dim)
    return pt.zeros((size, hidden_dim), dtype=dtype)
