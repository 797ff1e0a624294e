"""Gradients of the recurrent modules: finite differences, clipping, truncation.

``verify_grad`` (``tests.helpers``: compiled with JAX, seconds on a cold cache where
Numba needs ~20 s per scan gradient) runs on float64 graphs whose weights are symbolic inputs (the module's
weight attributes are swapped for them while the graph is built). The per-backend
check compares each backend's float32 gradient with central differences of the NumPy
reference loop, so backends are held to an outside answer, not to each other.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.module import GRU, LSTM, LSTM2D
from tests import recurrent_reference as ref
from tests.helpers import GRAD_MODE, assert_close, compile_fn, verify_grad
from tests.recurrent_harness import compile_module_graph, f32, randomize_weights


@contextlib.contextmanager
def symbolic_weights(module, keys, symbols):
    """Build graphs with ``symbols`` in place of the module's weight attributes."""
    saved = {key: getattr(module, key) for key in keys}
    for key, symbol in zip(keys, symbols, strict=True):
        object.__setattr__(module, key, symbol)
    try:
        yield
    finally:
        for key, value in saved.items():
            object.__setattr__(module, key, value)


def _values(module, keys, rng, scale=0.5):
    return [scale * rng.standard_normal(getattr(module, key).get_value().shape) for key in keys]


LSTM_KEYS = ["W_in", "b_in", "W_hid", "h_ini", "c_ini", "w_cell_to_igate", "w_cell_to_fgate", "w_cell_to_ogate"]
MASK = np.array([[1, 1], [0, 1], [1, 0]], dtype="float64")


def test_lstm_gradient_masked_backward_learned_init():
    rng = np.random.default_rng(0)
    lstm = LSTM(2, 3, learn_ini=True)

    def graph(x, *weights):
        with symbolic_weights(lstm, LSTM_KEYS, weights):
            seq, _, c_last = lstm.forward(x, seq_mask=MASK, backward=True, return_final_state=True)
        return pt.concatenate([seq.ravel(), c_last.ravel()])

    verify_grad(graph, [rng.standard_normal((3, 2, 2))] + _values(lstm, LSTM_KEYS, rng))


def test_gru_gradient_masked_backward_learned_init():
    rng = np.random.default_rng(1)
    gru = GRU([1, 2], 3, learn_ini=True)
    keys = ["W_in", "b_in", "W_hid", "h_ini"]

    def graph(x, *weights):
        with symbolic_weights(gru, keys, weights):
            return gru.forward(x, seq_mask=MASK, backward=True)

    verify_grad(graph, [rng.standard_normal((3, 2, 3))] + _values(gru, keys, rng))


def test_lstm2d_gradient_masked():
    rng = np.random.default_rng(2)
    module = LSTM2D(2, 2, learn_ini=True)
    keys = ["W_in", "b_in", "W_h_left", "W_h_up", "h_ini", "c_ini", "w_cell_to_igate_up", "w_cell_to_fgate_left"]
    mask = np.array([[[1.0], [1.0]], [[1.0], [0.0]]])

    def graph(x, *weights):
        with symbolic_weights(module, keys, weights):
            return module.forward(x, seq_mask=mask)

    verify_grad(graph, [rng.standard_normal((2, 2, 1, 2))] + _values(module, keys, rng))


# ----------------------------------------------------------- every backend vs NumPy
def _numeric_grad(loss, value, eps=1e-6):
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        saved = value[index]
        value[index] = saved + eps
        upper = loss()
        value[index] = saved - eps
        lower = loss()
        value[index] = saved
        grad[index] = (upper - lower) / (2 * eps)
    return grad


BACKEND_LSTM = LSTM(2, 3, learn_ini=True, name="grad")


