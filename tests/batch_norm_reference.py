"""A NumPy reference of training-mode batch normalisation (float64, straight from the definition)."""

from __future__ import annotations

import numpy as np


def batch_norm_ref(x, axes, eps, gamma=None, beta=None, subtract_mean=True, scale_by_inv_std=True):
    """(y, mean, inv_std): biased variance, ``inv_std = 1 / sqrt(var + eps)``; gamma, beta shaped as the kept axes."""
    x = np.asarray(x, dtype="float64")
    mean = x.mean(axis=axes)
    inv_std = 1.0 / np.sqrt(x.var(axis=axes) + eps)
    y = x
    if subtract_mean:
        y = y - np.expand_dims(mean, axes)
    if scale_by_inv_std:
        y = y * np.expand_dims(inv_std, axes)
    if gamma is not None:
        y = y * np.expand_dims(np.asarray(gamma, dtype="float64"), axes)
    if beta is not None:
        y = y + np.expand_dims(np.asarray(beta, dtype="float64"), axes)
    return y, mean, inv_std
