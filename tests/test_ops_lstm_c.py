"""The C kernel of the fused LSTM Ops (``dandelion.ops.c.lstm``), built with a BLAS.

The C code links the configured ``blas__ldflags`` or else NumPy's bundled OpenBLAS
(``dandelion.ops.c.blas``); these tests compile under whichever exists
(``tests.helpers.c_kernel_blas_flags``) and patch both Ops' ``perform`` to fail: a silent
fallback to the NumPy kernel fails the test. Values are checked against a loop over
``recurrent_cells.lstm_cell`` written here, gradients against finite differences
(float64) and against the NumPy kernel, for every option (peepholes, mask, clipping)
and both dtypes. Each (dtype, peephole, mask) compiles once, with dynamic shapes; the
clip bound is a run-time parameter and reuses the module.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dandelion.ops import lstm_numpy, recurrent_cells
from dandelion.ops.c import lstm_kernels
from dandelion.ops.lstm import LSTMSequenceGradOp, LSTMSequenceOp
from tests.helpers import assert_close, c_kernel_blas_flags, system_openblas_flags

BLAS_FLAGS = c_kernel_blas_flags()
needs_blas = pytest.mark.skipif(
    BLAS_FLAGS is None, reason="no BLAS here (blas__ldflags unset, NumPy bundles none, no -lopenblas); the LSTM C code needs one"
)
TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}
OPTIONS = [(dtype, peephole, has_mask) for dtype in ("float32", "float64") for peephole in (False, True) for has_mask in (False, True)]


def _no_perform():
    """Both Ops' ``perform`` raising; thunks bind it when compiled, so compile under this."""
    return (
        mock.patch.object(LSTMSequenceOp, "perform", side_effect=AssertionError("LSTMSequenceOp ran perform")),
        mock.patch.object(LSTMSequenceGradOp, "perform", side_effect=AssertionError("LSTMSequenceGradOp ran perform")),
    )


def _c_function(inputs, outputs):
    patches = _no_perform()
    with pytensor.config.change_flags(blas__ldflags=BLAS_FLAGS), patches[0], patches[1]:
        return pytensor.function(inputs, outputs, mode="CVM")


_FUNCTIONS = {}


def c_op_function(dtype, peephole, has_mask):
    """(forward and gradient Ops on the C code, compiled once): inputs, d_hs, d_cs -> hs, cs, gates, grads."""
    key = (dtype, peephole, has_mask)
    if key not in _FUNCTIONS:
        dyn = lambda name, ndim: pt.tensor(name, dtype=dtype, shape=(None,) * ndim)  # noqa: E731
        gi, W, h0, c0 = dyn("gi", 3), dyn("W", 2), dyn("h0", 2), dyn("c0", 2)
        peep = [dyn(f"p{k}", 1) for k in range(3)] if peephole else []
        mask = [dyn("m", 2)] if has_mask else []
        d_hs, d_cs = dyn("d_hs", 3), dyn("d_cs", 3)
        inputs = [gi, W, *peep, h0, c0, *mask]
        hs, cs, gates = LSTMSequenceOp(peephole, has_mask)(*inputs)
        # One gradient Op per clip bound in use; the bound is a run-time parameter of the C code.
        grads = {
            bound: LSTMSequenceGradOp(peephole, has_mask, bound)(W, *peep, h0, c0, *mask, hs, cs, gates, d_hs, d_cs)
            for bound in (0.0, 0.1)
        }
        outputs = [hs, cs, gates, *grads[0.0], *grads[0.1]]
        _FUNCTIONS[key] = _c_function([*inputs, d_hs, d_cs], outputs)
    return _FUNCTIONS[key]


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_forward(gi, W, peep, h0, c0, mask):
    """hs, cs, gates by ``recurrent_cells.lstm_cell`` one step at a time (float64)."""
    gi, W, h, c = (np.asarray(v, dtype="float64") for v in (gi, W, h0, c0))
    peep = None if peep is None else np.asarray(peep, dtype="float64")
    H = W.shape[0]
    hs, cs, gates = [], [], []
    for t in range(gi.shape[0]):
        a = gi[t] + h @ W
        terms = (c * peep[0], c * peep[1], peep[2]) if peep is not None else (None,) * 3
        i, f, g, o, c_new, h_new = recurrent_cells.lstm_cell(
            a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :], c, *terms, _logistic, np.tanh, np.tanh
        )
        if mask is not None:
            keep = mask[t][:, None] != 0
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        h, c = h_new, c_new
        hs.append(h)
        cs.append(c)
        gates.append(np.concatenate([i, f, g, o], axis=1))
    B = gi.shape[1]
    empty = (np.zeros((0, B, H)), np.zeros((0, B, H)), np.zeros((0, B, 4 * H)))
    return tuple(np.stack(x) if x else e for x, e in zip((hs, cs, gates), empty, strict=True))


