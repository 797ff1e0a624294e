"""``PoolGrad``: the gradient of ``Pool`` with respect to its input."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from dandelion._compat import ShapeInferringOp
from dandelion.ops import pool_c, pool_numpy
from dandelion.ops.pool_common import PoolParams


class PoolGrad(PoolParams, ShapeInferringOp, COp):
    """Inputs x (..., *spatial) and gy (..., *pooled); output gx, shaped as x.

    Max pooling sends each gy to the first maximum of its window; sum and average
    pooling spread it over the window (divided by the window count for averages).
    Linear in gy: its gradient in gy is ``Pool`` again for sum/average (the adjoint of an
    adjoint) and ``MaxPoolGather`` for max. It is piecewise constant in x (zero gradient).
    """

    __props__ = PoolParams.__props__

    def make_node(self, x, gy):
        x = self.check_input("pool_grad", x)
        gy = pt.as_tensor_variable(gy)
        expected = self.output_type(x)
        if gy.ndim != x.ndim:
            raise ValueError(f"pool_grad: output_grad must have ndim {x.ndim}, got {gy.ndim}")
        for a, b in zip(gy.type.shape, expected.type.shape):
            if a is not None and b is not None and a != b:
                raise ValueError(f"pool_grad: output_grad has static shape {gy.type.shape}, expected {expected.type.shape}")
        return Apply(self, [x, gy], [pt.tensor(dtype=gy.dtype, shape=x.type.shape)])

    def perform(self, node, inputs, output_storage):
        x, gy = inputs
        out = pool_numpy.pool_backward(x, gy, self.nd, self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        return pool_c.pool_backward_c(self, node, name, inputs, outputs, sub)

    def c_code_cache_version(self):
        return pool_c.C_CODE_VERSION

    def output_shapes(self, node, input_shapes):
        return [input_shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        from dandelion.ops.pool import Pool
        from dandelion.ops.pool_grad_grad import MaxPoolGather

        x, gy = inputs
        (gx_bar,) = cotangents
        props = self._props_dict()
        if self.mode == "max":
            g_gy = MaxPoolGather(**props)(x, gx_bar)
        else:
            g_gy = Pool(**props)(gx_bar)
        return [pt.zeros_like(x), g_gy.astype(gy.dtype)]
