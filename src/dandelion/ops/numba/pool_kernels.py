"""Numba pooling kernels on the canonical (N, D, H, W) layout (see ``dandelion.ops.pool_numpy``).

One compiled loop nest serves 1-, 2- and 3-D pooling, windowed or adaptive; window
sizes, strides, pads, the mode and the adaptive flag are run-time arguments. Kernels write into the caller's (C-contiguous) output
buffer through flat indices; 2x2 max pooling with stride 2 takes the fixed loops of
``pool_tiled`` instead. Mode codes follow ``dandelion.ops.pool.MODE_CODES``.
"""

from __future__ import annotations

from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.geometry import adaptive_bin_end, adaptive_bin_start
from dandelion.ops.numba.pool_tiled import is_tiled_2x2, max_2x2_backward, max_2x2_forward, max_2x2_gather

MAX, SUM, AVERAGE_INC_PAD, AVERAGE_EXC_PAD = 0, 1, 2, 3
# what ``each_window`` does per window
FORWARD, BACKWARD, GATHER = 0, 1, 2


@numba_basic.numba_njit
def window(i, n, w, s, p):
    """(first input index, end input index, divisor incl. padding) of output ``i`` on one axis."""
    start = i * s - p
    padded_end = min(start + w, n + p)
    return max(start, 0), min(start + w, n), padded_end - start


bin_start = numba_basic.numba_njit(adaptive_bin_start)
bin_end = numba_basic.numba_njit(adaptive_bin_end)


@numba_basic.numba_njit
def bounds(adaptive, i, n, o, w, s, p):
    """``window`` of output ``i`` of ``o``, or its adaptive bin (whose divisor is its pixel count)."""
    if adaptive:
        start, end = bin_start(i, n, o), bin_end(i, n, o)
        return start, end, end - start
    return window(i, n, w, s, p)


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


@numba_basic.numba_njit
def divisor(mode, padded_count, d0, d1, h0, h1, w0, w1):
    """What a window's sum is divided by: 1 (sum), the padded window or its input pixels."""
    if mode == AVERAGE_INC_PAD:
        return padded_count
    if mode == AVERAGE_EXC_PAD:
        return (d1 - d0) * (h1 - h0) * (w1 - w0)
    return 1


@numba_basic.numba_njit(boundscheck=False)
def each_window(x_shape, out_spatial, ws, st, pad, adaptive, kind, xf, bf, of, mode):
    """Runs the ``kind`` visit (``FORWARD``, ``BACKWARD``, ``GATHER``) for every output ``o``
    (flat index) with its window clipped to the input, in output order.

    The kind is an argument, not the visit function itself: a function argument would make
    the compiled callback a dynamic global, which Numba cannot cache.
    """
    n, dd, hh, ww = x_shape
    od, oh, ow = out_spatial
    for b in range(n):
        for i in range(od):
            d0, d1, cd = bounds(adaptive, i, dd, od, ws[0], st[0], pad[0])
            for j in range(oh):
                h0, h1, ch = bounds(adaptive, j, hh, oh, ws[1], st[1], pad[1])
                row = ((b * od + i) * oh + j) * ow
                for k in range(ow):
                    w0, w1, cw = bounds(adaptive, k, ww, ow, ws[2], st[2], pad[2])
                    args = (xf, bf, of, row + k, b * dd, hh, ww, d0, d1, h0, h1, w0, w1, cd * ch * cw, mode)
                    if kind == FORWARD:
                        forward_visit(*args)
                    elif kind == BACKWARD:
                        backward_visit(*args)
                    else:
                        gather_visit(*args)


@numba_basic.numba_njit
def forward_visit(xf, unused, of, o, base, hh, ww, d0, d1, h0, h1, w0, w1, padded_count, mode):
    if mode == MAX:
        of[o] = xf[first_argmax(xf, base, hh, ww, d0, d1, h0, h1, w0, w1)]
    else:
        total = window_sum(xf, base, hh, ww, d0, d1, h0, h1, w0, w1)
        of[o] = total / divisor(mode, padded_count, d0, d1, h0, h1, w0, w1)


@numba_basic.numba_njit
def backward_visit(xf, gyf, gxf, o, base, hh, ww, d0, d1, h0, h1, w0, w1, padded_count, mode):
    if mode == MAX:
        gxf[first_argmax(xf, base, hh, ww, d0, d1, h0, h1, w0, w1)] += gyf[o]
        return
    g = gyf[o] / divisor(mode, padded_count, d0, d1, h0, h1, w0, w1)
    for d in range(d0, d1):
        for h in range(h0, h1):
            row = ((base + d) * hh + h) * ww
            for w in range(w0, w1):
                gxf[row + w] += g


@numba_basic.numba_njit
def gather_visit(xf, gf, of, o, base, hh, ww, d0, d1, h0, h1, w0, w1, padded_count, mode):
    of[o] = gf[first_argmax(xf, base, hh, ww, d0, d1, h0, h1, w0, w1)]


@numba_basic.numba_njit
def pool_forward(x, out, ws, st, pad, adaptive, mode):
    if mode == MAX and is_tiled_2x2(ws, st, pad, adaptive):
        max_2x2_forward(x, out)
        return
    out_spatial = (out.shape[1], out.shape[2], out.shape[3])
    xf = x.reshape(-1)
    each_window(x.shape, out_spatial, ws, st, pad, adaptive, FORWARD, xf, xf, out.reshape(-1), mode)


@numba_basic.numba_njit
def pool_backward(x, gy, gx, ws, st, pad, adaptive, mode):
    if mode == MAX and is_tiled_2x2(ws, st, pad, adaptive):
        max_2x2_backward(x, gy, gx)
        return
    gxf = gx.reshape(-1)
    gxf[:] = 0
    out_spatial = (gy.shape[1], gy.shape[2], gy.shape[3])
    each_window(x.shape, out_spatial, ws, st, pad, adaptive, BACKWARD, x.reshape(-1), gy.reshape(-1), gxf, mode)


@numba_basic.numba_njit
def max_pool_gather(x, g, out, ws, st, pad, adaptive):
    if is_tiled_2x2(ws, st, pad, adaptive):
        max_2x2_gather(x, g, out)
        return
    out_spatial = (out.shape[1], out.shape[2], out.shape[3])
    each_window(x.shape, out_spatial, ws, st, pad, adaptive, GATHER, x.reshape(-1), g.reshape(-1), out.reshape(-1), MAX)
