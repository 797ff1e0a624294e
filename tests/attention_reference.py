"""NumPy references for attention and transformer layers (float64, loops where clearer)."""

from __future__ import annotations

import numpy as np
from scipy.special import erf


def attention(q, k, v, keep=None, additive=None, scale=None):
    """softmax over allowed keys of q k^T * scale (+ additive); fully masked rows give 0."""
    q, k, v = (np.asarray(t, dtype="float64") for t in (q, k, v))
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.einsum("...qe,...ke->...qk", q, k) * scale
    if additive is not None:
        scores = scores + additive
    allowed = np.isfinite(scores) if keep is None else np.broadcast_to(keep, scores.shape) & np.isfinite(scores)
    weights = np.zeros_like(scores)
    for index in np.ndindex(scores.shape[:-1]):
        row, ok = scores[index], allowed[index]
        if ok.any():
            e = np.exp(row[ok] - row[ok].max())
            weights[index][ok] = e / e.sum()
    return np.einsum("...qk,...kv->...qv", weights, v)


def dense(x, W, b):
    return x @ W + (0 if b is None else b)


def multi_head_attention(query, key, value, weights, num_heads, keep=None):
    """weights: {name: (W, b)} for q_proj, k_proj, v_proj, out_proj; (B, L, D) inputs."""
    def heads(x, name):
        projected = dense(x, *weights[name])
        B, L, D = projected.shape
        return projected.reshape(B, L, num_heads, D // num_heads).transpose(0, 2, 1, 3)

    out = attention(heads(query, "q_proj"), heads(key, "k_proj"), heads(value, "v_proj"), keep=keep)
    B, H, L, E = out.shape
    return dense(out.transpose(0, 2, 1, 3).reshape(B, L, H * E), *weights["out_proj"])


def layer_norm(x, gamma, beta, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta


ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0), "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))}


def encoder_layer(x, weights, num_heads, activation, norm_first, keep=None):
    """weights: the MHA's and {'linear1', 'linear2', 'norm1', 'norm2'}: (W or gamma, b or beta)."""
    act = ACTIVATIONS[activation]

    def attend(y):
        return multi_head_attention(y, y, y, weights, num_heads, keep)

    def ff(y):
        return dense(act(dense(y, *weights["linear1"])), *weights["linear2"])

    n1 = lambda y: layer_norm(y, *weights["norm1"])  # noqa: E731
    n2 = lambda y: layer_norm(y, *weights["norm2"])  # noqa: E731
    if norm_first:
        x = x + attend(n1(x))
        return x + ff(n2(x))
    x = n1(x + attend(x))
    return n2(x + ff(x))
