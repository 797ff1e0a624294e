"""JAX is an optional extra: import it only when a distributed call needs it."""

from __future__ import annotations

import importlib

INSTALL_HINT = "pip install 'dandelion[jax]' (CPU) or 'dandelion[cuda]' (NVIDIA GPUs)"


def require_jax(where):
    """``jax`` itself, or an ImportError naming ``where`` and how to install JAX."""
    try:
        return importlib.import_module("jax")
    except ImportError as error:
        raise ImportError(f"{where}: needs JAX, which is not installed; expected an importable 'jax' ({INSTALL_HINT})") from error
