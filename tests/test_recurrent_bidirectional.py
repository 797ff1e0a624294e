"""The old tutorial's model: a two-layer bidirectional LSTM classifier trains on every backend.

Layer 1 runs forward and backward over the input; their outputs are concatenated and
fed to layer 2 (``input_dims=[H, H]``, the "uneven" init), whose final states, again
both directions, go to a softmax classifier. Plain SGD written with ``pytensor.grad``.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt

from dandelion.activation import softmax
from dandelion.module import LSTM, Dense, Module
from tests.helpers import compile_fn

T, B, D, H, CLASSES = 5, 6, 3, 4, 2
# Normal(0.1) weights make small gradients at first; a large SGD step keeps the test short.
LEARNING_RATE = 2.0


class BiLSTMClassifier(Module):
    def __init__(self):
        super().__init__()
        self.lstm_f1 = LSTM(D, H)
        self.lstm_b1 = LSTM(D, H)
        self.lstm_f2 = LSTM([H, H], H)
        self.lstm_b2 = LSTM([H, H], H)
        self.dense = Dense(2 * H, CLASSES)

    def forward(self, x, mask):
        first = pt.concatenate(
            [self.lstm_f1.forward(x, seq_mask=mask), self.lstm_b1.forward(x, seq_mask=mask, backward=True)], axis=-1
        )
        last = pt.concatenate(
            [
                self.lstm_f2.forward(first, seq_mask=mask, only_return_final=True),
                self.lstm_b2.forward(first, seq_mask=mask, backward=True, only_return_final=True),
            ],
            axis=-1,
        )
        return softmax(self.dense.forward(last))


def test_bidirectional_two_layer_lstm_trains(backend):
    np.random.seed(0)
    model = BiLSTMClassifier()
    names = [name for _, name in model.get_weights()]
    assert names[:3] == ["W_in@LSTM|lstm_f1", "b_in@LSTM|lstm_f1", "W_hid@LSTM|lstm_f1"]
    assert model.lstm_f2.W_in.get_value().shape == (2 * H, 4 * H)

    x = pt.tensor("x", shape=(T, B, D), dtype="float32")
    mask = pt.tensor("mask", shape=(T, B), dtype="float32")
    y = pt.tensor("y", shape=(B,), dtype="int64")
    probs = model.forward(x, mask)
    loss = -pt.log(probs[pt.arange(B), y]).mean()
    params = model.collect_params()
    grads = pytensor.grad(loss, params)
    updates = [(p, p - np.float32(LEARNING_RATE) * g) for p, g in zip(params, grads, strict=True)]
    train = compile_fn([x, mask, y], loss, backend, updates=updates)

    rng = np.random.default_rng(0)
    data = rng.standard_normal((T, B, D)).astype("float32")
    lengths = np.array([5, 3, 4, 5, 2, 5])
    seq_mask = (np.arange(T)[:, None] < lengths[None, :]).astype("float32")
    labels = (data[0, :, 0] > 0).astype("int64")  # depends on the first step only
    losses = [float(train(data, seq_mask, labels)) for _ in range(20)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
