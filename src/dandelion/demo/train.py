"""Training loop of the demo: compile once, then minibatches with a progress bar."""

from __future__ import annotations

import time

import numpy as np
import pytensor.tensor as pt

import dandelion
from dandelion.demo.progress import progress_bar
from dandelion.objective import categorical_crossentropy
from dandelion.update import adam


def build_graphs(model, batch_size, test_size, learning_rate):
    """Training and prediction graphs with static input shapes (JAX needs them).

    Returns ``(train_graph, predict_graph, updates)``: each graph is ``(inputs, outputs)``;
    ``updates`` holds the optimizer's and the modules' self-updates, whose state variables
    a checkpoint saves.
    """
    images = pt.tensor("images", shape=(batch_size, 8, 8), dtype="float32")
    labels = pt.tensor("labels", shape=(batch_size,), dtype="int32")
    probabilities = model.forward(images)
    loss = categorical_crossentropy(probabilities, labels).mean()
    accuracy = pt.mean(pt.eq(pt.argmax(probabilities, axis=-1), labels))
    updates = adam(loss, model.collect_params(), learning_rate=learning_rate)
    updates.update(model.collect_self_updates())
    test_images = pt.tensor("test_images", shape=(test_size, 8, 8), dtype="float32")
    predicted = pt.argmax(model.predict(test_images), axis=-1)
    return ([images, labels], [loss, accuracy]), ([test_images], predicted), updates


def compile_graphs(train_graph, predict_graph, updates, backend):
    """Compile both graphs; load checkpoints before this (JAX copies generator states)."""
    train = dandelion.function(*train_graph, updates=updates, mode=backend)
    predict = dandelion.function(*predict_graph, mode=backend)
    return train, predict


def train_epochs(train, train_split, batch_size, epochs, seed=0, first_epoch=0):
    """Run ``epochs`` epochs of shuffled minibatches (the last partial batch is dropped)."""
    rng = np.random.default_rng(seed)
    steps = len(train_split.labels) // batch_size
    for _ in range(first_epoch):
        rng.permutation(len(train_split.labels))  # same order as an uninterrupted run
    for epoch in range(first_epoch, epochs):
        order = rng.permutation(len(train_split.labels))
        bar = progress_bar(steps, f"epoch {epoch + 1}/{epochs}")
        losses, accuracies = [], []
        for step in range(steps):
            batch = order[step * batch_size : (step + 1) * batch_size]
            loss, accuracy = train(train_split.images[batch], train_split.labels[batch])
            losses.append(float(loss))
            accuracies.append(float(accuracy))
            bar.update(1)
            bar.set_postfix_str(f"loss {np.mean(losses):.4f} acc {np.mean(accuracies):.3f}", refresh=False)
        bar.close()
        yield epoch


def evaluate(predict, test_split):
    started = time.perf_counter()
    predicted = predict(test_split.images)
    return float(np.mean(predicted == test_split.labels)), time.perf_counter() - started