def test_lstm_gradient_on_backend_matches_reference_differences(backend):
    T, B = 3, 2
    keys = ["W_in", "W_hid", "h_ini", "w_cell_to_fgate"]

    def inputs():
        return [f32("x", (T, B, 2)), f32("m", (T, B)), f32("w", (T, B, 3))]

    def outputs(x, m, w):
        loss = (BACKEND_LSTM.forward(x, seq_mask=m, backward=True) * w).sum()
        return pytensor.grad(loss, [getattr(BACKEND_LSTM, key) for key in keys])

    fn = compile_module_graph(backend, ("lstm_grad",), inputs, outputs)
    rng = np.random.default_rng(5)
    randomize_weights(BACKEND_LSTM, rng)
    x = rng.standard_normal((T, B, 2)).astype("float32")
    w = rng.standard_normal((T, B, 3)).astype("float32")
    mask = MASK.astype("float32")
    values = {v.name.split("@")[0]: v.get_value().astype("float64") for v in BACKEND_LSTM.params}

    def loss():
        h0 = np.tile(values["h_ini"], (B, 1))
        c0 = np.tile(values["c_ini"], (B, 1))
        peep = [values["w_cell_to_igate"], values["w_cell_to_fgate"], values["w_cell_to_ogate"]]
        W = values["W_in"], values["b_in"], values["W_hid"]
        return (ref.lstm_sequence(x, *W, h0, c0, peep, mask=mask, backward=True)[0] * w).sum()

    for key, actual in zip(keys, fn(x, mask, w), strict=True):
        assert actual.dtype == np.float32, key  # JAX once returned float64 sums
        assert_close(actual, _numeric_grad(loss, values[key]), rtol=1e-3, atol=1e-4, err_msg=key)


# ------------------------------------------------------------------- clipping
def _float64_values(module):
    return {v.name.split("@")[0]: v.get_value().astype("float64") for v in module.params}


def test_lstm_grad_clipping_clips_gate_preactivation_gradients():
    """T=1, B=1: d loss / d b_in is d loss / d gates, so with a large loss scale every
    gate gradient is clipped to +-c, signs from the unclipped reference."""
    rng = np.random.default_rng(3)
    clip, scale = 0.05, 1000.0
    lstm = LSTM(2, 2, grad_clipping=clip)
    randomize_weights(lstm, rng)
    x, h0, c0 = rng.standard_normal((1, 1, 2)), rng.standard_normal((1, 2)), rng.standard_normal((1, 2))
    xv = pt.tensor("x", shape=(1, 1, 2), dtype="float64")
    hv, cv = pt.dmatrix("h"), pt.dmatrix("c")
    loss_graph = scale * lstm.forward(xv, h_ini=hv, c_ini=cv).sum()
    g = pytensor.function([xv, hv, cv], pytensor.grad(loss_graph, lstm.b_in), mode=GRAD_MODE)(x, h0, c0)
    values = _float64_values(lstm)
    peep = [values["w_cell_to_igate"], values["w_cell_to_fgate"], values["w_cell_to_ogate"]]

    def loss():
        return ref.lstm_sequence(x, values["W_in"], values["b_in"], values["W_hid"], h0, c0, peep)[0].sum()

    unclipped = scale * _numeric_grad(loss, values["b_in"])
    assert np.all(np.abs(unclipped) > clip)  # otherwise the check below could not see the clip
    assert_close(g, np.clip(unclipped, -clip, clip), rtol=1e-6, atol=1e-9)


def test_gru_grad_clipping_clips_hidden_state_gradient():
    """T=1: d(scale * sum h)/dh is clipped to c, so the gradient equals that of c * sum h."""
    rng = np.random.default_rng(4)
    clip, scale = 0.1, 50.0
    gru = GRU(2, 3, grad_clipping=clip)
    randomize_weights(gru, rng)
    x, h0 = rng.standard_normal((1, 2, 2)), rng.standard_normal((2, 3))
    xv, hv = pt.tensor("x", shape=(1, 2, 2), dtype="float64"), pt.dmatrix("h")
    grads = pytensor.grad(scale * gru.forward(xv, h_ini=hv).sum(), [gru.W_in, gru.W_hid])
    g_in, g_hid = pytensor.function([xv, hv], grads, mode=GRAD_MODE)(x, h0)
    values = _float64_values(gru)

    def loss():
        return clip * ref.gru_sequence(x, values["W_in"], values["b_in"], values["W_hid"], h0)[0].sum()

    assert_close(g_in, _numeric_grad(loss, values["W_in"]), rtol=1e-5, atol=1e-8)
    assert_close(g_hid, _numeric_grad(loss, values["W_hid"]), rtol=1e-5, atol=1e-8)


