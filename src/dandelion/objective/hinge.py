"""Hinge (margin) losses."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion._scalars import scalar_like
from dandelion.objective._checks import align_targets, as_tensor, class_axis_targets


def binary_hinge_loss(predictions, targets, delta=1, log_odds=None, binary=True):
    """Element-wise binary hinge loss ``max(0, delta - t * p)``.

    Parameters
    ----------
    predictions : (...) tensor
        Log-odds (sigmoid inputs) when ``log_odds`` is True or None, probabilities in
        (0, 1) when False.
    targets : (...) tensor
        In {0, 1} when ``binary``, else in {-1, 1}.
    delta : float
        Margin.
    log_odds : bool or None
        None means True. (The Theano-era code raised a FutureWarning here, announcing a
        change of default that never came.)
    binary : bool

    Returns
    -------
    (...) tensor
    """
    where = "binary_hinge_loss"
    predictions = as_tensor(where, "predictions", predictions)
    targets = as_tensor(where, "targets", targets)
    if log_odds is False:
        predictions = pt.log(predictions / (1 - predictions))
    if binary:
        targets = 2 * targets - 1
    predictions, targets = align_targets(predictions, targets)
    return pt.maximum(0, scalar_like(delta, predictions.dtype) - predictions * targets.astype(predictions.dtype))


def multiclass_hinge_loss(predictions, targets, delta=1):
    """Item-wise multi-class hinge loss ``max(0, max_{j != t} p_j - p_t + delta)``.

    Parameters
    ----------
    predictions : (..., C) tensor
        Scores or probabilities, classes on the last axis.
    targets : (...) int tensor or (..., C) one-hot tensor
    delta : float
        Margin.

    Returns
    -------
    (...) tensor
    """
    where = "multiclass_hinge_loss"
    predictions = as_tensor(where, "predictions", predictions)
    targets = as_tensor(where, "targets", targets)
    is_target = pt.gt(class_axis_targets(where, predictions, targets), 0)
    correct = pt.sum(pt.switch(is_target, predictions, 0), axis=-1)
    rest = pt.max(pt.switch(is_target, np.array(-np.inf, dtype=predictions.dtype), predictions), axis=-1)
    return pt.maximum(0, rest - correct + scalar_like(delta, predictions.dtype))