def _draw_case(data, dtype, peephole, has_mask):
    T = data.draw(st.integers(0, 5), label="T")
    B = data.draw(st.integers(1, 3), label="B")
    H = data.draw(st.integers(1, 5), label="H")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    values = [rng.standard_normal((T, B, 4 * H)), 0.6 * rng.standard_normal((H, 4 * H))]
    values += list(0.6 * rng.standard_normal((3, H))) if peephole else []
    values += list(rng.standard_normal((2, B, H)))
    values += [(rng.random((T, B)) < 0.65).astype(float)] if has_mask else []
    values = [np.asarray(v, dtype=dtype) for v in values]
    d_hs, d_cs = (np.asarray(v, dtype=dtype) for v in rng.standard_normal((2, T, B, H)))
    return values, d_hs, d_cs


def _split(values, peephole, has_mask):
    gi, W, *rest = values
    peep = np.stack(rest[:3]) if peephole else None
    h0, c0 = rest[3 * peephole : 3 * peephole + 2]
    mask = rest[-1] if has_mask else None
    return gi, W, peep, h0, c0, mask


@needs_blas
@pytest.mark.parametrize("dtype, peephole, has_mask", OPTIONS)
@settings(max_examples=4)
@given(data=st.data())
def test_c_kernel_matches_the_cell_definition_and_the_numpy_kernel(dtype, peephole, has_mask, data):
    """Forward values against ``recurrent_cells``; gradients (clip 0 and a binding 0.1) against ``perform``'s kernel."""
    values, d_hs, d_cs = _draw_case(data, dtype, peephole, has_mask)
    got = c_op_function(dtype, peephole, has_mask)(*values, d_hs, d_cs)
    gi, W, peep, h0, c0, mask = _split(values, peephole, has_mask)
    tol = TOL[dtype]
    for name, g, e in zip(("hs", "cs", "gates"), got[:3], reference_forward(gi, W, peep, h0, c0, mask), strict=True):
        assert g.dtype == dtype
        assert_close(g, e, err_msg=name, **tol)
    H = W.shape[0]
    packed = peep if peephole else np.zeros((3, H), dtype=dtype)
    n_grads = (len(got) - 3) // 2
    for k, bound in enumerate((0.0, 0.1)):
        expected = lstm_numpy.lstm_backward(W, packed, h0, c0, mask, *got[:3], d_hs, d_cs, bound, peephole, has_mask)
        d_gi, d_W, d_peep, d_h0, d_c0 = expected
        expected = [d_gi, d_W, *(list(d_peep) if peephole else []), d_h0, d_c0]
        grads = got[3 + k * n_grads : 3 + (k + 1) * n_grads]
        for g, e, name in zip(grads, expected, ["d_gate_input", "d_W_hid", "d_w_ci", "d_w_cf", "d_w_co"][: 2 + 3 * peephole] + ["d_h0", "d_c0"], strict=True):
            assert g.dtype == dtype
            assert_close(g, e, err_msg=f"{name}, clip {bound}", rtol=tol["rtol"], atol=10 * tol["atol"])
        if bound and grads[0].size:
            assert np.abs(grads[0]).max() <= bound * (1 + 1e-6)


