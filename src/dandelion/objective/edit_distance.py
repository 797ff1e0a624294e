"""``EditDistance`` Op: Levenshtein distances of a batch of padded integer sequences.

Integer dynamic programming has no gradient and no use for a scan graph; one Op with
a NumPy ``perform`` (C backend), a Numba kernel and a JAX function (``jax_kernels.py``)
keeps each backend's compile cheap.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from dandelion._compat import ShapeInferringOp


def _levenshtein(source, target):
    """Distance between two 1-D integer arrays, one row of the table at a time."""
    row = np.arange(len(target) + 1)
    for i in range(1, len(source) + 1):
        previous_diagonal, row[0] = row[0], i
        for j in range(1, len(target) + 1):
            substitution = previous_diagonal + (source[i - 1] != target[j - 1])
            previous_diagonal = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, substitution)
    return row[len(target)]


class EditDistance(ShapeInferringOp):
    """(a (B, N), a_len (B,), b (B, M), b_len (B,)) -> (B,) int64 edit distances.

    Row ``k`` compares ``a[k, :a_len[k]]`` with ``b[k, :b_len[k]]``.
    """

    __props__ = ()

    def make_node(self, a, a_len, b, b_len):
        inputs = [pt.as_tensor_variable(v) for v in (a, a_len, b, b_len)]
        for variable, ndim in zip(inputs, (2, 1, 2, 1)):
            if variable.ndim != ndim or not variable.dtype.startswith(("int", "uint")):
                raise TypeError(
                    f"EditDistance: expected integer inputs of ndim (2, 1, 2, 1), got {[(v.dtype, v.ndim) for v in inputs]}"
                )
        return Apply(self, inputs, [pt.tensor(dtype="int64", shape=(inputs[0].type.shape[0],))])

    def perform(self, node, inputs, output_storage):
        a, a_len, b, b_len = inputs
        output_storage[0][0] = np.array(
            [_levenshtein(a[k, : a_len[k]], b[k, : b_len[k]]) for k in range(a.shape[0])], dtype="int64"
        )

    def output_shapes(self, node, input_shapes):
        return [(input_shapes[0][0],)]


edit_distance = EditDistance()


@register_funcify_default_op_cache_key(EditDistance)
def _numba_edit_distance(op, node=None, **kwargs):
    kernel = numba.njit(_levenshtein)

    @numba.njit
    def batch_edit_distance(a, a_len, b, b_len):
        out = np.empty(a.shape[0], dtype=np.int64)
        for k in range(a.shape[0]):
            out[k] = kernel(a[k, : a_len[k]], b[k, : b_len[k]])
        return out

    return batch_edit_distance
