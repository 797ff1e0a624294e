"""Numba implementation of ``DenseDot``: one GEMM that reads transposed views in place (``blas.dot_into``)."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops.dense_dot import DenseDot
from dandelion.ops.numba.blas import dot_into
from dandelion.ops.numba.source_cache import register_numba_op

DENSE_DOT_SOURCES = ("dandelion.ops.numba.dense_dot", "dandelion.ops.numba.blas")


@register_numba_op(DenseDot, DENSE_DOT_SOURCES)
def numba_funcify_DenseDot(op, node, **kwargs):
    dtype = np.dtype(node.outputs[0].dtype)

    @numba_basic.numba_njit
    def dense_dot(x, y):
        if x.shape[1] != y.shape[0]:
            raise ValueError("DenseDot: x's columns and y's rows differ")
        out = np.empty((x.shape[0], y.shape[1]), dtype=dtype)
        dot_into(x, y, out, False)
        return out

    return dense_dot
