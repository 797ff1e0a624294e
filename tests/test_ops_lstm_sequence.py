"""The fused LSTM Op (``dandelion.ops.lstm``): values against the NumPy reference
loop, gradients against finite differences, the module's fused path against its scan
path (clipping, masks, backward, learned init), shape inference and bad input.

Each configuration compiles once per backend (``recurrent_harness.compiled``); C and
Numba take dynamic shapes, JAX a few fixed ones.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytensor.graph.traversal import apply_ancestors
from pytensor.scan.op import Scan

from dandelion.module import LSTM
from dandelion.ops.numba.activations import rational_tanh
from tests import recurrent_reference as ref
from tests.helpers import PY_MODE, assert_close, compile_fn
from tests.op_harness import (
    LSTMSequenceGradOp,
    LSTMSequenceOp,
    check_grad,
    check_infer_shape,
    compile_strict,
    lstm_sequence,
)
from tests.recurrent_harness import compiled, draw_mask, randomize_weights

JAX_SHAPES = ((1, 1, 2), (3, 2, 3), (5, 3, 1))  # (T, B, H)
GRAD_MODES = {"c": PY_MODE, "numba": "NUMBA", "jax": "JAX"}  # C runs the Op's NumPy kernels


def _tensor(name, shape, static, dtype="float32"):
    return pt.tensor(name, shape=tuple(shape) if static else (None,) * len(shape), dtype=dtype)


def _op_fn(backend, peephole, has_mask, shape=None):
    """Compiled ``lstm_sequence`` with the given options; shape (T, B, H) static for JAX."""

    def build():
        T, B, H = shape if shape is not None else (None, None, None)
        static = shape is not None
        gi = _tensor("gi", (T, B, None if H is None else 4 * H), static)
        W = _tensor("W", (H, None if H is None else 4 * H), static)
        h0, c0 = _tensor("h0", (B, H), static), _tensor("c0", (B, H), static)
        peep = [_tensor(f"p{k}", (H,), static) for k in range(3)] if peephole else []
        mask = _tensor("m", (T, B), static) if has_mask else None
        hs, cs = lstm_sequence(gi, W, h0, c0, peepholes=peep or None, mask=mask)
        inputs = [gi, W, h0, c0, *peep] + ([mask] if has_mask else [])
        return compile_strict(inputs, [hs, cs], backend)

    return compiled(("lstm_sequence_op", backend, peephole, has_mask, shape), build)


def _shapes(backend):
    if backend == "jax":
        return st.sampled_from(JAX_SHAPES)
    return st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 5))


def _reference(gi, W, h0, c0, peep, mask):
    """hs, cs from the reference loop fed the projected input (W_in = I, b_in = 0)."""
    G = gi.shape[2]
    eye, zero = np.eye(G), np.zeros(G)
    hs = ref.lstm_sequence(gi, eye, zero, W, h0, c0, peep, mask=mask)[0]
    # The reference returns only the final c; c after step t is the final c of the prefix.
    cs = np.stack([ref.lstm_sequence(gi[: t + 1], eye, zero, W, h0, c0, peep, mask=mask)[2] for t in range(gi.shape[0])])
    return hs, cs


@given(data=st.data())
def test_lstm_sequence_matches_reference(backend, data):
    T, B, H = data.draw(_shapes(backend), label="T, B, H")
    peephole = data.draw(st.booleans(), label="peephole")
    has_mask = data.draw(st.booleans(), label="mask")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fn = _op_fn(backend, peephole, has_mask, (T, B, H) if backend == "jax" else None)
    gi = rng.standard_normal((T, B, 4 * H)).astype("float32")
    W = (0.6 * rng.standard_normal((H, 4 * H))).astype("float32")
    h0, c0 = (rng.standard_normal((2, B, H))).astype("float32")
    peep = list((0.6 * rng.standard_normal((3, H))).astype("float32")) if peephole else []
    mask = draw_mask(rng, T, B) if has_mask else None
    hs, cs = fn(gi, W, h0, c0, *peep, *([mask] if has_mask else []))
    expected_hs, expected_cs = _reference(gi, W, h0, c0, peep or None, mask)
    assert hs.dtype == cs.dtype == np.float32
    assert_close(hs, expected_hs)
    assert_close(cs, expected_cs)


# ------------------------------------------------------------------ finite differences
MASK = np.array([[1, 1], [0, 1], [1, 0]], dtype="float64")


@pytest.mark.parametrize("peephole, mask, clip", [(True, MASK, 0.0), (False, None, 0.0), (True, MASK, 50.0)])
def test_lstm_sequence_gradient_finite_differences(backend, peephole, mask, clip):
    """Every differentiable input; ``clip`` 50 never binds here, it runs the clipping code path."""
    rng = np.random.default_rng(3)
    T, B, H = 3, 2, 2

    def graph(gi, W, h0, c0, *peep):
        hs, cs = lstm_sequence(gi, W, h0, c0, peepholes=list(peep) or None, mask=mask, grad_clipping=clip)
        return pt.concatenate([hs.ravel(), cs.ravel()])

    values = [rng.standard_normal((T, B, 4 * H)), 0.6 * rng.standard_normal((H, 4 * H))]
    values += list(rng.standard_normal((2, B, H)))
    values += list(0.6 * rng.standard_normal((3, H))) if peephole else []
    check_grad(graph, values, mode=GRAD_MODES[backend])


# ------------------------------------------------- fused module path against its scan path
def _modules(peephole, grad_clipping):
    """An LSTM on the fused path, one forced onto scan (an activation that is tanh but not
    the tanh object) and a fused one without clipping, which shows whether the clip binds."""
    kwargs = {"peephole": peephole, "learn_ini": True}
    fused = LSTM(3, 2, name="fused", grad_clipping=grad_clipping, **kwargs)
    scanned = LSTM(3, 2, name="scanned", grad_clipping=grad_clipping, hidden_activation=lambda x: pt.tanh(x), **kwargs)
    unclipped = LSTM(3, 2, name="unclipped", **kwargs)
    return fused, scanned, unclipped


PAIR_SHAPE = (4, 3)  # (T, B)
N_OUT = 4  # seq, h_last, c_last, last; then the gradients of x and of every parameter


def _pair_fn(backend, peephole, grad_clipping):
    """(modules, compiled outputs and gradients of each module), built once."""

    def build():
        modules = _modules(peephole, grad_clipping)
        T, B = PAIR_SHAPE
        x = pt.tensor("x", shape=(T, B, 3), dtype="float32")
        m = pt.tensor("m", shape=(T, B), dtype="float32")
        w = pt.tensor("w", shape=(T, B, 2), dtype="float32")
        per_module = []
        for module in modules:
            seq, h_last, c_last = module.forward(x, seq_mask=m, backward=True, return_final_state=True)
            last = module.forward(x, only_return_final=True)
            loss = (seq * w).sum() + (h_last * c_last).sum() + (last**2).sum()
            per_module.append([seq, h_last, c_last, last, *pytensor.grad(loss, [x, *module.params])])
        fused, scanned, unclipped = per_module
        # The scan path is the reference and runs in Python: compiling its gradient scan cold
        # on Numba took minutes of CI per backend; the backends' scans are checked elsewhere.
        return modules, compile_fn([x, m, w], fused + unclipped, backend), pytensor.function([x, m, w], scanned, mode=PY_MODE)

    return compiled(("lstm_fused_vs_scan", backend, peephole, grad_clipping), build)


@pytest.mark.parametrize("peephole, grad_clipping", [(True, 0.02), (False, 0.0)])
def test_fused_path_equals_scan_path(backend, peephole, grad_clipping):
    """Outputs and gradients (clipping that binds, masks, backward, learned init) agree."""
    (fused, scanned, unclipped), fn, scan_fn = _pair_fn(backend, peephole, grad_clipping)
    graph_ops = {type(node.op) for node in fn.maker.fgraph.toposort()}
    assert LSTMSequenceOp in graph_ops and LSTMSequenceGradOp in graph_ops and Scan not in graph_ops
    assert Scan in {type(node.op) for node in scan_fn.maker.fgraph.toposort()}
    rng = np.random.default_rng(5)
    n = N_OUT + 1 + len(fused.params)
    for _ in range(2):
        randomize_weights(fused, rng, scale=0.8)
        scanned.set_weights(fused.get_weights())
        unclipped.set_weights(fused.get_weights())
        T, B = PAIR_SHAPE
        x = rng.standard_normal((T, B, 3)).astype("float32")
        m = draw_mask(rng, T, B)
        w = rng.standard_normal((T, B, 2)).astype("float32")
        out = fn(x, m, w)
        for k, (a, b) in enumerate(zip(out[:n], scan_fn(x, m, w), strict=True)):
            assert_close(a, b, rtol=2e-4, atol=2e-5, err_msg=f"output {k}")
        free_grads, grads = out[n + N_OUT :], out[N_OUT:n]
        if grad_clipping:
            # The clip must bind, or this test would not test it.
            assert not all(np.allclose(a, b, atol=1e-4) for a, b in zip(grads, free_grads, strict=True))
        else:
            for a, b in zip(grads, free_grads, strict=True):
                assert_close(a, b)


# ------------------------------------------------------------- truncated gradients
TRUNC_SHAPE, TRUNC_K = (5, 3), 2  # (T, B), truncate_gradient


def _truncated_graph(hidden_activation, steps):
    """Outputs and gradients of a truncated LSTM in both directions, masked, learned init."""
    module = LSTM(3, 2, name="truncated", learn_ini=True, truncate_gradient=TRUNC_K, hidden_activation=hidden_activation)
    T, B = TRUNC_SHAPE
    x = pt.tensor("x", shape=(steps, B, 3), dtype="float32")
    m = pt.tensor("m", shape=(steps, B), dtype="float32")
    w = pt.tensor("w", shape=(T, B, 2), dtype="float32")
    seq_b, h_last, c_last = module.forward(x, seq_mask=m, backward=True, return_final_state=True)
    seq_f = module.forward(x, seq_mask=m)
    loss = (seq_b * w).sum() + (h_last * c_last).sum() + (seq_f * w[::-1]).sum()
    return module, [x, m, w], [seq_b, seq_f, *pytensor.grad(loss, [x, *module.params])]


def _truncated_fns(backend):
    """(fused module, its function on ``backend``, scan module, its function in Python), built once."""

    def build():
        fused, inputs, outputs = _truncated_graph(pt.tanh, TRUNC_SHAPE[0])
        # The scan path is the reference: PyTensor's truncated scan (a length unknown at
        # build time keeps it from being split), run in Python (cheap to compile; its JAX
        # backend cannot differentiate a truncated scan).
        scanned, scan_inputs, scan_outputs = _truncated_graph(lambda v: pt.tanh(v), None)
        return fused, compile_fn(inputs, outputs, backend), scanned, pytensor.function(scan_inputs, scan_outputs, mode=PY_MODE)

    return compiled(("lstm_truncated", backend), build)


def test_truncated_gradient_on_the_fused_path_equals_truncated_scan(backend):
    fused, fn, scanned, scan_fn = _truncated_fns(backend)
    assert LSTMSequenceOp in {type(node.op) for node in fn.maker.fgraph.toposort()}
    rng = np.random.default_rng(11)
    randomize_weights(fused, rng, scale=0.8)
    scanned.set_weights(fused.get_weights())
    T, B = TRUNC_SHAPE
    args = [rng.standard_normal((T, B, 3)).astype("float32"), draw_mask(rng, T, B), rng.standard_normal((T, B, 2)).astype("float32")]
    args[1][:, 0] = 1  # one full-length sequence, whose every step can receive a gradient
    got, expected = fn(*args), scan_fn(*args)
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert_close(a, b, rtol=2e-4, atol=2e-5, err_msg=f"output {k}")
    g_x = got[2][:, 0]
    # Each direction sees only its last TRUNC_K scanned steps: the backward pass the first
    # TRUNC_K in time, the forward pass the last TRUNC_K; the middle gets nothing.
    assert not g_x[TRUNC_K : T - TRUNC_K].any()
    assert np.abs(g_x[:TRUNC_K]).min() > 0 and np.abs(g_x[T - TRUNC_K :]).min() > 0


def test_module_uses_fused_op_only_for_tanh_and_static_truncation():
    x = pt.tensor("x", shape=(4, 2, 3))

    def ops(module, inp=x):
        return {type(node.op) for node in apply_ancestors([module.forward(inp)])}

    assert LSTMSequenceOp in ops(LSTM(3, 2))
    assert LSTMSequenceOp in ops(LSTM(3, 2, truncate_gradient=2))
    assert Scan in ops(LSTM(3, 2, truncate_gradient=2), pt.tensor("x", shape=(None, 2, 3)))
    assert Scan in ops(LSTM(3, 2, hidden_activation=lambda v: pt.maximum(v, 0)))


# ----------------------------------------------------------------------- shape inference
def test_infer_shape_removes_both_ops():
    gi, W, h0, c0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0"), pt.matrix("c0")
    peep = [pt.vector(f"p{k}") for k in range(3)]
    m = pt.matrix("m")
    hs, cs = lstm_sequence(gi, W, h0, c0, peepholes=peep, mask=m)
    grads = pytensor.grad((hs.sum() + cs.sum()), [gi, W, h0, c0, *peep])
    outputs = [hs, cs, *grads]
    inputs = [gi, W, h0, c0, *peep, m]
    T, B, H = 3, 2, 5
    args = [np.zeros((T, B, 4 * H)), np.zeros((H, 4 * H)), np.zeros((B, H)), np.zeros((B, H))]
    args += [np.zeros(H)] * 3 + [np.ones((T, B))]
    expected = [(T, B, H), (T, B, H), (T, B, 4 * H), (H, 4 * H), (B, H), (B, H), (H,), (H,), (H,)]
    values = [a.astype(pytensor.config.floatX) for a in args]
    check_infer_shape(inputs, outputs, values, expected, (LSTMSequenceOp, LSTMSequenceGradOp))


# --------------------------------------------------------------------------- bad input
def f32(name, shape):
    return pt.tensor(name, shape=shape, dtype="float32")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"h0": f32("h0", (3, 2))}, ValueError, r"lstm_sequence: h0's axis 0 \(B\) is 3, expected 4 \(from gate_input's axis 1"),
        ({"c0": f32("c0", (4, 3))}, ValueError, r"lstm_sequence: c0's axis 1 \(H\) is 3, expected 2 \(from W_hid's axis 0"),
        ({"W_hid": f32("W", (2, 6))}, ValueError, r"lstm_sequence: W_hid must have shape \(H, 4H\), got static shape \(2, 6\)"),
        ({"gate_input": f32("gi", (5, 4))}, ValueError, r"lstm_sequence: gate_input must have ndim 3, got ndim 2"),
        ({"mask": f32("m", (6, 4))}, ValueError, r"lstm_sequence: seq_mask's axis 0 \(T\) is 6, expected 5"),
        ({"mask": f32("m", (5,))}, ValueError, r"lstm_sequence: seq_mask must have ndim 2"),
        ({"peepholes": [f32("p", (2,))]}, ValueError, r"lstm_sequence: peepholes must be three \(H,\) vectors"),
        ({"peepholes": [f32("p", (3,))] * 3}, ValueError, r"lstm_sequence: peephole 0's length \(H\) is 3, expected 2"),
        ({"grad_clipping": -1.0}, ValueError, r"lstm_sequence: grad_clipping must be a number >= 0"),
        ({"h0": pt.tensor("h0", shape=(4, 2), dtype="int32")}, TypeError, r"lstm_sequence: h0 must have a float dtype, got int32"),
    ],
)
def test_bad_input_fails_at_graph_build(kwargs, error, message):
    args = {"gate_input": f32("gi", (5, 4, 8)), "W_hid": f32("W", (2, 8)), "h0": f32("h0", (4, 2)), "c0": f32("c0", (4, 2))}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        lstm_sequence(**args)


def test_bad_runtime_shapes_name_the_argument():
    gi, W, h0, c0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0"), pt.matrix("c0")
    fn = pytensor.function([gi, W, h0, c0], lstm_sequence(gi, W, h0, c0), mode=PY_MODE)
    with pytest.raises(ValueError, match=r"lstm_sequence: h0 must have shape \(2, 3\) \(T=4, B=2, H=3\), got \(5, 3\)"):
        fn(*(np.zeros(s, pytensor.config.floatX) for s in [(4, 2, 12), (3, 12), (5, 3), (2, 3)]))


def test_second_derivative_is_reported_as_not_implemented():
    gi, W = pt.tensor3("gi"), pt.matrix("W")
    h0 = pt.matrix("h0")
    hs, _ = lstm_sequence(gi, W, h0, h0)
    (g_W,) = pytensor.grad(hs.sum(), [W])
    with pytest.raises(Exception, match="second derivatives of lstm_sequence"):
        pytensor.grad(g_W.sum(), [W])


def test_numba_float32_tanh_approximation_is_accurate():
    """The float32 Numba kernels' rational tanh against NumPy's, across and beyond its clamp."""
    x = np.concatenate([np.linspace(-12, 12, 4001), [-1e4, -9.0, -1e-6, 0.0, 1e-6, 9.0, 1e4]])
    approx = np.array([rational_tanh.py_func(float(v)) for v in x])
    np.testing.assert_allclose(approx, np.tanh(x), rtol=0, atol=3e-8)
    assert np.all(np.abs(approx) <= 1) and np.all(np.sign(approx) == np.sign(x))
