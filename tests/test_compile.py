"""dandelion.function: backend names, environment default, updates, no warnings."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

import dandelion
from dandelion.compile import backend_name, resolve_mode


@pytest.mark.parametrize(
    "name, expected",
    [("c", "c"), ("C", "c"), ("CVM", "c"), ("numba", "numba"), ("NUMBA", "numba"), ("Jax", "jax"), ("JAX", "jax")],
)
def test_backend_names_map_to_modes(name, expected):
    assert backend_name(name) == expected


def test_mode_objects_and_pytensor_names_pass_through(monkeypatch):
    mode = Mode(linker="py", optimizer="fast_compile")
    assert resolve_mode(mode) is mode
    assert isinstance(resolve_mode("FAST_COMPILE"), Mode)
    with pytest.raises(ValueError, match=r"unknown mode 'tpu'; expected one of \['c', 'cvm', 'jax', 'numba'"):
        resolve_mode("tpu")
    with pytest.raises(TypeError, match="mode must be a str or a Mode, got int"):
        resolve_mode(3)
    monkeypatch.setenv("DANDELION_BACKEND", "jax")
    assert backend_name(None) == "jax"
    monkeypatch.setenv("DANDELION_BACKEND", "c")
    assert backend_name(None) == "c"
    monkeypatch.delenv("DANDELION_BACKEND")
    assert resolve_mode(None) is not None


def test_updates_and_default_updates(backend):
    counter = pytensor.shared(np.float32(0), name="counter")
    x = pt.fscalar("x")
    f = dandelion.function([x], x * 2, updates={counter: counter + x}, mode=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warnings in normal use
        f(1.5)
        f(2.0)
    assert counter.get_value() == pytest.approx(3.5)

    state = pytensor.shared(np.float32(1), name="state")
    with pytest.warns(DeprecationWarning):
        state.default_update = state * 2  # a Theano-era user's own choice
    g = dandelion.function([x], x + state, mode=backend)
    g(0.0)
    g(0.0)
    assert state.get_value() == 4.0
    h = dandelion.function([x], x + state, mode=backend, no_default_updates=True)
    h(0.0)
    assert state.get_value() == 4.0


def test_outputs_as_a_tuple(backend):
    """A tuple of outputs, as ``lstm_sequence`` returns, compiles as a list does (it raised TypeError)."""
    x = pt.fvector("x")
    f = dandelion.function([x], (x * 2, x + 1), mode=backend)
    doubled, shifted = f(np.array([1.0, 2.0], dtype="float32"))
    np.testing.assert_array_equal(doubled, [2.0, 4.0])
    np.testing.assert_array_equal(shifted, [2.0, 3.0])
