"""NumPy kernels of the fused BatchNorm Ops (the ``perform`` path).

Both work on the canonical (P, K, S) view of ``dandelion.ops.batch_norm``: the kept
axes flattened into K, the reduced axes before them into P and after them into S.
Statistics accumulate in float64 and results are cast to x's dtype; the formulas are
``BatchNormTrainOp``'s and ``BatchNormTrainGradOp``'s docstrings'.
"""

from __future__ import annotations

import numpy as np


def _per_channel(v):
    """(K,) -> (1, K, 1), broadcasting against the canonical view."""
    return v[None, :, None]


def factors(flags, k, gamma, inv_std):
    """Per-channel ``s`` (inv_std or 1) and ``gamma`` (or 1), as float64 (K,) arrays."""
    s = inv_std if flags["scale_by_inv_std"] else np.ones(k)
    g = gamma.astype("float64") if flags["has_gamma"] else np.ones(k)
    return s, g


def forward(x3, gamma, beta, eps, flags):
    """y (P, K, S), mean (K,), inv_std (K,) of a canonical view ``x3`` (see ``BatchNormTrainOp``)."""
    x = x3.astype("float64")
    n = x.shape[0] * x.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=(0, 2)) / n
        centred = x - _per_channel(mean)
        inv_std = 1.0 / np.sqrt((centred * centred).sum(axis=(0, 2)) / n + eps)
    s, g = factors(flags, x.shape[1], gamma, inv_std)
    scale = s * g
    shift = beta.astype("float64") if flags["has_beta"] else np.zeros(x.shape[1])
    if flags["subtract_mean"]:
        shift = shift - mean * scale
    y = x * _per_channel(scale) + _per_channel(shift)
    dtype = x3.dtype
    return y.astype(dtype), mean.astype(dtype), inv_std.astype(dtype)


def backward(x3, gamma, mean, inv_std, gy3, gmean, ginv_std, flags):
    """dx (P, K, S), dgamma (K,), dbeta (K,) (see ``BatchNormTrainGradOp``)."""
    x, gy = x3.astype("float64"), gy3.astype("float64")
    mean, r = mean.astype("float64"), inv_std.astype("float64")
    n = x.shape[0] * x.shape[2]
    centred = x - _per_channel(mean)
    s1 = gy.sum(axis=(0, 2))
    sc = (gy * centred).sum(axis=(0, 2))
    s, g = factors(flags, x.shape[1], gamma, r)
    a, b, c, dgamma = coefficients(s1, sc, mean, r, s, g, gmean.astype("float64"), ginv_std.astype("float64"), n, flags)
    dx = _per_channel(a) * gy + _per_channel(b) * centred + _per_channel(c)
    dtype = x3.dtype
    return dx.astype(dtype), dgamma.astype(dtype), s1.astype(dtype)


def coefficients(s1, sc, mean, r, s, g, gmean, ginv_std, n, flags):
    """Per-channel a, b, c of ``dx = a * gy + b * (x - mean) + c``, and dgamma."""
    # the output's pull on the normalised input u (x - mean, or x when the mean is kept)
    gy_u = sc if flags["subtract_mean"] else sc + mean * s1
    total = ginv_std + (g * gy_u if flags["scale_by_inv_std"] else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = -total * r**3 / n
        c = gmean / n
        if flags["subtract_mean"]:
            c = c - s * g * s1 / n
    return g * s, b, c, s * gy_u
