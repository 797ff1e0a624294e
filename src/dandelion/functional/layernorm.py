"""Layer and RMS normalisation over the trailing axes (no state, no parameters)."""

from __future__ import annotations

import numbers

import pytensor.tensor as pt

from dandelion.ops.batch_norm import batch_norm_train, fusable


def check_normalized_shape(where, normalized_shape):
    """``normalized_shape`` (an int or a tuple of ints) as a tuple of positive ints."""
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    if not shape or not all(isinstance(n, numbers.Integral) and n > 0 for n in shape):
        raise ValueError(f"{where}: normalized_shape must be a positive int or a tuple of positive ints, got {normalized_shape!r}")
    return tuple(int(n) for n in shape)


def normalized_axes(where, x, normalized_shape):
    """The trailing axes of ``x`` that ``normalized_shape`` names, checked against x's static shape.

    Returns ``(shape, axes)``: ``normalized_shape`` as a tuple of ints and the axes it covers.
    """
    shape = check_normalized_shape(where, normalized_shape)
    if x.ndim < len(shape):
        raise ValueError(
            f"{where}: input must have at least {len(shape)} axes to normalise over normalized_shape {shape}, got ndim {x.ndim}"
        )
    trailing = x.type.shape[x.ndim - len(shape):]
    if any(actual is not None and actual != wanted for actual, wanted in zip(trailing, shape)):
        raise ValueError(
            f"{where}: input's trailing axes must have shape normalized_shape {shape}, got {trailing} (static shape {x.type.shape})"
        )
    return shape, tuple(range(x.ndim - len(shape), x.ndim))


def _scale_shift(out, gamma, beta):
    if gamma is not None:
        out = out * pt.as_tensor_variable(gamma).astype(out.dtype)
    if beta is not None:
        out = out + pt.as_tensor_variable(beta).astype(out.dtype)
    return out


def layer_norm(x, normalized_shape, gamma=None, beta=None, eps=1e-5):
    """Layer normalisation (Ba et al. 2016): each sample standardised over its trailing axes.

    Parameters
    ----------
    x : (..., *normalized_shape)
    normalized_shape : int or tuple of int
        The trailing axes the statistics are taken over (checked against x's static shape).
    gamma, beta : normalized_shape, or None
        Elementwise scale and shift; None skips one.
    eps : float
        Added to the biased variance before the square root.

    Returns
    -------
    tensor of x's shape: ``(x - mean) / sqrt(var + eps) * gamma + beta``.

    Examples
    --------
    >>> import pytensor.tensor as pt

from dandelion.ops.batch_norm import batch_norm_train, fusable
    >>> from dandelion.functional import layer_norm
    >>> layer_norm(pt.tensor("x", shape=(2, 5, 8)), 8).type.shape
    (2, 5, 8)
    """
    x = pt.as_tensor_variable(x)
    _, axes = normalized_axes("layer_norm", x, normalized_shape)
    if x.dtype.startswith("float") and fusable(x.ndim, axes):
        # The fused BatchNorm Ops normalise over any axes with the others kept: over the
        # trailing ones they are layer norm's statistics in one pass each way, where the
        # graph below is two reductions and half a dozen broadcasting nodes forward and
        # more backward (W5 inference on C: 8 reductions of 0.4 ms each).
        normalised, _, _ = batch_norm_train(x, axes, eps)
        return _scale_shift(normalised, gamma, beta)
    mean = pt.mean(x, axis=axes, keepdims=True)
    # centre first: a float32 E[x^2] - E[x]^2 loses the variance when |mean| >> std
    centred = x - mean
    var = pt.mean(pt.sqr(centred), axis=axes, keepdims=True)
    return _scale_shift(centred / pt.sqrt(var + pt.constant(eps, dtype=x.dtype)), gamma, beta)


def rms_norm(x, normalized_shape, gamma=None, eps=1e-6):
    """Root-mean-square normalisation (Zhang & Sennrich 2019): no centring, no shift.

    Parameters
    ----------
    x : (..., *normalized_shape)
    normalized_shape : int or tuple of int
    gamma : normalized_shape, or None
    eps : float
        Added to the mean square before the square root.

    Returns
    -------
    tensor of x's shape: ``x / sqrt(mean(x^2) + eps) * gamma``.
    """
    x = pt.as_tensor_variable(x)
    _, axes = normalized_axes("rms_norm", x, normalized_shape)
    mean_square = pt.mean(pt.sqr(x), axis=axes, keepdims=True)
    return _scale_shift(x / pt.sqrt(mean_square + pt.constant(eps, dtype=x.dtype)), gamma, None)
