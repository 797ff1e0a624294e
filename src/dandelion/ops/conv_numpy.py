"""Vectorised NumPy kernels of the 2-D convolution Ops (the ``perform`` path, used by the C backend).

The image is padded once; a strided view then exposes every receptive field
(im2col without a copy) and one ``tensordot`` per group does the arithmetic in BLAS.
Kernels take the effective (already flipped, if flipping) filters.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def pad_image(x, pad):
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    out = np.zeros(x.shape[:2] + (x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), dtype=x.dtype)
    out[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    return out


def receptive_fields(xp, kernel, stride, dilation, out_hw):
    """Read-only view (B, C, H_out, W_out, kh, kw) of a padded image ``xp``."""
    b, c = xp.shape[:2]
    sb, sc, sh, sw = xp.strides
    shape = (b, c, out_hw[0], out_hw[1], kernel[0], kernel[1])
    strides = (sb, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def conv2d_forward(x, w, stride, pad, dilation, groups, out_hw):
    """x (B, C, H, W), w (O, C//g, kh, kw) -> (B, O, H_out, W_out) cross-correlation."""
    b = x.shape[0]
    o, cg = w.shape[:2]
    og = o // groups
    out = np.empty((b, o) + tuple(out_hw), dtype=np.result_type(x, w))
    if 0 in out.shape or 0 in w.shape:
        out.fill(0)
        return out
    fields = receptive_fields(pad_image(x, pad), w.shape[2:], stride, dilation, out_hw)
    for g in range(groups):
        part = np.tensordot(fields[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og], axes=([1, 4, 5], [1, 2, 3]))
        out[:, g * og : (g + 1) * og] = part.transpose(0, 3, 1, 2)
    return out


def conv2d_input_grad(w, gy, stride, pad, dilation, groups, in_hw):
    """Adjoint of ``conv2d_forward`` in x: w (O, C//g, kh, kw), gy (B, O, Ho, Wo) -> (B, C, H, W)."""
    b, o, ho, wo = gy.shape
    cg, kh, kw = w.shape[1:]
    og = o // groups
    ph, pw = pad
    height, width = in_hw
    # The padded buffer must hold every window read by the forward pass, plus the
    # border the forward padding added.
    hp = max(height + 2 * ph, (ho - 1) * stride[0] + (kh - 1) * dilation[0] + 1)
    wp = max(width + 2 * pw, (wo - 1) * stride[1] + (kw - 1) * dilation[1] + 1)
    buf = np.zeros((b, cg * groups, hp, wp), dtype=np.result_type(w, gy))
    if ho > 0 and wo > 0 and og > 0:
        for g in range(groups):
            # cols (B, Ho, Wo, Cg, kh, kw): each output's contribution to its receptive field
            cols = np.tensordot(gy[:, g * og : (g + 1) * og], w[g * og : (g + 1) * og], axes=([1], [0]))
            cols = cols.transpose(0, 3, 4, 5, 1, 2)
            target = buf[:, g * cg : (g + 1) * cg]
            for i in range(kh):
                r0 = i * dilation[0]
                for j in range(kw):
                    c0 = j * dilation[1]
                    target[:, :, r0 : r0 + (ho - 1) * stride[0] + 1 : stride[0], c0 : c0 + (wo - 1) * stride[1] + 1 : stride[1]] += cols[:, :, i, j]
    return np.ascontiguousarray(buf[:, :, ph : ph + height, pw : pw + width])


def conv2d_filter_grad(x, gy, stride, pad, dilation, groups, kernel):
    """Adjoint of ``conv2d_forward`` in w: x (B, C, H, W), gy (B, O, Ho, Wo) -> (O, C//g, kh, kw)."""
    b, c = x.shape[:2]
    o, ho, wo = gy.shape[1:]
    cg, og = c // groups, o // groups
    out = np.zeros((o, cg) + tuple(kernel), dtype=np.result_type(x, gy))
    if 0 in gy.shape or 0 in x.shape:
        return out
    fields = receptive_fields(pad_image(x, pad), kernel, stride, dilation, (ho, wo))
    for g in range(groups):
        out[g * og : (g + 1) * og] = np.tensordot(
            gy[:, g * og : (g + 1) * og], fields[:, g * cg : (g + 1) * cg], axes=([0, 2, 3], [0, 2, 3])
        )
    return out
