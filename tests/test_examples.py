"""The tutorials in examples/ run end to end (tiny settings, Numba backend: their own default)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_1_sentence_topic_learns():
    # JAX: on Numba the first call of this training step (four fused LSTMs and Adam)
    # compiled for 80-90 s from a cold cache, the slowest test of the c,none run, against
    # 20 s on JAX (2026-12-03); tests/test_recurrent_bidirectional.py trains a stacked
    # bidirectional LSTM on every backend.
    result = load("tutorial_1_sentence_topic").main(backend="jax", epochs=15, verbose=False)
    losses = result["losses"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses
    assert result["accuracy"] > 0.5  # three topics: chance is 1/3


def test_tutorial_2_center_loss_updates_centres():
    result = load("tutorial_2_center_loss").main(backend="numba", epochs=15, verbose=False)
    assert np.mean(result["losses"][-10:]) < np.mean(result["losses"][:10])
    assert result["center_moved"] > 0.1  # the self-updating centres were applied
    assert result["accuracy"] > 0.8


def test_sequence_labelling_beats_reading_tokens_alone():
    # JAX: Numba compiled and ran this LSTM + CRF scan graph for 391 s on the shared
    # 2-core machine against about 90 s here; the modules are tested on every backend
    # in their own test files.
    result = load("sequence_labelling_bilstm_crf").main(backend="jax", epochs=12, verbose=False)
    losses = result["losses"]
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0], losses
    # the best tag per token, read from the test data itself, scores 0.68: context and
    # the CRF's transitions must do better
    assert result["accuracy"] > 0.72


def test_tutorial_pages_show_the_current_examples():
    docs = EXAMPLES.parent / "docs" / "tutorials"
    for page, name in (("tutorial-1.md", "tutorial_1_sentence_topic"), ("tutorial-2.md", "tutorial_2_center_loss")):
        assert (EXAMPLES / f"{name}.py").read_text() in (docs / page).read_text(), f"re-copy {name}.py into {page}"
