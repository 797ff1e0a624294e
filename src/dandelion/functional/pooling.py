"""Pooling over 1, 2 or 3 trailing axes (one Op serves all three)."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.ops.geometry import check_pool_mode
from dandelion.ops.pool import PoolOp, check_output_size, check_pool_params


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


def adaptive_pool_2d(x, output_size, mode="max"):
    """Pool the last two axes of x into a fixed ``output_size`` grid of bins, whatever H and W.

    Along an axis of length n, output i of d covers input [floor(i n / d), ceil((i + 1) n / d))
    (PyTorch's ``adaptive_max_pool2d`` / ``adaptive_avg_pool2d`` bins, SPP's 'stretch'): bins
    never empty, neighbours share a pixel where d does not divide n, and pixels repeat
    when n < d.

    Parameters
    ----------
    x : (..., H, W) tensor, ndim >= 2, float
        H and W may be unknown until run time; each must be >= 1.
    output_size : int or (int, int)
        Bins (d_h, d_w), each >= 1.
    mode : {'max', 'sum', 'average_inc_pad', 'average_exc_pad'}
        Nothing is padded: both averages divide by the bin's pixels. Max gradients go
        to the first maximum of a bin (row-major).

    Returns
    -------
    (..., d_h, d_w) tensor

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.functional import adaptive_pool_2d
    >>> adaptive_pool_2d(pt.tensor("x", shape=(2, 3, 7, None)), (3, 2), mode="sum").type.shape
    (2, 3, 3, 2)
    """
    where = "adaptive_pool_2d"
    x = pt.as_tensor_variable(x)
    if x.ndim < 2:
        raise ValueError(f"{where}: input must have ndim >= 2, got ndim {x.ndim}")
    op = PoolOp.adaptive(2, check_output_size(where, 2, output_size), check_pool_mode(where, mode))
    op.check_nonempty(where, x.type.shape[-2:])
    return op(x)
