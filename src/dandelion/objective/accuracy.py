"""Accuracy measures (for validation: their gradient is zero almost everywhere)."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.config import floatx
from dandelion.objective._checks import align_targets, as_tensor


def binary_accuracy(predictions, targets, threshold=0.5):
    """Element-wise ``1`` where ``(p >= threshold) == t``, else ``0``.

    Parameters
    ----------
    predictions : (...) tensor
        Probability of the positive class.
    targets : (...) tensor
        In {0, 1}.
    threshold : float

    Returns
    -------
    (...) tensor of floatX; ``.mean()`` is the accuracy.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.objective import binary_accuracy
    >>> binary_accuracy(pt.constant([0.9, 0.2, 0.6]), pt.constant([1, 1, 0])).eval().tolist()
    [1.0, 0.0, 0.0]
    """
    where = "binary_accuracy"
    predictions, targets = align_targets(
        as_tensor(where, "predictions", predictions), as_tensor(where, "targets", targets)
    )
    return pt.eq(pt.ge(predictions, threshold), targets).astype(floatx())


def categorical_accuracy(predictions, targets, top_k=1):
    """Item-wise ``1`` where the target class is among the ``top_k`` highest predictions.

    Parameters
    ----------
    predictions : (..., C) tensor
    targets : (...) int tensor or (..., C) one-hot tensor
    top_k : int
        With ``top_k == 1`` the first arg-max must be the target (as the old library).
        With ``top_k > 1`` an item is correct when fewer than ``top_k`` classes score
        strictly higher than the target, so ties never count against it.

    Returns
    -------
    (...) tensor of floatX; ``.mean()`` is the accuracy.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.objective import categorical_accuracy
    >>> p = pt.constant([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    >>> categorical_accuracy(p, pt.constant([1, 2])).eval().tolist()
    [1.0, 0.0]
    >>> categorical_accuracy(p, pt.constant([1, 1]), top_k=2).eval().tolist()
    [1.0, 1.0]
    """
    where = "categorical_accuracy"
    predictions = as_tensor(where, "predictions", predictions)
    targets = as_tensor(where, "targets", targets)
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"{where}: top_k must be a positive int, got {top_k!r}")
    if targets.ndim == predictions.ndim:
        targets = pt.argmax(targets, axis=-1)
    elif targets.ndim != predictions.ndim - 1:
        raise ValueError(
            f"{where}: targets must have ndim {predictions.ndim} (one-hot) or {predictions.ndim - 1} "
            f"(class indices), got ndim {targets.ndim}"
        )
    elif not targets.dtype.startswith(("int", "uint")):
        targets = pt.cast(pt.round(targets), "int64")
    if top_k == 1:
        return pt.eq(pt.argmax(predictions, axis=-1), targets).astype(floatx())
    target_score = pt.sum(
        pt.switch(pt.eq(pt.arange(predictions.shape[-1]), targets[..., None]), predictions, 0), axis=-1
    )
    higher = pt.sum(pt.gt(predictions, target_score[..., None]), axis=-1)
    return pt.lt(higher, top_k).astype(floatx())
