"""``finite_memory_array``: a ring buffer of the last N columns (e.g. recent losses)."""

from __future__ import annotations

import numpy as np


class finite_memory_array:  # noqa: N801 - the Theano-era public name
    """Keep the last ``shape[1]`` values written, column by column.

    Parameters
    ----------
    array : (R, N) array, optional
        Storage to use (it is written in place).
    shape : tuple (R, N), optional
        Shape of zero storage to create when ``array`` is not given.
    dtype : dtype
        Of created storage.

    Examples
    --------
    >>> memory = finite_memory_array(shape=(1, 3))
    >>> for loss in (4.0, 5.0, 6.0, 7.0):
    ...     memory.update(loss)
    >>> memory.content.tolist()
    [[7.0, 5.0, 6.0]]
    """

    def __init__(self, array=None, shape=None, dtype=np.double):
        if array is not None:
            self.array = np.asarray(array)
        elif shape is not None:
            self.array = np.zeros(shape=shape, dtype=dtype)
        else:
            raise ValueError("finite_memory_array: give array or shape")
        if self.array.ndim != 2 or self.array.shape[1] == 0:
            raise ValueError(
                f"finite_memory_array: storage must be 2-D (R, N) with N > 0, got shape {self.array.shape}"
            )
        self.shape = self.array.shape
        self.curpos = 0
        self.first_round = True

    def update(self, value):
        """Write ``value`` (scalar or (R,)) into the next column, wrapping around."""
        self.array[:, self.curpos] = value
        self.curpos += 1
        if self.curpos >= self.shape[1]:
            self.curpos = 0
            self.first_round = False

    def clear(self):
        self.array[:] = 0
        self.curpos = 0
        self.first_round = True

    def get_current_position(self):
        return self.curpos

    @property
    def content(self):
        """The columns written so far (all of them once the buffer has wrapped)."""
        return self.array[:, : self.curpos] if self.first_round else self.array


Finite_Memory_Array = finite_memory_array
