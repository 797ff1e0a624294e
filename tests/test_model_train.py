"""Model zoo: small networks built from zoo blocks train (the loss falls) on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from dandelion.activation import softmax
from dandelion.model import DSConv2D, ResNet_bottleneck, ShuffleUnit_v2
from dandelion.module import Dense, Module
from dandelion.objective import aggregate, categorical_crossentropy
from dandelion.update import adam
from tests.helpers import compile_fn, ftensor


class BarClassifier(Module):
    """DSConv2D -> ResNet_bottleneck -> ShuffleUnit_v2 (stride 2) -> global mean -> Dense."""

    def __init__(self):
        super().__init__()
        self.stem = DSConv2D(1, 4, pad="same")
        self.res = ResNet_bottleneck(outer_channel=4, inner_channel=2)
        self.down = ShuffleUnit_v2(4, 6, stride=2)
        self.head = Dense(6, 2)

    def _run(self, x, train):
        y = self.stem.forward(x)
        y = self.res.forward(y) if train else self.res.predict(y)
        y = self.down.forward(y) if train else self.down.predict(y)
        return softmax(self.head.forward(y.mean(axis=(2, 3))))

    def forward(self, x):
        return self._run(x, True)

    def predict(self, x):
        return self._run(x, False)


def bars(n, rng):
    """Images with one horizontal (class 0) or vertical (class 1) bright bar, plus noise."""
    x = 0.1 * rng.standard_normal((n, 1, 6, 6))
    y = rng.integers(0, 2, n)
    for i in range(n):
        k = rng.integers(0, 6)
        if y[i] == 0:
            x[i, 0, k, :] += 1
        else:
            x[i, 0, :, k] += 1
    return x.astype("float32"), y.astype("int32")


def test_zoo_blocks_train_and_loss_falls(backend):
    model = BarClassifier()
    x, y = ftensor("x", (16, 1, 6, 6)), pt.ivector("y")
    loss = aggregate(categorical_crossentropy(model.forward(x), y))
    updates = adam(loss, model.collect_params(), learning_rate=0.03)
    updates.update(model.collect_self_updates())
    train = compile_fn([x, y], loss, backend, updates=updates)
    xs, ys = bars(16, np.random.default_rng(0))
    losses = [float(train(xs, ys)) for _ in range(30)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
