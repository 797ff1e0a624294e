"""The C kernel of the fused GRU Ops (``dandelion.ops.c.gru``), built with a BLAS.

As ``test_ops_lstm_c``: the C code links the configured ``blas__ldflags`` or else
NumPy's bundled OpenBLAS; these tests compile under whichever exists
(``tests.helpers.c_kernel_blas_flags``) and patch both Ops' ``perform`` to fail, so a
silent fallback to the NumPy kernel fails. Values are checked against a loop over
``recurrent_cells.gru_cell`` written here, gradients against finite differences
(float64) and against the NumPy kernel, with and without a mask and a binding clip, in
both dtypes. Each (dtype, mask) compiles once, with dynamic shapes; the clip bound is a
run-time parameter and reuses the module.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dandelion.ops import gru_numpy, recurrent_cells
from dandelion.ops.c import gru_kernels
from tests.helpers import assert_close, c_kernel_blas_flags
from tests.op_harness import GRUSequenceGradOp, GRUSequenceOp

BLAS_FLAGS = c_kernel_blas_flags()
needs_blas = pytest.mark.skipif(
    BLAS_FLAGS is None, reason="no BLAS here (blas__ldflags unset, NumPy bundles none, no -lopenblas); the GRU C code needs one"
)
TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}
OPTIONS = [(dtype, has_mask) for dtype in ("float32", "float64") for has_mask in (False, True)]
BOUNDS = (0.0, 0.1)


def _no_perform():
    """Both Ops' ``perform`` raising; thunks bind it when compiled, so compile under this."""
    return (
        mock.patch.object(GRUSequenceOp, "perform", side_effect=AssertionError("GRUSequenceOp ran perform")),
        mock.patch.object(GRUSequenceGradOp, "perform", side_effect=AssertionError("GRUSequenceGradOp ran perform")),
    )


_FUNCTIONS = {}


def c_op_function(dtype, has_mask):
    """(forward and gradient Ops on the C code, compiled once): inputs, d_hs -> hs, cache, grads per bound."""
    key = (dtype, has_mask)
    if key not in _FUNCTIONS:
        dyn = lambda name, ndim: pt.tensor(name, dtype=dtype, shape=(None,) * ndim)  # noqa: E731
        gi, W, h0, d_hs = dyn("gi", 3), dyn("W", 2), dyn("h0", 2), dyn("d_hs", 3)
        mask = [dyn("m", 2)] if has_mask else []
        hs, cache = GRUSequenceOp(has_mask)(gi, W, h0, *mask)
        # One gradient Op per clip bound in use; the bound is a run-time parameter of the C code.
        grads = [GRUSequenceGradOp(has_mask, bound)(W, h0, *mask, hs, cache, d_hs) for bound in BOUNDS]
        patches = _no_perform()
        with pytensor.config.change_flags(blas__ldflags=BLAS_FLAGS or ""), patches[0], patches[1]:
            _FUNCTIONS[key] = pytensor.function([gi, W, h0, *mask, d_hs], [hs, cache, *grads[0], *grads[1]], mode="CVM")
    return _FUNCTIONS[key]


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(gi, W, h0, mask):
    """hs and cache ``[r | u | candidate | c_h]`` by ``recurrent_cells.gru_cell`` one step at a time (float64)."""
    gi, W, h = (np.asarray(v, dtype="float64") for v in (gi, W, h0))
    H = W.shape[0]
    hs, caches = [], []
    for t in range(gi.shape[0]):
        hid = h @ W
        blocks = [gi[t][:, k * H : (k + 1) * H] for k in range(3)] + [hid[:, k * H : (k + 1) * H] for k in range(3)]
        r, u, candidate, h_new = recurrent_cells.gru_cell(*blocks, h, _logistic, np.tanh)
        if mask is not None:
            h_new = np.where(mask[t][:, None] != 0, h_new, h)
        caches.append(np.concatenate([r, u, candidate, blocks[5]], axis=1))
        h = h_new
        hs.append(h)
    B = gi.shape[1]
    return (np.stack(hs) if hs else np.zeros((0, B, H))), (np.stack(caches) if caches else np.zeros((0, B, 4 * H)))


