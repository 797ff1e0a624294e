"""Upsampling of the last two axes: nearest ('repeat'), zero insertion ('dilate') and bilinear."""

from __future__ import annotations

from math import gcd

import numpy as np
import pytensor.tensor as pt

from dandelion.functional.conv import conv2d_transpose
from dandelion.ops.geometry import as_int_tuple

UPSAMPLE_MODES = ("repeat", "dilate")


def upsample_2d(x, ratio, mode="repeat"):
    """Upsample the last two axes of x (..., H, W) by integer ``ratio`` (int or pair).

    'repeat' copies every element into a ratio_h x ratio_w block; 'dilate' puts it at the
    block's top-left corner and zeros elsewhere. Output (..., H * ratio_h, W * ratio_w).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import upsample_2d
    >>> upsample_2d(pt.tensor("x", shape=(1, 2, 3, 4)), 2).type.shape
    (1, 2, 6, 8)
    """
    x = pt.as_tensor_variable(x)
    if x.ndim < 2:
        raise ValueError(f"upsample_2d: input must have ndim >= 2, got ndim {x.ndim}")
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample_2d: mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    rh, rw = as_int_tuple("upsample_2d", "ratio", ratio, 2)
    if mode == "repeat":
        return pt.repeat(pt.repeat(x, rh, axis=-2), rw, axis=-1)
    # interleave zeros by stacking and merging axes (no zeros-then-set_subtensor, which
    # the JAX backend turned into a float64 result)
    zeros = pt.zeros_like(x)
    cols = pt.stack([x] + [zeros] * (rw - 1), axis=-1)
    cols = cols.reshape((*[x.shape[i] for i in range(x.ndim - 1)], x.shape[-1] * rw))
    rows = pt.stack([cols] + [pt.zeros_like(cols)] * (rh - 1), axis=-2)
    out = rows.reshape((*[x.shape[i] for i in range(x.ndim - 2)], x.shape[-2] * rh, x.shape[-1] * rw))
    static = x.type.shape
    return pt.specify_shape(
        out, static[:-2] + tuple(None if n is None else n * r for n, r in zip(static[-2:], (rh, rw)))
    )


def bilinear_kernel_1d(ratio, dtype):
    """Theano's linear-interpolation kernel ``[1, 2, ..., ratio, ..., 2, 1] / ratio``.

    As a transposed-convolution kernel (stride ``ratio``, padding ``bilinear_pad``) it
    makes output sample ``o`` interpolate the input at ``(o - (ratio - 1) // 2) / ratio``:
    the half-pixel centres ``(o + 0.5) / ratio - 0.5`` for odd ratios, and for even ones
    the positions Theano's ``bilinear_upsampling`` used, half an output pixel earlier.
    """
    return (1 - np.abs(np.arange(2 * ratio - 1) - (ratio - 1)) / ratio).astype(dtype)


def bilinear_pad(ratio):
    """Padding that aligns ``bilinear_kernel_1d`` with an input carrying one edge sample per side.

    Output o reads padded position ``(o + pad - ratio + 1) / ratio``, which is input
    position ``(o - (ratio - 1) // 2) / ratio`` plus the edge sample's 1.
    """
    return 2 * ratio - 1 - (ratio - 1) // 2


