"""Vectorised NumPy kernels of the 2-D convolution Ops (the ``perform`` path, used by the C backend).

The image is padded once; a strided view exposes every receptive field, which is copied
once into a (groups, Cg*kh*kw, B*H_out*W_out) matrix (im2col) so that one batched
``matmul`` does the arithmetic in BLAS.
Kernels take the effective (already flipped, if flipping) filters.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dandelion.ops.geometry import conv_transposed_output_length


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


def im2col(fields, groups):
    """(B, C, Ho, Wo, kh, kw) fields -> (groups, Cg*kh*kw, B*Ho*Wo) C-contiguous matrix.

    One explicit copy in the layout BLAS wants; ``tensordot`` on the strided view made
    much slower copies (the filter gradient took ten times the forward pass).
    """
    b, c, ho, wo, kh, kw = fields.shape
    cols = fields.transpose(1, 4, 5, 0, 2, 3).reshape(groups, (c // groups) * kh * kw, b * ho * wo)
    return np.ascontiguousarray(cols)


def channel_major(gy, groups):
    """(B, O, Ho, Wo) -> (groups, O//g, B*Ho*Wo)."""
    b, o, ho, wo = gy.shape
    return np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(groups, o // groups, b * ho * wo)


def conv2d_forward(x, w, stride, pad, dilation, groups, out_hw):
    """x (B, C, H, W), w (O, C//g, kh, kw) -> (B, O, H_out, W_out) cross-correlation."""
    b = x.shape[0]
    o = w.shape[0]
    dtype = np.result_type(x, w)
    if 0 in (b, o) or 0 in x.shape or 0 in w.shape:
        return np.zeros((b, o) + tuple(out_hw), dtype=dtype)
    cols = im2col(receptive_fields(pad_image(x, pad), w.shape[2:], stride, dilation, out_hw), groups)
    wmat = w.reshape(groups, o // groups, -1)
    res = np.matmul(wmat, cols)  # (groups, O//g, B*Ho*Wo)
    out = res.reshape(o, b, *out_hw).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out, dtype=dtype)


def conv2d_input_grad(w, gy, stride, pad, dilation, groups, in_hw):
    """Adjoint of ``conv2d_forward`` in x: w (O, C//g, kh, kw), gy (B, O, Ho, Wo) -> (B, C, H, W)."""
    b, o, ho, wo = gy.shape
    cg, kh, kw = w.shape[1:]
    ph, pw = pad
    height, width = in_hw
    # The padded buffer must hold every window read by the forward pass, plus the
    # border the forward padding added.
    hp = max(height, conv_transposed_output_length(ho, kh, stride[0], ph, dilation[0])) + 2 * ph
    wp = max(width, conv_transposed_output_length(wo, kw, stride[1], pw, dilation[1])) + 2 * pw
    buf = np.zeros((b, cg * groups, hp, wp), dtype=np.result_type(w, gy))
    if ho > 0 and wo > 0 and o > 0 and b > 0:
        wmat_t = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
        # cols[g, c, i, j, b, y, x]: each output's contribution to its receptive field
        cols = np.matmul(wmat_t, channel_major(gy, groups)).reshape(groups, cg, kh, kw, b, ho, wo)
        for g in range(groups):
            target = buf[:, g * cg : (g + 1) * cg]
            for i in range(kh):
                r0 = i * dilation[0]
                rows = slice(r0, r0 + (ho - 1) * stride[0] + 1, stride[0])
                for j in range(kw):
                    c0 = j * dilation[1]
                    target[:, :, rows, c0 : c0 + (wo - 1) * stride[1] + 1 : stride[1]] += cols[g, :, i, j].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(buf[:, :, ph : ph + height, pw : pw + width])


def conv2d_filter_grad(x, gy, stride, pad, dilation, groups, kernel):
    """Adjoint of ``conv2d_forward`` in w: x (B, C, H, W), gy (B, O, Ho, Wo) -> (O, C//g, kh, kw)."""
    c = x.shape[1]
    o, ho, wo = gy.shape[1:]
    dtype = np.result_type(x, gy)
    if 0 in gy.shape or 0 in x.shape:
        return np.zeros((o, c // groups) + tuple(kernel), dtype=dtype)
    cols = im2col(receptive_fields(pad_image(x, pad), kernel, stride, dilation, (ho, wo)), groups)
    res = np.matmul(channel_major(gy, groups), cols.transpose(0, 2, 1))  # (groups, O//g, Cg*kh*kw)
    return res.reshape(o, c // groups, *kernel).astype(dtype, copy=False)
