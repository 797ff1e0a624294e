"""Normalisation math shared by ``BatchNorm`` and ``GroupNorm`` (no state, no parameters).

``moments`` computes the statistics; ``normalize`` applies broadcastable ones and
``normalize_over`` per-position ones (reducing and broadcasting through
``dandelion.functional.axis_sum``, which keeps BatchNorm's reductions in BLAS).
"""

from __future__ import annotations

import numbers

import pytensor.tensor as pt

from dandelion._scalars import scalar_like
from dandelion.ops.axis_sum import axes_length, broadcast_over, sum_over

NORMALIZE_MODES = ("high_mem", "low_mem")


def _sorted_axes(where, axes, ndim):
    if isinstance(axes, numbers.Integral):
        axes = (axes,)
    resolved = sorted({int(a) % ndim for a in axes})
    if not resolved or len(resolved) != len(tuple(axes)) or any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"{where}: axes must be distinct axes of x (ndim {ndim}), got {tuple(axes)!r}")
    return tuple(resolved)


def _count(x, axes):
    """Number of elements reduced over ``axes``, in x's dtype."""
    return pt.cast(axes_length(x, axes), x.dtype)


def moments(x, axes, eps):
    """Mean and inverse standard deviation of ``x`` over ``axes``.

    Parameters
    ----------
    x : tensor of any shape
    axes : tuple of int
    eps : float
        Added to the (biased, ``ddof=0``) variance before the square root.

    Returns
    -------
    mean, inv_std : tensors of ``x``'s shape with ``axes`` removed
        ``inv_std = 1 / sqrt(var + eps)``.
    """
    x = pt.as_tensor_variable(x)
    axes = _sorted_axes("moments", axes, x.ndim)
    count = _count(x, axes)
    mean = sum_over(x, axes) / count
    # two passes (centre, then square) keep float32 variances accurate when |mean| >> std
    centred = x - broadcast_over(mean, axes, x)
    var = sum_over(centred * centred, axes) / count
    inv_std = 1 / pt.sqrt(var + pt.constant(eps, dtype=x.dtype))
    return mean, inv_std


def running_average(running, batch, alpha):
    """``(1 - alpha) * running + alpha * batch`` where ``batch`` is finite, ``running`` elsewhere.

    A NaN or infinite batch statistic (a NaN or overflowing batch) would otherwise
    stay in the running statistics for good; each entry keeps its last finite value
    instead, and the next finite batch updates it as usual.

    Parameters
    ----------
    running : tensor, the running statistic (any shape)
    batch : tensor broadcastable to ``running``, this batch's statistic
    alpha : float or scalar tensor, the moving-average coefficient

    Returns
    -------
    tensor of ``running``'s shape and dtype
    """
    running = pt.as_tensor_variable(running)
    batch = pt.as_tensor_variable(batch)
    keep, take = scalar_like(1 - alpha, running.dtype), scalar_like(alpha, running.dtype)
    updated = (keep * running + take * batch).astype(running.dtype)
    return pt.switch(pt.isfinite(batch), updated, running)


def _affine(x, mean, inv_std, gamma, beta):
    """``(x - mean) * inv_std * gamma + beta``, skipping the factors that are None."""
    out = x if mean is None else x - mean
    if inv_std is not None:
        out = out * inv_std
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    return out


