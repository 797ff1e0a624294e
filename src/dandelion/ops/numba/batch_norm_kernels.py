"""Numba kernels of the fused BatchNorm Ops on the canonical (P, K, S) view.

The formulas are ``batch_norm_numpy``'s; sums accumulate in float64 per channel and the
elementwise passes run in x's dtype (float32 stays float32). Every loop nest runs
(p, k, s), reading memory in order: the inner loop is a contiguous row of S when S > 1,
and for S == 1 ((B, D) input) the k loop updates independent channels. Both vectorise
under PyTensor's fastmath flags (``numba_njit``), which allow the reassociation a
vectorised sum needs.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic


@numba_basic.numba_njit
def channel_sums(x, centre, square, out):
    """``out[k] += sum over p, s of d`` (``d * d`` when ``square``), ``d = x[p, k, s] - centre[k]``, in float64."""
    P, K, S = x.shape
    for p in range(P):
        for k in range(K):
            c = centre[k]
            total = 0.0
            for s in range(S):
                d = np.float64(x[p, k, s]) - c
                total += d * d if square else d
            out[k] += total


@numba_basic.numba_njit
def channel_products(x, gy, centre, s1, sc):
    """``s1[k] += sum gy``, ``sc[k] += sum gy * (x - centre[k])`` over p and s, in float64."""
    P, K, S = x.shape
    for p in range(P):
        for k in range(K):
            c = centre[k]
            t1 = 0.0
            tc = 0.0
            for s in range(S):
                g = np.float64(gy[p, k, s])
                t1 += g
                tc += g * (np.float64(x[p, k, s]) - c)
            s1[k] += t1
            sc[k] += tc


@numba_basic.numba_njit
def forward(x, gamma, beta, y, mean, inv_std, eps, subtract_mean, scale_by_inv_std, has_gamma, has_beta):
    """y, mean, inv_std of the canonical view x (see ``BatchNormTrainOp``)."""
    P, K, S = x.shape
    n = np.float64(P * S)
    zero = np.zeros(K)
    m = np.zeros(K)
    channel_sums(x, zero, False, m)
    m /= n
    var = np.zeros(K)
    channel_sums(x, m, True, var)
    scale = np.empty(K, dtype=x.dtype)
    shift = np.empty(K, dtype=x.dtype)
    for k in range(K):
        r = 1.0 / np.sqrt(var[k] / n + eps)
        mean[k] = m[k]
        inv_std[k] = r
        a = r if scale_by_inv_std else 1.0
        if has_gamma:
            a *= np.float64(gamma[k])
        b = np.float64(beta[k]) if has_beta else 0.0
        if subtract_mean:
            b -= m[k] * a
        scale[k] = a
        shift[k] = b
    for p in range(P):
        for k in range(K):
            a, b = scale[k], shift[k]
            for s in range(S):
                y[p, k, s] = x[p, k, s] * a + b


@numba_basic.numba_njit
def backward(x, gamma, mean, inv_std, gy, gmean, ginv_std, dx, dgamma, dbeta, subtract_mean, scale_by_inv_std, has_gamma):
    """dx, dgamma, dbeta (see ``BatchNormTrainGradOp``)."""
    P, K, S = x.shape
    n = np.float64(P * S)
    m = np.empty(K)
    for k in range(K):
        m[k] = mean[k]
    s1 = np.zeros(K)
    sc = np.zeros(K)
    channel_products(x, gy, m, s1, sc)
    ca = np.empty(K, dtype=x.dtype)
    cb = np.empty(K, dtype=x.dtype)
    cc = np.empty(K, dtype=x.dtype)
    for k in range(K):
        r = np.float64(inv_std[k])
        sk = r if scale_by_inv_std else 1.0
        gk = np.float64(gamma[k]) if has_gamma else 1.0
        gy_u = sc[k] if subtract_mean else sc[k] + m[k] * s1[k]
        total = np.float64(ginv_std[k])
        if scale_by_inv_std:
            total += gk * gy_u
        c = np.float64(gmean[k]) / n
        if subtract_mean:
            c -= sk * gk * s1[k] / n
        ca[k] = gk * sk
        cb[k] = -total * r * r * r / n
        cc[k] = c
        dgamma[k] = sk * gy_u
        dbeta[k] = s1[k]
    for p in range(P):
        for k in range(K):
            a, b, c, mk = ca[k], cb[k], cc[k], mean[k]
            for s in range(S):
                dx[p, k, s] = a * gy[p, k, s] + b * (x[p, k, s] - mk) + c
