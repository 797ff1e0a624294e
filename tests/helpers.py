"""Shared test helpers: compile per backend, compare, finite-difference gradients."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode

import dandelion

FLOAT32_TOL = {"rtol": 1e-4, "atol": 1e-5}


def compile_fn(inputs, outputs, backend, updates=None, **kwargs):
    return dandelion.function(inputs, outputs, updates=updates, mode=backend, **kwargs)


def ftensor(name, shape):
    """float32 input with a static shape (JAX needs static shapes)."""
    return pt.tensor(name, shape=tuple(shape), dtype="float32")


def randn(*shape, scale=1.0):
    return (scale * np.random.randn(*shape)).astype("float32")


def assert_close(actual, expected, rtol=FLOAT32_TOL["rtol"], atol=FLOAT32_TOL["atol"], err_msg=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, err_msg=err_msg)


# Finite differences need float64 graphs, compiled cheaply: JAX compiles them in seconds
# where Numba (PyTensor 3's FAST_RUN) takes tens of seconds per scan graph on a cold cache.
# PY_MODE runs the Ops' NumPy kernels (no compilation at all).
PY_MODE = Mode(linker="py", optimizer="fast_compile")
GRAD_MODE = "JAX" if importlib.util.find_spec("jax") is not None else PY_MODE


def verify_grad(fn, values, mode=GRAD_MODE, rel_tol=1e-3, abs_tol=1e-3, rng=None):
    """``pytensor.gradient.verify_grad`` on float64 copies of ``values``.

    mode : where the gradient graph runs: ``GRAD_MODE`` (default), ``PY_MODE`` for Ops
        whose NumPy kernels are the ones under test, or any backend name.
    """
    values = [np.asarray(v, dtype="float64") for v in values]
    pytensor.gradient.verify_grad(
        fn, values, rng=rng or np.random.default_rng(0), eps=1e-6, rel_tol=rel_tol, abs_tol=abs_tol, mode=mode
    )



def c_kernel_blas_flags():
    """``blas__ldflags`` under which dandelion's C kernels (``dandelion.ops.c.blas``) find a BLAS.

    The configured flags; else "" where NumPy bundles an OpenBLAS (the kernels link that
    one, as on a plain ``pip install``); else ``-lopenblas`` if it links here; else None.
    """
    from dandelion.ops.c.numpy_blas import numpy_openblas

    if pytensor.config.blas__ldflags:
        return pytensor.config.blas__ldflags
    if numpy_openblas() is not None:
        return ""
    return system_openblas_flags()


def system_openblas_flags():
    """``-lopenblas`` if a system OpenBLAS links here (Debian's libopenblas-dev), else None."""
    from pytensor.link.c.cmodule import GCC_compiler

    return "-lopenblas" if GCC_compiler.try_flags(["-lopenblas"]) else None
