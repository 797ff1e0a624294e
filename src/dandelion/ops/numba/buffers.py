"""C-contiguous buffers for the C callbacks, copied only when they must be."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic


def as_c_buffer(source_dtype, dtype):
    """njit ``f(a)``: ``a`` as a C-contiguous array of ``dtype``.

    ``astype`` always copies under Numba (6.4 MB per call for W3's first activations);
    when the dtypes agree, ``ascontiguousarray`` returns C-contiguous input as it is.
    """
    if np.dtype(source_dtype) == np.dtype(dtype):

        @numba_basic.numba_njit
        def contiguous(a):
            return np.ascontiguousarray(a)

        return contiguous

    @numba_basic.numba_njit
    def converted(a):
        return a.astype(dtype)

    return converted
