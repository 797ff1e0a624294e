"""LSTM2D against the NumPy raster-scan reference, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion.module import LSTM2D
from tests import recurrent_reference as ref
from tests.helpers import assert_close
from tests.recurrent_harness import compile_module_graph, f32, randomize_weights

C, HID = 3, 2
GRID = (2, 3, 2)  # (H, W, B); static for every backend, the scan is long enough
PEEP = LSTM2D(C, HID, name="peep")
LEARN = LSTM2D([1, 2], HID, peephole=False, learn_ini=True, name="learn")
PEEPHOLES = ["w_cell_to_igate_left", "w_cell_to_igate_up", "w_cell_to_fgate_left", "w_cell_to_fgate_up", "w_cell_to_ogate"]


def _weights(module):
    return [module.W_in.get_value(), module.b_in.get_value(), module.W_h_left.get_value(), module.W_h_up.get_value()]


def _fn(backend):
    Hg, Wg, B = GRID

    def inputs():
        return [f32("x", (Hg, Wg, B, C)), f32("m", (Hg, Wg, B)), f32("h0", (B, HID)), f32("c0", (B, HID))]

    def outputs(x, m, h0, c0):
        masked = PEEP.forward(x, h0, c0, seq_mask=m, return_final_state=True)
        back = PEEP.forward(x, h0, c0, seq_mask=m, backward=True, return_final_state=True)
        learned = LEARN.forward(x, backward=True, only_return_final=True)
        return [*masked, *back, learned]

    return compile_module_graph(backend, ("lstm2d",), inputs, outputs)


@given(data=st.data())
def test_lstm2d_matches_reference(backend, data):
    Hg, Wg, B = GRID
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fn = _fn(backend)
    randomize_weights(PEEP, rng)
    randomize_weights(LEARN, rng)
    x = rng.standard_normal((Hg, Wg, B, C)).astype("float32")
    m = (rng.random((Hg, Wg, B)) < 0.7).astype("float32")
    h0 = rng.standard_normal((B, HID)).astype("float32")
    c0 = rng.standard_normal((B, HID)).astype("float32")
    W = _weights(PEEP)
    peep = [getattr(PEEP, key).get_value() for key in PEEPHOLES]
    masked = ref.lstm2d_grid(x, *W, h0, c0, peep, mask=m)
    back = ref.lstm2d_grid(x, *W, h0, c0, peep, mask=m, backward=True)
    learned_h0 = np.tile(LEARN.h_ini.get_value(), (B, 1))
    learned_c0 = np.tile(LEARN.c_ini.get_value(), (B, 1))
    learned = ref.lstm2d_grid(x, *_weights(LEARN), learned_h0, learned_c0, None, backward=True)[1]
    for actual, expected in zip(fn(x, m, h0, c0), [*masked, *back, learned], strict=True):
        assert_close(actual, expected)


def test_lstm2d_padded_mask_keeps_valid_region_and_final_state():
    """Right/bottom padding: valid positions ignore the padding; the final state is the
    state at the last valid position (the old library crashed on any mask)."""
    lstm = LSTM2D(2, 3)
    x = pt.tensor("x", shape=(3, 4, 1, 2))
    m = pt.tensor("m", shape=(3, 4, 1))
    full, h_full, _ = lstm.forward(x[:2, :3], return_final_state=True)
    masked, h_masked, _ = lstm.forward(x, seq_mask=m, return_final_state=True)
    from tests.helpers import compile_fn

    f = compile_fn([x, m], [full, h_full, masked, h_masked], "numba")
    data = np.random.default_rng(1).standard_normal((3, 4, 1, 2)).astype("float32")
    mask = np.zeros((3, 4, 1), "float32")
    mask[:2, :3] = 1
    full_v, h_full_v, masked_v, h_masked_v = f(data, mask)
    assert_close(masked_v[:2, :3], full_v)
    assert_close(h_masked_v, h_full_v)


def test_lstm2d_parameter_order_and_names():
    module = LSTM2D([2, 2], 3, learn_ini=True, name="l2d")
    names = [name for _, name in module.get_weights()]
    keys = ["W_in", "b_in", "W_h_left", "W_h_up", "h_ini", "c_ini", *PEEPHOLES]
    assert names == [f"{key}@LSTM2D|l2d" for key in keys]
    shapes = [value.shape for value, _ in module.get_weights()]
    assert shapes == [(4, 12), (12,), (3, 12), (3, 12)] + [(3,)] * 7


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.forward(pt.tensor3("x")), r"LSTM2D.forward: seq_input must have ndim 4, got ndim 3"),
        (lambda m: m.forward(f32("x", (2, 2, 1, 4))), r"LSTM2D.forward: seq_input axis -1 .* must be 3, got 4"),
        (
            lambda m: m.forward(f32("x", (2, 2, 1, 3)), seq_mask=f32("m", (2, 2))),
            r"LSTM2D.forward: seq_mask must have ndim 3",
        ),
        (
            lambda m: m.forward(f32("x", (2, 2, 1, 3)), c_ini=f32("c", (2, 2))),
            r"LSTM2D.forward: c_ini must have shape \(1, 2\), got static shape \(2, 2\)",
        ),
    ],
)
def test_lstm2d_bad_input_fails_at_graph_build(call, message):
    with pytest.raises(ValueError, match=message):
        call(LSTM2D(3, 2))