@needs_blas
@pytest.mark.parametrize("peephole, has_mask", [(False, False), (False, True), (True, False), (True, True)])
def test_c_kernel_gradients_match_central_differences(peephole, has_mask):
    """float64: the C gradient (clip 0) is the derivative of ``sum(d_hs * hs + d_cs * cs)`` along random directions.

    The same check as ``verify_grad``, on the already compiled function (no new graphs to compile).
    """
    rng = np.random.default_rng(5)
    T, B, H = 3, 2, 3
    values = [rng.standard_normal((T, B, 4 * H)), 0.6 * rng.standard_normal((H, 4 * H))]
    values += list(0.6 * rng.standard_normal((3, H))) if peephole else []
    values += list(rng.standard_normal((2, B, H)))
    values += [np.array([[1, 1], [0, 1], [1, 0]], dtype=float)] if has_mask else []
    d_hs, d_cs = rng.standard_normal((2, T, B, H))
    fn = c_op_function("float64", peephole, has_mask)
    n_diff = len(values) - int(has_mask)  # the mask is not differentiable
    grads = fn(*values, d_hs, d_cs)[3 : 3 + n_diff]
    # the gradient Op's outputs: d_gate_input, d_W_hid, [peepholes], d_h0, d_c0; the inputs: gi, W, [peepholes], h0, c0
    eps = 1e-6
    for k, grad in enumerate(grads):
        for _ in range(2):
            direction = rng.standard_normal(values[k].shape)

            def loss(sign, k=k, direction=direction):
                moved = list(values)
                moved[k] = values[k] + sign * eps * direction
                hs, cs = fn(*moved, d_hs, d_cs)[:2]
                return float(np.sum(d_hs * hs) + np.sum(d_cs * cs))

            numeric = (loss(1) - loss(-1)) / (2 * eps)
            np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=1e-6, atol=1e-8, err_msg=f"input {k}")


@needs_blas
def test_c_code_reports_bad_runtime_shapes_naming_the_argument():
    fn = c_op_function("float64", False, False)
    rng = np.random.default_rng(0)
    T, B, H = 2, 3, 4
    gi, W = rng.standard_normal((T, B, 4 * H)), rng.standard_normal((H, 4 * H))
    d = rng.standard_normal((T, B, H))
    with pytest.raises(ValueError, match=r"lstm_sequence: h0 must have shape \(3, 4\) \(T=2, B=3, H=4\), got \(2, 4\)"):
        fn(gi, W, np.zeros((2, H)), np.zeros((B, H)), d, d)
    with pytest.raises(ValueError, match=r"lstm_sequence: gate_input must have shape \(2, 3, 16\) \(T=2, B=3, H=4\), got \(2, 3, 12\)"):
        fn(gi[:, :, :12], W, np.zeros((B, H)), np.zeros((B, H)), d, d)
    with pytest.raises(ValueError, match=r"lstm_sequence_grad: d_hs must have shape \(2, 3, 4\) \(T=2, B=3, H=4\), got \(2, 3, 5\)"):
        fn(gi, W, np.zeros((B, H)), np.zeros((B, H)), rng.standard_normal((T, B, 5)), d)


def _c_sources(op, node):
    sub = {"fail": "FAIL;", "params": "params"}
    inputs = [f"in{k}" for k in range(len(node.inputs))]
    outputs = [f"out{k}" for k in range(len(node.outputs))]
    with pytensor.config.change_flags(blas__ldflags=BLAS_FLAGS or "-lblas"):
        return op.c_code(node, "n", inputs, outputs, sub), op.c_support_code()


SYSTEM_OPENBLAS = system_openblas_flags()


@pytest.mark.skipif(
    SYSTEM_OPENBLAS is None or not BLAS_FLAGS == "",
    reason="needs both NumPy's bundled OpenBLAS (blas__ldflags unset) and a system -lopenblas to compare",
)
def test_configured_blas_and_numpys_bundled_openblas_give_the_same_kernel_results():
    """The two links differ in symbols and integer width (``sgemm_`` with int against NumPy's
    ILP64 ``scipy_sgemm_64_``); the same float64 forward and gradient through each."""
    rng = np.random.default_rng(3)
    T, B, H = 4, 3, 5
    values = [rng.standard_normal((T, B, 4 * H)), 0.5 * rng.standard_normal((H, 4 * H)), *rng.standard_normal((2, B, H))]
    d_hs, d_cs = rng.standard_normal((2, T, B, H))
    bundled = c_op_function("float64", False, False)(*values, d_hs, d_cs)
    gi, W, h0, c0, g_hs, g_cs = (pt.tensor(n, dtype="float64", shape=(None,) * d) for n, d in (("gi", 3), ("W", 2), ("h0", 2), ("c0", 2), ("d_hs", 3), ("d_cs", 3)))
    hs, cs, gates = LSTMSequenceOp()(gi, W, h0, c0)
    grads = LSTMSequenceGradOp()(W, h0, c0, hs, cs, gates, g_hs, g_cs)
    patches = _no_perform()
    with pytensor.config.change_flags(blas__ldflags=SYSTEM_OPENBLAS), patches[0], patches[1]:
        system = pytensor.function([gi, W, h0, c0, g_hs, g_cs], [hs, cs, gates, *grads], mode="CVM")(*values, d_hs, d_cs)
    for k, (a, b) in enumerate(zip(system, bundled[: len(system)], strict=True)):
        assert_close(a, b, rtol=1e-12, atol=1e-12, err_msg=f"output {k}")


