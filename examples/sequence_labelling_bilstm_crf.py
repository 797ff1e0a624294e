"""Sequence labelling: a bidirectional LSTM scores each token's tags, a ChainCRF decodes.

The data are made up here: tag sequences follow a Markov chain with BIO-like rules
(an inside tag I-x only continues B-x or I-x), and each tag emits a token from its own
vocabulary slice, which the neighbouring tags share in part. A token alone is then
ambiguous; its context (the BiLSTM) and the tag grammar (the CRF's transitions)
resolve it.

Run:  python examples/sequence_labelling_bilstm_crf.py --backend numba
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor.tensor as pt

import dandelion
from dandelion.module import LSTM, Bidirectional, ChainCRF, Dense, Embedding, Module
from dandelion.train import ArrayBatches, fit
from dandelion.update import adam, clip_by_global_norm

TAGS = ["O", "B-x", "I-x", "B-y", "I-y"]
# TRANSITIONS[a, b]: probability of tag b after tag a; I-x only after B-x/I-x, I-y after B-y/I-y
TRANSITIONS = np.array([
    [0.6, 0.2, 0.0, 0.2, 0.0],
    [0.3, 0.0, 0.7, 0.0, 0.0],
    [0.4, 0.1, 0.4, 0.1, 0.0],
    [0.3, 0.0, 0.0, 0.0, 0.7],
    [0.4, 0.1, 0.0, 0.1, 0.4],
])  # fmt: skip
VOCABULARY = 20


def make_sequences(n, length=12, seed=0):
    """(tokens, tags): each (n, length) int32."""
    rng = np.random.default_rng(seed)
    tags = np.zeros((n, length), dtype="int32")
    tags[:, 0] = rng.choice([0, 1, 3], size=n)
    for t in range(1, length):
        for i in range(n):
            tags[i, t] = rng.choice(len(TAGS), p=TRANSITIONS[tags[i, t - 1]])
    # tag k emits from tokens [3k, 3k + 8): neighbouring tags share tokens
    tokens = (3 * tags + rng.integers(0, 8, size=tags.shape)).astype("int32")
    return tokens, tags


class Tagger(Module):
    """Embedding -> bidirectional LSTM -> per-token tag scores -> ChainCRF."""

    def __init__(self, vocabulary, tag_num, embedding_dim=16, hidden_dim=24):
        super().__init__()
        self.embedding = Embedding(vocabulary, embedding_dim)
        self.lstm = Bidirectional(LSTM(embedding_dim, hidden_dim), LSTM(embedding_dim, hidden_dim))
        self.scores = Dense(2 * hidden_dim, tag_num)
        self.crf = ChainCRF(tag_num, l1_regularization=0.0)

    def emissions(self, tokens):
        """tokens (B, T) int -> tag scores (B, T, tag_num)."""
        embedded = self.embedding.forward(tokens).dimshuffle(1, 0, 2)  # recurrent modules read (T, B, D)
        return self.scores.forward(self.lstm.forward(embedded)).dimshuffle(1, 0, 2)

    def forward(self, tokens, tags):
        """Mean negative log-likelihood of the tag sequences."""
        return self.crf.forward(self.emissions(tokens), tags).mean()

    def predict(self, tokens):
        """Viterbi tags (B, T)."""
        return self.crf.predict(self.emissions(tokens))


def main(backend="numba", epochs=12, batch_size=32, verbose=True):
    """Train; returns a dict with the epoch losses and the test tag accuracy."""
    train_tokens, train_tags = make_sequences(512, seed=0)
    test_tokens, test_tags = make_sequences(256, seed=1)
    model = Tagger(VOCABULARY, len(TAGS))
    tokens = pt.tensor("tokens", shape=(batch_size, 12), dtype="int32")
    tags = pt.tensor("tags", shape=(batch_size, 12), dtype="int32")
    loss = model.forward(tokens, tags)
    params = model.collect_params()
    updates = adam(clip_by_global_norm(loss, params, max_norm=5.0), params, learning_rate=0.01)
    train_fn = dandelion.function([tokens, tags], loss, updates=updates, mode=backend)
    test_input = pt.tensor("test_tokens", shape=test_tokens.shape, dtype="int32")
    decode = dandelion.function([test_input], model.predict(test_input), mode=backend)

    history = fit(
        train_fn,
        ArrayBatches(train_tokens, train_tags, batch_size=batch_size, seed=0, drop_last=True),
        epochs,
        progress="auto" if verbose else "none",
    )
    accuracy = float(np.mean(decode(test_tokens) == test_tags))
    if verbose:
        print(f"test tag accuracy {accuracy:.3f}")
    return {"losses": list(history["loss"]), "accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numba", choices=["c", "numba", "jax"])
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    main(backend=args.backend, epochs=args.epochs)
