"""Tutorial I: a sentence-topic classifier with a bidirectional, stacked LSTM.

Sentences are word-index sequences; an Embedding turns them into vectors, two
bidirectional LSTM layers read them, dropout regularises, the hidden states are averaged
over time (pooling over time) and a Dense layer with softmax gives topic probabilities.
The data are generated here: every topic has its own keywords, scattered among common
filler words.

Run:  python examples/tutorial_1_sentence_topic.py --backend numba
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor.tensor as pt

import dandelion
from dandelion.activation import softmax
from dandelion.module import LSTM, Dense, Dropout, Embedding, Module
from dandelion.objective import aggregate, categorical_accuracy, categorical_crossentropy
from dandelion.train import ArrayBatches, fit
from dandelion.update import adam


def make_sentences(n, seq_len, n_topics=3, keywords_per_topic=4, n_filler=8, seed=0):
    """``n`` sentences (T, n) of word indices and their topics (n,).

    Words 0 .. n_filler-1 are filler; topic k owns the next ``keywords_per_topic`` words.
    A sentence holds 2 or 3 of its topic's keywords at random places.
    """
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, n_topics, n)
    words = rng.integers(0, n_filler, (seq_len, n))
    for i, topic in enumerate(topics):
        places = rng.choice(seq_len, size=rng.integers(2, 4), replace=False)
        words[places, i] = n_filler + topic * keywords_per_topic + rng.integers(0, keywords_per_topic, len(places))
    vocab = n_filler + n_topics * keywords_per_topic
    return words.astype("int32"), topics.astype("int32"), vocab


class SentenceTopicModel(Module):
    """Embedding -> 2 bidirectional LSTM layers -> dropout -> mean over time -> Dense."""

    def __init__(self, vocab, n_topics, embedding_dim=8, hidden=8, dropout_p=0.2, seed=0):
        super().__init__()
        self.dropout_p = dropout_p
        self.embedding = Embedding(num_embeddings=vocab, embedding_dim=embedding_dim)
        self.lstm_f1 = LSTM(embedding_dim, hidden)
        self.lstm_b1 = LSTM(embedding_dim, hidden)
        # The second layer reads both directions of the first: input_dims as two parts.
        self.lstm_f2 = LSTM([hidden, hidden], hidden)
        self.lstm_b2 = LSTM([hidden, hidden], hidden)
        self.dropout = Dropout(seed=seed)
        self.dense = Dense(2 * hidden, n_topics)

    def _encode(self, words, train):
        x = self.embedding.forward(words)  # (T, B, embedding_dim)
        h = pt.concatenate([self.lstm_f1.forward(x), self.lstm_b1.forward(x, backward=True)], axis=2)
        if train:
            h = self.dropout.forward(h, p=self.dropout_p)
        h = pt.concatenate([self.lstm_f2.forward(h), self.lstm_b2.forward(h, backward=True)], axis=2)
        return softmax(self.dense.forward(h.mean(axis=0)))  # pooling over time

    def forward(self, words):
        """words : (T, B) int32; returns (B, n_topics) probabilities, with dropout."""
        return self._encode(words, train=True)

    def predict(self, words):
        """words : (T, B) int32; returns (B, n_topics) probabilities."""
        return self._encode(words, train=False)


def main(backend="numba", epochs=15, n_train=96, n_test=48, seq_len=8, batch_size=24, verbose=True):
    """Train, then evaluate; returns a dict of the losses and the test accuracy."""
    words, topics, vocab = make_sentences(n_train + n_test, seq_len)
    train_x, train_y = words[:, :n_train], topics[:n_train]
    test_x, test_y = words[:, n_train:], topics[n_train:]
    model = SentenceTopicModel(vocab, n_topics=3)

    x = pt.tensor("words", shape=(seq_len, None), dtype="int32")
    y = pt.ivector("topics")
    # The unified interface: module(...) calls forward in 'train' mode, predict in 'inference'.
    model.work_mode = "train"
    loss = aggregate(categorical_crossentropy(model(x), y))
    updates = adam(loss, model.collect_params(), learning_rate=0.02)
    updates.update(model.collect_self_updates())
    train_fn = dandelion.function([x, y], loss, updates=updates, mode=backend)

    model.work_mode = "inference"
    probabilities = model(x)
    test_loss = aggregate(categorical_crossentropy(probabilities, y))
    test_fn = dandelion.function([x, y], [test_loss, categorical_accuracy(probabilities, y).mean()], mode=backend)

    # Sentences are time-major (T, N): their sample axis is 1, the topics' is 0.
    history = fit(
        train_fn,
        ArrayBatches(train_x, train_y, batch_size=batch_size, seed=0, axis=(1, 0)),
        epochs,
        eval_fn=test_fn,
        eval_batches=ArrayBatches(test_x, test_y, batch_size=n_test, shuffle=False, axis=(1, 0)),
        eval_outputs=["loss", "accuracy"],
        progress="auto" if verbose else "none",
    )
    losses, accuracy = history["loss"], history["val_accuracy"][-1]
    if verbose:
        print(f"test accuracy {accuracy:.3f}")
    return {"losses": losses, "accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numba", choices=["c", "numba", "jax"])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    main(backend=args.backend, epochs=args.epochs)
