"""The one definition of the LSTM and GRU cell arithmetic (``dandelion.ops.recurrent_cells``).

Checked against per-gate references written here from the equations (values, and the
backward against central differences of the reference), and shown to be what every
implementation runs: the scan path's steps, the fused Op's NumPy and JAX kernels, and
the Numba kernels (jitted from the same Python function). The kernels' results are
checked against independent references in test_ops_lstm_sequence.py and the module
tests; together these fail if any of them drifts from the one definition.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion.module.recurrent import steps
from dandelion.ops import lstm_numpy, recurrent_cells
from dandelion.ops.recurrent_cells import (
    carry_masked,
    gru_cell,
    gru_cell_backward,
    gru_cell_backward_factors,
    lstm_cell,
    lstm_cell_backward,
    lstm_cell_backward_factors,
)
from tests.helpers import PY_MODE, assert_close


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm(a_i, a_f, a_g, a_o, c_prev, w_ci, w_cf, w_co, act=np.tanh):
    """(c, h) gate by gate: Graves' LSTM with Lasagne's peepholes (zeros: none)."""
    input_gate = logistic(a_i + c_prev * w_ci)
    forget_gate = logistic(a_f + c_prev * w_cf)
    cell = forget_gate * c_prev + input_gate * np.tanh(a_g)
    output_gate = logistic(a_o + cell * w_co)
    return cell, output_gate * act(cell)


def reference_gru(r_x, u_x, c_x, r_h, u_h, c_h, h_prev, act=np.tanh):
    reset = logistic(r_x + r_h)
    update = logistic(u_x + u_h)
    return update * act(c_x + reset * c_h) + (1.0 - update) * h_prev


@st.composite
def cell_inputs(draw, n):
    """``n`` (B, H) float64 arrays and three (H,) peephole vectors."""
    B, H = draw(st.integers(1, 4), label="B"), draw(st.integers(1, 5), label="H")
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    blocks = list(2.0 * rng.standard_normal((n, B, H)))
    peep = list(rng.standard_normal((3, H))) if draw(st.booleans(), label="peephole") else None
    return blocks, peep


def _lstm_cell_np(a_i, a_f, a_g, a_o, c_prev, peep, act=np.tanh):
    terms = (c_prev * peep[0], c_prev * peep[1], peep[2]) if peep is not None else (None,) * 3
    return lstm_cell(a_i, a_f, a_g, a_o, c_prev, *terms, logistic, np.tanh, act)


@given(cell_inputs(5))
def test_lstm_cell_matches_per_gate_reference(inputs):
    (a_i, a_f, a_g, a_o, c_prev), peep = inputs
    i, f, g, o, c, h = _lstm_cell_np(a_i, a_f, a_g, a_o, c_prev, peep)
    w = peep if peep is not None else np.zeros((3, c_prev.shape[1]))
    expected_c, expected_h = reference_lstm(a_i, a_f, a_g, a_o, c_prev, *w)
    np.testing.assert_allclose(c, expected_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h, expected_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, np.tanh(a_g), rtol=1e-12)
    np.testing.assert_allclose(f, logistic(a_f + c_prev * w[1]), rtol=1e-12)
    # the cell activation is the one passed in
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    np.testing.assert_allclose(_lstm_cell_np(a_i, a_f, a_g, a_o, c_prev, peep, relu)[5], reference_lstm(a_i, a_f, a_g, a_o, c_prev, *w, relu)[1])


@given(cell_inputs(7))
def test_lstm_cell_backward_matches_central_differences(inputs):
    """Cotangents of the pre-activations and of c_prev for L = sum(dh * h + dc * c)."""
    (a_i, a_f, a_g, a_o, c_prev, dh, dc), peep = inputs
    w = peep if peep is not None else np.zeros((3, c_prev.shape[1]))

    def loss_terms(a_i, a_f, a_g, a_o, c_prev):
        # elementwise, so perturbing a whole array gives every element's partial at once
        c, h = reference_lstm(a_i, a_f, a_g, a_o, c_prev, *w)
        return dh * h + dc * c

    args = [a_i, a_f, a_g, a_o, c_prev]
    eps = 1e-6
    numeric = []
    for k in range(5):
        up, down = list(args), list(args)
        up[k], down[k] = args[k] + eps, args[k] - eps
        numeric.append((loss_terms(*up) - loss_terms(*down)) / (2 * eps))
    i, f, g, o, c, _ = _lstm_cell_np(*args, peep)
    factors = lstm_cell_backward_factors(i, f, g, o, c_prev, c, np.tanh)
    analytic = lstm_cell_backward(dh, dc, *factors, f, *(peep if peep is not None else (None,) * 3))
    for k, (a, b) in enumerate(zip(analytic, numeric, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"cotangent {k}")


@given(cell_inputs(7))
def test_gru_cell_matches_per_gate_reference(inputs):
    blocks, _ = inputs
    r_x, u_x, c_x, r_h, u_h, c_h, _ = blocks
    r, u, candidate, h = gru_cell(*blocks, logistic, np.tanh)
    np.testing.assert_allclose(h, reference_gru(*blocks), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r, logistic(r_x + r_h), rtol=1e-12)
    np.testing.assert_allclose(u, logistic(u_x + u_h), rtol=1e-12)
    np.testing.assert_allclose(candidate, np.tanh(c_x + r * c_h), rtol=1e-12)


@given(cell_inputs(8))
def test_gru_cell_backward_matches_central_differences(inputs):
    """Cotangents of the six blocks and of h_prev for L = sum(dh * h)."""
    (r_x, u_x, c_x, r_h, u_h, c_h, h_prev, dh), _ = inputs
    args = [r_x, u_x, c_x, r_h, u_h, c_h, h_prev]
    eps = 1e-6
    numeric = []
    for k in range(len(args)):
        up, down = list(args), list(args)
        up[k], down[k] = args[k] + eps, args[k] - eps
        numeric.append((dh * reference_gru(*up) - dh * reference_gru(*down)) / (2 * eps))
    r, u, candidate, _ = gru_cell(*args, logistic, np.tanh)
    factors = gru_cell_backward_factors(r, u, candidate, c_h, h_prev)
    da_r, da_u, da_c, dc_h, dh_direct = gru_cell_backward(dh, *factors, r, u)
    # h_prev reaches h directly only here; through W_hid the caller adds the blocks' products
    analytic = [da_r, da_u, da_c, da_r, da_u, dc_h, dh_direct]
    for k, (a, b) in enumerate(zip(analytic, numeric, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"cotangent {k}")


def test_gru_cell_backward_equals_pytensor_grad():
    """The hand-written backward against PyTensor's gradient of the same cell."""
    rng = np.random.default_rng(4)
    blocks = [pt.matrix(n, dtype="float64") for n in ("r_x", "u_x", "c_x", "r_h", "u_h", "c_h", "h_prev", "dh")]
    *_, h = gru_cell(*blocks[:7], pt.sigmoid, pt.tanh)
    grads = pytensor.grad((h * blocks[7]).sum(), blocks[:7])
    values = list(1.5 * rng.standard_normal((8, 3, 4)))
    expected = pytensor.function(blocks, grads, mode=PY_MODE)(*values)
    r, u, candidate, _ = gru_cell(*values[:7], logistic, np.tanh)
    da_r, da_u, da_c, dc_h, dh_direct = gru_cell_backward(values[7], *gru_cell_backward_factors(r, u, candidate, values[5], values[6]), r, u)
    for k, (a, b) in enumerate(zip([da_r, da_u, da_c, da_r, da_u, dc_h, dh_direct], expected, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"cotangent {k}")


@pytest.mark.parametrize("axis", [0, 1])
def test_carry_masked_keeps_previous_state_where_mask_is_zero(axis):
    rng = np.random.default_rng(0)
    new, previous = rng.standard_normal((2, 3, 4, 2))
    keep = np.array([True, False, True, False][: new.shape[axis]])
    expected = previous.copy()
    index = [slice(None)] * 3
    index[axis] = keep
    expected[tuple(index)] = new[tuple(index)]
    np.testing.assert_array_equal(carry_masked(np.where, keep, new, previous, axis), expected)
    symbolic = carry_masked(pt.switch, pt.as_tensor(keep), pt.as_tensor(new), pt.as_tensor(previous), axis)
    got = pytensor.function([], symbolic, mode=PY_MODE)()
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------- every implementation runs the one definition
def _counting(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper of the one definition that counts its calls."""
    original = getattr(recurrent_cells, name)
    calls = []

    def counted(*args):
        calls.append(len(args))
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_numba_kernels_are_jitted_from_the_one_definition():
    from dandelion.ops.numba import lstm_kernels

    assert lstm_kernels.lstm_cell_jit.py_func is recurrent_cells.lstm_cell
    assert lstm_kernels.lstm_cell_backward_factors_jit.py_func is recurrent_cells.lstm_cell_backward_factors
    assert lstm_kernels.lstm_cell_backward_jit.py_func is recurrent_cells.lstm_cell_backward


def test_jax_kernels_run_the_numpy_kernels_steps():
    pytest.importorskip("jax")
    from dandelion.ops.jax import lstm as jax_lstm

    assert jax_lstm.forward_step is lstm_numpy.forward_step
    assert jax_lstm.backward_step is lstm_numpy.backward_step
    assert jax_lstm.backward_factors is lstm_numpy.backward_factors


def test_numpy_kernels_call_the_one_definition(monkeypatch):
    T, B, H = 3, 2, 2
    rng = np.random.default_rng(1)
    forward_calls = _counting(monkeypatch, lstm_numpy, "lstm_cell")
    factor_calls = _counting(monkeypatch, lstm_numpy, "lstm_cell_backward_factors")
    backward_calls = _counting(monkeypatch, lstm_numpy, "lstm_cell_backward")
    gi, W, peep = rng.standard_normal((T, B, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal((3, H))
    h0, c0, mask = np.zeros((B, H)), np.zeros((B, H)), np.ones((T, B))
    hs, cs, gates = lstm_numpy.lstm_forward(gi, W, peep, h0, c0, mask, True, True)
    lstm_numpy.lstm_backward(W, peep, h0, c0, mask, hs, cs, gates, np.ones_like(hs), np.ones_like(cs), 0.0, True, True)
    assert (len(forward_calls), len(factor_calls), len(backward_calls)) == (T, 1, T)


def test_scan_steps_call_the_one_definition(monkeypatch):
    lstm_calls = _counting(monkeypatch, steps, "lstm_cell")
    gru_calls = _counting(monkeypatch, steps, "gru_cell")
    x4, x3, h = pt.matrix("x4"), pt.matrix("x3"), pt.matrix("h")
    steps.lstm_step(x4, h, h, pt.matrix("W4"), hidden_dim=2)
    steps.lstm2d_cell(x4, h, h, h, h, pt.matrix("Wl"), pt.matrix("Wu"), *[pt.vector()] * 5, hidden_dim=2)
    steps.gru_step(x3, h, pt.matrix("W3"), hidden_dim=2)
    assert (len(lstm_calls), len(gru_calls)) == (2, 1)


def test_scan_steps_equal_the_one_definition_on_numpy():
    """lstm_step and gru_step compiled, against the one definition run on NumPy."""
    B, H = 3, 2
    rng = np.random.default_rng(2)
    x4, x3, h, c = (pt.matrix(n, dtype="float64") for n in ("x4", "x3", "h", "c"))
    W4, W3, peep = pt.matrix("W4", dtype="float64"), pt.matrix("W3", dtype="float64"), pt.matrix("p", dtype="float64")
    h_lstm, c_lstm = steps.lstm_step(x4, h, c, W4, peep[0], peep[1], peep[2], hidden_dim=H)
    h_gru = steps.gru_step(x3, h, W3, hidden_dim=H)
    fn = pytensor.function([x4, x3, h, c, W4, W3, peep], [h_lstm, c_lstm, h_gru], mode=PY_MODE)
    values = [rng.standard_normal(s) for s in [(B, 4 * H), (B, 3 * H), (B, H), (B, H), (H, 4 * H), (H, 3 * H), (3, H)]]
    xv4, xv3, hv, cv, Wv4, Wv3, pv = values
    blocks4 = np.split(xv4 + hv @ Wv4, 4, axis=1)
    expected_c, expected_h = _lstm_cell_np(*blocks4, cv, pv)[4:]
    expected_gru = gru_cell(*np.split(xv3, 3, axis=1), *np.split(hv @ Wv3, 3, axis=1), hv, logistic, np.tanh)[3]
    for got, expected in zip(fn(*values), [expected_h, expected_c, expected_gru], strict=True):
        assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_gru_jax_kernels_run_the_numpy_kernels_steps():
    pytest.importorskip("jax")
    from dandelion.ops import gru_numpy
    from dandelion.ops.jax import gru as jax_gru

    assert jax_gru.forward_step is gru_numpy.forward_step
    assert jax_gru.backward_step is gru_numpy.backward_step
    assert jax_gru.backward_factors is gru_numpy.backward_factors


def test_gru_numpy_kernels_call_the_one_definition(monkeypatch):
    from dandelion.ops import gru_numpy

    T, B, H = 3, 2, 2
    rng = np.random.default_rng(1)
    forward_calls = _counting(monkeypatch, gru_numpy, "gru_cell")
    factor_calls = _counting(monkeypatch, gru_numpy, "gru_cell_backward_factors")
    backward_calls = _counting(monkeypatch, gru_numpy, "gru_cell_backward")
    gi, W, h0, mask = rng.standard_normal((T, B, 3 * H)), rng.standard_normal((H, 3 * H)), np.zeros((B, H)), np.ones((T, B))
    hs, cache = gru_numpy.gru_forward(gi, W, h0, mask, True)
    gru_numpy.gru_backward(W, h0, mask, hs, cache, np.ones_like(hs), 0.0, True)
    assert (len(forward_calls), len(factor_calls), len(backward_calls)) == (T, 1, T)
