"""Numba implementations of the fused BatchNorm Ops (``dandelion.ops.batch_norm``).

Each Op's function takes C-contiguous buffers of its inputs, allocates the outputs and
calls a C callback of ``batch_norm_cfuncs`` on the canonical (P, K, S) view. The
presence flags and the kept block are decided here, at funcify time; an absent gamma or
beta is passed as x's buffer (the kernels never read it).
"""

from __future__ import annotations

import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.axis_sum import kept_block
from dandelion.ops.batch_norm import BatchNormTrainGradOp, BatchNormTrainOp
from dandelion.ops.numba.batch_norm_cfuncs import BATCH_NORM_SOURCES, N_PARAMS, batch_norm_cfuncs
from dandelion.ops.numba.buffers import as_c_buffer
from dandelion.ops.numba.source_cache import register_numba_op


def make_params(op, ndim):
    """njit ``params(shape) -> int64 vector`` of ``batch_norm_cfuncs`` for x of ``ndim``."""
    start, stop = kept_block(ndim, op.axes)
    flags = (op.subtract_mean, op.scale_by_inv_std, op.has_gamma, op.has_beta)

    @numba_basic.numba_njit
    def params(shape):
        p = np.empty(N_PARAMS, dtype=np.int64)
        p[0] = p[1] = p[2] = 1
        for axis in range(ndim):
            at = 0 if axis < start else (1 if axis < stop else 2)
            p[at] *= shape[axis]
        for i in range(4):
            p[3 + i] = 1 if flags[i] else 0
        return p

    return params, make_kept_shape(start, stop)


def make_kept_shape(start, stop):
    """njit ``kept_shape(shape)``: ``shape[start:stop]`` as a tuple (Numba slices no tuple by constants)."""
    length = stop - start

    @numba_basic.numba_njit
    def kept_shape(shape):
        return to_fixed_tuple(np.array(shape)[start:stop], length)

    return kept_shape


@register_numba_op(BatchNormTrainOp, BATCH_NORM_SOURCES)
def numba_funcify_BatchNormTrainOp(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    p_buffer = as_c_buffer(dtype, dtype)
    forward, _ = batch_norm_cfuncs(dtype.name)
    params, kept_shape = make_params(op, node.inputs[0].ndim)
    eps, has_gamma, has_beta = op.eps, op.has_gamma, op.has_beta

    @numba_basic.numba_njit
    def run(x, gamma, beta):
        xc, gc, bc = x_buffer(x), p_buffer(gamma), p_buffer(beta)
        kept = kept_shape(xc.shape)
        if (has_gamma and gc.shape != kept) or (has_beta and bc.shape != kept):
            raise ValueError("batch_norm_train: gamma or beta does not have the shape of x's kept axes")
        y = np.empty(xc.shape, dtype=dtype)
        mean = np.empty(kept, dtype=dtype)
        inv_std = np.empty(kept, dtype=dtype)
        forward(xc.ctypes, gc.ctypes, bc.ctypes, y.ctypes, mean.ctypes, inv_std.ctypes, params(xc.shape).ctypes, eps)
        return y, mean, inv_std

    # absent parameters are replaced by x, which the kernel never reads in their place
    if has_gamma and has_beta:

        @numba_basic.numba_njit
        def batch_norm_train(x, gamma, beta):
            return run(x, gamma, beta)

    elif has_gamma:

        @numba_basic.numba_njit
        def batch_norm_train(x, gamma):
            return run(x, gamma, x)

    elif has_beta:

        @numba_basic.numba_njit
        def batch_norm_train(x, beta):
            return run(x, x, beta)

    else:

        @numba_basic.numba_njit
        def batch_norm_train(x):
            return run(x, x, x)

    return batch_norm_train


@register_numba_op(BatchNormTrainGradOp, BATCH_NORM_SOURCES)
def numba_funcify_BatchNormTrainGradOp(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)
    x_buffer = as_c_buffer(node.inputs[0].dtype, dtype)
    v_buffer = as_c_buffer(dtype, dtype)
    _, backward = batch_norm_cfuncs(dtype.name)
    params, kept_shape = make_params(op, node.inputs[0].ndim)

    @numba_basic.numba_njit
    def run(x, gamma, mean, inv_std, gy, gmean, ginv_std):
        xc, gyc = x_buffer(x), v_buffer(gy)
        gc, mc, rc, gmc, gic = v_buffer(gamma), v_buffer(mean), v_buffer(inv_std), v_buffer(gmean), v_buffer(ginv_std)
        if gyc.shape != xc.shape:
            raise ValueError("batch_norm_train_grad: gy does not have the shape of x")
        kept = kept_shape(xc.shape)
        if mc.shape != kept or rc.shape != kept or gmc.shape != kept or gic.shape != kept:
            raise ValueError("batch_norm_train_grad: mean, inv_std, gmean or ginv_std does not have the shape of x's kept axes")
        dx = np.empty(xc.shape, dtype=dtype)
        dgamma = np.empty(kept, dtype=dtype)
        dbeta = np.empty(kept, dtype=dtype)
        backward(
            xc.ctypes, gc.ctypes, mc.ctypes, rc.ctypes, gyc.ctypes, gmc.ctypes, gic.ctypes,
            dx.ctypes, dgamma.ctypes, dbeta.ctypes, params(xc.shape).ctypes,
        )  # fmt: skip
        return dx, dgamma, dbeta

    if op.has_gamma:

        @numba_basic.numba_njit
        def batch_norm_train_grad(x, gamma, mean, inv_std, gy, gmean, ginv_std):
            if gamma.shape != kept_shape(x.shape):
                raise ValueError("batch_norm_train_grad: gamma does not have the shape of x's kept axes")
            return run(x, gamma, mean, inv_std, gy, gmean, ginv_std)

        return batch_norm_train_grad

    @numba_basic.numba_njit
    def batch_norm_train_grad_no_gamma(x, mean, inv_std, gy, gmean, ginv_std):
        # an absent gamma is replaced by the mean, which the kernel never reads in its place
        return run(x, mean, mean, inv_std, gy, gmean, ginv_std)

    return batch_norm_train_grad_no_gamma
