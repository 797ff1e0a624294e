"""The one guard against non-finite gradients, shared by every optimizer (``clear_nan``).

Policy: each NaN, +inf or -inf gradient *entry* is replaced by 0 before the optimizer
sees it; the finite entries of the same step are applied as usual. A zero entry is a
step that leaves that coordinate alone, except for what the optimizer's own state does
with a zero gradient (momentum keeps moving, Adam's moments decay, the step counter
advances). Skipping the whole step instead would hold back every finite entry because
of one bad one; zeroing is also what the Theano-era ``clear_nan`` did for NaN.

Why ±inf too: an infinite entry reaches the parameter as ``-lr * inf`` (SGD) or as
``inf / inf = NaN`` (Adam's ``m / sqrt(v)``), so replacing NaN alone still leaves the
parameter infinite or NaN after the step.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt


def finite_or_zero(x):
    """``x`` with every NaN, +inf and -inf entry replaced by 0 (any shape, same dtype)."""
    x = pt.as_tensor_variable(x)
    if not x.dtype.startswith(("float", "complex")):
        return x  # integers are always finite
    return pt.switch(pt.isfinite(x), x, np.asarray(0, dtype=x.dtype))


def guard_gradients(grads, clear_nan):
    """The gradients the optimizer should use: ``finite_or_zero`` of each when ``clear_nan``.

    Parameters
    ----------
    grads : list of tensors
    clear_nan : bool
        The optimizers' flag (``False`` by default: gradients pass through unchanged).

    Returns
    -------
    list of tensors, shaped and typed like ``grads``.
    """
    if not clear_nan:
        return list(grads)
    return [finite_or_zero(g) for g in grads]
