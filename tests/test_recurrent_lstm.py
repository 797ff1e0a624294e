"""LSTM and LSTMCell against the NumPy reference loops, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import initialization as init
from dandelion.activation import relu
from dandelion.module import LSTM, LSTMCell
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

H = 4
DIMS = [2, 3]
D = sum(DIMS)


def _peep(module):
    return [module.w_cell_to_igate.get_value(), module.w_cell_to_fgate.get_value(), module.w_cell_to_ogate.get_value()]


# --------------------------------------------------------------- peephole, mask, given states
PEEP_LSTM = LSTM(DIMS, H, peephole=True, name="peep")


def _peep_fn(backend, T, B):
    def inputs():
        return [f32("x", (T, B, D)), f32("m", (T, B)), f32("h0", (B, H)), f32("c0", (B, H))]

    def outputs(x, m, h0, c0):
        fwd = PEEP_LSTM.forward(x, h0, c0, seq_mask=m, return_final_state=True)
        bwd = PEEP_LSTM.forward(x, h0, c0, seq_mask=m, backward=True, return_final_state=True)
        last = PEEP_LSTM.forward(x, h0, c0, seq_mask=m, backward=True, only_return_final=True)
        plain = PEEP_LSTM.forward(x)
        return [*fwd, *bwd, last, plain]

    return compile_module_graph(backend, ("lstm_peep", T, B), inputs, outputs)


@given(data=st.data())
def test_lstm_peephole_masked_matches_reference(backend, data):
    T, B = data.draw(time_batch(backend))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fn = _peep_fn(backend, static_or_none(backend, T), static_or_none(backend, B))
    randomize_weights(PEEP_LSTM, rng)
    x = rng.standard_normal((T, B, D)).astype("float32")
    m = draw_mask(rng, T, B)
    h0 = rng.standard_normal((B, H)).astype("float32")
    c0 = rng.standard_normal((B, H)).astype("float32")
    out = fn(x, m, h0, c0)
    W = sequence_weights(PEEP_LSTM)
    peep = _peep(PEEP_LSTM)
    expected_fwd = ref.lstm_sequence(x, *W, h0, c0, peep, mask=m)
    expected_bwd = ref.lstm_sequence(x, *W, h0, c0, peep, mask=m, backward=True)
    expected_plain = ref.lstm_sequence(x, *W, np.zeros((B, H)), np.zeros((B, H)), peep)[0]
    for actual, expected in zip(out, [*expected_fwd, *expected_bwd, expected_bwd[1], expected_plain], strict=True):
        assert actual.dtype == np.float32
        assert_close(actual, expected)


# ------------------------------------------------------ no peephole, learned init, relu
LEARN_LSTM = LSTM(3, 2, peephole=False, learn_ini=True, hidden_activation=relu, name="learn")


def _learn_fn(backend, T, B):
    def inputs():
        return [f32("x", (T, B, 3)), f32("m", (T, B))]

    def outputs(x, m):
        seq, h_last, c_last = LEARN_LSTM.forward(x, seq_mask=m, return_final_state=True)
        return [seq, h_last, c_last, LEARN_LSTM.predict(x, backward=True, only_return_final=True)]

    return compile_module_graph(backend, ("lstm_learn", T, B), inputs, outputs)


@given(data=st.data())
def test_lstm_learned_initial_state_matches_reference(backend, data):
    T, B = data.draw(time_batch(backend))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fn = _learn_fn(backend, static_or_none(backend, T), static_or_none(backend, B))
    randomize_weights(LEARN_LSTM, rng)
    x = rng.standard_normal((T, B, 3)).astype("float32")
    m = draw_mask(rng, T, B)
    h0 = np.tile(LEARN_LSTM.h_ini.get_value(), (B, 1))
    c0 = np.tile(LEARN_LSTM.c_ini.get_value(), (B, 1))
    relu_np = lambda v: np.maximum(v, 0)  # noqa: E731
    seq, h_last, c_last = ref.lstm_sequence(x, *sequence_weights(LEARN_LSTM), h0, c0, None, mask=m, act=relu_np)
    last_bwd = ref.lstm_sequence(x, *sequence_weights(LEARN_LSTM), h0, c0, None, backward=True, act=relu_np)[1]
    out = fn(x, m)
    for actual, expected in zip(out, [seq, h_last, c_last, last_bwd], strict=True):
        assert_close(actual, expected)


# --------------------------------------------------------------------------- LSTMCell
CELL = LSTMCell(DIMS, H, name="cell")


@given(data=st.data())
def test_lstm_cell_is_one_reference_step(backend, data):
    B = 3
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))

    def inputs():
        return [f32("x", (B, D)), f32("h", (B, H)), f32("c", (B, H)), f32("m", (B,))]

    def outputs(x, h, c, m):
        return [*CELL.forward(x, h, c), *CELL.forward(x, h, c, mask=m)]

    fn = compile_module_graph(backend, ("lstm_cell",), inputs, outputs)
    randomize_weights(CELL, rng)
    x = rng.standard_normal((B, D)).astype("float32")
    h = rng.standard_normal((B, H)).astype("float32")
    c = rng.standard_normal((B, H)).astype("float32")
    m = (rng.random(B) < 0.5).astype("float32")
    W = sequence_weights(CELL)
    h1, c1 = ref.lstm_cell(x @ W[0] + W[1], h, c, W[2], _peep(CELL))
    keep = m[:, None] != 0
    for actual, expected in zip(fn(x, h, c, m), [h1, c1, np.where(keep, h1, h), np.where(keep, c1, c)], strict=True):
        assert_close(actual, expected)


def test_lstm_step_process_input_equals_cell():
    """The public ``LSTM.step`` and ``LSTMCell`` build the same arithmetic."""
    lstm = LSTM(3, 2)
    cell = LSTMCell(3, 2)
    cell.set_weights(lstm.get_weights())
    x, h, c = pt.matrix("x"), pt.matrix("h"), pt.matrix("c")
    from tests.helpers import compile_fn

    f = compile_fn([x, h, c], [*lstm.step(x, h, c, process_input=True), *cell.forward(x, h, c)], "numba")
    rng = np.random.default_rng(0)
    a, b, d = rng.standard_normal((2, 3)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    h_step, c_step, h_cell, c_cell = f(a, b, d)
    assert_close(h_step, h_cell, rtol=1e-12, atol=0)
    assert_close(c_step, c_cell, rtol=1e-12, atol=0)


# ---------------------------------------------------------- parameters, names, init
def test_lstm_parameter_order_shapes_and_names():
    lstm = LSTM([3, 5], 4, learn_ini=True, name="lstm")
    names = [name for _, name in lstm.get_weights()]
    assert names == [
        "W_in@LSTM|lstm",
        "b_in@LSTM|lstm",
        "W_hid@LSTM|lstm",
        "h_ini@LSTM|lstm",
        "c_ini@LSTM|lstm",
        "w_cell_to_igate@LSTM|lstm",
        "w_cell_to_fgate@LSTM|lstm",
        "w_cell_to_ogate@LSTM|lstm",
    ]
    shapes = [value.shape for value, _ in lstm.get_weights()]
    assert shapes == [(8, 16), (16,), (4, 16), (4,), (4,), (4,), (4,), (4,)]
    assert all(value.dtype == np.float32 for value, _ in lstm.get_weights())
    assert not lstm.b_in.get_value().any() and not lstm.h_ini.get_value().any()
    cell = LSTMCell(3, 2, peephole=False, name="c")
    assert [name for _, name in cell.get_weights()] == ["W_in@LSTMCell|c", "b_in@LSTMCell|c", "W_hid@LSTMCell|c"]


def test_lstm_uneven_input_weight_init():
    """W_in for input_dims [a, b] is each part's own draw divided by the number of parts."""
    np.random.seed(7)
    lstm = LSTM([3, 5], 2, initializer=init.Normal(0.1))
    np.random.seed(7)
    first = init.Normal(0.1)((3, 8)) / 2
    second = init.Normal(0.1)((5, 8)) / 2
    assert_close(lstm.W_in.get_value(), np.concatenate([first, second]), rtol=1e-6, atol=0)
    np.random.seed(3)
    plain = LSTM(4, 2)
    np.random.seed(3)
    assert_close(plain.W_in.get_value(), init.Normal(0.1)((4, 8)), rtol=1e-6, atol=0)
    assert 0.05 < plain.W_hid.get_value().std() < 0.2  # default initializer is Normal(0.1)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.forward(pt.matrix("x")), r"LSTM.forward: seq_input must have ndim 3, got ndim 2"),
        (lambda m: m.forward(f32("x", (2, 3, 4))), r"LSTM.forward: seq_input axis -1 .* must be 5, got 4"),
        (
            lambda m: m.forward(f32("x", (2, 3, 5)), h_ini=f32("h", (2, 4))),
            r"LSTM.forward: h_ini must have shape \(3, 4\), got static shape \(2, 4\)",
        ),
        (
            lambda m: m.forward(f32("x", (2, 3, 5)), c_ini=f32("c", (3, 5))),
            r"LSTM.forward: c_ini must have shape \(3, 4\), got static shape \(3, 5\)",
        ),
        (
            lambda m: m.forward(f32("x", (2, 3, 5)), seq_mask=f32("m", (3, 2))),
            r"LSTM.forward: seq_mask must have shape \(2, 3\)",
        ),
        (lambda m: m.step(f32("x", (3, 4)), f32("h", (3, 4)), f32("c", (3, 4)), process_input=True), r"LSTM.step: input"),
    ],
)
def test_lstm_bad_input_fails_at_graph_build(call, message):
    with pytest.raises(ValueError, match=message):
        call(LSTM([2, 3], 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dim": 0}, "hidden_dim must be a positive int"),
        ({"input_dims": [2, 0]}, "input_dims must be a positive int or a list"),
        ({"grad_clipping": -1}, "grad_clipping must be a number >= 0"),
        ({"truncate_gradient": 0}, "truncate_gradient must be -1"),
    ],
)
def test_lstm_bad_options(kwargs, message):
    args = {"input_dims": 3, "hidden_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        LSTM(**args)
