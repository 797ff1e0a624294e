"""The activations of the fused recurrent Numba kernels (LSTM, GRU), per dtype.

The float32 ones compute in float32 (float32 constants, no libm call): a rational tanh
instead of libm's scalar ``tanhf``, which cannot be vectorised, accurate to 3e-8 in
float64 and to float32 rounding in float32. The float64 ones keep ``math.tanh``. The
logistic is ``0.5 + 0.5 tanh(x / 2)``, which cannot overflow.
"""

from __future__ import annotations

import math

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic

# The published minimax fit that Eigen and XLA use for float32 tanh: odd, degree 13 over 6.
_TANH_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)  # fmt: skip
_TANH_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
_TANH_BOUND = 9.0  # beyond it tanh is 1 to float32 precision


def _rational_tanh(p, q, bound, one):
    """The rational tanh with coefficients ``p``, ``q``, clamp ``bound`` and ``one`` of one dtype."""

    def tanh(x):
        x = min(max(x, -bound), bound)
        x2 = x * x
        num = p[0]
        for k in range(1, len(p)):
            num = num * x2 + p[k]
        den = q[0]
        for k in range(1, len(q)):
            den = den * x2 + q[k]
        # rounded in float32 the ratio can pass 1 by an ulp near the clamp
        return min(max(x * num / den, -one), one)

    tanh.__doc__ = f"tanh as an odd rational function, |error| < 3e-8 in float64 (coefficients {type(bound).__name__})."
    return numba_basic.numba_njit(inline="always")(tanh)


rational_tanh = _rational_tanh(_TANH_P, _TANH_Q, _TANH_BOUND, 1.0)
rational_tanh32 = _rational_tanh(
    tuple(np.float32(c) for c in _TANH_P), tuple(np.float32(c) for c in _TANH_Q), np.float32(_TANH_BOUND), np.float32(1)
)
_HALF32 = np.float32(0.5)


@numba_basic.numba_njit(inline="always")
def sigmoid32(x):
    return _HALF32 + _HALF32 * rational_tanh32(_HALF32 * x)


@numba_basic.numba_njit(inline="always")
def sigmoid64(x):
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@numba_basic.numba_njit(inline="always")
def tanh64(x):
    return math.tanh(x)


