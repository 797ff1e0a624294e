"""Bidirectional: time alignment, masks and merges, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from dandelion.module import GRU, LSTM, Bidirectional
from tests.helpers import assert_close, compile_fn

T, B, D, H = 5, 2, 3, 4
_compiled = {}


def _build(backend):
    if backend not in _compiled:
        bi = Bidirectional(LSTM(D, H), LSTM(D, H))
        x = pt.tensor("x", shape=(T, B, D), dtype="float32")
        mask = pt.tensor("mask", shape=(T, B), dtype="float32")
        outputs = [bi.forward(x), bi.predict(x, seq_mask=mask), bi.backward_module.forward(x[::-1])]
        _compiled[backend] = compile_fn([x, mask], outputs, backend)
    return _compiled[backend]


def test_backward_outputs_are_time_aligned_and_masks_respected(backend):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, D)).astype("float32")
    mask = np.ones((T, B), "float32")
    mask[3:, 0] = 0  # sample 0 has 3 real steps, then padding
    both, masked, reversed_run = _build(backend)(x, mask)
    assert both.shape == (T, B, 2 * H)
    # step t of the backward half has read steps t..T-1: the forward scan of the reversed input, reversed
    assert_close(both[..., H:], reversed_run[::-1])
    assert_close(masked[:, 1], both[:, 1])  # no padding in sample 1
    noisy = x.copy()
    noisy[3:, 0] = rng.normal(size=(2, D)) * 10
    masked_noisy = _build(backend)(noisy, mask)[1]
    # neither direction reads padded steps: real steps do not depend on them
    assert_close(masked_noisy[:3, 0], masked[:3, 0])
    assert not np.allclose(both[:3, 0, H:], masked[:3, 0, H:])  # the backward half starts at the last real step


@pytest.mark.parametrize("merge", ["sum", "ave", "mul", None])
def test_merges_combine_the_two_directions(merge):
    bi = Bidirectional(GRU(D, H), GRU(D, H), merge=merge)
    concat = Bidirectional(GRU(D, H), GRU(D, H))
    concat.set_weights(bi.get_weights())
    x = pt.tensor("x", shape=(T, B, D), dtype="float32")
    merged = bi.forward(x, only_return_final=True)
    outputs = list(merged) if merge is None else [merged]
    # one backend: the merges are elementwise graph algebra; the GRU's backends are tested in test_recurrent_gru.py
    *got, halves = compile_fn([x], outputs + [concat.forward(x, only_return_final=True)], "jax")(
        np.random.default_rng(1).normal(size=(T, B, D)).astype("float32")
    )
    f, b = halves[:, :H], halves[:, H:]
    expected = {"sum": [f + b], "ave": [(f + b) / 2], "mul": [f * b], None: [f, b]}[merge]
    for actual, wanted in zip(got, expected):
        assert_close(actual, wanted)


def test_bad_bidirectional_arguments_are_named():
    with pytest.raises(ValueError, match=r"Bidirectional: merge must be one of \('concat', 'sum', 'ave', 'mul', None\), got 'max'"):
        Bidirectional(LSTM(D, H), LSTM(D, H), merge="max")
    with pytest.raises(TypeError, match="Bidirectional: backward_module must be a Module, got function"):
        Bidirectional(LSTM(D, H), lambda x: x)
    assert [m for m in Bidirectional(LSTM(D, H), LSTM(D, H)).sub_modules] == ["forward_module", "backward_module"]
