"""NumPy references of Theano's ``bilinear_upsampling``: its kernel algorithm and the
interpolation it amounts to, written from Theano's description (no dandelion code)."""

from __future__ import annotations

import numpy as np


def theano_bilinear_axis(a, ratio, axis, subsample=1):
    """Theano's algorithm along one axis: replicate the edge samples, scatter every sample
    times the kernel [1, 2, ..., r, ..., 2, 1] / r with stride r, crop the pad
    ``2 r - 1 - (r - 1) // 2`` and keep ``n * r`` samples, then every ``subsample``-th."""
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    padded = np.concatenate([a[..., :1], a, a[..., -1:]], axis=-1)
    kernel = np.concatenate([np.arange(1, ratio + 1), np.arange(ratio - 1, 0, -1)]) / ratio
    full = np.zeros(a.shape[:-1] + ((n + 2) * ratio + kernel.size,))
    for p in range(n + 2):
        full[..., p * ratio : p * ratio + kernel.size] += padded[..., p : p + 1] * kernel
    pad = 2 * ratio - 1 - (ratio - 1) // 2
    out = full[..., pad : pad + n * ratio][..., ::subsample]
    return np.moveaxis(out, -1, axis)


def interpolate_axis(a, num, den, axis):
    """Linear interpolation at ((i * den) - (num - 1) // 2) / num, clamped to the edges."""
    n = a.shape[axis]
    samples = []
    for i in range(-(-n * num // den)):
        src = min(max((i * den - (num - 1) // 2) / num, 0.0), n - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n - 1)
        t = src - lo
        samples.append((1 - t) * np.take(a, lo, axis) + t * np.take(a, hi, axis))
    return np.stack(samples, axis)
