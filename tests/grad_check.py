"""Finite-difference gradient checks compiled with JAX, the cheapest backend to compile cold.

``tests.helpers.verify_grad`` compiles with PyTensor's default mode (Numba on PyTensor
3), which costs minutes on a cold cache for graphs with scans; JAX compiles the same
float64 graphs in seconds. Same tolerances as the helper; FAST_RUN without JAX.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytensor

MODE = "JAX" if importlib.util.find_spec("jax") is not None else "FAST_RUN"


def verify_grad(fn, values, rel_tol=1e-3, abs_tol=1e-3):
    values = [np.asarray(v, dtype="float64") for v in values]
    pytensor.gradient.verify_grad(
        fn, values, rng=np.random.default_rng(0), eps=1e-6, rel_tol=rel_tol, abs_tol=abs_tol, mode=MODE
    )
