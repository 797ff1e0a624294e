"""Numba pooling kernels on the canonical (N, D, H, W) layout (see ``dandelion.ops.pool_numpy``).

One compiled loop nest serves 1-, 2- and 3-D pooling; window sizes, strides, pads and
the mode are run-time arguments. Kernels write into the caller's (C-contiguous) output
buffer through flat indices. Mode codes follow ``dandelion.ops.pool.MODE_CODES``.
"""

from __future__ import annotations

from pytensor.link.numba.dispatch import basic as numba_basic

MAX, SUM, AVERAGE_INC_PAD, AVERAGE_EXC_PAD = 0, 1, 2, 3


@numba_basic.numba_njit
def window(i, n, w, s, p):
    """(first input index, end input index, divisor incl. padding) of output ``i`` on one axis."""
    start = i * s - p
    padded_end = min(start + w, n + p)
    return max(start, 0), min(start + w, n), padded_end - start


@numba_basic.numba_njit
def first_argmax(xf, base, hh, ww, d0, d1, h0, h1, w0, w1):
    """Flat index (into ``xf``) of the first maximum of a window, in row-major window order."""
    best = xf[((base + d0) * hh + h0) * ww + w0]
    at = ((base + d0) * hh + h0) * ww + w0
    for d in range(d0, d1):
        for h in range(h0, h1):
            row = ((base + d) * hh + h) * ww
            for w in range(w0, w1):
                if xf[row + w] > best:
                    best = xf[row + w]
                    at = row + w
    return at


@numba_basic.numba_njit
def window_sum(xf, base, hh, ww, d0, d1, h0, h1, w0, w1):
    total = 0.0
    for d in range(d0, d1):
        for h in range(h0, h1):
            row = ((base + d) * hh + h) * ww
            for w in range(w0, w1):
                total += xf[row + w]
    return total


@numba_basic.numba_njit(boundscheck=False)
def pool_forward(x, out, ws, st, pad, mode):
    n, dd, hh, ww = x.shape
    od, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    xf, of = x.reshape(-1), out.reshape(-1)
    for b in range(n):
        for i in range(od):
            d0, d1, cd = window(i, dd, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, ch = window(j, hh, ws[1], st[1], pad[1])
                row = ((b * od + i) * oh + j) * ow
                for k in range(ow):
                    w0, w1, cw = window(k, ww, ws[2], st[2], pad[2])
                    if mode == MAX:
                        of[row + k] = xf[first_argmax(xf, b * dd, hh, ww, d0, d1, h0, h1, w0, w1)]
                        continue
                    total = window_sum(xf, b * dd, hh, ww, d0, d1, h0, h1, w0, w1)
                    if mode == AVERAGE_INC_PAD:
                        total /= cd * ch * cw
                    elif mode == AVERAGE_EXC_PAD:
                        total /= (d1 - d0) * (h1 - h0) * (w1 - w0)
                    of[row + k] = total


@numba_basic.numba_njit(boundscheck=False)
def pool_backward(x, gy, gx, ws, st, pad, mode):
    n, dd, hh, ww = x.shape
    od, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    xf, gyf, gxf = x.reshape(-1), gy.reshape(-1), gx.reshape(-1)
    gxf[:] = 0
    for b in range(n):
        for i in range(od):
            d0, d1, cd = window(i, dd, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, ch = window(j, hh, ws[1], st[1], pad[1])
                row = ((b * od + i) * oh + j) * ow
                for k in range(ow):
                    w0, w1, cw = window(k, ww, ws[2], st[2], pad[2])
                    g = gyf[row + k]
                    if mode == MAX:
                        gxf[first_argmax(xf, b * dd, hh, ww, d0, d1, h0, h1, w0, w1)] += g
                        continue
                    if mode == AVERAGE_INC_PAD:
                        g = g / (cd * ch * cw)
                    elif mode == AVERAGE_EXC_PAD:
                        g = g / ((d1 - d0) * (h1 - h0) * (w1 - w0))
                    for d in range(d0, d1):
                        for h in range(h0, h1):
                            base = ((b * dd + d) * hh + h) * ww
                            for w in range(w0, w1):
                                gxf[base + w] += g


@numba_basic.numba_njit(boundscheck=False)
def max_pool_gather(x, g, out, ws, st, pad):
    n, dd, hh, ww = x.shape
    od, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    xf, gf, of = x.reshape(-1), g.reshape(-1), out.reshape(-1)
    for b in range(n):
        for i in range(od):
            d0, d1, _ = window(i, dd, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, _ = window(j, hh, ws[1], st[1], pad[1])
                row = ((b * od + i) * oh + j) * ow
                for k in range(ow):
                    w0, w1, _ = window(k, ww, ws[2], st[2], pad[2])
                    of[row + k] = gf[first_argmax(xf, b * dd, hh, ww, d0, d1, h0, h1, w0, w1)]
