"""Dandelion: a light symbolic neural-network library on PyTensor.

Plain tensors in and out; modules with ``forward`` (training) and ``predict``
(inference); parameters registered and collected explicitly; graphs compiled for the
C, Numba or JAX backend with ``dandelion.function``.
"""

from dandelion.compile import function, resolve_mode
from dandelion.config import floatx

__version__ = "0.1.0"

__all__ = ["function", "resolve_mode", "floatx", "__version__"]
