"""Parameter initializers: callables that return a floatX NumPy array of a given shape.

Random draws use NumPy's global generator, so ``np.random.seed`` makes them repeatable,
as in the Theano-era library and Lasagne.
"""

from __future__ import annotations

import numpy as np

from dandelion.config import floatx

__all__ = [
    "Initializer",
    "Normal",
    "Uniform",
    "Glorot",
    "GlorotNormal",
    "GlorotUniform",
    "He",
    "HeNormal",
    "HeUniform",
    "Constant",
    "Sparse",
    "Orthogonal",
]


def _as_floatx(array):
    return np.asarray(array, dtype=floatx())


def _resolve_gain(gain):
    if gain == "relu":
        return np.sqrt(2.0)
    if isinstance(gain, str):
        raise ValueError(f"Initializer: gain must be a number or 'relu', got {gain!r}")
    return float(gain)


class Initializer:
    """Base class: ``init(shape)`` is ``init.sample(shape)``."""

    def __call__(self, shape):
        return self.sample(shape)

    def sample(self, shape):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Normal(Initializer):
    """Draws from N(mean, std**2)."""

    def __init__(self, std=0.01, mean=0.0):
        self.std = std
        self.mean = mean

    def sample(self, shape):
        return _as_floatx(np.random.normal(self.mean, self.std, size=shape))


class Uniform(Initializer):
    """Draws from U(a, b).

    ``range`` a number r gives (-r, r), a pair gives (a, b); ``std`` (if given) wins and
    gives the interval of that standard deviation around ``mean``.
    """

    def __init__(self, range=0.01, std=None, mean=0.0):
        if std is not None:
            half_width = np.sqrt(3) * std
            low, high = mean - half_width, mean + half_width
        else:
            try:
                low, high = range
            except TypeError:
                low, high = -range, range
            low, high = low + mean, high + mean
        self.range = (low, high)

    def sample(self, shape):
        return _as_floatx(np.random.uniform(self.range[0], self.range[1], size=shape))


def _fans(shape, c01b):
    """(fan_in, fan_out) with the convolution convention for ndim > 2."""
    if c01b:
        if len(shape) != 4:
            raise ValueError(f"Initializer: c01b requires a 4-D shape, got {shape}")
        receptive = shape[1] * shape[2]
        return shape[0] * receptive, shape[3] * receptive
    if len(shape) < 2:
        raise ValueError(f"Initializer: shape must have at least 2 axes, got {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[0] * receptive, shape[1] * receptive


class Glorot(Initializer):
    """Glorot & Bengio (2010): std = gain * sqrt(2 / (fan_in + fan_out)).

    ``initializer`` is ``Normal`` or ``Uniform`` (the class), built with that std.
    """

    def __init__(self, initializer, gain=1.0, c01b=False):
        self.initializer = initializer
        self.gain = _resolve_gain(gain)
        self.c01b = c01b

    def sample(self, shape):
        fan_a, fan_b = _fans(shape, self.c01b)
        std = self.gain * np.sqrt(2.0 / (fan_a + fan_b))
        return self.initializer(std=std).sample(shape)


class GlorotNormal(Glorot):
    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Normal, gain, c01b)


class GlorotUniform(Glorot):
    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Uniform, gain, c01b)


class He(Initializer):
    """He et al. (2015): std = gain * sqrt(1 / fan_in).

    fan_in is ``shape[0]`` for a 2-D (input, output) matrix, and the product of all axes
    but the first for a convolution filter bank (out, in, kh, kw).
    """

    def __init__(self, initializer, gain=1.0, c01b=False):
        self.initializer = initializer
        self.gain = _resolve_gain(gain)
        self.c01b = c01b

    def sample(self, shape):
        if self.c01b:
            if len(shape) != 4:
                raise ValueError(f"He: c01b requires a 4-D shape, got {shape}")
            fan_in = int(np.prod(shape[:3]))
        elif len(shape) == 2:
            fan_in = shape[0]
        elif len(shape) > 2:
            fan_in = int(np.prod(shape[1:]))
        else:
            raise ValueError(f"He: shape must have at least 2 axes, got {shape}")
        std = self.gain * np.sqrt(1.0 / fan_in)
        return self.initializer(std=std).sample(shape)


class HeNormal(He):
    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Normal, gain, c01b)


class HeUniform(He):
    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Uniform, gain, c01b)


class Constant(Initializer):
    """Every entry ``val``, in floatX.

    Examples
    --------
    >>> from dandelion.initialization import Constant
    >>> Constant(0.5)((2, 3)).tolist()
    [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
    """

    def __init__(self, val=0.0):
        self.val = val

    def sample(self, shape):
        return _as_floatx(np.full(shape, self.val))


class Sparse(Initializer):
    """A 2-D matrix with ``int(sparsity * rows)`` N(0, std**2) entries per column."""

    def __init__(self, sparsity=0.1, std=0.01):
        self.sparsity = sparsity
        self.std = std

    def sample(self, shape):
        if len(shape) != 2:
            raise ValueError(f"Sparse: only 2-D shapes are supported, got {shape}")
        weights = np.zeros(shape)
        nonzero_per_column = int(self.sparsity * shape[0])
        for column in range(shape[1]):
            rows = np.random.permutation(shape[0])[:nonzero_per_column]
            weights[rows, column] = np.random.normal(0.0, self.std, size=nonzero_per_column)
        return _as_floatx(weights)


class Orthogonal(Initializer):
    """Saxe et al. (2013): an orthogonal matrix (rows or columns), times ``gain``.

    For ndim > 2 the trailing axes are flattened: (shape[0], prod(shape[1:])).

    Examples
    --------
    >>> import numpy as np
    >>> from dandelion.initialization import Orthogonal
    >>> q = Orthogonal()((3, 3))
    >>> bool(np.allclose(q @ q.T, np.eye(3), atol=1e-5))
    True
    """

    def __init__(self, gain=1.0):
        self.gain = _resolve_gain(gain)

    def sample(self, shape):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: shape must have at least 2 axes, got {shape}")
        flat_shape = (shape[0], int(np.prod(shape[1:])))
        gaussian = np.random.normal(0.0, 1.0, size=flat_shape)
        left, _, right = np.linalg.svd(gaussian, full_matrices=False)
        basis = left if left.shape == flat_shape else right
        return _as_floatx(self.gain * basis.reshape(shape))
