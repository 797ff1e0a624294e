"""``check_index_bounds``: integer indices that must lie in ``[0, upper)``, checked inside the graph.

An out-of-range class label compared against ``arange(C)`` matches no class and gives
a loss of 0 for its row; JAX's gather clamps an out-of-range embedding index to the
last row. Both are silently wrong values, so the indices pass through this check first.
It is PyTensor's ``CheckAndRaise`` (C and Numba raise ``IndexError`` with the message);
PyTensor's JAX dispatch drops every ``CheckAndRaise`` (JAX cannot raise while tracing),
so this subclass has a JAX implementation of its own that raises from the host
(``dandelion.ops.jax.index_bounds``).
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.raise_op import CheckAndRaise


class IndexBoundsCheck(CheckAndRaise):
    """Passes its first input through; raises ``exc_type(msg)`` unless every condition holds."""


def check_index_bounds(indices, upper, message):
    """``indices``, unchanged, after a check that each lies in ``[0, upper)``.

    Parameters
    ----------
    indices : integer tensor of any shape
    upper : int or integer scalar tensor
        The exclusive upper bound (number of classes, of embedding rows).
    message : str
        The ``IndexError`` message, naming the function and the argument.

    Returns
    -------
    tensor, ``indices`` itself at run time.
    """
    indices = pt.as_tensor_variable(indices)
    in_range = pt.all(pt.ge(indices, 0) & pt.lt(indices, upper))
    return IndexBoundsCheck(IndexError, message)(indices, in_range)
