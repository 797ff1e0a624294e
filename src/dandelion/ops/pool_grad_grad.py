"""``MaxPoolGather``: reads a tensor at the maxima of max pooling (the gradient of ``PoolGrad``)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp
from dandelion.ops import pool_numpy
from dandelion.ops.pool_common import PoolParams


class MaxPoolGather(PoolParams, ShapeInferringOp):
    """Inputs x and g, both (..., *spatial); output (..., *pooled): g at each window's first max of x.

    The adjoint in g of max pooling's gradient, so second derivatives through max
    pooling work. Its gradient in g is ``PoolGrad`` (max) and zero in x.
    """

    __props__ = PoolParams.__props__

    def make_node(self, x, g):
        x = self.check_input("max_pool_gather", x)
        g = pt.as_tensor_variable(g)
        if self.mode != "max":
            raise ValueError(f"max_pool_gather: only for mode 'max', got {self.mode!r}")
        if g.ndim != x.ndim:
            raise ValueError(f"max_pool_gather: g must have ndim {x.ndim}, got {g.ndim}")
        out = pt.tensor(dtype=g.dtype, shape=self.output_type(x).type.shape)
        return Apply(self, [x, g], [out])

    def perform(self, node, inputs, output_storage):
        x, g = inputs
        out = pool_numpy.max_pool_gather(x, g, self.nd, self.ws, self.stride, self.pad, self.ignore_border)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)

    def output_shapes(self, node, input_shapes):
        return [self.symbolic_pooled_shape(input_shapes[0])]

    def pullback(self, inputs, outputs, cotangents):
        from dandelion.ops.pool_grad import PoolGrad

        x, g = inputs
        (z_bar,) = cotangents
        return [pt.zeros_like(x), PoolGrad(**self._props_dict())(x, z_bar).astype(g.dtype)]