@needs_blas
@pytest.mark.parametrize("dtype, has_mask", OPTIONS)
@settings(max_examples=4)
@given(data=st.data())
def test_c_kernel_matches_the_cell_definition_and_the_numpy_kernel(dtype, has_mask, data):
    """Forward values against ``recurrent_cells``; gradients (clip 0 and a binding 0.1) against ``perform``'s kernel."""
    T = data.draw(st.integers(0, 5), label="T")
    B = data.draw(st.integers(1, 3), label="B")
    H = data.draw(st.integers(1, 5), label="H")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    gi, W, h0 = rng.standard_normal((T, B, 3 * H)), 0.6 * rng.standard_normal((H, 3 * H)), rng.standard_normal((B, H))
    mask = (rng.random((T, B)) < 0.65).astype(float) if has_mask else None
    gi, W, h0, d_hs = (np.asarray(v, dtype=dtype) for v in (gi, W, h0, rng.standard_normal((T, B, H))))
    inputs = [gi, W, h0] + ([mask.astype(dtype)] if has_mask else [])
    got = c_op_function(dtype, has_mask)(*inputs, d_hs)
    tol = TOL[dtype]
    for name, g, e in zip(("hs", "cache"), got[:2], reference_forward(gi, W, h0, mask), strict=True):
        assert g.dtype == dtype
        assert_close(g, e, err_msg=name, **tol)
    for k, bound in enumerate(BOUNDS):
        expected = gru_numpy.gru_backward(W, h0, mask, got[0], got[1], d_hs, bound, has_mask)
        grads = got[2 + 3 * k : 5 + 3 * k]
        for g, e, name in zip(grads, expected, ("d_gate_input", "d_W_hid", "d_h0"), strict=True):
            assert g.dtype == dtype
            assert_close(g, e, err_msg=f"{name}, clip {bound}", rtol=tol["rtol"], atol=10 * tol["atol"])


@needs_blas
@pytest.mark.parametrize("has_mask", [False, True])
def test_c_kernel_gradients_match_central_differences(has_mask):
    """float64: the C gradient (clip 0) is the derivative of ``sum(d_hs * hs)`` along random directions."""
    rng = np.random.default_rng(5)
    T, B, H = 3, 2, 3
    values = [rng.standard_normal((T, B, 3 * H)), 0.6 * rng.standard_normal((H, 3 * H)), rng.standard_normal((B, H))]
    mask = [np.array([[1, 1], [0, 1], [1, 0]], dtype=float)] if has_mask else []
    d_hs = rng.standard_normal((T, B, H))
    fn = c_op_function("float64", has_mask)
    grads = fn(*values, *mask, d_hs)[2:5]
    eps = 1e-6
    for k, grad in enumerate(grads):
        for _ in range(2):
            direction = rng.standard_normal(values[k].shape)

            def loss(sign, k=k, direction=direction):
                moved = list(values)
                moved[k] = values[k] + sign * eps * direction
                return float(np.sum(d_hs * fn(*moved, *mask, d_hs)[0]))

            numeric = (loss(1) - loss(-1)) / (2 * eps)
            np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=1e-6, atol=1e-8, err_msg=f"input {k}")


@needs_blas
def test_c_code_reports_bad_runtime_shapes_naming_the_argument():
    fn = c_op_function("float64", False)
    rng = np.random.default_rng(0)
    T, B, H = 2, 3, 4
    gi, W, h0, d = rng.standard_normal((T, B, 3 * H)), rng.standard_normal((H, 3 * H)), np.zeros((B, H)), rng.standard_normal((T, B, H))
    with pytest.raises(ValueError, match=r"gru_sequence: h0 must have shape \(3, 4\) \(T=2, B=3, H=4\), got \(2, 4\)"):
        fn(gi, W, np.zeros((2, H)), d)
    with pytest.raises(ValueError, match=r"gru_sequence: gate_input must have shape \(2, 3, 12\) \(T=2, B=3, H=4\), got \(2, 3, 9\)"):
        fn(gi[:, :, :9], W, h0, d)
    with pytest.raises(ValueError, match=r"gru_sequence_grad: d_hs must have shape \(2, 3, 4\) \(T=2, B=3, H=4\), got \(2, 3, 5\)"):
        fn(gi, W, h0, rng.standard_normal((T, B, 5)))


