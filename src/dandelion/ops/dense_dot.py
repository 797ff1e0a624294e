"""Matrix products that read transposed operands in place, for the Numba backend.

Autodiff writes a dense layer's input gradient as ``g @ W.T``. On the Numba backend the
transpose is a strided view (``as_strided``: Numba's ``A`` layout), and Numba's own
``np.dot`` copies such an operand to a contiguous array before calling BLAS: W4's
``(256, 1024) @ (1024, 1024).T`` took 11.3 ms that way against 2.4 ms when BLAS reads
the view as a transposed matrix (``dandelion.ops.numba.blas.dot_into``, which checks the
strides at run time and copies only what neither layout fits).

``DenseDot`` is the product of two float matrices with that Numba implementation
(``dandelion.ops.numba.dense_dot``) and NumPy's ``dot`` as ``perform``. The rewrite
``dense_dot_on_numba`` replaces PyTensor's 2-D ``Dot`` by it in the modes
``dandelion.function`` builds for the Numba backend (``with_dense_dot``); C and JAX graphs
and graphs compiled with PyTensor's own modes keep PyTensor's ``Dot`` (a JAX implementation,
``jnp.dot``, serves graphs that hold the Op itself).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.tensor.math import Dot

from dandelion._compat import ShapeInferringOp

TAG = "dandelion_dense_dot"


class DenseDot(ShapeInferringOp):
    """``x @ y`` for float matrices x (M, K) and y (K, N) of one dtype."""

    __props__ = ()

    def make_node(self, x, y):
        x, y = pt.as_tensor_variable(x), pt.as_tensor_variable(y)
        if x.type.ndim != 2 or y.type.ndim != 2:
            raise TypeError(f"DenseDot: x and y must be matrices, got {x.type.ndim}-d and {y.type.ndim}-d")
        if x.type.dtype != y.type.dtype or x.type.dtype not in ("float32", "float64"):
            raise TypeError(f"DenseDot: x and y must share one float dtype, got {x.type.dtype} and {y.type.dtype}")
        (m, k), (k2, n) = x.type.shape, y.type.shape
        if k is not None and k2 is not None and k != k2:
            raise ValueError(f"DenseDot: x has {k} columns and y {k2} rows")
        return Apply(self, [x, y], [pt.tensor(dtype=x.type.dtype, shape=(m, n))])

    def perform(self, node, inputs, output_storage):
        x, y = inputs
        output_storage[0][0] = np.dot(x, y)

    def output_shapes(self, node, shapes):
        (m, _), (_, n) = shapes
        return [(m, n)]

    def pullback(self, inputs, outputs, cotangents):
        x, y = inputs
        (g,) = cotangents
        return [pt.dot(g, y.T), pt.dot(x.T, g)]


dense_dot = DenseDot()


@node_rewriter([Dot])
def dense_dot_on_numba(fgraph, node):
    """Numba backend: PyTensor's ``Dot`` of two float matrices of one dtype -> ``DenseDot``."""
    x, y = node.inputs
    if x.type.ndim != 2 or y.type.ndim != 2 or x.type.dtype != y.type.dtype:
        return False
    if x.type.dtype not in ("float32", "float64") or node.outputs[0].type.dtype != x.type.dtype:
        return False
    return [dense_dot(x, y)]


# after the Numba-specific rewrites and the inplace ones; only with_dense_dot includes TAG
if "dandelion_dense_dot_on_numba" not in optdb:
    optdb.register("dandelion_dense_dot_on_numba", dfs_rewriter(dense_dot_on_numba), TAG, position=99)


def with_dense_dot(mode):
    """``mode`` with ``DenseDot`` in place of 2-D ``Dot``; for Numba modes only (C and JAX have no kernel)."""
    return mode.including(TAG)
