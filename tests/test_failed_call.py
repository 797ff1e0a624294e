"""A compiled training call that raises leaves every shared variable exactly as it was.

PyTensor's inplace rewrites compute some updates (BatchNorm's running statistics,
Adam's moments and step counter, dropout's counter) into the variable's own buffer
before the rest of the graph has run; ``dandelion.function`` restores them when a
later node raises. Checked on every backend with x and y of different batch sizes.
"""

import numpy as np
import pytensor.tensor as pt
import pytest

import dandelion
from dandelion.module import BatchNorm, Dense, Dropout, Module
from dandelion.rollback import RollbackFunction
from dandelion.update import adam

BATCH = 5


class Net(Module):
    def __init__(self):
        super().__init__(name="net")
        np.random.seed(0)
        self.d1 = Dense(4, 6)
        self.bn = BatchNorm(input_shape=(None, 6))
        self.drop = Dropout(seed=3)
        self.d2 = Dense(6, 2)

    def forward(self, x):
        h = self.drop.forward(self.bn.forward(self.d1(x)), p=0.3)
        return self.d2(pt.tanh(h))


@pytest.fixture(scope="module")
def trainer(backend):
    """One compiled training step per backend for the whole module."""
    net = Net()
    # x static (JAX needs static dropout shapes); y's batch length is free, so a
    # mismatched y fails inside the graph, after the batch statistics are computed.
    x = pt.tensor("x", shape=(BATCH, 4), dtype="float32")
    y = pt.tensor("y", shape=(None, 2), dtype="float32")
    loss = ((net.forward(x) - y) ** 2).mean()
    updates = adam(loss, net.collect_params(), learning_rate=0.01)
    updates.update(net.collect_self_updates())
    train = dandelion.function([x, y], loss, updates=updates, mode=backend)
    return train, list(updates)


def state(variables):
    return {v.name: np.array(v.get_value(), copy=True) for v in variables}


def assert_bitwise_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for name in expected:
        # bit patterns, so that NaN payloads and signed zeros count too
        a, e = actual[name], expected[name]
        assert a.dtype == e.dtype and a.shape == e.shape, name
        assert a.tobytes() == e.tobytes(), f"{name} changed"


def test_a_call_that_raises_changes_no_shared_variable_and_training_goes_on_undisturbed(trainer):
    train, variables = trainer
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 4)).astype("float32")
    y = rng.standard_normal((BATCH, 2)).astype("float32")
    start = state(variables)
    train(x, y)
    before = state(variables)
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error type
        train(x, y[:3])
    assert_bitwise_equal(state(variables), before)
    disturbed = float(train(x, y))
    after_disturbed = state(variables)

    for variable in variables:  # the same two steps, with no failing call between them
        variable.set_value(start[variable.name].copy())
    train(x, y)
    undisturbed = float(train(x, y))
    assert disturbed == undisturbed
    assert_bitwise_equal(state(variables), after_disturbed)


def test_the_wrapped_function_keeps_pytensor_s_attributes(trainer):
    train, _ = trainer
    rng = np.random.default_rng(1)
    # On JAX the shape-free y makes this a ShapeSpecializedFunction: it has a maker once called.
    train(rng.standard_normal((BATCH, 4)).astype("float32"), rng.standard_normal((BATCH, 2)).astype("float32"))
    assert train.maker.fgraph is not None
    if isinstance(train, RollbackFunction):
        train.trust_input = False  # set on the wrapped Function
        assert train.function.trust_input is False


@pytest.fixture(scope="module")
def static_trainer(backend):
    """Static shapes throughout, integer labels: only the label check can raise."""
    from dandelion.objective import categorical_crossentropy

    np.random.seed(1)
    d1, d2 = Dense(4, 6), Dense(6, 3)
    x = pt.tensor("x", shape=(BATCH, 4), dtype="float32")
    labels = pt.tensor("labels", shape=(BATCH,), dtype="int32")
    loss = categorical_crossentropy(pt.special.softmax(d2(pt.tanh(d1(x))), axis=-1), labels).mean()
    params = d1.collect_params() + d2.collect_params()
    updates = adam(loss, params, learning_rate=0.01)
    return dandelion.function([x, labels], loss, updates=updates, mode=backend), params, list(updates)


def test_updates_after_the_last_node_that_can_raise_need_no_copy_and_stay_safe(static_trainer):
    from dandelion.rollback import containers_to_snapshot

    train, params, variables = static_trainer
    function = getattr(train, "function", train)
    copied = {id(c) for c in containers_to_snapshot(function)}
    by_variable = dict(zip(function.maker.fgraph.inputs, function.input_storage))
    assert not any(id(by_variable[p]) in copied for p in params if p in by_variable)  # parameters: no copy
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, 4)).astype("float32")
    train(x, np.array([0, 1, 2, 0, 1], "int32"))
    before = state(variables)
    with pytest.raises(Exception, match="targets holds a class index outside"):
        train(x, np.array([0, 1, 3, 0, 1], "int32"))
    assert_bitwise_equal(state(variables), before)
