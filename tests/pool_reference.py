"""Naive NumPy reference loops for pooling (Theano's semantics), one output at a time."""

from __future__ import annotations

import itertools

import numpy as np


def pooled_len(n, w, s, p, ignore_border):
    padded = n + 2 * p
    if ignore_border:
        return (padded - w) // s + 1
    if s >= w:
        return (padded - 1) // s + 1
    return max(0, (padded - 1 - w + s) // s) + 1


def pool_ref(x, ws, stride=None, pad=None, ignore_border=True, mode="max"):
    """Pool the last len(ws) axes of x. Windows are clipped to the padded input; max
    pooling never picks padding; 'average_inc_pad' divides by the clipped window size,
    'average_exc_pad' by the number of input pixels in it."""
    nd = len(ws)
    stride = ws if stride is None else stride
    pad = (0,) * nd if pad is None else pad
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    out_sp = [pooled_len(n, w, s, p, ignore_border) for n, w, s, p in zip(spatial, ws, stride, pad)]
    y = np.zeros(lead + tuple(out_sp))
    for li in itertools.product(*(range(n) for n in lead)):
        for oi in itertools.product(*(range(n) for n in out_sp)):
            padded_ranges, real = [], []
            for o, n, w, s, p in zip(oi, spatial, ws, stride, pad):
                start = o * s
                end = min(start + w, n + 2 * p)
                padded_ranges.append(end - start)
                real.append(range(max(start, p) - p, min(end, n + p) - p))
            values = [x[li + idx] for idx in itertools.product(*real)]
            if mode == "max":
                y[li + oi] = max(values)
            elif mode == "sum":
                y[li + oi] = sum(values)
            elif mode == "average_inc_pad":
                y[li + oi] = sum(values) / np.prod(padded_ranges)
            else:
                y[li + oi] = sum(values) / len(values)
    return y
