"""Argument checks shared by the objectives (graph-build time, named errors)."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.ops.index_bounds import check_index_bounds


def check_option(where, argument, value, allowed):
    if value not in allowed:
        raise ValueError(f"{where}: {argument} must be one of {tuple(allowed)}, got {value!r}")
    return value


def as_tensor(where, argument, x):
    try:
        return pt.as_tensor_variable(x)
    except Exception as error:  # PyTensor raises several types for unconvertible input
        raise TypeError(f"{where}: {argument} must be a tensor or array, got {type(x).__name__}") from error


def align_targets(predictions, targets):
    """Targets (N,) against predictions (N, 1) become (N, 1) instead of broadcasting to (N, N)."""
    if predictions.ndim == 2 and predictions.type.shape[1] == 1 and targets.ndim == 1:
        targets = targets.dimshuffle(0, "x")
    return predictions, targets


def class_axis_targets(where, predictions, targets, check_bounds=True):
    """Targets as a float tensor of the predictions' shape (classes on the last axis).

    Targets with one axis fewer are class indices (integer, or integer-valued floats as
    Theano-era code passed them); targets with the same ndim are one-hot or soft targets.
    With ``check_bounds`` an index outside ``[0, C)`` raises ``IndexError`` when the
    graph runs, on every backend (``dandelion.ops.index_bounds``); without it, it would
    match no class and give that row a loss of 0.
    """
    if targets.ndim == predictions.ndim:
        _check_static_match(where, predictions, targets)
        return targets.astype(predictions.dtype) if targets.dtype != predictions.dtype else targets
    if targets.ndim == predictions.ndim - 1:
        _check_static_match(where, predictions[..., 0], targets)
        indices = targets if targets.dtype.startswith(("int", "uint")) else pt.cast(pt.round(targets), "int64")
        classes = pt.arange(predictions.shape[-1])
        if check_bounds:
            count = predictions.type.shape[-1]
            indices = check_index_bounds(
                indices,
                predictions.shape[-1],
                f"{where}: targets holds a class index outside [0, C) for predictions with "
                f"C = {'the length of the last axis' if count is None else count} classes",
            )
        return pt.eq(indices[..., None], classes).astype(predictions.dtype)
    raise ValueError(
        f"{where}: targets must have ndim {predictions.ndim} (one-hot or soft targets) or "
        f"{predictions.ndim - 1} (class indices) for predictions of ndim {predictions.ndim}, "
        f"got ndim {targets.ndim}"
    )


def _check_static_match(where, predictions, targets):
    for axis, (p, t) in enumerate(zip(predictions.type.shape, targets.type.shape)):
        if p is not None and t is not None and p != t:
            raise ValueError(
                f"{where}: targets shape {targets.type.shape} does not match predictions shape "
                f"{predictions.type.shape} on axis {axis}"
            )


def check_num_classes(where, predictions, m):
    """``m`` (the old API's class count) must agree with the predictions' last axis."""
    known = predictions.type.shape[-1]
    if m is not None and known is not None and int(m) != known:
        raise ValueError(f"{where}: m={m} but predictions have {known} classes on the last axis")


def class_weighted(where, values, class_weight):
    """``values`` (..., C) times ``class_weight`` (C,) along the class axis."""
    if class_weight is None:
        return values
    class_weight = as_tensor(where, "class_weight", class_weight)
    if class_weight.ndim != 1:
        raise ValueError(f"{where}: class_weight must be a vector (C,), got ndim {class_weight.ndim}")
    known, given = values.type.shape[-1], class_weight.type.shape[0]
    if known is not None and given is not None and known != given:
        raise ValueError(f"{where}: class_weight has {given} entries, predictions have {known} classes")
    return values * class_weight.astype(values.dtype)