def _ratios(ratio, frac_ratio):
    if (ratio is None) == (frac_ratio is None):
        raise ValueError(f"upsample_2d_bilinear: give exactly one of ratio and frac_ratio, got ratio={ratio!r}, frac_ratio={frac_ratio!r}")
    if ratio is not None:
        up = as_int_tuple("upsample_2d_bilinear", "ratio", ratio, 2)
        return up, (1, 1)
    pairs = frac_ratio if isinstance(frac_ratio[0], (tuple, list)) else (frac_ratio, frac_ratio)
    if len(pairs) != 2 or any(len(p) != 2 for p in pairs):
        raise ValueError(f"upsample_2d_bilinear: frac_ratio must be (num, den) or ((num_h, den_h), (num_w, den_w)), got {frac_ratio!r}")
    up, down = [], []
    for num, den in pairs:
        num, den = as_int_tuple("upsample_2d_bilinear", "frac_ratio", (num, den), 2)
        common = gcd(num, den)
        up.append(num // common)
        down.append(den // common)
    return tuple(up), tuple(down)


def _upsample_axis(x, ratio, axis, size):
    """Bilinear x ``ratio`` of axis 2 or 3 of x (N, 1, h + 2, w(+2)) with an edge row/col on each side."""
    kernel = bilinear_kernel_1d(ratio, x.dtype)
    shape = (1, 1, kernel.size, 1) if axis == 2 else (1, 1, 1, kernel.size)
    # The transposed convolution spreads each input sample over the triangle; with the
    # replicated edge this is linear interpolation, clamped at the edges.
    pad = bilinear_pad(ratio)
    pads = (pad, 0) if axis == 2 else (0, pad)
    stride = (ratio, 1) if axis == 2 else (1, ratio)
    other = x.shape[5 - axis] if x.type.shape[5 - axis] is None else x.type.shape[5 - axis]
    out_size = (size, other) if axis == 2 else (other, size)
    return conv2d_transpose(x, pt.constant(kernel.reshape(shape)), output_size=out_size, stride=stride, pad=pads)


def upsample_2d_bilinear(x, ratio=None, frac_ratio=None, use_1D_kernel=True):
    """Bilinear upsampling of x (B, C, H, W) by an integer or fractional ratio.

    Parameters
    ----------
    x : (B, C, H, W) tensor
    ratio : int or pair of int
        Output (B, C, H * ratio_h, W * ratio_w).
    frac_ratio : (num, den) or ((num_h, den_h), (num_w, den_w))
        Upsample by ``num`` then keep every ``den``-th sample (after reducing the
        fraction): output size ``ceil(H * num / den)``.
    use_1D_kernel : bool
        Two separable 1-D passes (True, cheaper) or one 2-D kernel; the results agree.

    Sample ``i`` of the upsampled axis interpolates the input at ``(i - (ratio - 1) // 2) / ratio``
    (clamped to the edges), as Theano's ``bilinear_upsampling`` (kernel
    ``[1, 2, ..., ratio, ..., 2, 1] / ratio``) did, so old models give their old outputs:
    the half-pixel convention ``(i + 0.5) / ratio - 0.5`` for odd ratios, half an output
    pixel earlier for even ones (``[[1, 2]]`` at ratio 2 gives ``[[1, 1.5, 2, 2]]``).
    With ``frac_ratio``, sample ``i`` is sample ``i * den`` of the upsampling by ``num``.
    """
    x = pt.as_tensor_variable(x)
    if x.ndim != 4:
        raise ValueError(f"upsample_2d_bilinear: input must be 4-D (B, C, H, W), got ndim {x.ndim}")
    (rh, rw), (dh, dw) = _ratios(ratio, frac_ratio)
    static = x.type.shape
    h = x.shape[2] if static[2] is None else static[2]
    w = x.shape[3] if static[3] is None else static[3]
    flat = x.reshape((-1, 1, x.shape[2], x.shape[3]))
    flat = pt.specify_shape(flat, (None if None in static[:2] else static[0] * static[1], 1, *static[2:]))
    # replicate the border rows and columns (the clamp of interpolation at the edges)
    padded = pt.concatenate([flat[:, :, :1], flat, flat[:, :, -1:]], axis=2)
    padded = pt.concatenate([padded[:, :, :, :1], padded, padded[:, :, :, -1:]], axis=3)
    if use_1D_kernel:
        rows = _upsample_axis(padded, rh, 2, h * rh)
        up = _upsample_axis(rows, rw, 3, w * rw)
    else:
        kernel = np.outer(bilinear_kernel_1d(rh, x.dtype), bilinear_kernel_1d(rw, x.dtype))
        pads = (bilinear_pad(rh), bilinear_pad(rw))
        up = conv2d_transpose(
            padded, pt.constant(kernel[None, None]), output_size=(h * rh, w * rw), stride=(rh, rw), pad=pads
        )
    if (dh, dw) != (1, 1):
        up = up[:, :, ::dh, ::dw]
    out = up.reshape((x.shape[0], x.shape[1], up.shape[2], up.shape[3]))
    return pt.specify_shape(out, (static[0], static[1], *up.type.shape[2:]))
