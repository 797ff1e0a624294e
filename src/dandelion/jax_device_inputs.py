"""Shared variables' NumPy values handed to a JAX function as device arrays, transferred once per value.

PyTensor's JAX linker passes each input cell's value to the jitted function as it is. A
shared variable that no update replaces (every parameter of an inference function) keeps
its NumPy array, and JAX copies it to the device on every call: W4's inference step
copied 7.3 MB of weights per call. ``DeviceCachedCell`` stands for such a cell in the
thunk's input list and hands out a device copy made when the cell's value changes.

"Changes" means the cell holds another object: ``set_value`` (which stores a new array,
or with ``borrow=True`` the caller's) and the updates of a training function do that.
An array modified in place after ``get_value(borrow=True)`` is not seen, as Theano's and
PyTensor's borrow contract allows (on the C and Numba backends such a write happens to
show); set it back with ``set_value`` to be sure of it everywhere. A value that is already
a JAX array (what a JAX training step leaves) passes through untouched. On a CPU device
the cache holds a second copy of the parameters in memory.
"""

from __future__ import annotations

import numpy as np


class DeviceCachedCell:
    """A stand-in for a storage cell ``[value]`` whose ``[0]`` is a device copy of a NumPy value."""

    __slots__ = ("cell", "_device", "_host")

    def __init__(self, cell):
        self.cell = cell
        self._host = None  # the NumPy array the device copy was made from (kept alive: its id stays unique)
        self._device = None

    def __getitem__(self, index):
        value = self.cell[index]
        if not isinstance(value, np.ndarray):
            self._host = self._device = None  # (an update replaced it) nothing to keep
            return value
        if value is not self._host:
            import jax

            self._device = jax.device_put(value)
            self._host = value
        return self._device


def cached_shared_inputs(fgraph_inputs, thunk_inputs):
    """``thunk_inputs`` with each shared variable's cell behind a ``DeviceCachedCell``."""
    from pytensor.compile.sharedvalue import SharedVariable

    return [
        DeviceCachedCell(cell) if isinstance(variable, SharedVariable) else cell
        for variable, cell in zip(fgraph_inputs, thunk_inputs, strict=True)
    ]
