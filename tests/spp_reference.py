"""NumPy reference of the old library's spatial pyramid pooling, one bin at a time.

Each implementation is written from its description (Theano pooling calls of the old
code and Lasagne's layer), not from dandelion's bin arithmetic.
"""

from __future__ import annotations

import math

import numpy as np


def _theano_windows(n, ws, stride, ignore_border):
    """[start, end) of the windows of Theano's pool along an axis (no padding)."""
    if ignore_border:
        count = (n - ws) // stride + 1
    else:
        count = (n - 1) // stride + 1 if stride >= ws else max(0, (n - 1 - ws + stride) // stride) + 1
    return [(i * stride, min(i * stride + ws, n)) for i in range(count)]


def axis_bins(n, d, implementation):
    """The d bins along an axis of length n; None marks a zero-padded bin."""
    if implementation == "stretch":
        return [(math.floor(i * n / d), math.ceil((i + 1) * n / d)) for i in range(d)]
    if implementation == "fast_ls" and n >= d:
        # Lasagne: ceil window, floor stride, borders ignored; the first d windows
        return _theano_windows(n, math.ceil(n / d), n // d, True)[:d]
    # 'fast' (and 'fast_ls' on a short axis): window = stride = ceil, partial window kept,
    # then zeros up to d bins
    windows = _theano_windows(n, math.ceil(n / d), math.ceil(n / d), False)
    return windows + [None] * (d - len(windows))


def spp_ref(x, dims, mode, implementation, out_grad=None):
    """(B, C, sum(d*d)) pooled values; with ``out_grad`` also d sum(out * out_grad) / dx."""
    b, c, h, w = x.shape
    out = np.zeros((b, c, sum(d * d for d in dims)))
    grad = np.zeros_like(x)
    k = 0
    for d in dims:
        for rows in axis_bins(h, d, implementation):
            for cols in axis_bins(w, d, implementation):
                if rows is not None and cols is not None:
                    (r0, r1), (c0, c1) = rows, cols
                    region = x[:, :, r0:r1, c0:c1].reshape(b, c, -1)
                    if mode == "max":
                        out[:, :, k] = region.max(axis=2)
                        weights = (region == region.max(axis=2, keepdims=True)).astype(float)
                    elif mode == "sum":
                        out[:, :, k] = region.sum(axis=2)
                        weights = np.ones_like(region)
                    else:
                        out[:, :, k] = region.mean(axis=2)
                        weights = np.full_like(region, 1.0 / region.shape[2])
                    if out_grad is not None:
                        grad[:, :, r0:r1, c0:c1] += (weights * out_grad[:, :, k : k + 1]).reshape(b, c, r1 - r0, c1 - c0)
                k += 1
    return out if out_grad is None else (out, grad)
