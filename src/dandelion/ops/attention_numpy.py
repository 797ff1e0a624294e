"""NumPy kernels of the fused attention Ops (``dandelion.ops.attention``): their ``perform``.

Shapes: q (N, Lq, E), k (N, Lk, E), v (N, Lk, Ev), the attention weights and the dropout
multiplier (N, Lq, Lk). N is the flattened batch (batch * heads). ``xp`` is the array
module: NumPy here, ``jax.numpy`` for the JAX kernels (``dandelion.ops.jax.attention``).
"""

from __future__ import annotations

import numpy as np


def causal_keep(lq, lk):
    """(Lq, Lk) booleans: query i sees keys j <= i (aligned at the first position)."""
    return np.arange(lq)[:, None] >= np.arange(lk)[None, :]


def softmax_weights(scores, causal, xp=np):
    """Row softmax of scores (N, Lq, Lk) where kept; rows with nothing kept give zeros."""
    if causal:
        scores = xp.where(causal_keep(*scores.shape[-2:]), scores, -np.inf)
    if scores.shape[-1]:
        shift = scores.max(axis=-1, keepdims=True)
    else:
        shift = xp.zeros(scores.shape[:-1] + (1,), scores.dtype)
    # a row with nothing kept has max -inf: shifted by 0 so that exp gives zeros, not NaN
    shift = xp.where(xp.isinf(shift), 0, shift).astype(scores.dtype)
    weights = xp.exp(scores - shift)
    total = weights.sum(axis=-1, keepdims=True)
    return weights / xp.where(total > 0, total, 1).astype(scores.dtype)


def attention_forward(q, k, v, scale, causal, multiplier=None, xp=np):
    """``(out (N, Lq, Ev), weights (N, Lq, Lk))``: weights before dropout, out after it."""
    scores = xp.matmul(q, k.swapaxes(-1, -2)) * np.dtype(q.dtype).type(scale)
    weights = softmax_weights(scores, causal, xp)
    dropped = weights if multiplier is None else weights * multiplier
    return xp.matmul(dropped, v), weights


def attention_backward(q, k, v, weights, d_out, scale, multiplier=None, xp=np):
    """``(dq, dk, dv)`` of ``attention_forward`` from its saved weights and the cotangent of out.

    With P the weights and M the multiplier: dV = (P M)^T dO, dP = (dO V^T) M, and the
    softmax's Jacobian gives dS = P (dP - rowsum(dP P)); masked entries have P = 0.
    """
    dropped = weights if multiplier is None else weights * multiplier
    dv = xp.matmul(dropped.swapaxes(-1, -2), d_out)
    d_weights = xp.matmul(d_out, v.swapaxes(-1, -2))
    if multiplier is not None:
        d_weights = d_weights * multiplier
    d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True)) * np.dtype(q.dtype).type(scale)
    return xp.matmul(d_scores, k), xp.matmul(d_scores.swapaxes(-1, -2), q), dv
