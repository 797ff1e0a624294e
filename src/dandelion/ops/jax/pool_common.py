"""Pooling in ``jax.lax.reduce_window``; gradients by ``jax.vjp`` / ``jax.jvp`` of it.

Shapes are static under JAX tracing, so the average-pooling divisors are NumPy
constants computed from the traced shape.
"""

from __future__ import annotations

import jax
import numpy as np

from dandelion.ops.conv_geometry import pool_counts, pool_output_length


def make_jax_pool(op):
    nd = op.nd

    def pool(x):
        lead, spatial = x.shape[:-nd], x.shape[-nd:]
        out = [pool_output_length(n, w, s, p, op.ignore_border) for n, w, s, p in zip(spatial, op.ws, op.stride, op.pad)]
        # extend the end so that a partial window (ignore_border=False) is read whole
        extra = [max(0, (o - 1) * s + w - (n + 2 * p)) for o, s, w, n, p in zip(out, op.stride, op.ws, spatial, op.pad)]
        padding = [(0, 0)] * len(lead) + [(p, p + e) for p, e in zip(op.pad, extra)]
        dims = (1,) * len(lead) + op.ws
        strides = (1,) * len(lead) + op.stride
        if op.mode == "max":
            result = jax.lax.reduce_window(x, np.array(-np.inf, dtype=x.dtype), jax.lax.max, dims, strides, padding)
        else:
            result = jax.lax.reduce_window(x, np.array(0, dtype=x.dtype), jax.lax.add, dims, strides, padding)
        # reduce_window keeps every window that fits the padded extent; drop the rest
        result = result[(Ellipsis,) + tuple(slice(0, o) for o in out)]
        if op.mode in ("average_inc_pad", "average_exc_pad"):
            counts = pool_counts(spatial, op.ws, op.stride, op.pad, out, op.mode == "average_inc_pad")
            result = result / np.asarray(counts, dtype=x.dtype)
        return result

    return pool
