"""Element-wise nonlinearities, Theano-era names kept."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.special import log_softmax as _log_softmax
from pytensor.tensor.special import softmax as _softmax

__all__ = [
    "sigmoid",
    "tanh",
    "relu",
    "softplus",
    "ultra_fast_sigmoid",
    "ScaledTanH",
    "ScaledTanh",
    "LeakyRectify",
    "leaky_rectify",
    "very_leaky_rectify",
    "elu",
    "SELU",
    "selu",
    "linear",
    "identity",
    "softmax",
    "log_softmax",
]


def sigmoid(x):
    return pt.sigmoid(x)


def tanh(x):
    return pt.tanh(x)


def relu(x):
    return pt.maximum(x, 0)


def softplus(x):
    return pt.softplus(x)


def ultra_fast_sigmoid(x):
    """Theano's piecewise-linear sigmoid approximation (max error about 0.02).

    Kept for compatibility; on modern CPUs the exact ``sigmoid`` costs about the same.
    """
    x = 0.5 * x
    magnitude = pt.abs(x)
    core = pt.switch(
        magnitude < 1.7,
        1.5 * x / (1 + magnitude),
        pt.switch(magnitude < 3, 0.935409070603099 + 0.0458812946797165 * (magnitude - 1.7), 0.99505475368673),
    )
    signed = pt.switch(x < 0, pt.switch(magnitude < 1.7, core, -core), core)
    return 0.5 * signed + 0.5


class ScaledTanH:
    """``scale_out * tanh(scale_in * x)``."""

    def __init__(self, scale_in=1.0, scale_out=1.0):
        self.scale_in = scale_in
        self.scale_out = scale_out

    def __call__(self, x):
        return self.scale_out * pt.tanh(self.scale_in * x)


ScaledTanh = ScaledTanH


class LeakyRectify:
    """``max(x, leakiness * x)`` for leakiness in [0, 1]."""

    def __init__(self, leakiness=0.01):
        self.leakiness = leakiness

    def __call__(self, x):
        return pt.switch(x > 0, x, self.leakiness * x)


leaky_rectify = LeakyRectify(0.01)
very_leaky_rectify = LeakyRectify(1.0 / 3)


def elu(x):
    """Clevert et al. (2015): x for x > 0, exp(x) - 1 otherwise."""
    return pt.switch(x > 0, x, pt.expm1(x))


class SELU:
    """Klambauer et al. (2017): ``scale * (x if x > 0 else scale_neg * (exp(x) - 1))``."""

    def __init__(self, scale=1.0507009873554805, scale_neg=1.6732632423543772):
        self.scale = scale
        self.scale_neg = scale_neg

    def __call__(self, x):
        return self.scale * pt.switch(x > 0, x, self.scale_neg * pt.expm1(x))


selu = SELU()


def linear(x):
    return x


identity = linear


def softmax(x):
    """Softmax over the last axis, for input of any ndim."""
    return _softmax(x, axis=-1)


def log_softmax(x):
    """Log-softmax over the last axis, for input of any ndim (stable)."""
    return _log_softmax(x, axis=-1)


