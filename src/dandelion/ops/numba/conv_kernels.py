"""Numba im2col / col2im and the three convolution kernels built on them.

Images go through BLAS in chunks of about 4096 output pixels: the receptive fields of a
chunk are copied into a (Cg*kh*kw, chunk*H_out*W_out) matrix, so that each group is one
product of C-contiguous matrices (``dandelion.ops.numba.blas``) while the fields stay in cache (the whole batch at
once made the input gradient's col2im take 26 ms for W3's second convolution). Kernels
write into the caller's output buffer. Every layout change is an
explicit loop: Numba's generic ``transpose``/``ascontiguousarray`` on 4-D arrays emits so
much code that linking it into each compiled graph took seconds.
Inputs are validated by the callers (``conv_cfuncs`` runs these behind C callbacks).
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.numba.blas import dot_into


@numba_basic.numba_njit
def chunk_images(b, p):
    """Images per BLAS product: about 4096 output pixels, so the fields stay in cache."""
    if p >= 4096:
        return 1
    return min(b, (4096 + p - 1) // p)


@numba_basic.numba_njit
def valid_columns(w, wo, sw, off):
    """The output columns ow whose input column ow * sw + off lies in [0, w): (lo, hi)."""
    lo = 0 if off >= 0 else (-off + sw - 1) // sw
    hi = 0 if w - 1 - off < 0 else (w - 1 - off) // sw + 1
    lo, hi = min(lo, wo), min(hi, wo)
    return lo, max(lo, hi)


@numba_basic.numba_njit(boundscheck=False)
def im2col(x, n0, nb, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Images [n0, n0 + nb), channels [c0, c0 + cg) of x -> (cg*kh*kw, nb*ho*wo); zero in the padding.

    The valid columns of a row are found once per filter tap, so the copy has no branch;
    unsigned flat indices spare it Numba's negative-index wraparound.
    """
    h, w = x.shape[2], x.shape[3]
    p = ho * wo
    cols = np.zeros((cg * kh * kw, nb * p), dtype=x.dtype)
    flat_x = x.reshape(x.size)
    flat_cols = cols.reshape(cols.size)
    n_cols = nb * p
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                off = j * dw - pw
                lo, hi = valid_columns(w, wo, sw, off)
                for q in range(nb):
                    for oh in range(ho):
                        r = oh * sh - ph + i * dh
                        if r < 0 or r >= h:
                            continue
                        src = np.uint64(((n0 + q) * x.shape[1] + c0 + c) * h * w + r * w + lo * sw + off)
                        dst = np.uint64(row * n_cols + q * p + oh * wo + lo)
                        for k in range(np.uint64(hi - lo)):
                            flat_cols[dst + k] = flat_x[src + k * np.uint64(sw)]
    return cols


@numba_basic.numba_njit(boundscheck=False)
def col2im(cols, out, n0, nb, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo):
    """Adjoint of ``im2col``: adds every field entry of ``cols`` back onto its pixel of ``out``."""
    h, w = out.shape[2], out.shape[3]
    p = ho * wo
    flat_out = out.reshape(out.size)
    flat_cols = cols.reshape(cols.size)
    n_cols = nb * p
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                off = j * dw - pw
                lo, hi = valid_columns(w, wo, sw, off)
                for q in range(nb):
                    for oh in range(ho):
                        r = oh * sh - ph + i * dh
                        if r < 0 or r >= h:
                            continue
                        dst = np.uint64(((n0 + q) * out.shape[1] + c0 + c) * h * w + r * w + lo * sw + off)
                        src = np.uint64(row * n_cols + q * p + oh * wo + lo)
                        for k in range(np.uint64(hi - lo)):
                            flat_out[dst + k * np.uint64(sw)] += flat_cols[src + k]


@numba_basic.numba_njit(boundscheck=False)
def channel_major(y, n0, nb, o0, og):
    """Images [n0, n0 + nb), channels [o0, o0 + og) of y (B, O, ho, wo) -> (og, nb*ho*wo)."""
    p = y.shape[2] * y.shape[3]
    out = np.empty((og, nb * p), dtype=y.dtype)
    for ol in range(og):
        for q in range(nb):
            flat = y[n0 + q, o0 + ol].ravel()
            for k in range(p):
                out[ol, q * p + k] = flat[k]
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


@numba_basic.numba_njit
def conv2d_forward(x, w, out, sh, sw, ph, pw, dh, dw, groups, flip):
    b = x.shape[0]
    o, cg, kh, kw = w.shape
    ho, wo = out.shape[2], out.shape[3]
    og, p = o // groups, ho * wo
    wmat = filter_matrix(w, groups, flip, False)
    chunk = chunk_images(b, p)
    for n0 in range(0, b, chunk):
        nb = min(chunk, b - n0)
        for g in range(groups):
            cols = im2col(x, n0, nb, g * cg, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
            res = np.empty((og, cols.shape[1]), dtype=out.dtype)
            dot_into(wmat[g], cols, res, False)
            for q in range(nb):
                for ol in range(og):
                    flat = out[n0 + q, g * og + ol].reshape(p)
                    for k in range(p):
                        flat[k] = res[ol, q * p + k]


@numba_basic.numba_njit
def conv2d_grad_input(w, gy, out, sh, sw, ph, pw, dh, dw, groups, flip):
    b, o, ho, wo = gy.shape
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    og = o // groups
    wmat_t = filter_matrix(w, groups, flip, True)
    out[...] = 0
    chunk = chunk_images(b, ho * wo)
    for n0 in range(0, b, chunk):
        nb = min(chunk, b - n0)
        for g in range(groups):
            fields = channel_major(gy, n0, nb, g * og, og)
            cols = np.empty((wmat_t.shape[1], fields.shape[1]), dtype=out.dtype)
            dot_into(wmat_t[g], fields, cols, False)
            col2im(cols, out, n0, nb, g * cg, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)


@numba_basic.numba_njit
def conv2d_grad_filters(x, gy, out, sh, sw, ph, pw, dh, dw, groups, flip):
    b, c = x.shape[0], x.shape[1]
    kh, kw = out.shape[2], out.shape[3]
    o, ho, wo = gy.shape[1], gy.shape[2], gy.shape[3]
    cg, og = c // groups, o // groups
    acc = np.zeros((groups, cg * kh * kw, og), dtype=x.dtype)
    chunk = chunk_images(b, ho * wo)
    for n0 in range(0, b, chunk):
        nb = min(chunk, b - n0)
        for g in range(groups):
            cols = im2col(x, n0, nb, g * cg, cg, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo)
            dot_into(cols, channel_major(gy, n0, nb, g * og, og).T, acc[g], True)  # (cg*kh*kw, og)
    for g in range(groups):
        for ol in range(og):
            for ci in range(cg):
                for i in range(kh):
                    for j in range(kw):
                        value = acc[g, (ci * kh + i) * kw + j, ol]
                        if flip:
                            out[g * og + ol, ci, kh - 1 - i, kw - 1 - j] = value
                        else:
                            out[g * og + ol, ci, i, j] = value
