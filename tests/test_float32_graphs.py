"""A float32 model's compiled training step holds no float64, whatever PyTensor's floatX.

PyTensor turns Python floats into floatX constants (float64 by default). Where they meet
float32 tensors PyTensor's rewrites fold them back to float32, except where nothing casts
the result down soon enough: a Python float raised to Adam's float32 step counter made
the bias correction, and with it every step, partly float64 (slow on GPUs, where float64
runs at a fraction of float32 speed). The check reads the rewritten graph the JAX
backend compiles (the backend for accelerators); creating the function does not run it.
"""

from __future__ import annotations

import pytensor.tensor as pt
import pytest

import dandelion
from dandelion import update
from dandelion.activation import relu, softmax
from dandelion.module import BatchNorm, Dense, Dropout
from dandelion.objective import categorical_crossentropy
from tests.conftest import HAS_JAX

# Those that keep a step counter (where the float64 hid) and one of each other kind;
# the rest are compositions of the same pieces (dandelion.update.transforms).
OPTIMIZERS = {
    "adam": lambda loss, params: update.adam(loss, params, clear_nan=True),
    "adamax": lambda loss, params: update.adamax(loss, params),
    "nesterov_momentum": lambda loss, params: update.nesterov_momentum(loss, params, learning_rate=0.1),
    "adadelta": lambda loss, params: update.adadelta(loss, params),
}


def training_step(x, y, optimizer):
    """Loss and updates of a Dense-BatchNorm-relu-Dropout-Dense classifier and ``optimizer``."""
    fc1, bn, drop, fc2 = Dense(4, 5, b=None), BatchNorm(input_shape=(None, 5)), Dropout(seed=1), Dense(5, 3)
    hidden = drop.forward(relu(bn.forward(fc1.forward(x))), p=0.2)
    loss = categorical_crossentropy(softmax(fc2.forward(hidden)), y).mean()
    updates = OPTIMIZERS[optimizer](loss, fc1.collect_params() + bn.collect_params() + fc2.collect_params())
    for module in (bn, drop):
        updates.update(module.collect_self_updates())
    return loss, updates


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (pip install 'dandelion[jax]')")
def test_float32_training_step_has_no_float64():
    # floatX left at PyTensor's float64 (not chosen, so dandelion's parameters stay
    # float32): Python constants become float64. With floatX=float32 chosen they are
    # float32 to begin with; a user who chooses float64 builds a float64 model.
    x = pt.tensor("x", shape=(6, 4), dtype="float32")
    y = pt.tensor("y", shape=(6,), dtype="int32")
    # Every optimizer in one function (one compilation): each trains its own model.
    losses, updates = [], {}
    for optimizer in OPTIMIZERS:
        loss, optimizer_updates = training_step(x, y, optimizer)
        losses.append(loss)
        updates.update(optimizer_updates)
    assert {v.dtype for v in updates} == {"float32", "uint32"}
    function = dandelion.function([x, y], pt.add(*losses), updates=updates, mode="jax")
    float64 = [f"{v} = {v.owner.op if v.owner else 'input'}" for v in function.maker.fgraph.variables if v.dtype == "float64"]
    assert float64 == []
