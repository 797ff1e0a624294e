"""Spatial pyramid pooling: a fixed-length feature from feature maps of any size."""

from __future__ import annotations

import math

import pytensor.tensor as pt

from dandelion.functional.pooling import pool_2d
from dandelion.ops.conv_geometry import check_pool_mode, pool_output_length

SPP_IMPLEMENTATIONS = ("fast", "fast_ls", "stretch")


def _bin_edges(size, bins, implementation):
    """[start, end) of each bin along one axis."""
    if implementation == "stretch":
        # bins stretched over the whole axis, overlapping where size % bins != 0
        return [(math.floor(i * size / bins), math.ceil((i + 1) * size / bins)) for i in range(bins)]
    step = size // bins
    # 'fast_ls': equal bins of size // bins; the last stretches to the end of the axis
    return [(i * step, (i + 1) * step if i < bins - 1 else size) for i in range(bins)]


def _reduce(region, mode):
    if mode == "max":
        return pt.max(region, axis=(-2, -1))
    if mode == "sum":
        return pt.sum(region, axis=(-2, -1))
    return pt.mean(region, axis=(-2, -1))  # no padding, so both averages agree


def _level(x, dim, h, w, mode, implementation):
    """(B, C, dim * dim) for one pyramid level."""
    if implementation == "fast":
        ws = (math.ceil(h / dim), math.ceil(w / dim))
        stride = (max(1, h // dim), max(1, w // dim))
        out = tuple(pool_output_length(n, k, s, 0, True) for n, k, s in zip((h, w), ws, stride))
        if out != (dim, dim):
            raise ValueError(
                f"spatial_pyramid_pooling: implementation 'fast' (window ceil(n/{dim}), stride floor(n/{dim})) "
                f"gives {out} bins for a {h}x{w} input, expected ({dim}, {dim}); use 'fast_ls' or 'stretch'"
            )
        return pool_2d(x, ws=ws, stride=stride, mode=mode, ignore_border=True).flatten(3)
    cells = [
        _reduce(x[:, :, r0:r1, c0:c1], mode)
        for r0, r1 in _bin_edges(h, dim, implementation)
        for c0, c1 in _bin_edges(w, dim, implementation)
    ]
    return pt.stack(cells, axis=2)


def spatial_pyramid_pooling(x, pyramid_dims=(6, 4, 2, 1), mode="max", implementation="fast"):
    """Pool x (B, C, H, W) into d x d bins for every d in ``pyramid_dims`` and concatenate.

    Parameters
    ----------
    x : (B, C, H, W) tensor with static H and W (the bins are laid out at build time)
    pyramid_dims : sequence of int
    mode : {'max', 'sum', 'average_inc_pad', 'average_exc_pad'}
    implementation : {'fast', 'fast_ls', 'stretch'}
        'fast': one pooling per level, window ceil(H/d) and stride floor(H/d) (He et al.);
        fails when that does not give d bins. 'fast_ls': d bins of floor(H/d), the last
        one stretched to the border. 'stretch': bin i covers [floor(i H/d), ceil((i+1) H/d)).

    Returns
    -------
    (B, C * sum(d * d)) tensor, channel-major: for each channel its bins level by level.
    """
    x = pt.as_tensor_variable(x)
    if x.ndim != 4:
        raise ValueError(f"spatial_pyramid_pooling: input must be 4-D (B, C, H, W), got ndim {x.ndim}")
    check_pool_mode("spatial_pyramid_pooling", mode)
    if implementation not in SPP_IMPLEMENTATIONS:
        raise ValueError(f"spatial_pyramid_pooling: implementation must be one of {SPP_IMPLEMENTATIONS}, got {implementation!r}")
    h, w = x.type.shape[2:]
    if h is None or w is None:
        raise ValueError(f"spatial_pyramid_pooling: input needs static H and W, got static shape {x.type.shape}")
    dims = [int(d) for d in pyramid_dims]
    if not dims or any(d < 1 or d > min(h, w) for d in dims):
        raise ValueError(f"spatial_pyramid_pooling: pyramid_dims must be in [1, min(H, W)={min(h, w)}], got {tuple(pyramid_dims)}")
    levels = [_level(x, d, h, w, mode, implementation) for d in dims]
    bins = sum(d * d for d in dims)
    out = pt.concatenate(levels, axis=2).reshape((x.shape[0], x.shape[1] * bins))
    batch, channels = x.type.shape[:2]
    return pt.specify_shape(out, (batch, None if channels is None else channels * bins))


