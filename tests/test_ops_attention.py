"""The fused attention Ops (``dandelion.ops.attention``) on every backend, their fallback disabled.

Values against a NumPy loop written here (float64), gradients against central finite
differences of that loop and by ``verify_grad``, and parity with the graph path
(``functional.attention.graph_attention``) in float32, dropout included. On C and Numba
the Ops' ``perform`` is patched to fail while compiling and running, so a silent fallback
to the NumPy kernel fails the test. Each (backend, variant) compiles once per module.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dandelion.functional.attention import graph_attention, scaled_dot_product_attention
from dandelion.ops.attention import AttentionGradOp, AttentionOp, attention
from tests.helpers import assert_close, c_kernel_blas_flags, compile_fn, verify_grad

BLAS_FLAGS = c_kernel_blas_flags()
VARIANTS = [(False, True), (True, False)]  # (causal, dropout): each kernel path once
JAX_SHAPE = (3, 4, 5, 2, 3)  # N, Lq, Lk, E, Ev: JAX compiles static shapes
_compiled = {}


def _reference(q, k, v, scale, causal, multiplier):
    """(out, weights) by loops over rows, float64."""
    n, lq, _ = q.shape
    lk = k.shape[1]
    weights = np.zeros((n, lq, lk))
    for b in range(n):
        for i in range(lq):
            kept = min(i + 1, lk) if causal else lk
            if kept:
                row = np.array([q[b, i] @ k[b, j] * scale for j in range(kept)])
                e = np.exp(row - row.max())
                weights[b, i, :kept] = e / e.sum()
    dropped = weights if multiplier is None else weights * multiplier
    return np.einsum("bqk,bkv->bqv", dropped, v), weights


def _numeric_grads(q, k, v, scale, causal, multiplier, g, step=1e-6):
    """Central differences of sum(out * g) in q, k, v."""
    grads = []
    for x in (q, k, v):
        grad = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            saved = x[index]
            x[index] = saved + step
            plus = (_reference(q, k, v, scale, causal, multiplier)[0] * g).sum()
            x[index] = saved - step
            minus = (_reference(q, k, v, scale, causal, multiplier)[0] * g).sum()
            x[index] = saved
            grad[index] = (plus - minus) / (2 * step)
        grads.append(grad)
    return grads


def _no_perform():
    return (
        mock.patch.object(AttentionOp, "perform", side_effect=AssertionError("AttentionOp ran perform")),
        mock.patch.object(AttentionGradOp, "perform", side_effect=AssertionError("AttentionGradOp ran perform")),
    )


def _guarded(backend, fn):
    """``fn()`` under the patched ``perform`` (and the C kernels' BLAS) on C and Numba."""
    if backend not in ("c", "numba"):
        return fn()
    if backend == "c" and BLAS_FLAGS is None:
        pytest.skip("no BLAS here (blas__ldflags unset, NumPy bundles none); the attention C code needs one")
    first, second = _no_perform()
    with pytensor.config.change_flags(blas__ldflags=BLAS_FLAGS or ""), first, second:
        return fn()


def _op_function(backend, causal, dropout, scale=0.6):
    """Op forward and gradient, float64: q, k, v, [multiplier], g -> out, weights, dq, dk, dv."""
    key = (backend, causal, dropout)
    if key not in _compiled:
        n, lq, lk, e, ev = JAX_SHAPE if backend == "jax" else (None,) * 5
        q = pt.tensor("q", shape=(n, lq, e), dtype="float64")
        k = pt.tensor("k", shape=(n, lk, e), dtype="float64")
        v = pt.tensor("v", shape=(n, lk, ev), dtype="float64")
        g = pt.tensor("g", shape=(n, lq, ev), dtype="float64")
        multiplier = pt.tensor("m", shape=(n, lq, lk), dtype="float64") if dropout else None
        out, weights = attention(q, k, v, scale, causal, multiplier)
        grads = pt.grad(pt.sum(out * g), [q, k, v])
        inputs = [q, k, v] + ([multiplier] if dropout else []) + [g]
        fn = _guarded(backend, lambda: compile_fn(inputs, [out, weights, *grads], backend))
        _compiled[key] = lambda *args: _guarded(backend, lambda: fn(*args))
    return _compiled[key]


def _draw(rng, shape, dropout):
    n, lq, lk, e, ev = shape
    q, k = rng.normal(size=(n, lq, e)), rng.normal(size=(n, lk, e))
    v, g = rng.normal(size=(n, lk, ev)), rng.normal(size=(n, lq, ev))
    multiplier = (rng.random((n, lq, lk)) < 0.7) / 0.7 if dropout else None
    return q, k, v, multiplier, g


@pytest.mark.parametrize("causal, dropout", VARIANTS)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), shape=st.tuples(*(st.integers(1, 4),) * 3, st.integers(0, 3), st.integers(1, 3)))
def test_attention_op_matches_numpy_loop(backend, causal, dropout, seed, shape):
    rng = np.random.default_rng(seed)
    shape = JAX_SHAPE if backend == "jax" else shape
    q, k, v, multiplier, g = _draw(rng, shape, dropout)
    args = [q, k, v] + ([multiplier] if dropout else []) + [g]
    out, weights, *grads = _op_function(backend, causal, dropout)(*args)
    expected_out, expected_weights = _reference(q, k, v, 0.6, causal, multiplier)
    tol = {"rtol": 1e-9, "atol": 1e-10}
    assert_close(out, expected_out, **tol)
    assert_close(weights, expected_weights, **tol)
    for grad, expected, name in zip(grads, _numeric_grads(q, k, v, 0.6, causal, multiplier, g), "qkv"):
        assert_close(grad, expected, rtol=1e-5, atol=1e-6, err_msg=f"d{name}")


