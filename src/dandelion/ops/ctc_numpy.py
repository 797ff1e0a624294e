"""NumPy kernels of the CTC Op family (the ``perform`` path, used by the C backend).

Vectorised over the batch and the states, one loop over frames; notation as in
``dandelion.ops.ctc``.
"""

from __future__ import annotations

import numpy as np

# Log of "impossible": finite, so that log-sum-exp of impossible states never forms inf - inf.
LOG_ZERO = -1e30


def _shift(x, k, fill):
    """``x`` (B, S) moved ``k`` states to the right, ``fill`` entering on the left."""
    out = np.full_like(x, fill)
    out[:, k:] = x[:, : x.shape[1] - k]
    return out


def _unshift(x, k, fill):
    out = np.full_like(x, fill)
    out[:, : x.shape[1] - k] = x[:, k:]
    return out


def _lse3(a, b, c):
    top = np.maximum(np.maximum(a, b), c)
    return top + np.log(np.exp(a - top) + np.exp(b - top) + np.exp(c - top))


def _final_mask(lengths, states):
    """(B, S) True on the states a complete path may end in."""
    s = np.arange(states)[None, :]
    n = lengths[:, None]
    return (s == 2 * n) | ((s == 2 * n - 1) & (n > 0))


def forward_numpy(log_probs, extended, skip_ok, lengths, valid):
    """(alphas (B, T, S), log-likelihoods (B,))."""
    batch, frames, _ = log_probs.shape
    states = extended.shape[1]
    dtype = log_probs.dtype
    neg = dtype.type(LOG_ZERO)
    emissions = np.take_along_axis(log_probs, extended[:, None, :].astype(np.int64), axis=2)
    skip = skip_ok.astype(bool)
    alpha = np.full((batch, states), neg, dtype=dtype)
    alpha[:, 0] = 0
    alphas = np.empty((batch, frames, states), dtype=dtype)
    for t in range(frames):
        advanced = _lse3(alpha, _shift(alpha, 1, neg), np.where(skip, _shift(alpha, 2, neg), neg)) + emissions[:, t]
        alpha = np.where(valid[:, t, None].astype(bool), advanced, alpha)
        alphas[:, t] = alpha
    ends = np.where(_final_mask(lengths, states), alpha, neg)
    top = ends.max(axis=1)
    loglik = top + np.log(np.exp(ends - top[:, None]).sum(axis=1))
    return alphas, loglik.astype(dtype)


def gradient_numpy(log_probs, extended, skip_ok, lengths, valid, output_grad):
    """d (sum_b output_grad[b] * loglik[b]) / d log_probs, (B, T, K)."""
    alphas, loglik = forward_numpy(log_probs, extended, skip_ok, lengths, valid)
    batch, frames, classes = log_probs.shape
    states = extended.shape[1]
    dtype = log_probs.dtype
    neg = dtype.type(LOG_ZERO)
    emissions = np.take_along_axis(log_probs, extended[:, None, :].astype(np.int64), axis=2)
    skip = skip_ok.astype(bool)
    beta = np.where(_final_mask(lengths, states), dtype.type(0), neg).astype(dtype)
    occupancy = np.zeros((batch, frames, states), dtype=dtype)
    for t in range(frames - 1, -1, -1):
        is_valid = valid[:, t, None].astype(bool)
        occupancy[:, t] = np.where(is_valid, np.exp(alphas[:, t] + beta - loglik[:, None]), 0)
        ahead = emissions[:, t] + beta
        earlier = _lse3(ahead, _unshift(ahead, 1, neg), _unshift(np.where(skip, ahead, neg), 2, neg))
        beta = np.where(is_valid, earlier, beta)
    one_hot = extended[:, :, None] == np.arange(classes)[None, None, :]
    grad = np.einsum("bts,bsk->btk", occupancy, one_hot.astype(dtype))
    return (grad * output_grad[:, None, None]).astype(dtype)
