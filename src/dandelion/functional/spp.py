"""Spatial pyramid pooling: a fixed-length feature from feature maps of any size."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.functional.pooling import adaptive_pool_2d, pool_2d
from dandelion.ops.geometry import adaptive_bin_end, adaptive_bin_start, check_pool_mode

SPP_IMPLEMENTATIONS = ("fast", "fast_ls", "stretch")


def spp_bin_edges(n, d, implementation):
    """``(start, end)``, each of length d, of the bins along an axis of length n.

    n is an int or a symbolic scalar (the axis length known only at run time). A bin
    with ``start >= end`` is empty and pools to 0 (the old library's zero padding).

    - 'fast': window = stride = ceil(n / d), the partial window at the end kept (Theano's
      ``ignore_border=False``); fewer than d windows leave empty bins at the end.
    - 'fast_ls': Lasagne's window ceil(n / d) with stride floor(n / d), the first d
      windows (they lie inside the axis when n >= d); for n < d, 'fast'.
    - 'stretch': bin i covers [floor(i n / d), ceil((i + 1) n / d)), never empty;
      bins repeat input pixels when n < d.
    """
    lib = np if isinstance(n, (int, np.integer)) else pt
    index = np.arange(d)
    if implementation == "stretch":
        return adaptive_bin_start(index, n, d), adaptive_bin_end(index, n, d)
    window = (n + d - 1) // d
    stride = window if implementation == "fast" else lib.maximum(n // d, 1)
    start = index * stride
    return start, lib.minimum(start + window, n)


def _memberships(n, d, implementation):
    """(d, n) bool, row i marking the pixels of bin i, and the (d,) bin sizes."""
    lib = np if isinstance(n, (int, np.integer)) else pt
    start, end = spp_bin_edges(n, d, implementation)
    pixels = lib.arange(n)
    inside = (pixels[None, :] >= start[:, None]) & (pixels[None, :] < end[:, None])
    return inside, lib.maximum(end - start, 0)


def _level_by_masks(x, d, h, w, mode, implementation):
    """(B, C, d, d) for any H and W: separable reductions over bin-membership masks."""
    (rows, row_sizes), (cols, col_sizes) = (_memberships(n, d, implementation) for n in (h, w))
    rows, cols = pt.as_tensor_variable(rows), pt.as_tensor_variable(cols)
    counts = pt.outer(pt.as_tensor_variable(row_sizes), pt.as_tensor_variable(col_sizes))
    if mode == "max":
        lowest = np.asarray(-np.inf, dtype=x.dtype)
        by_row = pt.max(pt.where(rows[:, :, None], x[:, :, None, :, :], lowest), axis=3)  # (B, C, d, W)
        pooled = pt.max(pt.where(cols, by_row[:, :, :, None, :], lowest), axis=4)
        return pt.where(counts > 0, pooled, np.asarray(0, dtype=x.dtype))
    by_row = pt.tensordot(x, rows.astype(x.dtype), axes=[[2], [1]])  # (B, C, W, d)
    pooled = pt.tensordot(by_row, cols.astype(x.dtype), axes=[[2], [1]])  # (B, C, d, d)
    if mode == "sum":
        return pooled
    # nothing is padded: both averages divide by the pixels of the bin
    return pooled / pt.maximum(counts, 1).astype(x.dtype)


def _pad_bins(pooled, d):
    """Zeros after the pooled windows up to d x d (the old code's zero padding)."""
    for axis in (2, 3):
        missing = d - pooled.type.shape[axis]
        if missing > 0:
            shape = [pooled.shape[i] for i in range(4)]
            shape[axis] = missing
            pooled = pt.concatenate([pooled, pt.zeros(shape, dtype=pooled.dtype)], axis=axis)
    return pooled[:, :, :d, :d]


def _level_by_pooling(x, d, h, w, mode, implementation):
    """(B, C, d, d) from the pooling Op, for static H and W.

    Each is one pooling node: 'fast' and 'fast_ls' a windowed pooling (as in the old
    code), 'stretch' an adaptive one (its bins are adaptive pooling's), whose averages
    divide by the bin's pixels as the old code's did.
    """
    if implementation == "stretch":
        return adaptive_pool_2d(x, (d, d), mode=mode)
    ws = tuple(-(-n // d) for n in (h, w))
    if implementation == "fast":
        return _pad_bins(pool_2d(x, ws=ws, stride=ws, mode=mode, ignore_border=False), d)
    # 'fast_ls': Lasagne's floor stride, its first d windows; a short axis pools single pixels
    stride = tuple(max(n // d, 1) for n in (h, w))
    return _pad_bins(pool_2d(x, ws=ws, stride=stride, mode=mode, ignore_border=True), d)


def spatial_pyramid_pooling(x, pyramid_dims=(6, 4, 2, 1), mode="max", implementation="fast"):
    """Pool x (B, C, H, W) into d x d bins for every d in ``pyramid_dims`` and concatenate.

    Parameters
    ----------
    x : (B, C, H, W) tensor
        H and W may be unknown until run time (``pt.tensor4()``).
    pyramid_dims : sequence of int
        Levels may exceed min(H, W): 'stretch' then repeats pixels, 'fast' and 'fast_ls'
        fill the bins without pixels with 0.
    mode : {'max', 'sum', 'average_inc_pad', 'average_exc_pad'}
        Nothing is padded, so both averages divide by the pixels of a bin.
    implementation : {'fast', 'fast_ls', 'stretch'}
        Bins along an axis of length n: 'fast', window = stride = ceil(n/d) with the partial
        window at the end kept; 'fast_ls', Lasagne's window ceil(n/d) and stride floor(n/d),
        exactly d bins (the old library kept every window: 35 features instead of 21 for
        (4, 2, 1) on a 7x6 map); 'stretch', bin i covers [floor(i n/d), ceil((i+1) n/d)).

    Returns
    -------
    (B, C, sum(d * d)) tensor: per channel, the bins level by level, row-major.

    Notes
    -----
    With static H and W each level is one pooling (dandelion's pooling Op; adaptive for
    'stretch'); otherwise bin-membership masks reduce the rows, then the columns. Either way a level is a few graph nodes, not a few per bin (the old layout
    took minutes to compile on Numba).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import spatial_pyramid_pooling
    >>> spatial_pyramid_pooling(pt.tensor("x", shape=(2, 3, None, None)), (4, 2, 1)).type.shape
    (2, 3, 21)
    """
    x = pt.as_tensor_variable(x)
    if x.ndim != 4:
        raise ValueError(f"spatial_pyramid_pooling: input must be 4-D (B, C, H, W), got ndim {x.ndim}")
    check_pool_mode("spatial_pyramid_pooling", mode)
    if implementation not in SPP_IMPLEMENTATIONS:
        raise ValueError(f"spatial_pyramid_pooling: implementation must be one of {SPP_IMPLEMENTATIONS}, got {implementation!r}")
    dims = tuple(pyramid_dims)
    if not dims or any(not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
        raise ValueError(f"spatial_pyramid_pooling: pyramid_dims must be positive ints, got {tuple(pyramid_dims)}")
    dims = tuple(int(d) for d in dims)
    h, w = x.type.shape[2:]
    levels = []
    for d in dims:
        if h is None or w is None:
            sizes = (x.shape[2] if h is None else h, x.shape[3] if w is None else w)
            pooled = _level_by_masks(x, d, *sizes, mode, implementation)
        else:
            pooled = _level_by_pooling(x, d, h, w, mode, implementation)
        levels.append(pooled.flatten(3))
    out = pt.concatenate(levels, axis=2)
    return pt.specify_shape(out, (*x.type.shape[:2], sum(d * d for d in dims)))
