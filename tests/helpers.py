"""Shared test helpers: compile per backend, compare, finite-difference gradients."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from hypothesis import strategies as st

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


def verify_grad(fn, values, eps=1e-3, rel_tol=1e-3, abs_tol=1e-3, rng=None):
    """``pytensor.gradient.verify_grad`` in float64 on the Python/C default mode.

    Finite differences need float64; build the graph from float64 inputs.
    """
    values = [np.asarray(v, dtype="float64") for v in values]
    pytensor.gradient.verify_grad(
        fn, values, rng=rng or np.random.default_rng(0), eps=1e-6, rel_tol=rel_tol, abs_tol=abs_tol, mode="FAST_RUN"
    )


# Shared hypothesis strategies (one place, as array-api-tests does).
small_dim = st.integers(min_value=1, max_value=5)
batch_size = st.integers(min_value=1, max_value=4)
