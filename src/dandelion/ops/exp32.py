"""A float32 exp that compilers can vectorise: one definition, used by the C and Numba softmax kernels.

libm's scalar ``expf`` (what C's ``expf`` and Numba's ``np.exp`` on float32 call) keeps a
loop scalar: the fused attention's softmax spent most of its time there (W5's
(128, 64, 64) scores: 2.3 ms of libm calls against 0.3 ms vectorised). The algorithm:
``n = round(x / ln 2)``, ``r = x - n ln 2`` in two parts (Cody and Waite), ``exp(r)`` by
Cephes' ``expf`` polynomial, times ``2^n`` built in the exponent bits. Within 2 float32
ulps of exp from ``LOWEST`` to ``HIGHEST``; 0 below (libm gives denormals down to -103),
+inf above (``2^n`` would need n = 128 short of exp's own overflow at 88.72; softmax
passes x <= 0); NaN stays NaN. Rounding to an integer adds and subtracts 1.5 * 2^23
(``ROUNDING``): ``floorf`` would keep gcc from vectorising without -fno-trapping-math.

``exp32`` here is the NumPy statement of the same steps (the tests' reference for the
kernels' rounding, and documentation); C text in ``dandelion.ops.c.exp32``, Numba in
``dandelion.ops.numba.exp32``.
"""

from __future__ import annotations

import numpy as np

LOG2E = 1.44269504088896341
LN2_HIGH = 0.693359375  # exact in 9 bits, so n * LN2_HIGH is exact for |n| <= 2^15
LN2_LOW = -2.12194440e-4  # ln 2 - LN2_HIGH
ROUNDING = 12582912.0  # 1.5 * 2^23
# exp(r) = 1 + r + r^2 (c0 r^5 + c1 r^4 + ... + c5) on |r| <= ln(2) / 2 (Cephes expf)
POLYNOMIAL = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
HIGHEST = 88.37626266479492  # 127.5 ln 2: above it n would be 128
LOWEST = -87.33654022216797  # ln of float32's smallest normal number
EXPONENT_BIAS, MANTISSA_BITS = 127, 23


def exp32(x):
    """The kernels' float32 exp of a float32 array, step by step in NumPy."""
    x = np.asarray(x, dtype=np.float32)
    f32 = np.float32
    over, under = x > f32(HIGHEST), x < f32(LOWEST)
    x = np.where(over | under, f32(0), x)
    n = (x * f32(LOG2E) + f32(ROUNDING)) - f32(ROUNDING)
    r = (x - n * f32(LN2_HIGH)) - n * f32(LN2_LOW)
    p = np.full_like(r, POLYNOMIAL[0])
    for c in POLYNOMIAL[1:]:
        p = p * r + f32(c)
    p = p * r * r + r + f32(1)
    # a NaN n casts to an arbitrary integer (the kernels' too); p is NaN there and so is the product
    two_n = ((np.where(np.isnan(n), f32(0), n).astype(np.int32) + EXPONENT_BIAS) << MANTISSA_BITS).view(np.float32)
    return np.where(over, f32(np.inf), np.where(under, f32(0), p * two_n))