def normalize(x, mean=None, inv_std=None, gamma=None, beta=None, mode="high_mem"):
    """``gamma * (x - mean) * inv_std + beta``; any of the four may be None (skipped).

    Parameters
    ----------
    x : tensor of any shape
    mean, inv_std, gamma, beta : tensors broadcastable against ``x`` (same ndim), or None
    mode : {'high_mem', 'low_mem'}
        Accepted for compatibility; both build the same graph. Theano's ``low_mem``
        recomputed the normalised input in the backward pass instead of storing it.
        PyTensor fuses this elementwise map (and its gradient) into single loops and
        frees every buffer after its last use, so there is nothing left to save: a
        recomputing variant (an ``OpFromGraph`` with its own gradient) was measured at a
        *higher* peak (24 MiB against 16 MiB for the gradient of a 4 MiB input on the C
        and Numba backends), because an opaque node can neither fuse with its
        neighbours nor reuse their buffers.

    Returns
    -------
    tensor of ``x``'s shape
    """
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"normalize: mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    x = pt.as_tensor_variable(x)
    parts = [None if v is None else pt.as_tensor_variable(v).astype(x.dtype) for v in (mean, inv_std, gamma, beta)]
    for name, part in zip(("mean", "inv_std", "gamma", "beta"), parts):
        if part is not None and part.ndim != x.ndim:
            raise ValueError(f"normalize: {name} must have the ndim of x ({x.ndim}), got ndim {part.ndim}")
    return _affine(x, *parts)


def normalize_over(x, axes, mean=None, inv_std=None, gamma=None, beta=None):
    """``gamma * (x - mean) * inv_std + beta`` with statistics per position of the kept axes.

    Computed as ``x * scale + shift`` (``scale = inv_std * gamma``, ``shift = beta - mean *
    scale``), as PyTorch's CPU batch norm does: one multiply-add per element forward and
    two reductions (of ``g`` and ``g * x``) backward.

    Parameters
    ----------
    x : tensor of any shape
    axes : tuple of int
        The normalised axes.
    mean, inv_std, gamma, beta : tensors shaped as x with ``axes`` removed, or None (skipped)

    Returns
    -------
    tensor of ``x``'s shape and dtype
    """
    x = pt.as_tensor_variable(x)
    axes = _sorted_axes("normalize_over", axes, x.ndim)
    parts = [None if v is None else pt.as_tensor_variable(v).astype(x.dtype) for v in (mean, inv_std, gamma, beta)]
    for name, part in zip(("mean", "inv_std", "gamma", "beta"), parts):
        if part is not None and part.ndim != x.ndim - len(axes):
            raise ValueError(
                f"normalize_over: {name} must have ndim {x.ndim - len(axes)} (x's ndim less the {len(axes)} normalised axes), "
                f"got ndim {part.ndim}"
            )
    mean, inv_std, gamma, beta = parts
    scale = inv_std if gamma is None else (gamma if inv_std is None else inv_std * gamma)
    shift = None
    if mean is not None:
        shift = -mean if scale is None else -mean * scale
    if beta is not None:
        shift = beta if shift is None else beta + shift
    out = x
    if scale is not None:
        out = out * broadcast_over(scale, axes, x)
    if shift is not None:
        out = out + broadcast_over(shift, axes, x)
    return out


def group_norm(x, group_num, eps=1e-5, gamma=None, beta=None):
    """Group normalisation of (B, C, H, W) input: statistics per sample and channel group.

    Parameters
    ----------
    x : (B, C, H, W)
        C must be divisible by ``group_num`` (checked when C is static).
    group_num : int
        1 gives layer normalisation, C gives instance normalisation.
    eps : float
        Added to the biased variance.
    gamma, beta : (1, C, 1, 1) or None
        Scale and shift per channel.

    Returns
    -------
    (B, C, H, W)
    """
    x = pt.as_tensor_variable(x)
    if x.ndim != 4:
        raise ValueError(f"group_norm: x must have ndim 4 (B, C, H, W), got ndim {x.ndim}")
    channels = x.type.shape[1]
    if channels is not None and channels % group_num:
        raise ValueError(f"group_norm: channel number {channels} of x is not divisible by group_num {group_num}")
    B, C, H, W = x.shape
    grouped = x.reshape((B, group_num, C // group_num, H, W))
    mean = pt.mean(grouped, axis=(2, 3, 4), keepdims=True)
    var = pt.var(grouped, axis=(2, 3, 4), keepdims=True)
    out = ((grouped - mean) / pt.sqrt(var + pt.constant(eps, dtype=x.dtype))).reshape(x.shape)
    out = pt.specify_shape(out, x.type.shape)
    return _affine(out, None, None, gamma, beta)
