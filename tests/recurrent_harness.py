"""Compile-once helpers for the recurrent tests.

A scan graph costs seconds to compile (tens of seconds on a cold C cache), so each
test module compiles a few fixed configurations once per backend and lets hypothesis
draw only data, masks and weights. C and Numba compile with dynamic (T, B) and take
any drawn length; JAX needs static shapes, so it draws from a few fixed ones.
"""

from __future__ import annotations

import pytensor.tensor as pt
from hypothesis import strategies as st

from tests.helpers import compile_fn

_COMPILED = {}

JAX_SHAPES = ((1, 1), (3, 2), (5, 3))


def compiled(key, build):
    """``build()`` once per ``key`` for the whole test session."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]


def static_or_none(backend, value):
    return value if backend == "jax" else None


def time_batch(backend):
    """Strategy for (T, B): free for C/Numba, a fixed few for JAX."""
    if backend == "jax":
        return st.sampled_from(JAX_SHAPES)
    return st.tuples(st.integers(1, 6), st.integers(1, 4))


def compile_module_graph(backend, key, make_inputs, make_outputs):
    """Compile ``make_outputs(*inputs)`` for ``backend`` once per ``key``."""

    def build():
        inputs = make_inputs()
        return compile_fn(inputs, make_outputs(*inputs), backend)

    return compiled((backend,) + tuple(key), build)


def f32(name, shape):
    return pt.tensor(name, shape=tuple(shape), dtype="float32")


def sequence_weights(module):
    """(W_in, b_in, W_hid) values of an LSTM or GRU, as the reference loops take them."""
    return module.W_in.get_value(), module.b_in.get_value(), module.W_hid.get_value()


def randomize_weights(module, rng, scale=0.6):
    """Replace every parameter value by N(0, scale^2) draws, so tests do not rely on
    small initial weights (or zero biases) hiding a wrong formula."""
    for variable in module.params:
        value = variable.get_value()
        variable.set_value((scale * rng.standard_normal(value.shape)).astype(value.dtype))


def draw_mask(rng, T, B, p_keep=0.65):
    return (rng.random((T, B)) < p_keep).astype("float32")
