"""Numba im2col / col2im and the three convolution kernels built on them.

The receptive fields are copied into a (groups, Cg*kh*kw, B*H_out*W_out) array so that
each group is one BLAS ``np.dot`` of C-contiguous matrices. Every layout change is an
explicit loop: Numba's generic ``transpose``/``ascontiguousarray`` on 4-D arrays emits so
much code that linking it into each compiled graph took seconds.
Inputs are validated by the callers (``conv_cfuncs`` runs these behind C callbacks).
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic


@numba_basic.numba_njit
def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@numba_basic.numba_njit(boundscheck=False)
def im2col(x, groups, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """x (B, C, H, W) -> (groups, Cg*kh*kw, B*ho*wo), zero where a field reaches the padding."""
    b, c, h, w = x.shape
    cg = c // groups
    cols = np.zeros((groups, cg * kh * kw, b * ho * wo), dtype=x.dtype)
    for ci in range(c):
        g, cl = ci // cg, ci % cg
        for i in range(kh):
            for j in range(kw):
                row = (cl * kh + i) * kw + j
                for bi in range(b):
                    for oh in range(ho):
                        r = oh * sh - ph + i * dh
                        if r < 0 or r >= h:
                            continue
                        base = (bi * ho + oh) * wo
                        for ow in range(wo):
                            col = ow * sw - pw + j * dw
                            if col >= 0 and col < w:
                                cols[g, row, base + ow] = x[bi, ci, r, col]
    return cols


@numba_basic.numba_njit(boundscheck=False)
def col2im(cols, b, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Adjoint of ``im2col``: sums every field entry back onto its pixel; (B, C, h, w)."""
    groups, kk = cols.shape[0], cols.shape[1]
    cg = kk // (kh * kw)
    out = np.zeros((b, groups * cg, h, w), dtype=cols.dtype)
    for ci in range(groups * cg):
        g, cl = ci // cg, ci % cg
        for i in range(kh):
            for j in range(kw):
                row = (cl * kh + i) * kw + j
                for bi in range(b):
                    for oh in range(ho):
                        r = oh * sh - ph + i * dh
                        if r < 0 or r >= h:
                            continue
                        base = (bi * ho + oh) * wo
                        for ow in range(wo):
                            col = ow * sw - pw + j * dw
                            if col >= 0 and col < w:
                                out[bi, ci, r, col] += cols[g, row, base + ow]
    return out


@numba_basic.numba_njit(boundscheck=False)
def filter_matrix(w, groups, flip, transposed):
    """w (O, Cg, kh, kw) -> (groups, Og, Cg*kh*kw), or (groups, Cg*kh*kw, Og) if ``transposed``."""
    o, cg, kh, kw = w.shape
    og = o // groups
    kk = cg * kh * kw
    if transposed:
        out = np.empty((groups, kk, og), dtype=w.dtype)
    else:
        out = np.empty((groups, og, kk), dtype=w.dtype)
    for oi in range(o):
        g, ol = oi // og, oi % og
        for c in range(cg):
            for i in range(kh):
                for j in range(kw):
                    value = w[oi, c, kh - 1 - i, kw - 1 - j] if flip else w[oi, c, i, j]
                    row = (c * kh + i) * kw + j
                    if transposed:
                        out[g, row, ol] = value
                    else:
                        out[g, ol, row] = value
    return out


@numba_basic.numba_njit(boundscheck=False)
def grad_matrix(gy, groups, transposed):
    """gy (B, O, ho, wo) -> (groups, Og, B*ho*wo), or (groups, B*ho*wo, Og) if ``transposed``."""
    b, o, ho, wo = gy.shape
    og = o // groups
    n = b * ho * wo
    if transposed:
        out = np.empty((groups, n, og), dtype=gy.dtype)
    else:
        out = np.empty((groups, og, n), dtype=gy.dtype)
    for bi in range(b):
        for oi in range(o):
            g, ol = oi // og, oi % og
            for oh in range(ho):
                for ow in range(wo):
                    col = (bi * ho + oh) * wo + ow
                    if transposed:
                        out[g, col, ol] = gy[bi, oi, oh, ow]
                    else:
                        out[g, ol, col] = gy[bi, oi, oh, ow]
    return out


@numba_basic.numba_njit
def conv2d_forward(x, w, sh, sw, ph, pw, dh, dw, groups, flip):
    b, h, wd = x.shape[0], x.shape[2], x.shape[3]
    o, cg, kh, kw = w.shape
    ho = out_size(h, kh, sh, ph, dh)
    wo = out_size(wd, kw, sw, pw, dw)
    og = o // groups
    wmat = filter_matrix(w, groups, flip, False)
    cols = im2col(x, groups, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    out = np.empty((b, o, ho, wo), dtype=x.dtype)
    for g in range(groups):
        res = np.dot(wmat[g], cols[g])
        for ol in range(og):
            for bi in range(b):
                for oh in range(ho):
                    for ow in range(wo):
                        out[bi, g * og + ol, oh, ow] = res[ol, (bi * ho + oh) * wo + ow]
    return out


@numba_basic.numba_njit
def conv2d_grad_input(w, gy, h, wd, sh, sw, ph, pw, dh, dw, groups, flip):
    b, o, ho, wo = gy.shape
    kh, kw = w.shape[2], w.shape[3]
    wmat_t = filter_matrix(w, groups, flip, True)
    gmat = grad_matrix(gy, groups, False)
    cols = np.empty((groups, wmat_t.shape[1], b * ho * wo), dtype=gy.dtype)
    for g in range(groups):
        cols[g] = np.dot(wmat_t[g], gmat[g])
    return col2im(cols, b, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


@numba_basic.numba_njit
def conv2d_grad_filters(x, gy, kh, kw, sh, sw, ph, pw, dh, dw, groups, flip):
    c = x.shape[1]
    o, ho, wo = gy.shape[1], gy.shape[2], gy.shape[3]
    cg = c // groups
    og = o // groups
    cols = im2col(x, groups, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
    gmat_t = grad_matrix(gy, groups, True)
    out = np.empty((o, cg, kh, kw), dtype=x.dtype)
    for g in range(groups):
        res_t = np.dot(cols[g], gmat_t[g])  # (Cg*kh*kw, Og)
        for ol in range(og):
            for ci in range(cg):
                for i in range(kh):
                    for j in range(kw):
                        value = res_t[(ci * kh + i) * kw + j, ol]
                        if flip:
                            out[g * og + ol, ci, kh - 1 - i, kw - 1 - j] = value
                        else:
                            out[g * og + ol, ci, i, j] = value
    return out
