"""Norm constraints on weights and gradients."""

from __future__ import annotations

import pytensor.tensor as pt


def norm_constraint(tensor_var, max_norm, norm_axes=None, epsilon=1e-7):
    """Rescale ``tensor_var`` so its norms over ``norm_axes`` are at most ``max_norm``.

    Parameters
    ----------
    tensor_var : tensor of ndim 2 to 5 (any ndim with ``norm_axes``)
    max_norm : float or symbolic scalar
    norm_axes : tuple of int, optional
        Default: ``(0,)`` for 2-D (dense weights, one norm per output unit), all but
        axis 0 for 3- to 5-D (convolution filters).
    epsilon : float
        Keeps the division finite for zero norms.

    Returns
    -------
    tensor shaped like ``tensor_var``.
    """
    tensor_var = pt.as_tensor_variable(tensor_var)
    ndim = tensor_var.ndim
    if norm_axes is not None:
        axes = tuple(norm_axes)
        bad = [a for a in axes if not -ndim <= a < ndim]
        if bad:
            raise ValueError(f"norm_constraint: norm_axes {axes} out of range for a tensor of ndim {ndim}")
    elif ndim == 2:
        axes = (0,)
    elif ndim in (3, 4, 5):
        axes = tuple(range(1, ndim))
    else:
        raise ValueError(f"norm_constraint: no default norm_axes for a tensor of ndim {ndim}; give norm_axes")
    dtype = tensor_var.dtype
    norms = pt.sqrt(pt.sum(pt.square(tensor_var), axis=axes, keepdims=True))
    target = pt.clip(norms, 0, pt.cast(max_norm, dtype))
    return tensor_var * pt.cast(target / (epsilon + norms), dtype)


def total_norm_constraint(tensor_vars, max_norm, epsilon=1e-7, return_norm=False):
    """Rescale a list of tensors together so their joint L2 norm is at most ``max_norm``.

    Typically applied to gradients before an optimizer (gradient clipping).

    Parameters
    ----------
    tensor_vars : list of tensors
    max_norm : float or symbolic scalar
    epsilon : float
    return_norm : bool
        Also return the joint norm before rescaling.

    Returns
    -------
    list of tensors, or ``(list, norm)`` with ``return_norm``.
    """
    tensor_vars = [pt.as_tensor_variable(v) for v in tensor_vars]
    if not tensor_vars:
        raise ValueError("total_norm_constraint: tensor_vars is empty")
    dtype = tensor_vars[0].dtype
    norm = pt.sqrt(sum(pt.sum(pt.square(v)) for v in tensor_vars))
    target = pt.clip(norm, 0, pt.cast(max_norm, dtype))
    multiplier = pt.cast(target / (epsilon + norm), dtype)
    scaled = [v * multiplier for v in tensor_vars]
    return (scaled, norm) if return_norm else scaled
