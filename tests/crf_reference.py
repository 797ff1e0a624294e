"""Brute-force linear-chain CRF in NumPy: enumerates every label path (small T and N only).

Written from the model's definition, independently of ``dandelion.functional.crf``.
"""

from __future__ import annotations

import itertools

import numpy as np


def transition_matrix(raw, state_pad, normalize):
    """The score matrix the module documents: clip to [1e-4, 1], forbid into <sos> / out of <eos>, row-normalise."""
    scores = np.clip(np.asarray(raw, dtype="float64"), 1e-4, 1.0)
    if state_pad:
        scores[:, -2] = 0.0
        scores[-1, :] = 0.0
    if normalize:
        sums = scores.sum(axis=1, keepdims=True)
        scores = scores / np.where(sums > 0, sums, 1.0)
    return scores


def path_score(x, path, scores, state_pad):
    """x (T, N) for one sequence; path of T labels; scores (M, M)."""
    total = sum(x[t, label] for t, label in enumerate(path))
    total += sum(scores[a, b] for a, b in zip(path[:-1], path[1:]))
    if state_pad:
        n = x.shape[1]
        total += scores[n, path[0]] + scores[path[-1], n + 1]
    return total


def all_paths(T, N):
    return [tuple(p) for p in itertools.product(range(N), repeat=T)]


def brute_force(x, y, scores, state_pad):
    """Per sequence: NLL, best path, and d NLL / d x (marginals minus the one-hot labels).

    x (B, T, N), y (B, T). Returns nll (B,), best (B, T), grad (B, T, N).
    """
    x = np.asarray(x, dtype="float64")
    B, T, N = x.shape
    paths = all_paths(T, N)
    nll, best, grad = np.zeros(B), np.zeros((B, T), dtype=int), np.zeros((B, T, N))
    for b in range(B):
        path_scores = np.array([path_score(x[b], p, scores, state_pad) for p in paths])
        peak = path_scores.max()
        log_z = peak + np.log(np.exp(path_scores - peak).sum())
        nll[b] = log_z - path_score(x[b], tuple(y[b]), scores, state_pad)
        best[b] = paths[int(np.argmax(path_scores))]
        probabilities = np.exp(path_scores - log_z)
        for p, prob in zip(paths, probabilities):
            grad[b, np.arange(T), list(p)] += prob
        grad[b, np.arange(T), y[b]] -= 1.0
    return nll, best, grad
