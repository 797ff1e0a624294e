"""``LayerNorm`` and ``RMSNorm``: per-sample normalisation over the trailing axes."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.functional.layernorm import check_normalized_shape, layer_norm, normalized_axes, rms_norm
from dandelion.module.base import Module


class LayerNorm(Module):
    """Layer normalisation (Ba et al. 2016) over the trailing ``normalized_shape`` axes.

    The same statistics serve training and inference (``predict`` is ``forward``).

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing axes of the input the statistics are taken over.
    eps : float
        Added to the biased variance before the square root.
    elementwise_affine : bool
        Learn a scale ``gamma`` (initially 1) and a shift ``beta`` (initially 0), each
        of ``normalized_shape``.
    bias : bool
        With ``elementwise_affine``, whether ``beta`` exists.

    ``forward(input)``: (..., *normalized_shape) -> the same shape.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import LayerNorm
    >>> LayerNorm(16).forward(pt.tensor("x", shape=(2, 7, 16))).type.shape
    (2, 7, 16)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, name=None):
        super().__init__(name=name)
        self.normalized_shape = check_normalized_shape("LayerNorm", normalized_shape)
        self.eps = float(eps)
        affine = bool(elementwise_affine)
        self.gamma = self.register_param(init.Constant(1.0), shape=self.normalized_shape) if affine else None
        self.beta = self.register_param(init.Constant(0.0), shape=self.normalized_shape) if affine and bias else None

    def forward(self, input):
        input = _checked("LayerNorm", input, self.normalized_shape)
        return layer_norm(input, self.normalized_shape, gamma=self.gamma, beta=self.beta, eps=self.eps)


class RMSNorm(Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019) over the trailing axes.

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float
        Added to the mean square before the square root.
    elementwise_affine : bool
        Learn a scale ``gamma`` of ``normalized_shape`` (initially 1).

    ``forward(input)``: (..., *normalized_shape) -> the same shape.
    """

    def __init__(self, normalized_shape, eps=1e-6, elementwise_affine=True, name=None):
        super().__init__(name=name)
        self.normalized_shape = check_normalized_shape("RMSNorm", normalized_shape)
        self.eps = float(eps)
        self.gamma = self.register_param(init.Constant(1.0), shape=self.normalized_shape) if elementwise_affine else None

    def forward(self, input):
        input = _checked("RMSNorm", input, self.normalized_shape)
        return rms_norm(input, self.normalized_shape, gamma=self.gamma, eps=self.eps)


def _checked(where, input, normalized_shape):
    """The input, its trailing axes checked under the module's name."""
    input = pt.as_tensor_variable(input)
    normalized_axes(where, input, normalized_shape)
    return input
