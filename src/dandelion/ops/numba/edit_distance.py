"""Numba implementation of ``EditDistanceOp`` (``dandelion.ops.edit_distance``): its
``levenshtein`` kernel, jitted."""

from __future__ import annotations

import numba
import numpy as np

from dandelion.ops.edit_distance import EditDistanceOp, levenshtein
from dandelion.ops.numba.source_cache import register_numba_op

EDIT_DISTANCE_SOURCES = ("dandelion.ops.edit_distance", "dandelion.ops.numba.edit_distance")


@register_numba_op(EditDistanceOp, EDIT_DISTANCE_SOURCES)
def numba_funcify_EditDistanceOp(op, node=None, **kwargs):
    kernel = numba.njit(levenshtein)

    @numba.njit
    def batch_edit_distance(a, a_len, b, b_len):
        out = np.empty(a.shape[0], dtype=np.int64)
        for k in range(a.shape[0]):
            out[k] = kernel(a[k, : a_len[k]], b[k, : b_len[k]])
        return out

    return batch_edit_distance
