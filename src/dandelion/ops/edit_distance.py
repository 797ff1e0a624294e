"""``EditDistanceOp``: Levenshtein distances of a batch of padded integer sequences.

Integer dynamic programming has no gradient and no use for a scan graph; one Op with
a Python ``perform`` (C backend), the same ``levenshtein`` jitted by Numba
(``numba/edit_distance.py``) and a JAX function (``jax/edit_distance.py``) keeps each
backend's compile cheap. Users call ``dandelion.objective.ctc_CER``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply

from dandelion._compat import ShapeInferringOp


def levenshtein(source, target):
    """Distance between two 1-D integer arrays, one row of the table at a time."""
    row = np.arange(len(target) + 1)
    for i in range(1, len(source) + 1):
        previous_diagonal, row[0] = row[0], i
        for j in range(1, len(target) + 1):
            substitution = previous_diagonal + (source[i - 1] != target[j - 1])
            previous_diagonal = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, substitution)
    return row[len(target)]


class EditDistanceOp(ShapeInferringOp):
    """(a (B, N), a_len (B,), b (B, M), b_len (B,)) -> (B,) int64 edit distances.

    Row ``k`` compares ``a[k, :a_len[k]]`` with ``b[k, :b_len[k]]``.
    """

    __props__ = ()

    def make_node(self, a, a_len, b, b_len):
        inputs = [pt.as_tensor_variable(v) for v in (a, a_len, b, b_len)]
        for variable, ndim in zip(inputs, (2, 1, 2, 1)):
            if variable.ndim != ndim or not variable.dtype.startswith(("int", "uint")):
                raise TypeError(
                    f"edit_distance: expected integer inputs of ndim (2, 1, 2, 1), got {[(v.dtype, v.ndim) for v in inputs]}"
                )
        return Apply(self, inputs, [pt.tensor(dtype="int64", shape=(inputs[0].type.shape[0],))])

    def perform(self, node, inputs, output_storage):
        a, a_len, b, b_len = inputs
        output_storage[0][0] = np.array(
            [levenshtein(a[k, : a_len[k]], b[k, : b_len[k]]) for k in range(a.shape[0])], dtype="int64"
        )

    def output_shapes(self, node, input_shapes):
        return [(input_shapes[0][0],)]


edit_distance = EditDistanceOp()
