"""Shape specialisation for the JAX backend, as ``jax.jit`` does it.

JAX traces a graph with concrete array shapes; a PyTensor graph whose inputs were
declared without static shapes (``pt.tensor3('x')``, the Theano-era habit) then feeds
traced sizes into ``reshape`` and friends and fails while tracing. The wrapper here
compiles one copy of the graph per shape signature of the inputs, with the inputs'
static shapes set from the arrays of the call, and caches them.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.io import In
from pytensor.graph.replace import graph_replace
from pytensor.tensor.variable import TensorVariable


def shape_free_inputs(inputs):
    """Indices of the tensor inputs with at least one dimension unknown at build time."""
    return [i for i, v in enumerate(inputs) if isinstance(v, TensorVariable) and None in v.type.shape]


class ShapeSpecializedFunction:
    """Callable like a compiled ``pytensor`` function; compiles per input-shape signature.

    Positional arguments only (as the inputs were given to ``dandelion.function``).
    Attributes of the most recently compiled function (``maker``, ...) are reachable
    through this object once it has been called.
    """

    def __init__(self, inputs, outputs, updates, compile, where="dandelion.function"):
        self._inputs = list(inputs)
        self._outputs = outputs
        self._updates = list(updates or [])
        self._compile = compile
        self._where = where
        self._free = shape_free_inputs(self._inputs)
        self._compiled = {}
        self._last = None

    def _specialize(self, signature):
        replace = {}
        inputs = list(self._inputs)
        for i, shape in zip(self._free, signature):
            old = inputs[i]
            if len(shape) != old.type.ndim:
                raise ValueError(
                    f"{self._where}: input {i} ({old.name or old}) has ndim {old.type.ndim}, got an array of shape {shape}"
                )
            inputs[i] = replace[old] = pt.tensor(name=old.name, dtype=old.dtype, shape=shape)
        single = not isinstance(self._outputs, (list, tuple))
        outputs = [] if self._outputs is None else ([self._outputs] if single else list(self._outputs))
        exprs = outputs + [expr for _, expr in self._updates]
        # strict=False rebuilds every node, so static shapes reach reshape and friends
        new = graph_replace(exprs, replace, strict=False) if exprs else []
        new_outputs = new[: len(outputs)]
        updates = [(var, expr) for (var, _), expr in zip(self._updates, new[len(outputs) :])]
        if self._outputs is None:
            new_outputs = None
        elif single:
            new_outputs = new_outputs[0]
        return self._compile(inputs, new_outputs, updates or None)

    def __call__(self, *args):
        if len(args) != len(self._inputs):
            raise TypeError(f"{self._where}: the function takes {len(self._inputs)} inputs, got {len(args)}")
        signature = tuple(tuple(np.shape(args[i])) for i in self._free)
        fn = self._compiled.get(signature)
        if fn is None:
            fn = self._compiled[signature] = self._specialize(signature)
        self._last = fn
        return fn(*args)

    def __getattr__(self, name):
        last = self.__dict__.get("_last")
        if last is None:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r} before its first call "
                "(it compiles one function per input-shape signature)"
            )
        return getattr(last, name)


def can_specialize(inputs):
    """Whether every input is a plain variable (``In`` wrappers keep their own settings)."""
    return not any(isinstance(v, In) for v in inputs)
