"""The fused GRU Op (``dandelion.ops.gru``): values against the NumPy reference loop,
gradients against finite differences, the module's fused path against its scan path
(clipping, masks, backward, learned init, truncation), shape inference and bad input.

Each configuration compiles once per backend (``recurrent_harness.compiled``); C and
Numba take dynamic shapes, JAX a few fixed ones. Wherever a backend has kernels of its
own the Ops' ``perform`` is patched to fail while compiling, so a silent fallback to the
NumPy kernel fails.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytensor.graph.traversal import apply_ancestors
from pytensor.scan.op import Scan

from dandelion.module import GRU
from dandelion.ops.c.blas import linked_blas
from tests import recurrent_reference as ref
from tests.helpers import PY_MODE, assert_close, compile_fn
from tests.op_harness import (
    GRUSequenceGradOp,
    GRUSequenceOp,
    check_grad,
    check_infer_shape,
    compile_strict,
    gru_sequence,
)
from tests.recurrent_harness import compiled, draw_mask, randomize_weights

JAX_SHAPES = ((1, 1, 2), (3, 2, 3), (5, 3, 1))  # (T, B, H)


def no_fallback(backend):
    """Both Ops' ``perform`` raising on backends with kernels of their own (thunks bind it when
    compiled); C has its own where it finds a BLAS (``dandelion.ops.c.blas``)."""
    stack = contextlib.ExitStack()
    if backend in ("numba", "jax") or (backend == "c" and linked_blas() is not None):
        for op in (GRUSequenceOp, GRUSequenceGradOp):
            stack.enter_context(mock.patch.object(op, "perform", side_effect=AssertionError(f"{op.__name__} ran perform")))
    return stack


def _tensor(name, shape, static, dtype="float32"):
    return pt.tensor(name, shape=tuple(shape) if static else (None,) * len(shape), dtype=dtype)


def _op_fn(backend, has_mask, shape=None):
    """Compiled ``gru_sequence`` and the gradients of a weighted sum; shape (T, B, H) static for JAX."""

    def build():
        T, B, H = shape if shape is not None else (None, None, None)
        static = shape is not None
        gi = _tensor("gi", (T, B, None if H is None else 3 * H), static)
        W = _tensor("W", (H, None if H is None else 3 * H), static)
        h0 = _tensor("h0", (B, H), static)
        w = _tensor("w", (T, B, H), static)
        mask = _tensor("m", (T, B), static) if has_mask else None
        hs = gru_sequence(gi, W, h0, mask=mask)
        inputs = [gi, W, h0, w] + ([mask] if has_mask else [])
        with no_fallback(backend):
            return compile_strict(inputs, [hs, *pytensor.grad((hs * w).sum(), [gi, W, h0])], backend)

    return compiled(("gru_sequence_op", backend, has_mask, shape), build)


def _shapes(backend):
    if backend == "jax":
        return st.sampled_from(JAX_SHAPES)
    return st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 5))


def _reference_grads(gi, W, h0, w, mask):
    """Gradients of sum(hs * w) by central differences of the float64 reference loop."""
    G = gi.shape[2]
    eye, zero = np.eye(G), np.zeros(G)

    def loss(gi, W, h0):
        return float((ref.gru_sequence(gi, eye, zero, W, h0, mask=mask)[0] * w).sum())

    args = [gi.astype("float64"), W.astype("float64"), h0.astype("float64")]
    grads = []
    for k, a in enumerate(args):
        g = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            up, down = [x.copy() for x in args], [x.copy() for x in args]
            up[k][index] += 1e-6
            down[k][index] -= 1e-6
            g[index] = (loss(*up) - loss(*down)) / 2e-6
        grads.append(g)
    return grads


@given(data=st.data())
def test_gru_sequence_matches_reference(backend, data):
    """Values and gradients against the reference loop (and its central differences)."""
    T, B, H = data.draw(_shapes(backend), label="T, B, H")
    has_mask = data.draw(st.booleans(), label="mask")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fn = _op_fn(backend, has_mask, (T, B, H) if backend == "jax" else None)
    gi = rng.standard_normal((T, B, 3 * H)).astype("float32")
    W = (0.6 * rng.standard_normal((H, 3 * H))).astype("float32")
    h0 = rng.standard_normal((B, H)).astype("float32")
    w = rng.standard_normal((T, B, H)).astype("float32")
    mask = draw_mask(rng, T, B) if has_mask else None
    hs, *grads = fn(gi, W, h0, w, *([mask] if has_mask else []))
    expected = ref.gru_sequence(gi, np.eye(3 * H), np.zeros(3 * H), W, h0, mask=mask)[0]
    assert hs.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert_close(hs, expected)
    for k, (got, want) in enumerate(zip(grads, _reference_grads(gi, W, h0, w, mask), strict=True)):
        assert_close(got, want, rtol=1e-3, atol=1e-4, err_msg=f"gradient {k}")


# ------------------------------------------------------------------ finite differences
MASK = np.array([[1, 1], [0, 1], [1, 0]], dtype="float64")


@pytest.mark.parametrize("mask, clip", [(MASK, 0.0), (None, 0.0), (MASK, 50.0)])
def test_gru_sequence_gradient_finite_differences(mask, clip):
    """Every differentiable input, float64, on the NumPy kernels; ``clip`` 50 never binds here, it
    runs the clipping code path. (Each backend's gradients meet central differences of the
    reference in ``test_gru_sequence_matches_reference``.)"""
    rng = np.random.default_rng(3)
    T, B, H = 3, 2, 2

    def graph(gi, W, h0):
        return gru_sequence(gi, W, h0, mask=mask, grad_clipping=clip)

    values = [rng.standard_normal((T, B, 3 * H)), 0.6 * rng.standard_normal((H, 3 * H)), rng.standard_normal((B, H))]
    check_grad(graph, values, mode=PY_MODE)


# ------------------------------------------------- fused module path against its scan path
def _modules(grad_clipping):
    """A GRU on the fused path, one forced onto scan (an activation that is tanh but not
    the tanh object) and, with clipping, a fused one without, which shows whether the clip binds."""
    fused = GRU(3, 2, name="fused", grad_clipping=grad_clipping, learn_ini=True)
    scanned = GRU(3, 2, name="scanned", grad_clipping=grad_clipping, learn_ini=True, hidden_activation=lambda x: pt.tanh(x))
    return [fused, scanned] + ([GRU(3, 2, name="unclipped", learn_ini=True)] if grad_clipping else [])


PAIR_SHAPE = (4, 3)  # (T, B)
N_OUT = 3  # seq, h_last, last; then the gradients of x and of every parameter


def _pair_fn(backend, grad_clipping):
    """(modules, compiled outputs and gradients of each module), built once."""

    def build():
        modules = _modules(grad_clipping)
        T, B = PAIR_SHAPE
        x = pt.tensor("x", shape=(T, B, 3), dtype="float32")
        m = pt.tensor("m", shape=(T, B), dtype="float32")
        w = pt.tensor("w", shape=(T, B, 2), dtype="float32")
        per_module = []
        for module in modules:
            seq, h_last = module.forward(x, seq_mask=m, backward=True, return_final_state=True)
            last = module.forward(x, only_return_final=True)
            loss = (seq * w).sum() + (h_last * h_last[::-1]).sum() + (last**2).sum()
            per_module.append([seq, h_last, last, *pytensor.grad(loss, [x, *module.params])])
        fused, scanned, *unclipped = per_module
        # The scan path is the reference and runs in Python: compiling its gradient scan cold
        # on Numba took minutes of CI per backend; the backends' scans are checked elsewhere.
        scan_fn = pytensor.function([x, m, w], scanned, mode=PY_MODE)
        with no_fallback(backend):
            return modules, compile_fn([x, m, w], fused + sum(unclipped, []), backend), scan_fn

    return compiled(("gru_fused_vs_scan", backend, grad_clipping), build)


@pytest.mark.parametrize("grad_clipping", [0.05, 0.0])
def test_fused_path_equals_scan_path(backend, grad_clipping):
    """Outputs and gradients (clipping that binds, masks, backward, learned init) agree."""
    modules, fn, scan_fn = _pair_fn(backend, grad_clipping)
    fused = modules[0]
    graph_ops = {type(node.op) for node in fn.maker.fgraph.toposort()}
    assert GRUSequenceOp in graph_ops and GRUSequenceGradOp in graph_ops and Scan not in graph_ops
    assert Scan in {type(node.op) for node in scan_fn.maker.fgraph.toposort()}
    rng = np.random.default_rng(5)
    n = N_OUT + 1 + len(fused.params)
    for _ in range(2):
        randomize_weights(fused, rng, scale=0.8)
        for module in modules[1:]:
            module.set_weights(fused.get_weights())
        T, B = PAIR_SHAPE
        x = rng.standard_normal((T, B, 3)).astype("float32")
        m = draw_mask(rng, T, B)
        w = rng.standard_normal((T, B, 2)).astype("float32")
        out = fn(x, m, w)
        for k, (a, b) in enumerate(zip(out[:n], scan_fn(x, m, w), strict=True)):
            assert_close(a, b, rtol=2e-4, atol=2e-5, err_msg=f"output {k}")
        if grad_clipping:
            # The clip must bind, or this test would not test it.
            free_grads, grads = out[n + N_OUT :], out[N_OUT:n]
            assert not all(np.allclose(a, b, atol=1e-4) for a, b in zip(grads, free_grads, strict=True))


# ------------------------------------------------------------- truncated gradients
TRUNC_SHAPE, TRUNC_K = (5, 3), 2  # (T, B), truncate_gradient


def _truncated_graph(hidden_activation, steps):
    """Outputs and gradients of a truncated GRU in both directions, masked, learned init."""
    module = GRU(3, 2, name="truncated", learn_ini=True, truncate_gradient=TRUNC_K, hidden_activation=hidden_activation)
    T, B = TRUNC_SHAPE
    x = pt.tensor("x", shape=(steps, B, 3), dtype="float32")
    m = pt.tensor("m", shape=(steps, B), dtype="float32")
    w = pt.tensor("w", shape=(T, B, 2), dtype="float32")
    seq_b, h_last = module.forward(x, seq_mask=m, backward=True, return_final_state=True)
    seq_f = module.forward(x, seq_mask=m)
    loss = (seq_b * w).sum() + (h_last**2).sum() + (seq_f * w[::-1]).sum()
    return module, [x, m, w], [seq_b, seq_f, *pytensor.grad(loss, [x, *module.params])]


def _truncated_fns(backend):
    """(fused module, its function on ``backend``, scan module, its function in Python), built once."""

    def build():
        fused, inputs, outputs = _truncated_graph(pt.tanh, TRUNC_SHAPE[0])
        # The reference is PyTensor's truncated scan (a length unknown at build time keeps
        # it from being split), run in Python (cheap to compile; its JAX backend cannot
        # differentiate a truncated scan).
        scanned, scan_inputs, scan_outputs = _truncated_graph(lambda v: pt.tanh(v), None)
        with no_fallback(backend):
            fn = compile_fn(inputs, outputs, backend)
        return fused, fn, scanned, pytensor.function(scan_inputs, scan_outputs, mode=PY_MODE)

    return compiled(("gru_truncated", backend), build)


def test_truncated_gradient_on_the_fused_path_equals_truncated_scan(backend):
    fused, fn, scanned, scan_fn = _truncated_fns(backend)
    assert GRUSequenceOp in {type(node.op) for node in fn.maker.fgraph.toposort()}
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
    # Each direction sees only its last TRUNC_K scanned steps; the middle gets nothing.
    assert not g_x[TRUNC_K : T - TRUNC_K].any()
    assert np.abs(g_x[:TRUNC_K]).min() > 0 and np.abs(g_x[T - TRUNC_K :]).min() > 0


def test_module_uses_fused_op_only_for_tanh_and_static_truncation():
    x = pt.tensor("x", shape=(4, 2, 3))

    def ops(module, inp=x):
        return {type(node.op) for node in apply_ancestors([module.forward(inp)])}

    assert GRUSequenceOp in ops(GRU(3, 2))
    assert GRUSequenceOp in ops(GRU(3, 2, truncate_gradient=2))
    assert Scan in ops(GRU(3, 2, truncate_gradient=2), pt.tensor("x", shape=(None, 2, 3)))
    assert Scan in ops(GRU(3, 2, hidden_activation=lambda v: pt.maximum(v, 0)))


# ----------------------------------------------------------------------- shape inference
def test_infer_shape_removes_both_ops():
    gi, W, h0, m = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0"), pt.matrix("m")
    hs = gru_sequence(gi, W, h0, mask=m)
    outputs = [hs, *pytensor.grad(hs.sum(), [gi, W, h0])]
    T, B, H = 3, 2, 5
    args = [np.zeros((T, B, 3 * H)), np.zeros((H, 3 * H)), np.zeros((B, H)), np.ones((T, B))]
    values = [a.astype(pytensor.config.floatX) for a in args]
    expected = [(T, B, H), (T, B, 3 * H), (H, 3 * H), (B, H)]
    check_infer_shape([gi, W, h0, m], outputs, values, expected, (GRUSequenceOp, GRUSequenceGradOp))


# --------------------------------------------------------------------------- bad input
def f32(name, shape):
    return pt.tensor(name, shape=shape, dtype="float32")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"h0": f32("h0", (3, 2))}, ValueError, r"gru_sequence: h0's axis 0 \(B\) is 3, expected 4 \(from gate_input's axis 1"),
        ({"h0": f32("h0", (4, 3))}, ValueError, r"gru_sequence: h0's axis 1 \(H\) is 3, expected 2 \(from W_hid's axis 0"),
        ({"W_hid": f32("W", (2, 8))}, ValueError, r"gru_sequence: W_hid must have shape \(H, 3H\), got static shape \(2, 8\)"),
        ({"gate_input": f32("gi", (5, 4, 7))}, ValueError, r"gru_sequence: gate_input's last axis must be 3H, got 7"),
        ({"gate_input": f32("gi", (5, 4))}, ValueError, r"gru_sequence: gate_input must have ndim 3, got ndim 2"),
        ({"mask": f32("m", (6, 4))}, ValueError, r"gru_sequence: seq_mask's axis 0 \(T\) is 6, expected 5"),
        ({"mask": f32("m", (5,))}, ValueError, r"gru_sequence: seq_mask must have ndim 2"),
        ({"grad_clipping": -1.0}, ValueError, r"gru_sequence: grad_clipping must be a number >= 0"),
        ({"h0": pt.tensor("h0", shape=(4, 2), dtype="int32")}, TypeError, r"gru_sequence: h0 must have a float dtype, got int32"),
    ],
)
def test_bad_input_fails_at_graph_build(kwargs, error, message):
    args = {"gate_input": f32("gi", (5, 4, 6)), "W_hid": f32("W", (2, 6)), "h0": f32("h0", (4, 2))}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        gru_sequence(**args)


def test_bad_runtime_shapes_name_the_argument():
    gi, W, h0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0")
    fn = pytensor.function([gi, W, h0], gru_sequence(gi, W, h0), mode=PY_MODE)
    with pytest.raises(ValueError, match=r"gru_sequence: h0 must have shape \(2, 3\) \(T=4, B=2, H=3\), got \(5, 3\)"):
        fn(*(np.zeros(s, pytensor.config.floatX) for s in [(4, 2, 9), (3, 9), (5, 3)]))


def test_second_derivative_is_reported_as_not_implemented():
    gi, W, h0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0")
    (g_W,) = pytensor.grad(gru_sequence(gi, W, h0).sum(), [W])
    with pytest.raises(Exception, match="second derivatives of gru_sequence"):
        pytensor.grad(g_W.sum(), [W])
