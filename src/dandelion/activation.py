"""Element-wise nonlinearities, Theano-era names kept."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad

from dandelion._scalars import scalar_like

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
    "gelu",
    "gelu_tanh",
    "silu",
    "swish",
    "mish",
    "HardSigmoid",
    "hard_sigmoid",
    "hard_tanh",
]


def _like(value, x):
    """``value`` as a constant of ``x``'s dtype (see ``dandelion._scalars``)."""
    return scalar_like(value, x.dtype)


def sigmoid(x):
    return pt.sigmoid(x)


def tanh(x):
    return pt.tanh(x)


def relu(x, alpha=0):
    """Rectifier with an optional slope for negative inputs (Theano's ``relu``).

    Parameters
    ----------
    x : tensor
    alpha : number or tensor broadcastable against x
        Slope for ``x < 0``; a shared variable makes it learnable (parametric ReLU).
        The result is ``0.5 (1 + alpha) x + 0.5 (1 - alpha) |x|``: x where x > 0,
        ``alpha x`` elsewhere.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.activation import relu
    >>> relu(pt.constant([-2.0, 3.0]), 0.5).eval()
    array([-1.,  3.])
    """
    x = pt.as_tensor_variable(x)
    if isinstance(alpha, (int, float, np.number)):
        if alpha == 0:
            return pt.maximum(x, 0)
        alpha = _like(alpha, x)
    else:
        alpha = pt.as_tensor_variable(alpha)
    half = _like(0.5, x)
    return half * (1 + alpha) * x + half * (1 - alpha) * pt.abs(x)


def softplus(x):
    return pt.softplus(x)


def ultra_fast_sigmoid(x):
    """Theano's piecewise-linear sigmoid approximation (max error about 0.02).

    Kept for compatibility; on modern CPUs the exact ``sigmoid`` costs about the same.
    """
    x = 0.5 * pt.as_tensor_variable(x)
    magnitude = pt.abs(x)
    middle = _like(0.935409070603099, x) + _like(0.0458812946797165, x) * (magnitude - _like(1.7, x))
    core = pt.switch(
        magnitude < _like(1.7, x),
        1.5 * x / (1 + magnitude),
        pt.switch(magnitude < 3, middle, _like(0.99505475368673, x)),
    )
    signed = pt.switch(x < 0, pt.switch(magnitude < _like(1.7, x), core, -core), core)
    return 0.5 * signed + 0.5


class ScaledTanH:
    """``scale_out * tanh(scale_in * x)``."""

    def __init__(self, scale_in=1.0, scale_out=1.0):
        self.scale_in = scale_in
        self.scale_out = scale_out

    def __call__(self, x):
        x = pt.as_tensor_variable(x)
        return _like(self.scale_out, x) * pt.tanh(_like(self.scale_in, x) * x)


ScaledTanh = ScaledTanH


class LeakyRectify:
    """``max(x, leakiness * x)`` for leakiness in [0, 1]."""

    def __init__(self, leakiness=0.01):
        self.leakiness = leakiness

    def __call__(self, x):
        x = pt.as_tensor_variable(x)
        return pt.switch(x > 0, x, _like(self.leakiness, x) * x)


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
        x = pt.as_tensor_variable(x)
        return _like(self.scale, x) * pt.switch(x > 0, x, _like(self.scale_neg, x) * pt.expm1(x))


selu = SELU()


def linear(x):
    return x


identity = linear


def softmax(x):
    """Softmax over the last axis, for input of any ndim.

    Written as ``exp(x - logsumexp(x))`` rather than PyTensor's ``softmax``: PyTensor 3.0
    turns ``exp(x) / sum(exp(x))`` into its ``Softmax`` Op, which the C backend runs
    through Python (an inner compiled function per call: 6 ms for a (64, 10) batch).
    Without a division nothing is rewritten back, every backend fuses the elementwise
    work, and ``log(softmax(x))`` simplifies to the stable ``x - logsumexp(x)``.

    Parameters
    ----------
    x : (..., N)

    Returns
    -------
    (..., N), each row summing to one

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.activation import softmax
    >>> softmax(pt.constant([[0.0, 0.0], [0.0, 1000.0]])).eval().round(3)
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    x = pt.as_tensor_variable(x)
    return pt.exp(x - _logsumexp_last(x))


def _logsumexp_last(x):
    """``log(sum(exp(x)))`` over the last axis, kept for broadcasting; overflow-safe."""
    # the shift only guards exp against overflow; it cancels, so no gradient flows through it
    shift = zero_grad(pt.max(x, axis=-1, keepdims=True))
    return shift + pt.log(pt.sum(pt.exp(x - shift), axis=-1, keepdims=True))


def log_softmax(x):
    """Log-softmax over the last axis, for input of any ndim (stable).

    ``x - logsumexp(x)``, for the reason ``softmax`` gives: PyTensor's ``LogSoftmax`` Op
    runs through Python on PyTensor 3.0's C backend.

    Parameters
    ----------
    x : (..., N)

    Returns
    -------
    (..., N)

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.activation import log_softmax
    >>> log_softmax(pt.constant([0.0, 1000.0])).eval().round(3)  # no overflow
    array([-1000.,     0.])
    """
    x = pt.as_tensor_variable(x)
    return x - _logsumexp_last(x)




def gelu(x):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016), exact: ``x * Phi(x)``.

    ``Phi`` is the standard normal CDF, ``0.5 * (1 + erf(x / sqrt(2)))``.
    """
    x = pt.as_tensor_variable(x)
    return _like(0.5, x) * x * (1 + pt.erf(x * _like(1 / np.sqrt(2), x)))


def gelu_tanh(x):
    """GELU's tanh approximation: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    The form BERT and GPT-2 were trained with; within 1e-3 of ``gelu``.
    """
    x = pt.as_tensor_variable(x)
    inner = _like(np.sqrt(2 / np.pi), x) * (x + _like(0.044715, x) * x**3)
    return _like(0.5, x) * x * (1 + pt.tanh(inner))


def silu(x):
    """Sigmoid-weighted linear unit ``x * sigmoid(x)`` (Elfwing et al. 2017; "swish" with beta 1)."""
    x = pt.as_tensor_variable(x)
    return x * pt.sigmoid(x)


swish = silu


def mish(x):
    """Mish (Misra 2019): ``x * tanh(softplus(x))``."""
    x = pt.as_tensor_variable(x)
    return x * pt.tanh(pt.softplus(x))


class HardSigmoid:
    """``clip(slope * x + offset, 0, 1)``, a piecewise-linear sigmoid.

    The default is Theano's ``hard_sigmoid`` (slope 0.2, offset 0.5); PyTorch's and
    Keras 3's ``relu6(x + 3) / 6`` is ``HardSigmoid(slope=1/6)``.
    """

    def __init__(self, slope=0.2, offset=0.5):
        self.slope = slope
        self.offset = offset

    def __call__(self, x):
        x = pt.as_tensor_variable(x)
        return pt.clip(_like(self.slope, x) * x + _like(self.offset, x), _like(0, x), _like(1, x))


hard_sigmoid = HardSigmoid()


def hard_tanh(x):
    """``clip(x, -1, 1)``."""
    x = pt.as_tensor_variable(x)
    return pt.clip(x, _like(-1, x), _like(1, x))