def test_one_compiled_module_serves_every_clip_bound_and_option():
    """The generated text does not depend on the clip bound, and the support code not on any option."""
    gi, W, h0, c0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0"), pt.matrix("c0")
    hs, cs, gates = LSTMSequenceOp()(gi, W, h0, c0)
    texts, supports = [], set()
    for bound in (0.0, 1.0, 7.5):
        op = LSTMSequenceGradOp(grad_clipping=bound)
        node = op.make_node(W, h0, c0, hs, cs, gates, hs, cs)
        code, support = _c_sources(op, node)
        texts.append(code)
        supports.add(support)
        assert op.get_params(node).grad_clipping == bound
    assert texts[0] == texts[1] == texts[2]
    peep_op = LSTMSequenceOp(peephole=True, has_mask=True)
    supports.add(_c_sources(peep_op, peep_op.make_node(gi, W, *[pt.vector()] * 3, h0, c0, pt.matrix("m")))[1])
    assert len(supports) == 1


def test_c_code_declines_without_blas_so_perform_runs():
    """No BLAS at all (no ``blas__ldflags``, NumPy bundling none): the C code raises
    NotImplementedError and the compiled function runs the NumPy kernel."""
    gi, W, h0, c0 = (pt.tensor(n, dtype="float64", shape=(None,) * d) for n, d in (("gi", 3), ("W", 2), ("h0", 2), ("c0", 2)))
    op = LSTMSequenceOp()
    node = op.make_node(gi, W, h0, c0)
    with pytensor.config.change_flags(blas__ldflags=""), mock.patch("dandelion.ops.c.blas._link_for", return_value=None):
        with pytest.raises(NotImplementedError, match="needs a BLAS: set blas__ldflags"):
            op.c_code(node, "n", ["a", "b", "c", "d"], ["x", "y", "z"], {"fail": "", "params": ""})
        with pytest.raises(NotImplementedError, match="needs a BLAS: set blas__ldflags"):
            op.c_support_code()
        calls = []
        original = LSTMSequenceOp.perform

        def counted(self, *args):
            calls.append(1)
            return original(self, *args)

        with mock.patch.object(LSTMSequenceOp, "perform", counted):
            fn = pytensor.function([gi, W, h0, c0], op(gi, W, h0, c0)[0], mode="CVM")
    rng = np.random.default_rng(1)
    T, B, H = 2, 1, 3
    args = rng.standard_normal((T, B, 4 * H)), rng.standard_normal((H, 4 * H)), np.zeros((B, H)), np.zeros((B, H))
    assert_close(fn(*args), reference_forward(*args[:2], None, *args[2:], None)[0], rtol=1e-12, atol=1e-12)
    assert calls == [1]


def test_c_kernels_are_traced_from_the_one_cell_definition(monkeypatch):
    """The generated cell code comes from calling ``recurrent_cells``' functions (and changes with them)."""
    calls = []
    for name in ("lstm_cell", "lstm_cell_backward_factors", "lstm_cell_backward"):
        original = getattr(recurrent_cells, name)

        def counted(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(lstm_kernels, name, counted)
    forward = lstm_kernels.forward_step_code("float", peephole=True)
    backward = lstm_kernels.backward_step_code("double", peephole=False)
    assert calls == ["lstm_cell", "lstm_cell_backward_factors", "lstm_cell_backward"]
    assert "dl_lstm_sigmoid_float(" in forward and "dl_lstm_tanh_double(" in backward
    # a different cell definition gives different C
    monkeypatch.setattr(lstm_kernels, "lstm_cell", lambda a_i, a_f, a_g, a_o, c_prev, *rest: (a_i, a_f, a_g, a_o, c_prev, c_prev))
    assert "dl_lstm_sigmoid_float(" not in lstm_kernels.forward_step_code("float", peephole=False)
