"""A float32 model's compiled training step holds no float64, whatever PyTensor's floatX.

PyTensor turns Python floats into floatX constants (float64 by default), and float64 wins
the arithmetic they meet: a Python float raised to Adam's float32 step counter made the
bias correction float64, and ``0.9 * m`` computed Adam's moments (and BatchNorm's running
averages) in float64 inside the fused elementwise kernels, cast down only at the update,
so every graph variable read float32 while the step ran partly in float64 (slow on GPUs,
where float64 runs at a fraction of float32 speed). The checks read the rewritten graph
the JAX backend compiles (the backend for accelerators), inside the fused kernels too, and
the StableHLO program JAX lowers it to; neither runs the step.
"""

from __future__ import annotations

import pytensor.tensor as pt
import pytest
from pytensor.scalar import Composite

import dandelion
from dandelion import update
from dandelion.activation import relu, softmax
from dandelion.functional import pool_2d
from dandelion.module import BatchNorm, Conv2D, Dense, Dropout
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


def conv_training_step(images, y):
    """Loss and Adam updates of a Conv2D-BatchNorm-relu-max pool-Dense classifier (images (6, 1, 4, 4))."""
    conv, bn, fc = Conv2D(1, 2, pad="same"), BatchNorm(input_shape=(None, 2, 4, 4)), Dense(8, 3)
    hidden = pool_2d(relu(bn.forward(conv.forward(images))), ws=(2, 2))
    loss = categorical_crossentropy(softmax(fc.forward(hidden.flatten(2))), y).mean()
    updates = update.adam(loss, conv.collect_params() + bn.collect_params() + fc.collect_params())
    updates.update(bn.collect_self_updates())
    return loss, updates


def float64_in_graph(fgraph):
    """The float64 variables of ``fgraph``, and of the scalar graphs fused into its Composites."""
    found = [f"{v} = {v.owner.op if v.owner else 'input'}" for v in fgraph.variables if v.dtype == "float64"]
    for node in fgraph.apply_nodes:
        scalar_op = getattr(node.op, "scalar_op", None)
        if isinstance(scalar_op, Composite):
            inner = [v for v in scalar_op.fgraph.variables if v.type.dtype == "float64"]
            if inner:
                found.append(f"{node}: float64 inside {scalar_op.fgraph.outputs}")
    return found


def lowered_program(function):
    """The StableHLO text JAX lowers ``function``'s graph to (shapes from its inputs' static shapes)."""
    import jax

    from dandelion.distributed.graph import pure_step

    step = pure_step(function, "lowered_program")
    values = [jax.ShapeDtypeStruct(v.type.shape, v.dtype) for v in step.inputs]
    values += [jax.ShapeDtypeStruct(v.get_value(borrow=True).shape, v.dtype) for v in step.state]
    return jax.jit(step.fn).lower(*values).as_text()


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
    images = pt.tensor("images", shape=(6, 1, 4, 4), dtype="float32")
    loss, conv_updates = conv_training_step(images, y)
    losses.append(loss)
    updates.update(conv_updates)
    function = dandelion.function([x, images, y], pt.add(*losses), updates=updates, mode="jax")
    assert float64_in_graph(function.maker.fgraph) == []
    program = lowered_program(function)
    assert "f32" in program
    assert [line.strip() for line in program.splitlines() if "f64" in line] == []


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (pip install 'dandelion[jax]')")
def test_float32_recurrent_training_step_has_no_float64():
    """W1/W2's shape of step (an LSTM and a GRU on their fused Ops, clipped and masked, Adam), in miniature."""
    from dandelion.module import GRU, LSTM

    x = pt.tensor("x", shape=(5, 6, 4), dtype="float32")
    m = pt.tensor("m", shape=(5, 6), dtype="float32")
    y = pt.tensor("y", shape=(6,), dtype="int32")
    lstm, gru, fc = LSTM(4, 3, grad_clipping=1.0), GRU(3, 3, grad_clipping=1.0, learn_ini=True), Dense(3, 3)
    h = gru.forward(lstm.forward(x, seq_mask=m), seq_mask=m, backward=True, only_return_final=True)
    loss = categorical_crossentropy(softmax(fc.forward(h)), y).mean()
    updates = update.adam(loss, lstm.collect_params() + gru.collect_params() + fc.collect_params())
    function = dandelion.function([x, m, y], loss, updates=updates, mode="jax")
    assert float64_in_graph(function.maker.fgraph) == []
    program = lowered_program(function)
    assert "f32" in program
    assert [line.strip() for line in program.splitlines() if "f64" in line] == []
