"""Native kernels as XLA CPU custom-call targets, and the choice between them and the scans.

``lstm_native`` and ``gru_native`` build their libraries and register the handlers with
``build_library`` and ``register_targets``; the Ops' JAX functions pick the kernels on
CPU and the scans on any other platform with ``per_platform``.
"""

from __future__ import annotations

import jax

from dandelion.ops import native

_FFI_NAMES = ("ffi_call", "include_dir", "pycapsule", "register_ffi_target")


def jax_ffi_available():
    """False for a JAX before its ``jax.ffi`` module (which keeps the scans)."""
    return all(hasattr(getattr(jax, "ffi", None), name) for name in _FFI_NAMES)


def build_library(name, code, family):
    """``native.load_kernels`` with XLA's FFI headers on the include path (None where it could not be built)."""
    return native.load_kernels(name, code, family, (f"-I{jax.ffi.include_dir()}",))


def register_targets(library, entries):
    """``{dtype: target names}`` for each entry ``dandelion_X`` (handler ``dandelion_xla_X_{dtype}``), registered for CPU."""
    targets = {}
    for dtype in ("float32", "float64"):
        names = []
        for entry in entries:
            name = f"{entry}_{dtype}"
            handler = getattr(library, f"dandelion_xla_{entry.removeprefix('dandelion_')}_{dtype}")
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(handler), platform="cpu")
            names.append(name)
        targets[dtype] = tuple(names)
    return targets


def per_platform(node, op, targets_of, native_kernel, scan_kernel, entry):
    """The Op's function: ``native_kernel(op, dtype, target)`` on CPU, ``scan_kernel(op, dtype)`` elsewhere.

    ``targets_of()`` gives ``{dtype: target names}`` or None (then the scans run on CPU
    too, as with ``DANDELION_NATIVE_KERNELS=0``); ``entry`` picks the target (0 forward,
    1 backward).
    """
    dtype = node.outputs[0].dtype
    scan_fn = scan_kernel(op, dtype)
    targets = targets_of() if native.native_kernels_enabled() else None
    if targets is None:
        return scan_fn
    native_fn = native_kernel(op, dtype, targets[dtype][entry])
    return lambda *args: jax.lax.platform_dependent(*args, cpu=native_fn, default=scan_fn)
