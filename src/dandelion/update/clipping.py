"""Gradient clipping that composes with every optimizer.

Each function takes what an optimizer takes (``loss_or_grads, params``) and returns the
clipped gradients, which any optimizer accepts in place of the loss::

    updates = adam(clip_by_global_norm(loss, params, max_norm=1.0), params)
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.update.gradients import get_or_compute_grads


def global_norm(tensors):
    """``sqrt(sum of squares)`` over all entries of all ``tensors``."""
    return pt.sqrt(sum(pt.sum(pt.sqr(t)) for t in tensors))


def clip_by_global_norm(loss_or_grads, params, max_norm, return_norm=False):
    """Gradients scaled together so that their joint L2 norm is at most ``max_norm``.

    ``g * max_norm / norm`` when ``norm > max_norm``, otherwise ``g`` unchanged (optax's
    ``clip_by_global_norm``; PyTorch's ``clip_grad_norm_`` without its epsilon).

    Parameters
    ----------
    loss_or_grads : scalar tensor or list of tensors
    params : list of shared variables
    max_norm : float > 0 or symbolic scalar
    return_norm : bool
        Also return the norm before clipping (for logging).

    Returns
    -------
    list of gradients, one per parameter, or ``(grads, norm)``.
    """
    if isinstance(max_norm, (int, float)) and max_norm <= 0:
        raise ValueError(f"clip_by_global_norm: max_norm must be > 0, got {max_norm!r}")
    params, grads = get_or_compute_grads(loss_or_grads, params, "clip_by_global_norm")
    norm = global_norm(grads)
    dtype = grads[0].dtype if grads else "float32"
    limit = pt.cast(max_norm, norm.dtype)
    # a switch rather than max_norm / max(norm, max_norm): no division at all below the limit
    factor = pt.switch(pt.gt(norm, limit), limit / norm, np.asarray(1, dtype=norm.dtype))
    clipped = [pt.cast(g * pt.cast(factor, dtype), g.dtype) for g in grads]
    return (clipped, norm) if return_norm else clipped


def clip_by_value(loss_or_grads, params, max_value, min_value=None):
    """Every gradient entry clipped to ``[min_value, max_value]`` (``min_value`` defaults to ``-max_value``).

    Returns
    -------
    list of gradients, one per parameter.
    """
    lower = -max_value if min_value is None else min_value
    if isinstance(max_value, (int, float)) and isinstance(lower, (int, float)) and lower > max_value:
        raise ValueError(f"clip_by_value: min_value must be <= max_value, got min_value={lower!r}, max_value={max_value!r}")
    params, grads = get_or_compute_grads(loss_or_grads, params, "clip_by_value")
    return [pt.clip(g, pt.cast(lower, g.dtype), pt.cast(max_value, g.dtype)) for g in grads]
