"""Counter-based random bits: a pure function of (seed, stream, counter, element index).

Dropout draws its masks from here instead of a shared NumPy ``Generator``. The state
is then one uint32 counter, an ordinary tensor that every backend updates in place
(PyTensor's JAX backend advances private copies of generator states, which a checkpoint
cannot see), and the same seed gives the same masks on C, Numba and JAX.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

_GOLDEN = np.uint32(0x9E3779B9)  # 2**32 / golden ratio: spreads consecutive integers
_STREAM = np.uint32(0x85EBCA6B)
_MUL1 = np.uint32(0x7FEB352D)
_MUL2 = np.uint32(0x846CA68B)


_LOW32 = np.uint32(0xFFFFFFFF)


def _shift_right(x, bits):
    return x // np.uint32(1 << bits)


def _wrap(x):
    """Reduce modulo 2**32 explicitly after a product or sum.

    A no-op in uint32 arithmetic, but PyTensor's Numba backend evaluates fused scalar
    code with 64-bit integer constants, so a product can exceed 32 bits before the next
    operation sees it; masking keeps all backends bit-identical.
    """
    return pt.bitwise_and(x, _LOW32)


def mix32(x):
    """A 32-bit integer finaliser (xor-shift-multiply, Wellons' "lowbias32").

    Every output bit depends on every input bit; uint32 products wrap modulo 2**32 on
    every backend, which is what the constants are designed for.
    """
    x = _wrap(pt.bitwise_xor(x, _shift_right(x, 16)) * _MUL1)
    x = _wrap(pt.bitwise_xor(x, _shift_right(x, 15)) * _MUL2)
    return pt.bitwise_xor(x, _shift_right(x, 16))


def uniform_from_counter(seed, stream, counter, shape, dtype):
    """Uniform [0, 1) samples of ``shape``, determined by the integers and the counter.

    seed : uint32 scalar tensor (a state, so a checkpoint restores it with the counter).
    stream : Python int fixed at graph-build time (one per call site).
    counter : uint32 scalar tensor (the state that advances between calls).
    shape : tuple of ints or scalar tensors.
    """
    # the stream's product wrapped in Python ints: NumPy warns on uint32 scalar overflow
    stream_term = np.uint32((stream * int(_STREAM)) & 0xFFFFFFFF)
    base = mix32(_wrap(seed.astype("uint32") * _GOLDEN + stream_term))
    key = mix32(pt.bitwise_xor(_wrap(counter.astype("uint32") * _GOLDEN), base))
    size = 1
    for length in shape:
        size = size * length
    index = pt.arange(size, dtype="uint32").reshape(shape)
    bits = mix32(pt.bitwise_xor(mix32(_wrap(index + key)), key))
    # 24 bits: exactly representable in float32, so x < p keeps probability p.
    return (_shift_right(bits, 8).astype(dtype)) * np.asarray(2.0**-24, dtype=dtype)
