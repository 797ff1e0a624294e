"""C statements traced from the Python cell arithmetic of ``dandelion.ops.recurrent_cells``.

The cell functions are plain Python over ``+``, ``-``, ``*`` and the activations they
are passed, so calling one with ``CValue`` arguments records its arithmetic as C: every
operation becomes one ``const`` assignment (single assignment, which the compiler turns
into registers and vectorises). The C kernels of the fused LSTM therefore run the one
definition instead of a hand-written twin, and change when it changes.
"""

from __future__ import annotations

import numbers

from dandelion.ops.c.expr import CArithmetic


class CTrace:
    """Collects the statements of one traced computation over the C type ``ctype``."""

    def __init__(self, ctype, prefix="v"):
        self.ctype, self.prefix = ctype, prefix
        self.lines = []

    def operand(self, value):
        if isinstance(value, CValue):
            if value.trace is not self:
                raise ValueError("CTrace: a value of another trace")
            return value.name
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return f"(({self.ctype}){float(value)!r})"
        raise TypeError(f"CTrace: only C values and real numbers combine, got {value!r}")

    def bind(self, code):
        """A new ``const`` local holding the C expression ``code``."""
        name = f"{self.prefix}{len(self.lines)}"
        self.lines.append(f"const {self.ctype} {name} = {code};")
        return CValue(self, name)

    def variable(self, name):
        """An existing C local (an input of the traced function)."""
        return CValue(self, name)

    def function(self, c_name):
        """A one-argument C function as a Python callable on traced values (an activation)."""
        return lambda x: self.bind(f"{c_name}({self.operand(x)})")

    def code(self, indent="            "):
        return "".join(f"{indent}{line}\n" for line in self.lines)


class CValue(CArithmetic):
    """A traced scalar: the name of a C local; arithmetic on it appends statements."""

    def __init__(self, trace, name):
        self.trace, self.name = trace, name

    def _binary(self, op, other, reflected=False):
        left, right = self.name, self.trace.operand(other)
        if reflected:
            left, right = right, left
        return self.trace.bind(f"{left} {op} {right}")

    def __neg__(self):
        return self.trace.bind(f"-{self.name}")

    def __bool__(self):
        raise TypeError("CValue: a traced C value has no truth value at code-generation time")
