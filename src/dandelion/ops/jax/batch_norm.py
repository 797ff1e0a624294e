"""JAX implementations of the fused BatchNorm Ops (``dandelion.ops.batch_norm``).

Plain ``jnp`` expressions of ``batch_norm_numpy``'s formulas on the canonical (P, K, S)
view (shapes are static under tracing); XLA fuses them into a few loops. Statistics
are computed in x's dtype, as the graph path does under JAX.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.axis_sum import kept_block
from dandelion.ops.batch_norm import BatchNormTrainGradOp, BatchNormTrainOp, canonical_shape


def _kept(op, x):
    start, stop = kept_block(x.ndim, op.axes)
    return x.shape[start:stop]


def _factors(op, gamma, inv_std, dtype):
    s = inv_std if op.scale_by_inv_std else jnp.ones_like(inv_std)
    g = gamma.reshape(-1).astype(dtype) if op.has_gamma else jnp.ones_like(inv_std)
    return s, g


@jax_funcify.register(BatchNormTrainOp)
def jax_funcify_BatchNormTrainOp(op, node, **kwargs):
    def batch_norm_train(x, *params):
        x3 = x.reshape(canonical_shape(x.shape, op.axes))
        n = np.asarray(x3.shape[0] * x3.shape[2], dtype=x.dtype)
        mean = x3.sum(axis=(0, 2)) / n
        centred = x3 - mean[None, :, None]
        inv_std = 1 / jnp.sqrt((centred * centred).sum(axis=(0, 2)) / n + np.asarray(op.eps, dtype=x.dtype))
        params = list(params)
        gamma = params.pop(0) if op.has_gamma else None
        s, g = _factors(op, gamma, inv_std, x.dtype)
        scale = s * g
        shift = params.pop(0).reshape(-1).astype(x.dtype) if op.has_beta else jnp.zeros_like(scale)
        if op.subtract_mean:
            shift = shift - mean * scale
        y = x3 * scale[None, :, None] + shift[None, :, None]
        kept = _kept(op, x)
        return y.reshape(x.shape), mean.reshape(kept), inv_std.reshape(kept)

    return batch_norm_train


@jax_funcify.register(BatchNormTrainGradOp)
def jax_funcify_BatchNormTrainGradOp(op, node, **kwargs):
    def batch_norm_train_grad(x, *rest):
        rest = list(rest)
        gamma = rest.pop(0) if op.has_gamma else None
        mean, inv_std, gy, gmean, ginv = (v.astype(x.dtype) for v in rest)
        shape3 = canonical_shape(x.shape, op.axes)
        x3, gy3 = x.reshape(shape3), gy.reshape(shape3)
        mean, r, gmean, ginv = (v.reshape(-1) for v in (mean, inv_std, gmean, ginv))
        n = np.asarray(shape3[0] * shape3[2], dtype=x.dtype)
        centred = x3 - mean[None, :, None]
        s1 = gy3.sum(axis=(0, 2))
        sc = (gy3 * centred).sum(axis=(0, 2))
        s, g = _factors(op, gamma, r, x.dtype)
        gy_u = sc if op.subtract_mean else sc + mean * s1
        total = ginv + g * gy_u if op.scale_by_inv_std else ginv
        b = -total * r**3 / n
        c = gmean / n - s * g * s1 / n if op.subtract_mean else gmean / n
        dx = (g * s)[None, :, None] * gy3 + b[None, :, None] * centred + c[None, :, None]
        kept = _kept(op, x)
        return dx.reshape(x.shape), (s * gy_u).reshape(kept), s1.reshape(kept)

    return batch_norm_train_grad
