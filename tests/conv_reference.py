"""Naive NumPy reference loops for 2-D convolution, written from the definitions only.

Kept apart from dandelion's kernels (no shared code): one output pixel at a time.
"""

from __future__ import annotations

import numpy as np


def conv2d_ref(x, w, stride=(1, 1), pad=(0, 0), dilation=(1, 1), groups=1, flip=True):
    """y[b, o, i, j] = sum_{c in group(o), a, e} x_pad[b, c, i*s + a*d, j*s + e*d] * w'[o, c, a, e]."""
    b, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if flip:
        w = w[:, :, ::-1, ::-1]
    xp = np.zeros((b, c, h + 2 * pad[0], wd + 2 * pad[1]), dtype="float64")
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd] = x
    ho = (h + 2 * pad[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    og = o // groups
    y = np.zeros((b, o, ho, wo))
    for n in range(b):
        for oc in range(o):
            g = oc // og
            for i in range(ho):
                for j in range(wo):
                    total = 0.0
                    for ci in range(cg):
                        for a in range(kh):
                            for e in range(kw):
                                total += xp[n, g * cg + ci, i * stride[0] + a * dilation[0], j * stride[1] + e * dilation[1]] * w[oc, ci, a, e]
                    y[n, oc, i, j] = total
    return y


def conv2d_transpose_ref(gy, w, in_hw, stride=(1, 1), pad=(0, 0), dilation=(1, 1), groups=1, flip=True):
    """Scatter each gy[b, o, i, j] * w'[o, c] onto the pixels its forward window read (then crop the pad)."""
    b, o, ho, wo = gy.shape
    _, cg, kh, kw = w.shape
    if flip:
        w = w[:, :, ::-1, ::-1]
    h, wd = in_hw
    og = o // groups
    xp = np.zeros((b, cg * groups, h + 2 * pad[0] + kh * dilation[0] + ho * stride[0], wd + 2 * pad[1] + kw * dilation[1] + wo * stride[1]))
    for n in range(b):
        for oc in range(o):
            g = oc // og
            for i in range(ho):
                for j in range(wo):
                    for ci in range(cg):
                        for a in range(kh):
                            for e in range(kw):
                                xp[n, g * cg + ci, i * stride[0] + a * dilation[0], j * stride[1] + e * dilation[1]] += gy[n, oc, i, j] * w[oc, ci, a, e]
    return xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd]


def conv2d_filter_grad_ref(x, gy, kernel, stride=(1, 1), pad=(0, 0), dilation=(1, 1), groups=1, flip=True):
    """d/dw of sum(gy * conv2d_ref(x, w)): correlate the input windows with gy."""
    b, c, h, wd = x.shape
    o, ho, wo = gy.shape[1:]
    kh, kw = kernel
    cg, og = c // groups, o // groups
    xp = np.zeros((b, c, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd] = x
    gw = np.zeros((o, cg, kh, kw))
    for oc in range(o):
        g = oc // og
        for ci in range(cg):
            for a in range(kh):
                for e in range(kw):
                    total = 0.0
                    for n in range(b):
                        for i in range(ho):
                            for j in range(wo):
                                total += gy[n, oc, i, j] * xp[n, g * cg + ci, i * stride[0] + a * dilation[0], j * stride[1] + e * dilation[1]]
                    gw[oc, ci, a, e] = total
    return gw[:, :, ::-1, ::-1] if flip else gw
