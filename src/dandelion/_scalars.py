"""Scalars that keep a graph's dtype.

PyTensor makes a Python float a constant of ``floatX`` (float64 by default) unless
float32 holds it exactly, and float64 wins every arithmetic it meets: ``0.9 * m`` with a
float32 ``m`` is computed in float64 and cast back only where an update's dtype forces
it. The rewrites then fuse those float64 intermediates into the elementwise kernels, so
a float32 model runs partly in float64 (a fraction of the speed on GPUs) while every
graph variable still reads float32.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt


def scalar_like(value, dtype):
    """A Python or NumPy number as a constant of ``dtype``; a symbolic value cast to it."""
    if isinstance(value, pt.TensorVariable):
        return value if value.dtype == dtype else pt.cast(value, dtype)
    return np.asarray(value, dtype=dtype)
