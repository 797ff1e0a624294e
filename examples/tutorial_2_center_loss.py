"""Tutorial II: writing your own module, a Center module with the center loss.

The center loss (Wen et al. 2016) pulls every feature towards the centre of its class.
The centres are not trained by the optimizer: each training call moves them towards the
batch's class means. Such a variable is registered with
``register_self_updating_variable``; ``forward`` records its update with
``dandelion.self_update.set_update``; the training function is compiled with the updates
of ``collect_self_updates()``. (``dandelion.module.Center`` is the library's version.)

Run:  python examples/tutorial_2_center_loss.py --backend numba
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor.tensor as pt

import dandelion
from dandelion import initialization as init
from dandelion.activation import relu, softmax
from dandelion.module import Dense, Module
from dandelion.objective import aggregate, categorical_accuracy, categorical_crossentropy
from dandelion.self_update import set_update
from dandelion.train import ArrayBatches, Callback, fit
from dandelion.update import adam


class MyCenter(Module):
    """Class centres (center_num, feature_dim), moved towards each batch's class means."""

    def __init__(self, feature_dim, center_num, alpha=0.5, name=None):
        super().__init__(name=name)
        self.alpha = alpha
        self.center = self.register_self_updating_variable(init.Normal(0.1), shape=(center_num, feature_dim))

    def forward(self, features, labels):
        """features (B, feature_dim), labels (B,) int; returns the centres before the update."""
        center_num = self.center.get_value().shape[0]
        sums = pt.zeros_like(self.center)[labels].inc(features)
        counts = pt.zeros((center_num,), dtype=self.center.dtype)[labels].inc(pt.ones_like(labels, dtype=self.center.dtype))
        batch_means = sums / pt.maximum(counts, 1)[:, None]
        moved = self.alpha * batch_means + (1 - self.alpha) * self.center
        # Classes absent from the batch keep their centre.
        set_update(self.center, pt.switch(pt.gt(counts, 0)[:, None], moved, self.center))
        return self.center

    def predict(self):
        return self.center


def center_loss(features, centers, labels):
    """Mean over the batch of ``|f_i - c_{y_i}|^2 / 2``; features (B, D), centers (C, D)."""
    return 0.5 * pt.sqr(features - centers[labels]).sum(axis=1).mean()


class FeatureNet(Module):
    """Dense -> relu -> Dense to 2-D features, a linear classifier, and the centres."""

    def __init__(self, input_dim, n_classes, feature_dim=2):
        super().__init__()
        self.hidden = Dense(input_dim, 16)
        self.feature = Dense(16, feature_dim)
        self.classifier = Dense(feature_dim, n_classes)
        self.center = MyCenter(feature_dim, n_classes)

    def features(self, x):
        return self.feature.forward(relu(self.hidden.forward(x)))

    def forward(self, x, labels):
        """x (B, input_dim), labels (B,); returns (probabilities (B, C), center loss)."""
        f = self.features(x)
        centers = self.center.forward(f, labels)
        return softmax(self.classifier.forward(f)), center_loss(f, centers, labels)

    def predict(self, x):
        return softmax(self.classifier.forward(self.features(x)))


class StepLosses(Callback):
    """Every step's losses (fit's history holds the means per epoch)."""

    def __init__(self):
        self.losses, self.center_losses = [], []

    def on_step_end(self, trainer, outputs):
        self.losses.append(outputs["loss"])
        self.center_losses.append(outputs["center_loss"])


def make_blobs(n, n_classes=3, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    means = 2.0 * rng.standard_normal((n_classes, dim))
    labels = rng.integers(0, n_classes, n)
    return (means[labels] + rng.standard_normal((n, dim))).astype("float32"), labels.astype("int32")


def main(backend="numba", epochs=40, lambda_center=0.1, verbose=True):
    """Train; returns a dict with the step losses, the accuracy and the centre movement."""
    xs, ys = make_blobs(256)
    model = FeatureNet(input_dim=5, n_classes=3)
    x, y = pt.matrix("x", dtype="float32"), pt.ivector("y")
    probabilities, c_loss = model.forward(x, y)
    loss = aggregate(categorical_crossentropy(probabilities, y)) + lambda_center * c_loss
    updates = adam(loss, model.collect_params(), learning_rate=0.01)
    updates.update(model.collect_self_updates())  # the centres' own update
    train_fn = dandelion.function([x, y], [loss, c_loss], updates=updates, mode=backend)
    predictions = model.predict(x)
    test_fn = dandelion.function([x, y], categorical_accuracy(predictions, y).mean(), mode=backend)

    start_centers = model.center.center.get_value().copy()
    steps = StepLosses()
    fit(
        train_fn,
        ArrayBatches(xs, ys, batch_size=64, seed=0),  # 4 steps an epoch
        epochs,
        outputs=["loss", "center_loss"],
        callbacks=[steps],
        progress="auto" if verbose else "none",
    )
    accuracy = float(test_fn(xs, ys))
    moved = float(np.abs(model.center.center.get_value() - start_centers).max())
    if verbose:
        print(f"accuracy {accuracy:.3f}; centres moved by up to {moved:.3f}")
    return {"losses": steps.losses, "center_losses": steps.center_losses, "accuracy": accuracy, "center_moved": moved}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numba", choices=["c", "numba", "jax"])
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    main(backend=args.backend, epochs=args.epochs)
