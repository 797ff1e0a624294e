"""Shared variables' NumPy values go to the JAX device once per value (``dandelion.jax_device_inputs``).

On every backend the results equal NumPy's across ``set_value`` and training updates; on
JAX, counted through ``jax.device_put``: an inference function transfers each parameter
once, not per call, a new value once more, and the shared variables keep their NumPy
arrays (``get_value`` returns what the user stored).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import dandelion


def _model(backend):
    rng = np.random.default_rng(0)
    W = pytensor.shared(rng.standard_normal((4, 3)).astype("float32"), name="W")
    b = pytensor.shared(rng.standard_normal(3).astype("float32"), name="b")
    x = pt.matrix("x", dtype="float32")
    predict = dandelion.function([x], pt.tanh(x @ W + b), mode=backend)
    loss = pt.sum((x @ W + b) ** 2)
    step = dandelion.function([x], loss, updates=[(W, W - np.float32(0.01) * pytensor.grad(loss, W))], mode=backend)
    return W, b, predict, step


def _reference(x, W, b):
    return np.tanh(x.astype("float64") @ W + b)


def test_results_follow_set_value_and_updates(backend):
    W, b, predict, step = _model(backend)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype("float32")
    np.testing.assert_allclose(predict(x), _reference(x, W.get_value(), b.get_value()), rtol=1e-5, atol=1e-6)
    W.set_value(2 * W.get_value())
    np.testing.assert_allclose(predict(x), _reference(x, W.get_value(), b.get_value()), rtol=1e-5, atol=1e-6)
    new_b = np.ones(3, dtype="float32")
    b.set_value(new_b, borrow=True)
    np.testing.assert_allclose(predict(x), _reference(x, W.get_value(), new_b), rtol=1e-5, atol=1e-6)
    expected_W = np.asarray(W.get_value(), dtype="float64")
    for _ in range(2):
        grad = 2 * x.T.astype("float64") @ (x @ expected_W + new_b)
        step(x)
        expected_W = expected_W - 0.01 * grad
    np.testing.assert_allclose(np.asarray(W.get_value()), expected_W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predict(x), _reference(x, expected_W, new_b), rtol=1e-4, atol=1e-5)


def test_jax_transfers_each_parameter_once_per_value(backend):
    if backend != "jax":
        pytest.skip("the device cache is the JAX linker's")
    import jax

    W, b, predict, _ = _model(backend)
    x = np.ones((2, 4), dtype="float32")
    with mock.patch("jax.device_put", wraps=jax.device_put) as device_put:
        for _ in range(3):
            predict(x)
        assert device_put.call_count == 2  # W and b, on the first call only
        W.set_value(W.get_value() + 1)
        predict(x)
        predict(x)
        assert device_put.call_count == 3
    assert isinstance(W.get_value(borrow=True), np.ndarray) and isinstance(b.get_value(borrow=True), np.ndarray)
