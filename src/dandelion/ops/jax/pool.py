"""JAX implementations of the pooling Op family (``dandelion.ops.pool``).

Pooling is ``jax.lax.reduce_window``; gradients are ``jax.vjp`` / ``jax.jvp`` of it, or
reshaping for windows that tile the input. Adaptive pooling (``output_size``) has static
bins under tracing: sums are per-axis slice sums, maxima a ``reduce_window`` over the input
with every pixel repeated (see ``make_jax_adaptive_pool``).

Shapes are static under JAX tracing, so the average-pooling divisors are NumPy
constants computed from the traced shape.
"""

from __future__ import annotations

import jax
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from dandelion.ops.geometry import (
    adaptive_bin_end,
    adaptive_bin_start,
    pool_buffer_length,
    pool_counts,
    pool_output_length,
)
from dandelion.ops.pool import MaxPoolGatherOp, PoolGradOp, PoolOp


def make_jax_pool(op):
    if op.output_size is not None:
        return make_jax_adaptive_pool(op)
    nd = op.nd

    def pool(x):
        lead, spatial = x.shape[:-nd], x.shape[-nd:]
        out = [pool_output_length(n, w, s, p, op.ignore_border) for n, w, s, p in zip(spatial, op.ws, op.stride, op.pad)]
        # extend the end so that a partial window (ignore_border=False) is read whole
        extra = [pool_buffer_length(n, w, s, p, o) - (n + 2 * p) for n, w, s, p, o in zip(spatial, op.ws, op.stride, op.pad, out)]
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


def make_jax_adaptive_pool(op):
    """Adaptive pooling with the bins of ``geometry.adaptive_bin_start`` / ``adaptive_bin_end``.

    Max: with every pixel repeated d times along an axis of length n, window i of size n
    (stride n) covers exactly the pixels of bin i, so one ``reduce_window`` pools, and its
    pullback (select-and-scatter) picks each bin's first maximum as the other kernels do.
    Repeating would count shared pixels twice in a sum, so sums and averages reduce one
    slice per bin and axis instead (d slices per axis, separable).
    """
    nd, size = op.nd, op.output_size

    def pool(x):
        lead, spatial = x.shape[:-nd], x.shape[-nd:]
        if op.mode == "max":
            for axis, d in enumerate(size):
                x = jax.numpy.repeat(x, d, axis=len(lead) + axis)
            dims = (1,) * len(lead) + tuple(spatial)
            return jax.lax.reduce_window(x, np.array(-np.inf, dtype=x.dtype), jax.lax.max, dims, dims, "VALID")
        for axis, (n, d) in enumerate(zip(spatial, size)):
            at = len(lead) + axis
            pieces = []
            for i in range(d):
                start, end = adaptive_bin_start(i, n, d), adaptive_bin_end(i, n, d)
                piece = jax.lax.slice_in_dim(x, start, end, axis=at).sum(axis=at)
                # an average divides by the bin's pixels: the product of its per-axis lengths
                pieces.append(piece if op.mode == "sum" else piece / np.asarray(end - start, dtype=x.dtype))
            x = jax.numpy.stack(pieces, axis=at)
        return x

    return pool


def tiles(op):
    """Whether windows tile the input (stride == ws, no padding, ignore_border): gradients by reshaping."""
    return op.output_size is None and op.ignore_border and tuple(op.stride) == tuple(op.ws) and not any(op.pad)


def make_tiled_pool_grad(op):
    """The gradient of a tiling pool without ``select_and_scatter``.

    XLA's CPU pullback of a max ``reduce_window`` (select-and-scatter) took 16 ms for a 2x2
    pool of (64, 32, 28, 28) float32; splitting every pooled axis into (windows, offset),
    taking the first maximum with ``argmax`` (row-major window order, as every kernel) and
    scattering by a one-hot product takes 1 ms. Rows and columns past the last whole
    window get zero gradient.
    """
    nd, ws = op.nd, tuple(op.ws)
    size = int(np.prod(ws))

    def split(x, out):
        """(..., o0*w0, o1*w1, ...) -> (..., o0, o1, ..., w0*w1*...)"""
        lead = x.shape[: x.ndim - nd]
        x = x.reshape(lead + tuple(v for o, w in zip(out, ws) for v in (o, w)))
        n = len(lead)
        order = tuple(range(n)) + tuple(n + 2 * a for a in range(nd)) + tuple(n + 2 * a + 1 for a in range(nd))
        return x.transpose(order).reshape(lead + tuple(out) + (size,))

    def merge(t, lead, out):
        """Inverse of ``split``."""
        n = len(lead)
        t = t.reshape(lead + tuple(out) + ws)
        order = tuple(range(n)) + tuple(v for a in range(nd) for v in (n + a, n + nd + a))
        return t.transpose(order).reshape(lead + tuple(o * w for o, w in zip(out, ws)))

    def pool_grad(x, gy):
        lead, spatial = x.shape[: x.ndim - nd], x.shape[x.ndim - nd :]
        out = gy.shape[gy.ndim - nd :]
        whole = tuple(slice(0, o * w) for o, w in zip(out, ws))
        if op.mode == "max":
            first = jax.numpy.argmax(split(x[(Ellipsis,) + whole], out), axis=-1)
            spread = (first[..., None] == np.arange(size)).astype(gy.dtype) * gy[..., None]
        else:
            share = gy if op.mode == "sum" else gy / np.asarray(size, dtype=gy.dtype)
            spread = jax.numpy.broadcast_to(share[..., None], share.shape + (size,))
        grad = merge(spread, lead, out)
        missing = [(0, n - o * w) for n, o, w in zip(spatial, out, ws)]
        if any(m for _, m in missing):
            grad = jax.numpy.pad(grad, [(0, 0)] * len(lead) + missing)
        return grad

    return pool_grad


@jax_funcify.register(PoolOp)
def jax_funcify_PoolOp(op, node, **kwargs):
    return make_jax_pool(op)


@jax_funcify.register(PoolGradOp)
def jax_funcify_PoolGradOp(op, node, **kwargs):
    dtype = node.outputs[0].dtype
    if tiles(op):
        tiled = make_tiled_pool_grad(op)

        def tiled_pool_grad(x, gy):
            return tiled(x.astype(dtype), gy.astype(dtype))

        return tiled_pool_grad
    pool = make_jax_pool(op)

    def pool_grad(x, gy):
        _, pullback = jax.vjp(pool, x.astype(dtype))
        return pullback(gy.astype(dtype))[0]

    return pool_grad


@jax_funcify.register(MaxPoolGatherOp)
def jax_funcify_MaxPoolGatherOp(op, node, **kwargs):
    pool = make_jax_pool(op)
    dtype = node.outputs[0].dtype

    def max_pool_gather(x, g):
        return jax.jvp(pool, (x.astype(dtype),), (g.astype(dtype),))[1]

    return max_pool_gather