# ------------------------------------------------------------------ truncation
def test_truncate_gradient_stops_backpropagation():
    """With truncate_gradient=k, the loss on the last output sees only the last k inputs.

    Truncation is the shared scan core's; one module exercises it numerically (GRU, the
    cheapest to compile) and the others are checked to hand it to the scan.
    """
    T, k = 5, 2
    rng = np.random.default_rng(6)
    full = GRU(2, 3)
    truncated = GRU(2, 3, truncate_gradient=k)
    randomize_weights(full, rng)
    truncated.set_weights(full.get_weights())
    x = pt.tensor("x", shape=(T, 2, 2), dtype="float64")
    grads = [pytensor.grad(m.forward(x)[-1].sum(), x) for m in (full, truncated)]
    # the static length splits the scan where truncation starts (every backend can
    # differentiate that; test_recurrent_truncation.py checks them all)
    g_full, g_trunc = pytensor.function([x], grads, mode="CVM")(rng.standard_normal((T, 2, 2)))
    assert np.abs(g_full[: T - k]).min() > 0
    assert not g_trunc[: T - k].any()
    assert_close(g_trunc[T - 1], g_full[T - 1], rtol=1e-10, atol=0)


def test_truncated_gradient_with_a_mask_on_the_scan_path(backend):
    """A masked, truncated LSTM on scan differentiates (PyTensor's scan_pushout_add broke it).

    With an all-ones mask the gradients equal the unmasked ones; a masked step gets none.
    """
    if backend == "jax":
        pytest.skip("PyTensor's JAX backend cannot differentiate a truncated scan; the fused LSTM path covers JAX")
    T, B, k = 5, 3, 2
    module = LSTM(2, 3, truncate_gradient=k, hidden_activation=lambda v: pt.tanh(v))  # not the tanh object: scan
    randomize_weights(module, np.random.default_rng(8))
    # a length unknown at build time: a truncated scan (a static one is split instead)
    x = pt.tensor("x", shape=(None, B, 2), dtype="float32")
    m = pt.tensor("m", shape=(None, B), dtype="float32")
    grads = [pytensor.grad(module.forward(x, seq_mask=mask).sum(), [x, module.W_hid]) for mask in (m, None)]
    fn = compile_fn([x, m], grads[0] + grads[1], backend)
    data = np.random.default_rng(9).standard_normal((T, B, 2)).astype("float32")
    masked_x, masked_w, plain_x, plain_w = fn(data, np.ones((T, B), "float32"))
    assert_close(masked_x, plain_x, rtol=1e-5, atol=1e-6)
    assert_close(masked_w, plain_w, rtol=1e-5, atol=1e-6)
    assert not masked_x[: T - k].any() and np.abs(masked_x[T - k :]).min() > 0
    mask = np.ones((T, B), "float32")
    mask[T - 1, 0] = 0
    assert not fn(data, mask)[0][T - 1, 0].any()


@pytest.mark.parametrize("module, ndim", [(LSTM(2, 3, truncate_gradient=4), 3), (LSTM2D(2, 3, truncate_gradient=4), 4)])
def test_truncate_gradient_reaches_the_scan(module, ndim):
    """Modules on scan hand truncation to it (LSTM scans when the length is not static)."""
    from pytensor.scan.op import Scan

    output = module.forward(pt.tensor("x", shape=(None,) * (ndim - 1) + (2,)))
    scans = [node.op for node in pytensor.graph.traversal.applys_between([], [output]) if isinstance(node.op, Scan)]
    assert [op.truncate_gradient for op in scans] == [4]
