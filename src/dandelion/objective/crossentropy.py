"""Cross-entropy losses for binary and categorical predictions."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.objective._checks import (
    align_targets,
    as_tensor,
    check_num_classes,
    class_axis_targets,
    class_weighted,
)


def binary_crossentropy(predictions, targets):
    """Element-wise binary cross-entropy ``-t log(p) - (1 - t) log(1 - p)``.

    Parameters
    ----------
    predictions : (...) tensor
        Probabilities in (0, 1), e.g. sigmoid outputs. A column ``(N, 1)`` is compared
        with targets ``(N,)`` row by row.
    targets : (...) tensor
        Targets in [0, 1].

    Returns
    -------
    (...) tensor, the loss per element.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> loss = binary_crossentropy(pt.fvector("p"), pt.fvector("t"))
    """
    where = "binary_crossentropy"
    predictions, targets = align_targets(
        as_tensor(where, "predictions", predictions), as_tensor(where, "targets", targets)
    )
    targets = targets.astype(predictions.dtype) if targets.dtype != predictions.dtype else targets
    return -(targets * pt.log(predictions) + (1 - targets) * pt.log1p(-predictions))


def categorical_crossentropy(predictions, targets, eps=1e-7, m=None, class_weight=None, check_bounds=True):
    """Categorical cross-entropy ``-sum_c t_c w_c log(p_c)`` over the last axis.

    Parameters
    ----------
    predictions : (..., C) tensor
        Class probabilities, e.g. softmax outputs.
    targets : (...) int tensor or (..., C) float tensor
        Class indices, or one-hot / soft targets of the predictions' shape.
    eps : float
        Predictions are clipped to ``[eps, 1 - eps]`` before the log (0 disables).
    m : int, optional
        Number of classes, as the old API took it for index targets; the class count
        is read from ``predictions``, and ``m`` is checked against its static length.
    class_weight : (C,) tensor or array, optional
        Weight of each class.
    check_bounds : bool
        Index targets outside ``[0, C)`` raise ``IndexError`` when the compiled graph
        runs, on every backend (on JAX from a host callback, as a ``JaxRuntimeError``
        carrying the message). ``False`` skips the check for labels known to be valid;
        an out-of-range label then silently gets a loss of 0.

    Returns
    -------
    (...) tensor, the loss per item.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> loss = categorical_crossentropy(pt.fmatrix("p"), pt.lvector("labels"))
    """
    where = "categorical_crossentropy"
    predictions = as_tensor(where, "predictions", predictions)
    targets = as_tensor(where, "targets", targets)
    check_num_classes(where, predictions, m)
    if eps > 0:
        # Constants in the predictions' dtype: a float64 eps would upcast the loss.
        dtype = predictions.dtype
        predictions = pt.clip(predictions, np.asarray(eps, dtype), np.asarray(1.0 - eps, dtype))
    dense = class_axis_targets(where, predictions, targets, check_bounds)
    return -pt.sum(class_weighted(where, dense * pt.log(predictions), class_weight), axis=-1)


def categorical_crossentropy_log(log_predictions, targets, m=None, class_weight=None, check_bounds=True):
    """Categorical cross-entropy from log-probabilities (e.g. ``log_softmax`` outputs).

    Parameters
    ----------
    log_predictions : (..., C) tensor
    targets : (...) int tensor or (..., C) float tensor
        Class indices, or one-hot / soft targets.
    m : int, optional
        Number of classes (checked against the static length of the last axis).
    class_weight : (C,) tensor or array, optional
    check_bounds : bool
        As for ``categorical_crossentropy``.

    Returns
    -------
    (...) tensor, the loss per item.
    """
    where = "categorical_crossentropy_log"
    log_predictions = as_tensor(where, "log_predictions", log_predictions)
    targets = as_tensor(where, "targets", targets)
    check_num_classes(where, log_predictions, m)
    dense = class_axis_targets(where, log_predictions, targets, check_bounds)
    return -pt.sum(class_weighted(where, dense * log_predictions, class_weight), axis=-1)
