"""Pooling over 1, 2 or 3 trailing axes (one Op serves all three)."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.ops.pool import PoolOp, check_pool_params


def _pool(where, x, nd, ws, ignore_border, stride, pad, mode):
    x = pt.as_tensor_variable(x)
    if x.ndim < nd:
        raise ValueError(f"{where}: input must have ndim >= {nd}, got ndim {x.ndim}")
    params = check_pool_params(where, nd, ws, stride, pad, ignore_border, mode)
    op = PoolOp(*params)
    op.check_nonempty(where, x.type.shape[-nd:])
    return op(x)


def pool_1d(x, ws=2, ignore_border=True, stride=None, pad=0, mode="max", axis=-1):
    """Pool along one axis of a tensor of any ndim.

    Parameters
    ----------
    x : (..., N, ...) tensor
    ws, stride, pad : int
        Window, step (None: ``ws``) and zero padding on both ends (< ws).
    ignore_border : bool
        False keeps the partial window at the end (N=5, ws=2 gives 3 outputs).
    mode : {'max', 'sum', 'average_inc_pad', 'average_exc_pad'}
    axis : int

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import pool_1d
    >>> pool_1d(pt.tensor("x", shape=(2, 5, 3)), ws=2, axis=1, ignore_border=False).type.shape
    (2, 3, 3)
    """
    x = pt.as_tensor_variable(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"pool_1d: axis must be in [{-x.ndim}, {x.ndim}), got {axis}")
    axis = axis % x.ndim
    order = [i for i in range(x.ndim) if i != axis] + [axis]
    pooled = _pool("pool_1d", x.transpose(order), 1, ws, ignore_border, stride, pad, mode)
    inverse = sorted(range(x.ndim), key=order.__getitem__)
    return pooled.transpose(inverse)


def pool_2d(x, ws=(2, 2), ignore_border=True, stride=None, pad=(0, 0), mode="max"):
    """Pool the last two axes of x (..., H, W), ndim >= 2; see ``pool_1d`` for the arguments (pairs here)."""
    return _pool("pool_2d", x, 2, ws, ignore_border, stride, pad, mode)


def pool_3d(x, ws=(2, 2, 2), ignore_border=True, stride=None, pad=(0, 0, 0), mode="max"):
    """Pool the last three axes of x (..., D, H, W), ndim >= 3; see ``pool_1d`` (triples here)."""
    return _pool("pool_3d", x, 3, ws, ignore_border, stride, pad, mode)
