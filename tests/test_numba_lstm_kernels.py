"""The Numba kernels of the fused LSTM (``dandelion.ops.numba.lstm_kernels``).

What their speed rests on, checked with Numba's own output rather than timings: the
per-row passes vectorise, and the float32 kernels compute in float32. Then their values
and gradients at a hidden size that runs the vector loops and their remainders (the
shared tests of ``test_ops_lstm_sequence`` keep H <= 5), against finite differences of
the NumPy reference, compiled with Numba's object-mode fallback as an error.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.ops.numba import lstm_kernels
from tests import recurrent_reference as ref
from tests.numba_ir import row_pass_ir, vector_lanes
from tests.op_harness import compile_strict, lstm_sequence

ROW_PASSES = {  # name: argument ranks (1: a row, 2: the (3, H) peepholes)
    "forward_row": (1, 1, 1, 2, 1, 1),
    "backward_row": (1, 1, 1, 1, 1, 2, 1),
    "add_peephole_grads": (1, 1, 1, 2),
    "clip_in_place": (1, 0),
}


def _llvm_ir(name, dtype):
    return row_pass_ir(getattr(lstm_kernels, name), ROW_PASSES[name], dtype)


@pytest.mark.parametrize("name", sorted(ROW_PASSES))
@pytest.mark.parametrize("dtype, element", [("float32", "float"), ("float64", "double")])
def test_row_passes_vectorise(name, dtype, element):
    ir = _llvm_ir(name, dtype)
    lanes = vector_lanes(ir, element)
    assert lanes and max(lanes) >= 4, f"{name} ({dtype}): no vector instructions in its loop"


@pytest.mark.parametrize("name", sorted(ROW_PASSES))
def test_float32_row_passes_stay_float32(name):
    """No float64 arithmetic: a promoted constant would halve the vector width."""
    ir = _llvm_ir(name, "float32")
    assert "fpext" not in ir and "double" not in ir, f"{name} converts float32 to float64"


def test_float32_tanh_computes_in_float32():
    x = np.concatenate([np.linspace(-12, 12, 4001), [-1e4, -9.0, -1e-6, 0.0, 1e-6, 9.0, 1e4]]).astype("float32")
    approx = np.array([lstm_kernels.rational_tanh32.py_func(v) for v in x])
    assert approx.dtype == np.float32
    # float32 rounding of a dozen operations: a few units in the last place of values <= 1
    np.testing.assert_allclose(approx, np.tanh(x.astype("float64")), rtol=0, atol=4e-7)
    assert np.all(np.abs(approx) <= 1) and np.all(np.sign(approx) == np.sign(x))


# ---------------------------------------------- values and gradients at a vector-sized H
T, B, H = 4, 3, 19  # 19 = two 8-lane vectors and a remainder of 3
MASK = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]])


def _inputs(rng, dtype):
    values = {
        "gi": rng.standard_normal((T, B, 4 * H)),
        "W": 0.3 * rng.standard_normal((H, 4 * H)),
        "h0": rng.standard_normal((B, H)),
        "c0": rng.standard_normal((B, H)),
        "peep": 0.5 * rng.standard_normal((3, H)),
    }
    return {k: v.astype(dtype) for k, v in values.items()}


def _reference_loss(values, R, S):
    """sum(hs * R) + sum(c_T * S) by the reference loop, in float64."""
    G = 4 * H
    hs, _, c_final = ref.lstm_sequence(
        values["gi"], np.eye(G), np.zeros(G), values["W"], values["h0"], values["c0"], values["peep"], mask=MASK
    )
    return float((hs * R).sum() + (c_final * S).sum())


def _finite_differences(values, R, S, eps=1e-6):
    grads = {}
    for name, value in values.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            up = _reference_loss(values, R, S)
            value[index] = saved - eps
            down = _reference_loss(values, R, S)
            value[index] = saved
            grad[index] = (up - down) / (2 * eps)
        grads[name] = grad
    return grads


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(7)
    values = _inputs(rng, "float64")
    R, S = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    hs, _, c_final = ref.lstm_sequence(
        values["gi"], np.eye(4 * H), np.zeros(4 * H), values["W"], values["h0"], values["c0"], values["peep"], mask=MASK
    )
    return values, R, S, hs, c_final, _finite_differences({k: v.copy() for k, v in values.items()}, R, S)


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-4)])  # float64: test_ops_lstm_sequence's finite differences
def test_values_and_gradients_against_the_reference(reference, dtype, tol):
    values, R, S, expected_hs, expected_c, expected_grads = reference
    gi, W = pt.tensor3("gi", dtype=dtype), pt.matrix("W", dtype=dtype)
    h0, c0, peep = pt.matrix("h0", dtype=dtype), pt.matrix("c0", dtype=dtype), pt.matrix("peep", dtype=dtype)
    mask = pt.matrix("mask", dtype=dtype)
    hs, cs = lstm_sequence(gi, W, h0, c0, peepholes=[peep[0], peep[1], peep[2]], mask=mask)
    loss = (hs * R.astype(dtype)).sum() + (cs[-1] * S.astype(dtype)).sum()
    wrt = [gi, W, h0, c0, peep]
    fn = compile_strict([gi, W, h0, c0, peep, mask], [hs, cs[-1], *pytensor.grad(loss, wrt)], "numba")
    got_hs, got_c, *grads = fn(*(values[k].astype(dtype) for k in ("gi", "W", "h0", "c0", "peep")), MASK.astype(dtype))
    assert got_hs.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got_hs, expected_hs, rtol=tol, atol=tol)
    np.testing.assert_allclose(got_c, expected_c, rtol=tol, atol=tol)
    for name, grad in zip(("gi", "W", "h0", "c0", "peep"), grads, strict=True):
        # finite differences of a float64 reference: 1e-6 steps leave about 1e-8 of error
        np.testing.assert_allclose(grad, expected_grads[name], rtol=max(tol, 1e-6), atol=max(tol, 1e-6), err_msg=name)
