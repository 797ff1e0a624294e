"""The Numba kernels of the fused GRU (``dandelion.ops.numba.gru_kernels``).

As ``test_numba_lstm_kernels``: the per-row passes vectorise and the float32 ones
compute in float32 (Numba's own LLVM output), and values and gradients at a hidden size
that runs the vector loops and their remainders (``test_ops_gru_sequence`` keeps
H <= 5), against central differences of the NumPy reference: through a compiled graph,
with both Ops' ``perform`` patched to fail and Numba's object-mode fallback an error
(there the library build of the C kernels runs, where a compiler is at hand), and the
Numba loops called directly.
"""

from __future__ import annotations

from unittest import mock

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.ops.numba import gru_kernels
from tests import recurrent_reference as ref
from tests.numba_ir import row_pass_ir, vector_lanes
from tests.op_harness import GRUSequenceGradOp, GRUSequenceOp, compile_strict, gru_sequence

ROW_PASSES = {  # name: argument ranks (1: a row, 0: a scalar)
    "forward_row": (1, 1, 1, 1, 1),
    "backward_row": (1, 1, 1, 0, 1, 1),
}


def _llvm_ir(name, dtype):
    return row_pass_ir(getattr(gru_kernels, name), ROW_PASSES[name], dtype)


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


def test_kernels_are_jitted_from_the_one_definition():
    from dandelion.ops import recurrent_cells

    assert gru_kernels.gru_cell_jit.py_func is recurrent_cells.gru_cell
    assert gru_kernels.gru_cell_backward_factors_jit.py_func is recurrent_cells.gru_cell_backward_factors
    assert gru_kernels.gru_cell_backward_jit.py_func is recurrent_cells.gru_cell_backward


# ---------------------------------------------- values and gradients at a vector-sized H
T, B, H = 4, 3, 19  # 19 = two 8-lane vectors and a remainder of 3
MASK = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]])
NAMES = ("gi", "W", "h0")


def _reference_loss(values, R):
    """sum(hs * R) by the reference loop, in float64."""
    G = 3 * H
    hs, _ = ref.gru_sequence(values["gi"], np.eye(G), np.zeros(G), values["W"], values["h0"], mask=MASK)
    return float((hs * R).sum())


def _finite_differences(values, R, eps=1e-6):
    grads = {}
    for name, value in values.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            up = _reference_loss(values, R)
            value[index] = saved - eps
            down = _reference_loss(values, R)
            value[index] = saved
            grad[index] = (up - down) / (2 * eps)
        grads[name] = grad
    return grads


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(7)
    values = {"gi": rng.standard_normal((T, B, 3 * H)), "W": 0.3 * rng.standard_normal((H, 3 * H)), "h0": rng.standard_normal((B, H))}
    R = rng.standard_normal((T, B, H))
    hs, _ = ref.gru_sequence(values["gi"], np.eye(3 * H), np.zeros(3 * H), values["W"], values["h0"], mask=MASK)
    return values, R, hs, _finite_differences({k: v.copy() for k, v in values.items()}, R)


def _check(got_hs, grads, reference, dtype, tol):
    _, _, expected_hs, expected_grads = reference
    assert got_hs.dtype == np.dtype(dtype) and all(g.dtype == np.dtype(dtype) for g in grads)
    np.testing.assert_allclose(got_hs, expected_hs, rtol=tol, atol=tol)
    for name, grad in zip(NAMES, grads, strict=True):
        # finite differences of a float64 reference: 1e-6 steps leave about 1e-8 of error
        np.testing.assert_allclose(grad, expected_grads[name], rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-4), ("float64", 1e-6)])
def test_values_and_gradients_against_the_reference(reference, dtype, tol):
    """Through a compiled graph: the library build of the C kernels where there is a compiler."""
    from dandelion.ops.numba.gru_cfuncs import native_gru

    assert (native_gru() is not None) == bool(pytensor.config.cxx)
    values, R, _, _ = reference
    gi, W, h0 = pt.tensor3("gi", dtype=dtype), pt.matrix("W", dtype=dtype), pt.matrix("h0", dtype=dtype)
    mask = pt.matrix("mask", dtype=dtype)
    hs = gru_sequence(gi, W, h0, mask=mask)
    outputs = [hs, *pytensor.grad((hs * R.astype(dtype)).sum(), [gi, W, h0])]
    fail = [mock.patch.object(op, "perform", side_effect=AssertionError(f"{op.__name__} ran perform")) for op in (GRUSequenceOp, GRUSequenceGradOp)]
    with fail[0], fail[1]:
        fn = compile_strict([gi, W, h0, mask], outputs, "numba")
        got_hs, *grads = fn(*(values[k].astype(dtype) for k in NAMES), MASK.astype(dtype))
    _check(got_hs, grads, reference, dtype, tol)


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-4), ("float64", 1e-6)])
def test_numba_loops_against_the_reference(reference, dtype, tol):
    """The Numba loops themselves (what runs without a C++ compiler or with ``DANDELION_NATIVE_KERNELS=0``)."""
    values, R, _, _ = reference
    gi, W, h0 = (np.ascontiguousarray(values[k], dtype=dtype) for k in NAMES)
    mask, d_hs = MASK.astype(dtype), np.ascontiguousarray(R, dtype=dtype)
    hs, cache = np.zeros((T, B, H), dtype), np.zeros((T, B, 4 * H), dtype)
    grads = [np.zeros_like(gi), np.zeros_like(W), np.zeros_like(h0)]
    _run_numba_loops(gi, W, h0, mask, d_hs, hs, cache, *grads, np.zeros((T, B, 3 * H), dtype))
    _check(hs, grads, reference, dtype, tol)


@numba.njit
def _run_numba_loops(gi, W, h0, mask, d_hs, hs, cache, d_gi, d_W, d_h0, d_hid):
    # the kernels are compiled without a CPython wrapper: Python reaches them through this one
    gru_kernels.gru_forward(gi, W, h0, mask, True, hs, cache)
    gru_kernels.gru_backward(W, h0, mask, hs, cache, d_hs, 0.0, True, d_gi, d_W, d_h0, d_hid)
