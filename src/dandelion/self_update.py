"""Where a shared variable's pending self-update expression is kept.

The Theano-era convention: a module's ``forward`` assigns ``variable.update = expr``
(running statistics, class centres), ``Module.collect_self_updates`` gathers them, and
the user passes them to ``pytensor.function``. A user's own ``default_update`` (the old
Tutorial II) is honoured too, since the old ``no_default_updates=False`` applied it.
"""

from __future__ import annotations

from dandelion._compat import read_default_update


def set_update(variable, expression) -> None:
    """Record ``expression`` as the value ``variable`` takes after each training call."""
    variable.update = expression


def pending_update(variable):
    """The update recorded on ``variable`` (``.update`` first, then ``default_update``)."""
    expression = getattr(variable, "update", None)
    if expression is None:
        expression = read_default_update(variable)
    return expression
