"""Regression losses."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.objective._checks import align_targets, as_tensor


def squared_error(a, b):
    """Element-wise squared difference ``(a - b) ** 2``.

    Parameters
    ----------
    a, b : (...) tensors of broadcastable shapes; a column ``(N, 1)`` against ``(N,)``
        is compared row by row rather than broadcast to ``(N, N)``.

    Returns
    -------
    (...) tensor

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> loss = squared_error(pt.fmatrix("y"), pt.fmatrix("t")).mean()
    """
    where = "squared_error"
    a, b = align_targets(as_tensor(where, "a", a), as_tensor(where, "b", b))
    return pt.square(a - b)
