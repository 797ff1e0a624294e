"""Vectorised NumPy kernels of the pooling Ops (the ``perform`` path, used by the C backend).

The pooled axes are first brought to a canonical (N, D, H, W) layout (unpooled axes are
flattened into N; missing pooled axes get length 1 and window 1), so one core serves
1-, 2- and 3-D pooling. The input is copied once into a padded buffer that holds every
window whole; the loops then run over the window *offsets* (at most prod(ws) of them),
each a strided slice over all outputs at once. Windows that tile the input (stride == ws,
no padding, the common 2x2 case) skip the padded copy. Max pooling ignores padding (as -inf) and
routes gradients to the first maximum of each window, in row-major window order.
"""

from __future__ import annotations

import itertools

import numpy as np

from dandelion.ops.geometry import (
    adaptive_bin_end,
    adaptive_bin_start,
    pool_buffer_length,
    pool_counts,
    pool_output_length,
)


class Canonical:
    """The (N, D, H, W) view of an array pooled over its last ``nd`` axes, and the window geometry."""

    def __init__(self, shape, nd, ws, stride, pad, ignore_border):
        extra = 3 - nd
        self.lead = tuple(shape[: len(shape) - nd])
        self.spatial = (1,) * extra + tuple(shape[len(shape) - nd :])
        self.ws = (1,) * extra + tuple(ws)
        self.stride = (1,) * extra + tuple(stride)
        self.pad = (0,) * extra + tuple(pad)
        self.nd = nd
        self.out = tuple(
            pool_output_length(n, w, s, p, ignore_border) for n, w, s, p in zip(self.spatial, self.ws, self.stride, self.pad)
        )
        self.buffer = tuple(
            pool_buffer_length(n, w, s, p, o) for n, w, s, p, o in zip(self.spatial, self.ws, self.stride, self.pad, self.out)
        )
        self.n = int(np.prod(self.lead, dtype=np.int64))

    def out_shape(self):
        return self.lead + self.out[3 - self.nd :]

    def padded(self, x, fill):
        buf = np.full((self.n,) + self.buffer, fill, dtype=x.dtype)
        inner = tuple(slice(p, p + n) for p, n in zip(self.pad, self.spatial))
        buf[(slice(None),) + inner] = x.reshape((self.n,) + self.spatial)
        return buf

    def crop(self, buf, shape):
        inner = tuple(slice(p, p + n) for p, n in zip(self.pad, self.spatial))
        return np.ascontiguousarray(buf[(slice(None),) + inner]).reshape(shape)

    def offsets(self):
        """Index expressions of the buffer slice each window offset reads, in row-major window order."""
        for offset in itertools.product(*(range(w) for w in self.ws)):
            yield (slice(None),) + tuple(slice(a, a + s * (o - 1) + 1, s) for a, s, o in zip(offset, self.stride, self.out))

    def tiled(self):
        """Windows that tile the input (stride == ws, no padding): pooled by reshaping."""
        return all(s == w and p == 0 and o * w <= n for s, w, p, o, n in zip(self.stride, self.ws, self.pad, self.out, self.spatial))

    def tile_offsets(self):
        """Index expressions, one per window offset, into the (N, D, H, W) input of a tiled geometry."""
        for offset in itertools.product(*(range(w) for w in self.ws)):
            yield (slice(None),) + tuple(slice(a, o * w, w) for a, o, w in zip(offset, self.out, self.ws))

    def tiled_argmax(self, x3):
        """Max and first-max window index of a tiled geometry, without a padded copy."""
        windows = list(self.tile_offsets())
        best = x3[windows[0]].copy()
        index = np.zeros(best.shape, dtype=np.int64)
        for k, window in enumerate(windows[1:], start=1):
            better = x3[window] > best
            np.copyto(best, x3[window], where=better)
            index[better] = k
        return best, index

    def counts(self, mode):
        return pool_counts(self.spatial, self.ws, self.stride, self.pad, self.out, mode == "average_inc_pad")


def first_argmax(geometry, buf):
    """Per output: the max and the index (in window order) of its first occurrence."""
    best = np.full((geometry.n,) + geometry.out, -np.inf, dtype=buf.dtype)
    index = np.zeros(best.shape, dtype=np.int64)
    for k, window in enumerate(geometry.offsets()):
        candidate = buf[window]
        better = candidate > best
        best = np.where(better, candidate, best)
        index = np.where(better, k, index)
    return best, index


def pool_forward(x, nd, ws, stride, pad, ignore_border, mode):
    geo = Canonical(x.shape, nd, ws, stride, pad, ignore_border)
    if geo.tiled():
        x3 = x.reshape((geo.n,) + geo.spatial)
        if mode == "max":
            return geo.tiled_argmax(x3)[0].reshape(geo.out_shape())
        total = sum(x3[window] for window in geo.tile_offsets())
        if mode != "sum":
            total = total / np.asarray(np.prod(geo.ws), dtype=x.dtype)
        return np.asarray(total, dtype=x.dtype).reshape(geo.out_shape())
    if mode == "max":
        best, _ = first_argmax(geo, geo.padded(x, -np.inf))
        return best.reshape(geo.out_shape())
    buf = geo.padded(x, 0)
    total = np.zeros((geo.n,) + geo.out, dtype=x.dtype)
    for window in geo.offsets():
        total += buf[window]
    if mode != "sum":
        total /= geo.counts(mode).astype(x.dtype)
    return total.reshape(geo.out_shape())


