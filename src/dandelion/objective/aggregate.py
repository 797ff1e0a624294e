"""Reduce an element- or item-wise loss to a scalar."""

from __future__ import annotations

from dandelion.objective._checks import as_tensor, check_option

AGGREGATE_MODES = ("mean", "sum", "normalized_sum")


def aggregate(loss, weights=None, mode="mean"):
    """Aggregate ``loss`` to a scalar, optionally weighting (or masking) its entries.

    Parameters
    ----------
    loss : (...) tensor
    weights : (...) tensor, optional
        Broadcastable to ``loss``; 0/1 weights mask entries out (masked entries must
        still be finite: NaN times 0 is NaN).
    mode : {'mean', 'sum', 'normalized_sum'}
        Average, sum, or sum divided by the sum of ``weights`` (which it requires).

    Returns
    -------
    scalar tensor

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> total = aggregate(pt.fvector("loss"), pt.fvector("mask"), mode="normalized_sum")
    """
    where = "aggregate"
    check_option(where, "mode", mode, AGGREGATE_MODES)
    loss = as_tensor(where, "loss", loss)
    if weights is not None:
        weights = as_tensor(where, "weights", weights)
        if weights.ndim > loss.ndim:
            raise ValueError(f"aggregate: weights (ndim {weights.ndim}) must broadcast to loss (ndim {loss.ndim})")
        loss = loss * weights
    if mode == "mean":
        return loss.mean()
    if mode == "sum":
        return loss.sum()
    if weights is None:
        raise ValueError("aggregate: mode='normalized_sum' needs weights (got weights=None)")
    return loss.sum() / weights.sum()
