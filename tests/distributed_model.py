"""The tiny model the distributed tests train: the same in every process they start.

Dense (no bias: BatchNorm removes it, and Adam would turn the rounding noise of its
zero gradient into full steps) - BatchNorm - relu - Dropout(0.3) - Dense - softmax,
trained with Adam on a fixed global batch of 8 rows.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.activation import relu, softmax
from dandelion.module import BatchNorm, Dense, Dropout, Module
from dandelion.objective import categorical_crossentropy
from dandelion.update import adam

GLOBAL_BATCH, FEATURES, HIDDEN, CLASSES = 8, 6, 8, 3


class TinyMLP(Module):
    def __init__(self):
        super().__init__(name="mlp")
        self.fc1 = Dense(FEATURES, HIDDEN, b=None)
        self.bn = BatchNorm(input_shape=(None, HIDDEN))
        self.drop = Dropout(seed=7)
        self.fc2 = Dense(HIDDEN, CLASSES)

    def forward(self, x):
        hidden = relu(self.bn.forward(self.fc1.forward(x)))
        return softmax(self.fc2.forward(self.drop.forward(hidden, p=0.3)))


def build(seed=0, batch=GLOBAL_BATCH):
    """(model, [x, y], loss, updates) with weights drawn from ``seed``."""
    np.random.seed(seed)
    model = TinyMLP()
    x = pt.tensor("x", shape=(batch, FEATURES), dtype="float32")
    y = pt.tensor("y", shape=(batch,), dtype="int32")
    loss = categorical_crossentropy(model.forward(x), y).mean()
    updates = adam(loss, model.collect_params(), learning_rate=0.01)
    updates.update(model.collect_self_updates())
    return model, [x, y], loss, updates


def batches(count, batch=GLOBAL_BATCH, seed=1):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((batch, FEATURES)).astype("float32"), rng.integers(0, CLASSES, batch).astype("int32"))
        for _ in range(count)
    ]


def weights(model, updates):
    """{name: value} of every weight, optimizer state and random state (after ``pull``)."""
    from dandelion.update import optimizer_state

    values = {name: np.asarray(value) for value, name in model.get_weights()}
    values.update({name: np.asarray(v.get_value()) for name, v in optimizer_state(updates).items()})
    values.update({v.name: np.asarray(v.get_value()) for v in model.drop.random_states})
    return values
