"""Library-wide numeric defaults, resolved when used (nothing is written at import)."""

from __future__ import annotations

import pytensor

from dandelion._compat import floatx_is_user_choice

DEFAULT_FLOATX = "float32"


def floatx() -> str:
    """dtype of parameters and of the library's own tensors.

    ``float32``, as the Theano-era library, unless the user chose PyTensor's ``floatX``
    (``PYTENSOR_FLAGS=floatX=float64``, ``.pytensorrc`` or ``pytensor.config.floatX = ...``).
    """
    if floatx_is_user_choice():
        return pytensor.config.floatX
    return DEFAULT_FLOATX
