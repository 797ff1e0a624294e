"""Numba pooling kernels on the canonical (N, D, H, W) layout (see ``dandelion.ops.pool_numpy``).

One compiled loop nest serves 1-, 2- and 3-D pooling; window sizes, strides, pads and
the mode are run-time arguments. Kernels write into the caller's output buffer. Mode codes follow ``dandelion.ops.pool_common.MODE_CODES``.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

MAX, SUM, AVERAGE_INC_PAD, AVERAGE_EXC_PAD = 0, 1, 2, 3


@numba_basic.numba_njit
def window(i, n, w, s, p):
    """(first input index, end input index, divisor incl. padding) of output ``i`` on one axis."""
    start = i * s - p
    padded_end = min(start + w, n + p)
    return max(start, 0), min(start + w, n), padded_end - start


@numba_basic.numba_njit
def first_argmax(x, b, d0, d1, h0, h1, w0, w1):
    best = -np.inf
    bd, bh, bw = d0, h0, w0
    for d in range(d0, d1):
        for h in range(h0, h1):
            for w in range(w0, w1):
                if x[b, d, h, w] > best:
                    best = x[b, d, h, w]
                    bd, bh, bw = d, h, w
    return bd, bh, bw


@numba_basic.numba_njit(boundscheck=False)
def pool_forward(x, out, ws, st, pad, mode):
    n, dd, hh, ww = x.shape
    od, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    for b in range(n):
        for i in range(od):
            d0, d1, cd = window(i, dd, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, ch = window(j, hh, ws[1], st[1], pad[1])
                for k in range(ow):
                    w0, w1, cw = window(k, ww, ws[2], st[2], pad[2])
                    if mode == MAX:
                        bd, bh, bw = first_argmax(x, b, d0, d1, h0, h1, w0, w1)
                        out[b, i, j, k] = x[b, bd, bh, bw]
                        continue
                    total = 0.0
                    for d in range(d0, d1):
                        for h in range(h0, h1):
                            for w in range(w0, w1):
                                total += x[b, d, h, w]
                    if mode == AVERAGE_INC_PAD:
                        total /= cd * ch * cw
                    elif mode == AVERAGE_EXC_PAD:
                        total /= (d1 - d0) * (h1 - h0) * (w1 - w0)
                    out[b, i, j, k] = total


@numba_basic.numba_njit(boundscheck=False)
def pool_backward(x, gy, gx, ws, st, pad, mode):
    n, dd, hh, ww = x.shape
    od, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    gx[...] = 0
    for b in range(n):
        for i in range(od):
            d0, d1, cd = window(i, dd, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, ch = window(j, hh, ws[1], st[1], pad[1])
                for k in range(ow):
                    w0, w1, cw = window(k, ww, ws[2], st[2], pad[2])
                    g = gy[b, i, j, k]
                    if mode == MAX:
                        bd, bh, bw = first_argmax(x, b, d0, d1, h0, h1, w0, w1)
                        gx[b, bd, bh, bw] += g
                        continue
                    if mode == AVERAGE_INC_PAD:
                        g = g / (cd * ch * cw)
                    elif mode == AVERAGE_EXC_PAD:
                        g = g / ((d1 - d0) * (h1 - h0) * (w1 - w0))
                    for d in range(d0, d1):
                        for h in range(h0, h1):
                            for w in range(w0, w1):
                                gx[b, d, h, w] += g


@numba_basic.numba_njit(boundscheck=False)
def max_pool_gather(x, g, out, ws, st, pad):
    n, dd, hh, ww = x.shape
    od, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    for b in range(n):
        for i in range(od):
            d0, d1, _ = window(i, dd, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, _ = window(j, hh, ws[1], st[1], pad[1])
                for k in range(ow):
                    w0, w1, _ = window(k, ww, ws[2], st[2], pad[2])
                    bd, bh, bw = first_argmax(x, b, d0, d1, h0, h1, w0, w1)
                    out[b, i, j, k] = g[b, bd, bh, bw]
