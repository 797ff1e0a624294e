"""``Pool``: max / sum / average pooling over the last 1, 2 or 3 axes of a tensor of any ndim."""

from __future__ import annotations

import numpy as np
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp

from dandelion._compat import ShapeInferringOp
from dandelion.ops import pool_c, pool_numpy
from dandelion.ops.pool_common import PoolParams


class Pool(PoolParams, ShapeInferringOp, COp):
    """Pool x (..., *spatial) over its last ``nd`` axes; output (..., *pooled).

    Modes: 'max' (padding never wins), 'sum', 'average_inc_pad' (divides by the window
    clipped to the padded input) and 'average_exc_pad' (by the window's input pixels).
    ``ignore_border=False`` keeps a partial window at the end of an axis.
    """

    __props__ = PoolParams.__props__

    def make_node(self, x):
        x = self.check_input("pool", x)
        return Apply(self, [x], [self.output_type(x)])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        self.check_nonempty("pool", x.shape[-self.nd :])
        out = pool_numpy.pool_forward(x, self.nd, self.ws, self.stride, self.pad, self.ignore_border, self.mode)
        output_storage[0][0] = np.asarray(out, dtype=node.outputs[0].dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        return pool_c.pool_forward_c(self, node, name, inputs, outputs, sub)

    def c_code_cache_version(self):
        return pool_c.C_CODE_VERSION

    def output_shapes(self, node, input_shapes):
        return [self.symbolic_pooled_shape(input_shapes[0])]

    def pullback(self, inputs, outputs, cotangents):
        from dandelion.ops.pool_grad import PoolGrad

        (x,) = inputs
        return [PoolGrad(**self._props_dict())(x, cotangents[0])]