def pool_backward(x, gy, nd, ws, stride, pad, ignore_border, mode):
    geo = Canonical(x.shape, nd, ws, stride, pad, ignore_border)
    gy = gy.reshape((geo.n,) + geo.out)
    if geo.tiled():
        grad = np.zeros((geo.n,) + geo.spatial, dtype=gy.dtype)
        if mode == "max":
            _, index = geo.tiled_argmax(x.reshape((geo.n,) + geo.spatial))
            for k, window in enumerate(geo.tile_offsets()):
                grad[window] = np.where(index == k, gy, 0)
        else:
            share = gy if mode == "sum" else gy / np.asarray(np.prod(geo.ws), dtype=gy.dtype)
            for window in geo.tile_offsets():
                grad[window] = share
        return grad.reshape(x.shape)
    grad = np.zeros((geo.n,) + geo.buffer, dtype=gy.dtype)
    if mode == "max":
        _, index = first_argmax(geo, geo.padded(x, -np.inf))
        for k, window in enumerate(geo.offsets()):
            grad[window] += np.where(index == k, gy, 0)
    else:
        share = gy if mode == "sum" else gy / geo.counts(mode).astype(gy.dtype)
        for window in geo.offsets():
            grad[window] += share
    return geo.crop(grad, x.shape)


def max_pool_gather(x, g, nd, ws, stride, pad, ignore_border):
    """``g`` read at the first maximum of every window of x (the adjoint of the max-pool gradient)."""
    geo = Canonical(x.shape, nd, ws, stride, pad, ignore_border)
    if geo.tiled():
        _, index = geo.tiled_argmax(x.reshape((geo.n,) + geo.spatial))
        g3 = g.reshape((geo.n,) + geo.spatial)
        out = np.zeros(index.shape, dtype=g.dtype)
        for k, window in enumerate(geo.tile_offsets()):
            np.copyto(out, g3[window], where=index == k)
        return out.reshape(geo.out_shape())
    _, index = first_argmax(geo, geo.padded(x, -np.inf))
    g_buf = geo.padded(g, 0)
    out = np.zeros((geo.n,) + geo.out, dtype=g.dtype)
    for k, window in enumerate(geo.offsets()):
        out += np.where(index == k, g_buf[window], 0)
    return out.reshape(geo.out_shape())


def adaptive_bins(spatial, output_size):
    """Per output index (row-major): the tuple of per-axis input slices of its bin."""
    edges = [[slice(adaptive_bin_start(i, n, d), adaptive_bin_end(i, n, d)) for i in range(d)] for n, d in zip(spatial, output_size)]
    return zip(np.ndindex(*output_size), itertools.product(*edges))


def _adaptive_first_max(x_lead, region, bin_slices):
    """(N,) flat-pixel coordinates (a tuple of index arrays into x_lead) of each bin's first maximum."""
    n = x_lead.shape[0]
    flat = np.argmax(region.reshape(n, -1), axis=1)  # argmax returns the first maximum, row-major
    offsets = np.unravel_index(flat, region.shape[1:])
    return (np.arange(n),) + tuple(s.start + o for s, o in zip(bin_slices, offsets))


def adaptive_forward(x, output_size, mode):
    """Adaptive pooling of the last ``len(output_size)`` axes of x; averages divide by the bin's pixels."""
    nd = len(output_size)
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    x2 = x.reshape((-1,) + spatial)
    out = np.empty((x2.shape[0],) + tuple(output_size), dtype=x.dtype)
    for o, bin_slices in adaptive_bins(spatial, output_size):
        region = x2[(slice(None),) + bin_slices]
        axes = tuple(range(1, nd + 1))
        if mode == "max":
            out[(slice(None),) + o] = region.max(axis=axes)
        else:
            total = region.sum(axis=axes)
            out[(slice(None),) + o] = total if mode == "sum" else total / region[0].size
    return out.reshape(lead + tuple(output_size))


def adaptive_backward(x, gy, output_size, mode):
    """Gradient of ``adaptive_forward`` in x for the cotangent gy: max to each bin's first maximum."""
    nd = len(output_size)
    spatial = x.shape[-nd:]
    x2 = x.reshape((-1,) + spatial)
    gy2 = gy.reshape((x2.shape[0],) + tuple(output_size))
    grad = np.zeros(x2.shape, dtype=gy.dtype)
    for o, bin_slices in adaptive_bins(spatial, output_size):
        g = gy2[(slice(None),) + o]
        if mode == "max":
            # one pixel per row of N: the fancy-indexed += adds no duplicate
            grad[_adaptive_first_max(x2, x2[(slice(None),) + bin_slices], bin_slices)] += g
        else:
            region = grad[(slice(None),) + bin_slices]
            share = g if mode == "sum" else g / region[0].size
            region += share.reshape((-1,) + (1,) * nd)
    return grad.reshape(x.shape)


def adaptive_max_gather(x, g, output_size):
    """``g`` read at the first maximum of every adaptive bin of x (the adjoint of its max gradient)."""
    nd = len(output_size)
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    x2, g2 = x.reshape((-1,) + spatial), g.reshape((-1,) + spatial)
    out = np.empty((x2.shape[0],) + tuple(output_size), dtype=g.dtype)
    for o, bin_slices in adaptive_bins(spatial, output_size):
        out[(slice(None),) + o] = g2[_adaptive_first_max(x2, x2[(slice(None),) + bin_slices], bin_slices)]
    return out.reshape(lead + tuple(output_size))
