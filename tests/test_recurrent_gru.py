"""GRU and GRUCell against the NumPy reference loops, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import initialization as init
from dandelion.activation import sigmoid
from dandelion.module import GRU, GRUCell
from tests import recurrent_reference as ref
from tests.helpers import assert_close
from tests.recurrent_harness import (
    compile_module_graph,
    draw_mask,
    f32,
    randomize_weights,
    sequence_weights,
    static_or_none,
    time_batch,
)

H = 3
DIMS = [4, 1]
D = sum(DIMS)


GIVEN_GRU = GRU(DIMS, H, name="given")
LEARN_GRU = GRU(2, 5, learn_ini=True, hidden_activation=sigmoid, name="learn")


def _gru_fn(backend, T, B):
    def inputs():
        return [f32("x", (T, B, D)), f32("m", (T, B)), f32("h0", (B, H)), f32("x2", (T, B, 2))]

    def outputs(x, m, h0, x2):
        fwd = GIVEN_GRU.forward(x, h0, seq_mask=m, return_final_state=True)
        bwd = GIVEN_GRU.forward(x, h0, seq_mask=m, backward=True, return_final_state=True)
        last = GIVEN_GRU.forward(x, h0, seq_mask=m, backward=True, only_return_final=True)
        learned = LEARN_GRU.predict(x2, backward=True, return_final_state=True)  # no mask, default state
        return [*fwd, *bwd, last, *learned]

    return compile_module_graph(backend, ("gru", T, B), inputs, outputs)


@given(data=st.data())
def test_gru_matches_reference(backend, data):
    T, B = data.draw(time_batch(backend))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fn = _gru_fn(backend, static_or_none(backend, T), static_or_none(backend, B))
    randomize_weights(GIVEN_GRU, rng)
    randomize_weights(LEARN_GRU, rng)
    x = rng.standard_normal((T, B, D)).astype("float32")
    x2 = rng.standard_normal((T, B, 2)).astype("float32")
    m = draw_mask(rng, T, B)
    h0 = rng.standard_normal((B, H)).astype("float32")
    W = sequence_weights(GIVEN_GRU)
    fwd = ref.gru_sequence(x, *W, h0, mask=m)
    bwd = ref.gru_sequence(x, *W, h0, mask=m, backward=True)
    learned_h0 = np.tile(LEARN_GRU.h_ini.get_value(), (B, 1))
    learned = ref.gru_sequence(x2, *sequence_weights(LEARN_GRU), learned_h0, backward=True, act=ref.sigmoid)
    out = fn(x, m, h0, x2)
    for actual, expected in zip(out, [*fwd, *bwd, bwd[1], *learned], strict=True):
        assert actual.dtype == np.float32
        assert_close(actual, expected)


CELL = GRUCell(DIMS, H, name="cell")


@given(data=st.data())
def test_gru_cell_is_one_reference_step(backend, data):
    B = 2
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))

    def inputs():
        return [f32("x", (B, D)), f32("h", (B, H)), f32("m", (B,))]

    def outputs(x, h, m):
        return [CELL.forward(x, h), CELL.forward(x, h, mask=m)]

    fn = compile_module_graph(backend, ("gru_cell",), inputs, outputs)
    randomize_weights(CELL, rng)
    x = rng.standard_normal((B, D)).astype("float32")
    h = rng.standard_normal((B, H)).astype("float32")
    m = (rng.random(B) < 0.5).astype("float32")
    W = sequence_weights(CELL)
    h1 = ref.gru_cell(x @ W[0] + W[1], h, W[2])
    for actual, expected in zip(fn(x, h, m), [h1, np.where(m[:, None] != 0, h1, h)], strict=True):
        assert_close(actual, expected)


def test_gru_parameter_order_shapes_and_names():
    gru = GRU([3, 5], 4, learn_ini=True, name="gru")
    assert [name for _, name in gru.get_weights()] == ["W_in@GRU|gru", "b_in@GRU|gru", "W_hid@GRU|gru", "h_ini@GRU|gru"]
    assert [value.shape for value, _ in gru.get_weights()] == [(8, 12), (12,), (4, 12), (4,)]
    assert not gru.b_in.get_value().any()
    cell = GRUCell(3, 2, name="c")
    assert [name for _, name in cell.get_weights()] == ["W_in@GRUCell|c", "b_in@GRUCell|c", "W_hid@GRUCell|c"]
    np.random.seed(11)
    uneven = GRU([2, 6], 3)
    np.random.seed(11)
    expected = np.concatenate([init.Normal(0.1)((2, 9)) / 2, init.Normal(0.1)((6, 9)) / 2])
    assert_close(uneven.W_in.get_value(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.forward(pt.tensor4("x")), r"GRU.forward: seq_input must have ndim 3, got ndim 4"),
        (lambda m: m.forward(f32("x", (2, 3, 4))), r"GRU.forward: seq_input axis -1 .* must be 5, got 4"),
        (
            lambda m: m.forward(f32("x", (2, 3, 5)), h_ini=f32("h", (3, 2))),
            r"GRU.forward: h_ini must have shape \(3, 3\), got static shape \(3, 2\)",
        ),
        (lambda m: m.step(f32("x", (3, 5)), f32("h", (3,)), process_input=True), r"GRU.step: h_pre must have ndim 2"),
    ],
)
def test_gru_bad_input_fails_at_graph_build(call, message):
    with pytest.raises(ValueError, match=message):
        call(GRU([4, 1], 3))
