"""Graphs whose inputs have no static shape (the Theano-era ``pt.tensor3('x')``) run on
every backend; on JAX ``dandelion.function`` specialises per input-shape signature."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import dandelion
from dandelion.activation import softmax
from dandelion.compile_shapes import ShapeSpecializedFunction
from dandelion.module import LSTM, Dense
from dandelion.objective import categorical_crossentropy
from tests.helpers import PY_MODE, assert_close


def lstm_classifier():
    """Loss and dense-layer gradients of an LSTM + dense softmax classifier; x (T, B, 3).

    (Gradients through the LSTM would only add compilation time: the shapes that JAX
    failed on are in the forward graph.)
    """
    lstm, dense = LSTM(3, 4), Dense(4, 2)
    x, y = pt.tensor3("x", dtype="float32"), pt.ivector("y")
    # the reshape to x.shape[1] is what failed while JAX traced a shape-free graph
    final = lstm.forward(x, only_return_final=True).reshape((x.shape[1], -1))
    loss = categorical_crossentropy(softmax(dense.forward(final)), y).mean()
    return [x, y], [loss, *pytensor.grad(loss, dense.collect_params())]


@pytest.fixture(scope="module")
def classifier():
    inputs, outputs = lstm_classifier()
    reference = pytensor.function(inputs, outputs, mode=PY_MODE)
    rng = np.random.default_rng(5)
    calls = [
        (rng.standard_normal((4, 3, 3)).astype("float32"), np.array([0, 1, 1], "int32")),
        (rng.standard_normal((6, 2, 3)).astype("float32"), np.array([1, 0], "int32")),
    ]
    return inputs, outputs, calls, [reference(*args) for args in calls]


def test_shape_free_lstm_classifier_runs_for_every_shape(backend, classifier):
    inputs, outputs, calls, expected = classifier
    fn = dandelion.function(inputs, outputs, mode=backend)
    for args, reference in zip(calls + calls[:1], expected + expected[:1]):
        for out, ref in zip(fn(*args), reference):
            assert_close(out, ref, rtol=1e-4, atol=1e-5)
    if backend == "jax":
        assert isinstance(fn, ShapeSpecializedFunction)
        assert len(fn._compiled) == 2  # the third call reused the first compilation
        assert fn.maker is not None  # the last compiled function's attributes


def test_jax_specialisation_names_a_mismatched_input():
    pytest.importorskip("jax", reason="the JAX backend needs jax")
    x = pt.matrix("x", dtype="float32")
    fn = dandelion.function([x], 2 * x, mode="jax")
    with pytest.raises(ValueError, match=r"dandelion.function: input 0 \(x\) has ndim 2, got an array of shape \(3,\)"):
        fn(np.ones(3, "float32"))
    with pytest.raises(TypeError, match=r"dandelion.function: the function takes 1 inputs, got 2"):
        fn(np.ones((1, 1), "float32"), np.ones((1, 1), "float32"))