def test_attention_op_verify_grad():
    """``verify_grad`` through the weights output too (its own pullback terms), NumPy kernel."""
    rng = np.random.default_rng(0)
    q, k, v, _, _ = _draw(rng, (2, 3, 4, 2, 3), False)

    def cost(q, k, v):
        out, weights = AttentionOp(0.8, causal=True)(q, k, v)
        return out.sum() + (weights**2).sum()

    verify_grad(cost, [q, k, v], rng=rng)


def _parity_function(backend):
    """float32 (B, H, L, E) attention, fused and graph path, with a fixed dropout mask, and gradients."""
    key = (backend, "parity")
    if key not in _compiled:
        shape = (2, 2, 6, 4)
        q, k, v = (pt.tensor(name, shape=shape, dtype="float32") for name in "qkv")
        keep = pt.tensor("keep", shape=(2, 2, 6, 6), dtype="float32")

        def dropout(weights, p):
            return weights * keep / np.float32(1 - p)

        fused = scaled_dot_product_attention(q, k, v, causal=True, dropout_p=0.25, dropout=dropout)
        causal_keep = pt.ge(pt.arange(6)[:, None], pt.arange(6)[None, :])
        graph = graph_attention(q, k, v, np.float32(0.5), keep=causal_keep, dropout_p=0.25, dropout=dropout)
        grads = [pt.grad(pt.sum(out * pt.sin(out)), [q, k, v]) for out in (fused, graph)]
        fn = _guarded(backend, lambda: compile_fn([q, k, v, keep], [fused, graph, *grads[0], *grads[1]], backend))
        assert any(isinstance(node.op, AttentionOp) for node in fn.maker.fgraph.toposort())
        _compiled[key] = lambda *args: _guarded(backend, lambda: fn(*args))
    return _compiled[key]


def test_fused_matches_graph_path_float32(backend):
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=(2, 2, 6, 4)).astype("float32") for _ in range(3))
    keep = (rng.random((2, 2, 6, 6)) < 0.75).astype("float32")
    fused, graph, *grads = _parity_function(backend)(q, k, v, keep)
    assert_close(fused, graph, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads[:3], grads[3:]):
        assert_close(a, b, rtol=1e-4, atol=1e-5)


LONG_ROWS = (2, 21, 21, 1, 2)  # N, Lq, Lk, E, Ev: rows of 8-lane blocks and a remainder of 5


def _long_row_function(backend, causal):
    """float32 Op forward at LONG_ROWS with scale 0.5: q, k, v -> out, weights."""
    key = (backend, "long rows", causal)
    if key not in _compiled:
        n, lq, lk, e, ev = LONG_ROWS
        q = pt.tensor("q", shape=(n, lq, e), dtype="float32")
        k = pt.tensor("k", shape=(n, lk, e), dtype="float32")
        v = pt.tensor("v", shape=(n, lk, ev), dtype="float32")
        fn = _guarded(backend, lambda: compile_fn([q, k, v], list(attention(q, k, v, 0.5, causal)), backend))
        _compiled[key] = lambda *args: _guarded(backend, lambda: fn(*args))
    return _compiled[key]