def _c_sources(op, node):
    sub = {"fail": "FAIL;", "params": "params"}
    inputs = [f"in{k}" for k in range(len(node.inputs))]
    outputs = [f"out{k}" for k in range(len(node.outputs))]
    with pytensor.config.change_flags(blas__ldflags=BLAS_FLAGS or "-lblas"):
        return op.c_code(node, "n", inputs, outputs, sub), op.c_support_code()


def test_one_compiled_module_serves_every_clip_bound_and_option():
    """The generated text does not depend on the clip bound, and the support code not on any option."""
    gi, W, h0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0")
    hs, cache = GRUSequenceOp()(gi, W, h0)
    texts, supports = [], set()
    for bound in (0.0, 1.0, 7.5):
        op = GRUSequenceGradOp(grad_clipping=bound)
        node = op.make_node(W, h0, hs, cache, hs)
        code, support = _c_sources(op, node)
        texts.append(code)
        supports.add(support)
        assert op.get_params(node).grad_clipping == bound
    assert texts[0] == texts[1] == texts[2]
    masked = GRUSequenceOp(has_mask=True)
    supports.add(_c_sources(masked, masked.make_node(gi, W, h0, pt.matrix("m")))[1])
    assert len(supports) == 1


def test_c_code_declines_without_blas_so_perform_runs():
    """No BLAS at all: the C code raises NotImplementedError and the compiled function runs the NumPy kernel."""
    gi, W, h0 = (pt.tensor(n, dtype="float64", shape=(None,) * d) for n, d in (("gi", 3), ("W", 2), ("h0", 2)))
    op = GRUSequenceOp()
    node = op.make_node(gi, W, h0)
    with pytensor.config.change_flags(blas__ldflags=""), mock.patch("dandelion.ops.c.blas._link_for", return_value=None):
        with pytest.raises(NotImplementedError, match="needs a BLAS: set blas__ldflags"):
            op.c_code(node, "n", ["a", "b", "c"], ["x", "y"], {"fail": "", "params": ""})
        with pytest.raises(NotImplementedError, match="needs a BLAS: set blas__ldflags"):
            op.c_support_code()
        calls = []
        original = GRUSequenceOp.perform

        def counted(self, *args):
            calls.append(1)
            return original(self, *args)

        with mock.patch.object(GRUSequenceOp, "perform", counted):
            fn = pytensor.function([gi, W, h0], op(gi, W, h0)[0], mode="CVM")
    rng = np.random.default_rng(1)
    T, B, H = 2, 1, 3
    args = rng.standard_normal((T, B, 3 * H)), rng.standard_normal((H, 3 * H)), np.zeros((B, H))
    assert_close(fn(*args), reference_forward(*args, None)[0], rtol=1e-12, atol=1e-12)
    assert calls == [1]


def test_c_kernels_are_traced_from_the_one_cell_definition(monkeypatch):
    """The generated cell code comes from calling ``recurrent_cells``' functions (and changes with them)."""
    calls = []
    for name in ("gru_cell", "gru_cell_backward_factors", "gru_cell_backward"):
        original = getattr(recurrent_cells, name)

        def counted(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(gru_kernels, name, counted)
    forward = gru_kernels.forward_step_code("float")
    backward = gru_kernels.backward_step_code("double")
    assert calls == ["gru_cell", "gru_cell_backward_factors", "gru_cell_backward"]
    assert "dl_gru_sigmoid_float(" in forward and "dl_gru_tanh_float(" in forward and "dl_gru_clip_double(" in backward
    # a different cell definition gives different C
    monkeypatch.setattr(gru_kernels, "gru_cell", lambda r_x, u_x, c_x, r_h, u_h, c_h, h_prev, *rest: (r_x, u_x, c_x, h_prev))
    assert "dl_gru_sigmoid_float(" not in gru_kernels.forward_step_code("float")
