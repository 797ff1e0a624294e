"""C expressions generated from the Python shape arithmetic of ``dandelion.ops.geometry``.

Calling a geometry function with ``CExpr`` arguments records its arithmetic as C source,
so the C code computes output sizes from the very definition the other backends use
instead of a hand-written twin. Python's ``//`` floors where C's ``/`` truncates
toward zero, so floor division becomes ``dl_floordiv`` (and ``abs`` ``dl_abs``), defined
in ``SUPPORT_CODE``, which every Op using these expressions adds to its support code.
"""

from __future__ import annotations

SUPPORT_CODE = """
static npy_intp dl_floordiv(npy_intp a, npy_intp b)
{
    npy_intp q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static npy_intp dl_abs(npy_intp a) { return a < 0 ? -a : a; }
"""


def _source(value):
    if isinstance(value, CExpr):
        return value.code
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"CExpr: only ints and C expressions combine, got {value!r}")
    return f"((npy_intp){value})"


class CArithmetic:
    """``+``, ``-`` and ``*`` (both sides) for a C code builder through its ``_binary(op, other, reflected)``."""

    def _binary(self, op, other, reflected=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other):
        return self._binary("+", other)

    def __radd__(self, other):
        return self._binary("+", other, reflected=True)

    def __sub__(self, other):
        return self._binary("-", other)

    def __rsub__(self, other):
        return self._binary("-", other, reflected=True)

    def __mul__(self, other):
        return self._binary("*", other)

    def __rmul__(self, other):
        return self._binary("*", other, reflected=True)


class CExpr(CArithmetic):
    """An integer C expression (``npy_intp``); arithmetic with ints or other ``CExpr`` builds larger ones."""

    def __init__(self, code):
        self.code = code

    def _binary(self, op, other, reflected=False):
        left, right = (_source(other), self.code) if reflected else (self.code, _source(other))
        return CExpr(f"({left} {op} {right})")

    def __floordiv__(self, other):
        return CExpr(f"dl_floordiv({self.code}, {_source(other)})")

    def __rfloordiv__(self, other):
        return CExpr(f"dl_floordiv({_source(other)}, {self.code})")

    def __abs__(self):
        return CExpr(f"dl_abs({self.code})")

    def __bool__(self):
        raise TypeError("CExpr: a C expression has no truth value at code-generation time (a branch on a run-time size)")

    def __str__(self):
        return self.code
