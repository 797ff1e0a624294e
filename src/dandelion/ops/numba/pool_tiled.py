"""Numba kernels of 2x2 max pooling with stride 2 and no padding, the CNN default.

The generic loop nest of ``pool_kernels`` takes window sizes, strides and pads at run
time; its inner loops then have unknown trip counts and do not vectorise. On W3's first
pooling, (64, 32, 28, 28) -> 14x14, it took 12 to 15 ms per pass (forward, and the
gradient again), against 0.5 ms for the same loop with the window fixed at 2x2. These
kernels are that fixed loop, picked by ``pool_kernels`` for the geometry of ``is_tiled_2x2``.
Ties go to the first maximum in row-major window order, as everywhere in the family.
Arrays are the canonical C-contiguous (N, D, H, W) layout with D pooled by a window of 1.
"""

from __future__ import annotations

from pytensor.link.numba.dispatch import basic as numba_basic


@numba_basic.numba_njit
def is_tiled_2x2(ws, st, pad, adaptive):
    """True for windows (1, 2, 2), strides (1, 2, 2), no padding, not adaptive."""
    return (
        not adaptive
        and ws[0] == 1 and ws[1] == 2 and ws[2] == 2
        and st[0] == 1 and st[1] == 2 and st[2] == 2
        and pad[0] == 0 and pad[1] == 0 and pad[2] == 0
    )


@numba_basic.numba_njit
def max_2x2(a, b, c, d):
    """The first maximum of a window read in the order a, b, c, d, by the family's rule.

    ``max`` vectorises; only a NaN (where ``max`` and the rule can differ) takes the rule's
    comparisons: a NaN first entry wins, a later NaN never does.
    """
    m = max(max(a, b), max(c, d))
    if m != m or a != a:
        m = a
        if b > m:
            m = b
        if c > m:
            m = c
        if d > m:
            m = d
    return m


@numba_basic.numba_njit
def first_of_2x2(a, b, c, m):
    """Which entry of a window (a, b, c, d) with first maximum ``m`` holds it, as three flags (none: d).

    Bitwise, not short-circuit, logic: branch-free, so that the loops calling it vectorise.
    """
    # a NaN first entry is the maximum without equalling it
    first = (a == m) | (a != a)
    second = (b == m) & (not first)
    third = (c == m) & (not first) & (not second)
    return first, second, third


@numba_basic.numba_njit(boundscheck=False)
def max_2x2_forward(x, out):
    """x (N, D, H, W) -> out (N, D, H // 2, W // 2)."""
    x3 = x.reshape((x.shape[0] * x.shape[1], x.shape[2], x.shape[3]))
    o3 = out.reshape((out.shape[0] * out.shape[1], out.shape[2], out.shape[3]))
    for n in range(o3.shape[0]):
        for j in range(o3.shape[1]):
            for k in range(o3.shape[2]):
                r, c = 2 * j, 2 * k
                o3[n, j, k] = max_2x2(x3[n, r, c], x3[n, r, c + 1], x3[n, r + 1, c], x3[n, r + 1, c + 1])


@numba_basic.numba_njit(boundscheck=False)
def max_2x2_backward(x, gy, gx):
    """Routes gy (N, D, H // 2, W // 2) to the first maximum of each window of x; gx shaped as x."""
    x3 = x.reshape((x.shape[0] * x.shape[1], x.shape[2], x.shape[3]))
    g3 = gy.reshape((gy.shape[0] * gy.shape[1], gy.shape[2], gy.shape[3]))
    d3 = gx.reshape(x3.shape)
    ho, wo = g3.shape[1], g3.shape[2]
    if 2 * ho != x3.shape[1] or 2 * wo != x3.shape[2]:
        # ignore_border leaves a last row or column outside every window
        d3[...] = 0
    zero = gx.dtype.type(0)
    for n in range(g3.shape[0]):
        for j in range(ho):
            for k in range(wo):
                r, c = 2 * j, 2 * k
                a, b, e, f = x3[n, r, c], x3[n, r, c + 1], x3[n, r + 1, c], x3[n, r + 1, c + 1]
                first, second, third = first_of_2x2(a, b, e, max_2x2(a, b, e, f))
                g = g3[n, j, k]
                d3[n, r, c] = g if first else zero
                d3[n, r, c + 1] = g if second else zero
                d3[n, r + 1, c] = g if third else zero
                d3[n, r + 1, c + 1] = zero if first | second | third else g


@numba_basic.numba_njit(boundscheck=False)
def max_2x2_gather(x, g, out):
    """out[window] = g at the first maximum of x's window; x and g (N, D, H, W), out pooled."""
    x3 = x.reshape((x.shape[0] * x.shape[1], x.shape[2], x.shape[3]))
    g3 = g.reshape(x3.shape)
    o3 = out.reshape((out.shape[0] * out.shape[1], out.shape[2], out.shape[3]))
    for n in range(o3.shape[0]):
        for j in range(o3.shape[1]):
            for k in range(o3.shape[2]):
                r, c = 2 * j, 2 * k
                a, b, e, f = x3[n, r, c], x3[n, r, c + 1], x3[n, r + 1, c], x3[n, r + 1, c + 1]
                first, second, third = first_of_2x2(a, b, e, max_2x2(a, b, e, f))
                # selects, not branches: the loop vectorises
                last = g3[n, r + 1, c] if third else g3[n, r + 1, c + 1]
                o3[n, j, k] = g3[n, r, c] if first else (g3[n, r, c + 1] if second else last)
