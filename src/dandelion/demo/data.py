"""scikit-learn's bundled handwritten digits (1,797 8x8 images): real data, no download."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    images: np.ndarray  # (N, 8, 8) float32 in [0, 1]
    labels: np.ndarray  # (N,) int32


def load_digits_split(test_fraction=0.25, seed=0):
    """Stratified train/test split of the digits, pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the install
        raise SystemExit('The demo needs scikit-learn: pip install "dandelion[demo]"') from error
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        cut = int(round(len(members) * test_fraction))
        test_idx.extend(members[:cut])
        train_idx.extend(members[cut:])
    train_idx, test_idx = rng.permutation(train_idx), np.sort(test_idx)
    return Split(images[train_idx], labels[train_idx]), Split(images[test_idx], labels[test_idx])