@pytest.mark.parametrize("causal", [False, True])
def test_float32_long_rows_match_numpy_loop(backend, causal):
    """float32 rows long enough for the kernels' vector passes, with exact scores spread over 300.

    q is +-1 or 2 and k a multiple of 1/128 below 100 (E = 1, scale 0.5), so every score
    and every shifted score is exact in float32 and the weights' error is the kernel's
    exp, sum and division alone: a few float32 ulps against the float64 loop. The shifted
    scores pass float32's smallest normal exp (exp(-87.3)), below which the C kernel's exp
    gives 0 and libm's a denormal.
    """
    rng = np.random.default_rng(11)
    n, lq, lk, e, ev = LONG_ROWS
    q = rng.choice([1.0, -1.0, 2.0], size=(n, lq, e)).astype("float32")
    k = (rng.integers(-12800, 12800, size=(n, lk, e)) / 128).astype("float32")
    v = rng.normal(size=(n, lk, ev)).astype("float32")
    out, weights = _long_row_function(backend, causal)(q, k, v)
    expected_out, expected_weights = _reference(q.astype("float64"), k.astype("float64"), v.astype("float64"), 0.5, causal, None)
    assert (expected_weights[expected_weights > 0] < 1e-38).any(), "the shifted scores must reach exp's underflow"
    normal = expected_weights > 1.2e-38
    assert_close(weights[normal], expected_weights[normal], rtol=1e-6, atol=0)
    assert np.all(weights[~normal] <= 1.2e-38) and np.all(weights >= 0)
    assert_close(out, expected_out, rtol=1e-5, atol=1e-6)


def _op_types(out):
    """Names of the Op types in ``out``'s graph."""
    names, stack, seen = set(), [out], set()
    while stack:
        var = stack.pop()
        if var.owner is not None and id(var.owner) not in seen:
            seen.add(id(var.owner))
            names.add(type(var.owner.op).__name__)
            stack.extend(var.owner.inputs)
    return names


def test_sdpa_uses_the_fused_op_only_where_it_applies():
    q = pt.tensor("q", shape=(2, 3, 4, 8), dtype="float32")
    assert "AttentionOp" in _op_types(scaled_dot_product_attention(q, q, q))
    assert "AttentionOp" in _op_types(scaled_dot_product_attention(q, q, q, causal=True))
    assert "AttentionOp" not in _op_types(scaled_dot_product_attention(q, q, q, mask=pt.ones((4, 4), dtype="bool")))
    assert "AttentionOp" not in _op_types(scaled_dot_product_attention(q, q, q, key_padding_mask=pt.ones((2, 4))))
    dynamic = pt.tensor("d", shape=(None, 3, 4, 8), dtype="float32")
    assert "AttentionOp" not in _op_types(scaled_dot_product_attention(dynamic, dynamic, dynamic))


def test_bad_inputs_name_the_function_and_argument():
    q = pt.tensor("q", shape=(2, 4, 8), dtype="float64")
    with pytest.raises(ValueError, match=r"attention: k must have ndim 3 \(N, L, E\), got ndim 2"):
        attention(q, pt.matrix("k", dtype="float64"), q, 0.5)
    with pytest.raises(TypeError, match=r"attention: inputs must share one float dtype, got q float64, k float32, v float64"):
        attention(q, pt.tensor("k", shape=(2, 4, 8), dtype="float32"), q, 0.5)
    with pytest.raises(ValueError, match=r"attention: q's and k's embedding lengths must agree, got 8 and 5"):
        attention(q, pt.tensor("k", shape=(2, 4, 5), dtype="float64"), q, 0.5)
    with pytest.raises(ValueError, match=r"attention: has_dropout=True but a dropout multiplier was not given"):
        AttentionOp(0.5, has_dropout=True)(q, q, q)
    with pytest.raises(TypeError, match=r"AttentionOp: scale must be a finite real number, got nan"):
        AttentionOp(float("nan"))


def test_c_kernel_rejects_mismatched_runtime_shapes(backend):
    if backend not in ("c", "numba"):
        pytest.skip("run-time shape checks of the C and Numba kernels")
    fn = _op_function(backend, False, True)
    rng = np.random.default_rng(1)
    q, k, v, multiplier, g = _draw(rng, (2, 3, 4, 2, 3), True)
    with pytest.raises(ValueError, match=r"attention.*(k|v)"):
        fn(q, k[:1], v, multiplier, g)
    with pytest.raises(ValueError, match=r"attention.*dropout multiplier"):
        fn(q, k, v, multiplier[:, :2], g)
