"""Graphs of the demo: a training step and an evaluation of the whole test split."""

from __future__ import annotations

import pytensor.tensor as pt

import dandelion
from dandelion.objective import categorical_crossentropy
from dandelion.update import adam

OUTPUTS = ("loss", "accuracy")


def _loss_and_accuracy(probabilities, labels):
    loss = categorical_crossentropy(probabilities, labels).mean()
    accuracy = pt.mean(pt.eq(pt.argmax(probabilities, axis=-1), labels))
    return [loss, accuracy]


def build_graphs(model, batch_size, test_size, learning_rate):
    """Training and evaluation graphs with static input shapes (JAX needs them).

    Returns ``(train_graph, eval_graph, updates)``: each graph is ``(inputs, outputs)``
    with the outputs named by ``OUTPUTS``; ``updates`` holds the optimizer's and the
    modules' self-updates, whose state variables a checkpoint saves.
    """
    images = pt.tensor("images", shape=(batch_size, 8, 8), dtype="float32")
    labels = pt.tensor("labels", shape=(batch_size,), dtype="int32")
    train_outputs = _loss_and_accuracy(model.forward(images), labels)
    updates = adam(train_outputs[0], model.collect_params(), learning_rate=learning_rate)
    updates.update(model.collect_self_updates())
    test_images = pt.tensor("test_images", shape=(test_size, 8, 8), dtype="float32")
    test_labels = pt.tensor("test_labels", shape=(test_size,), dtype="int32")
    eval_outputs = _loss_and_accuracy(model.predict(test_images), test_labels)
    return ([images, labels], train_outputs), ([test_images, test_labels], eval_outputs), updates


def compile_graphs(train_graph, eval_graph, updates, backend):
    train = dandelion.function(*train_graph, updates=updates, mode=backend)
    evaluate = dandelion.function(*eval_graph, mode=backend)
    return train, evaluate
