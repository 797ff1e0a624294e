"""Global average and max pooling: one value per sample and channel."""

from __future__ import annotations

import numbers

import pytensor.tensor as pt

GLOBAL_POOL_MODES = ("average", "max")


def global_pool(x, axes=None, mode="average", keepdims=False):
    """Average or maximum over whole spatial axes.

    Parameters
    ----------
    x : (B, C, *spatial)
    axes : int or tuple of int, optional
        The axes pooled over; default every axis after the first two (all of spatial).
    mode : {'average', 'max'}
    keepdims : bool
        Keep the pooled axes with length 1.

    Returns
    -------
    (B, C), or x's shape with length-1 pooled axes with ``keepdims``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import global_pool
    >>> global_pool(pt.tensor("x", shape=(2, 3, 5, 5)), mode="max").type.shape
    (2, 3)
    """
    x = pt.as_tensor_variable(x)
    if mode not in GLOBAL_POOL_MODES:
        raise ValueError(f"global_pool: mode must be one of {GLOBAL_POOL_MODES}, got {mode!r}")
    if axes is None:
        if x.ndim < 3:
            raise ValueError(f"global_pool: x must have spatial axes (B, C, ...) for the default axes, got ndim {x.ndim}")
        axes = tuple(range(2, x.ndim))
    axes = (axes,) if isinstance(axes, numbers.Integral) else tuple(axes)
    if not axes or any(not -x.ndim <= a < x.ndim for a in axes) or len({a % x.ndim for a in axes}) != len(axes):
        raise ValueError(f"global_pool: axes must be distinct axes of x (ndim {x.ndim}), got {axes!r}")
    reduce = pt.mean if mode == "average" else pt.max
    return reduce(x, axis=tuple(sorted(a % x.ndim for a in axes)), keepdims=keepdims)


def global_avg_pool(x, axes=None, keepdims=False):
    """``global_pool(x, axes, 'average', keepdims)``."""
    return global_pool(x, axes, "average", keepdims)


def global_max_pool(x, axes=None, keepdims=False):
    """``global_pool(x, axes, 'max', keepdims)``."""
    return global_pool(x, axes, "max", keepdims)
