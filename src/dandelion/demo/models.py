"""Demo models, each built only from dandelion's public modules.

Every model takes images (B, 8, 8) and returns class probabilities (B, 10).
"""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion.activation import relu, softmax
from dandelion.functional import pool_2d
from dandelion.module import (
    LSTM,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    LearnedPositionalEmbedding,
    Module,
    TransformerEncoder,
)


class DigitsMLP(Module):
    """64 -> 256 -> 10 with ReLU and dropout."""

    def __init__(self, hidden=256, dropout_p=0.2, seed=0, name="mlp"):
        super().__init__(name=name)
        self.dropout_p = dropout_p
        self.hidden = Dense(64, hidden)
        self.dropout = Dropout(seed=seed)
        self.output = Dense(hidden, 10)

    def forward(self, images):
        x = images.reshape((images.shape[0], 64))
        x = self.dropout.forward(relu(self.hidden.forward(x)), p=self.dropout_p)
        return softmax(self.output.forward(x))

    def predict(self, images):
        x = images.reshape((images.shape[0], 64))
        return softmax(self.output.predict(relu(self.hidden.predict(x))))


class DigitsCNN(Module):
    """conv3x3(16, same)-BN-relu-maxpool2-conv3x3(32, same)-BN-relu-maxpool2-Dense(10) on 1x8x8."""

    def __init__(self, seed=0, name="cnn"):
        super().__init__(name=name)
        self.conv1 = Conv2D(1, 16, kernel_size=3, pad="same", b=None)
        self.bn1 = BatchNorm(input_shape=(None, 16, None, None))
        self.conv2 = Conv2D(16, 32, kernel_size=3, pad="same", b=None)
        self.bn2 = BatchNorm(input_shape=(None, 32, None, None))
        self.output = Dense(32 * 2 * 2, 10)

    def _run(self, images, train):
        x = images.reshape((images.shape[0], 1, 8, 8))
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            x = conv.forward(x)
            x = pool_2d(relu(bn.forward(x) if train else bn.predict(x)), ws=(2, 2))
        return softmax(self.output.forward(x.reshape((x.shape[0], 32 * 2 * 2))))

    def forward(self, images):
        return self._run(images, True)

    def predict(self, images):
        return self._run(images, False)


class DigitsBiLSTM(Module):
    """Each image read as a sequence of 8 rows by a two-layer bidirectional LSTM.

    As in the Theano-era Tutorial I: both directions of the first layer are
    concatenated (uneven init of the second layer's ``input_dims=[H, H]``), the second
    layer's final states of both directions feed a dense softmax classifier.
    """

    def __init__(self, hidden=64, seed=0, name="bilstm"):
        super().__init__(name=name)
        self.forward1 = LSTM(8, hidden)
        self.backward1 = LSTM(8, hidden)
        self.forward2 = LSTM([hidden, hidden], hidden)
        self.backward2 = LSTM([hidden, hidden], hidden)
        self.dropout = Dropout(seed=seed)
        self.output = Dense(2 * hidden, 10)

    def _run(self, images, train):
        rows = images.dimshuffle(1, 0, 2)  # (T=8 rows, B, 8 pixels)
        layer1 = pt.concatenate([self.forward1.forward(rows), self.backward1.forward(rows, backward=True)], axis=-1)
        if train:
            layer1 = self.dropout.forward(layer1, p=0.1)
        # Each direction's last step has read the whole image.
        summary = pt.concatenate(
            [
                self.forward2.forward(layer1, only_return_final=True),
                self.backward2.forward(layer1, backward=True, only_return_final=True),
            ],
            axis=-1,
        )
        return softmax(self.output.forward(summary))

    def forward(self, images):
        return self._run(images, True)

    def predict(self, images):
        return self._run(images, False)


class DigitsTransformer(Module):
    """Each image read as 8 row tokens by a small pre-norm transformer encoder.

    Rows are embedded (Dense 8 -> model_dim) with learned positions, encoded by two
    GELU layers, averaged over the tokens and classified by a dense softmax.
    """

    def __init__(self, model_dim=32, num_heads=4, num_layers=2, dropout_p=0.1, seed=0, name="transformer"):
        super().__init__(name=name)
        self.embed = Dense(8, model_dim)
        self.positions = LearnedPositionalEmbedding(8, model_dim)
        self.encoder = TransformerEncoder(
            num_layers, model_dim, num_heads, ff_dim=2 * model_dim, dropout_p=dropout_p, activation="gelu",
            norm_first=True, seed=seed,
        )
        self.output = Dense(model_dim, 10)

    def _run(self, images, train):
        tokens = self.positions.forward(self.embed.forward(images))  # (B, 8 rows, model_dim)
        encoded = self.encoder.forward(tokens) if train else self.encoder.predict(tokens)
        return softmax(self.output.forward(pt.mean(encoded, axis=1)))

    def forward(self, images):
        return self._run(images, True)

    def predict(self, images):
        return self._run(images, False)


MODELS = {"mlp": DigitsMLP, "cnn": DigitsCNN, "lstm": DigitsBiLSTM, "transformer": DigitsTransformer}
