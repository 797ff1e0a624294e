"""Numba version of ``dandelion.ops.exp32``: ``exp32(x)`` for a float32 scalar, which vectorises in a caller's loop."""

from __future__ import annotations

import llvmlite.ir
import numpy as np
from numba import types
from numba.extending import intrinsic
from pytensor.link.numba.dispatch import basic as numba_basic

from dandelion.ops import exp32 as definition

_F = np.float32
_HIGHEST, _LOWEST, _LOG2E, _ROUNDING = _F(definition.HIGHEST), _F(definition.LOWEST), _F(definition.LOG2E), _F(definition.ROUNDING)
_LN2_HIGH, _LN2_LOW = _F(definition.LN2_HIGH), _F(definition.LN2_LOW)
_POLYNOMIAL = tuple(_F(c) for c in definition.POLYNOMIAL)
_ZERO, _ONE, _INF = _F(0), _F(1), _F(np.inf)
_BIAS, _SHIFT = np.int32(definition.EXPONENT_BIAS), np.int32(definition.MANTISSA_BITS)


@intrinsic
def bits_as_float32(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        if bits.bitwidth != 32:
            value = builder.trunc(value, llvmlite.ir.IntType(32)) if bits.bitwidth > 32 else builder.zext(value, llvmlite.ir.IntType(32))
        return builder.bitcast(value, context.get_value_type(types.float32))

    return types.float32(bits), codegen


# Without fast-math flags, whatever its caller's: PyTensor's default flags for Numba
# ("reassoc" among them) would fold the rounding's add-subtract pair and the two-part
# ln 2 away. Not inlined at Numba's level either, which would give it the caller's flags;
# LLVM still inlines it into a caller's loop and vectorises it there.
@numba_basic.numba_njit(fastmath=False)
def exp32(x):
    over = x > _HIGHEST
    under = x < _LOWEST
    x = _ZERO if (over or under) else x
    n = (x * _LOG2E + _ROUNDING) - _ROUNDING
    r = x - n * _LN2_HIGH
    r = r - n * _LN2_LOW
    p = _POLYNOMIAL[0]
    for c in _POLYNOMIAL[1:]:
        p = p * r + c
    p = p * r * r + r + _ONE
    y = p * bits_as_float32((np.int32(n) + _BIAS) << _SHIFT)
    return _INF if over else (_ZERO if under else y)
