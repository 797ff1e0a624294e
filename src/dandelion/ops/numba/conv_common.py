"""Shared pieces of the three convolution Ops' Numba functions: validation and C-callback parameters."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.numba.conv_cfuncs import N_PARAMS


@numba_basic.numba_njit
def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@numba_basic.numba_njit
def conv_params(x_shape, w_shape, ho, wo, sh, sw, ph, pw, dh, dw, groups, flip):
    """The int64 parameter vector of ``dandelion.ops.numba.conv_cfuncs``."""
    p = np.empty(N_PARAMS, dtype=np.int64)
    for i in range(4):
        p[i] = x_shape[i]
        p[4 + i] = w_shape[i]
    p[8], p[9] = ho, wo
    p[10], p[11], p[12], p[13], p[14], p[15] = sh, sw, ph, pw, dh, dw
    p[16] = groups
    p[17] = 1 if flip else 0
    return p
