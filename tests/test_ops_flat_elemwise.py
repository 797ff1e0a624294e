"""``FlatElemwise``: the C backend's flat elementwise loops (``dandelion.ops.flat_elemwise``).

Values against NumPy on both of its C branches (the flat loop over contiguous buffers
and PyTensor's strided loop for views), inplace updates of shared variables, an input
used twice, a scalar op whose C code can fail, and the single-precision constants that
make float32 C results equal float32 NumPy bit for bit. Each graph compiles once, with
dynamic shapes, and hypothesis feeds it arrays.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.compile.mode import get_mode

import dandelion
from dandelion.ops.flat_elemwise import FlatElemwise, with_flat_elemwise
from tests.helpers import assert_close

C_MODE = "c"
B1, B2, EPS = np.float32(0.9), np.float32(0.999), np.float32(1e-8)


def _flat_nodes(function):
    return [node for node in function.maker.fgraph.toposort() if isinstance(node.op, FlatElemwise)]


def _adam_like(m, v, w, g, step):
    m_new = B1 * m + (1 - B1) * g
    v_new = B2 * v + (1 - B2) * g * g
    return m_new, v_new, w - step * m_new / (pt.sqrt(v_new) + EPS)


def _adam_like_numpy(m, v, w, g, step):
    m_new = B1 * m + (1 - B1) * g
    v_new = B2 * v + (1 - B2) * g * g
    return m_new, v_new, w - step * m_new / (np.sqrt(v_new) + EPS)


def test_adam_update_in_place_matches_numpy_on_every_backend(backend):
    """A (1, 1)-broadcast step size and inplace shared updates: flat on C, PyTensor's own loop elsewhere."""
    rng = np.random.default_rng(0)
    shape = (37, 29)
    start = [rng.normal(size=shape).astype("float32") for _ in range(3)]
    start[1] = np.abs(start[1])
    m, v, w = (pytensor.shared(value.copy(), name=name, shape=shape) for value, name in zip(start, "mvw"))
    g = pt.tensor("g", shape=shape, dtype="float32")
    step = pt.scalar("step", dtype="float32")
    m_new, v_new, w_new = _adam_like(m, v, w, g, step)
    update = dandelion.function([g, step], [], updates=[(m, m_new), (v, v_new), (w, w_new)], mode=backend)
    flat = _flat_nodes(update)
    if backend == "c":
        assert flat and any(node.op.inplace_pattern for node in flat), (
            "the Adam update should run as an inplace FlatElemwise"
        )
        assert all(node.op.single_precision_constants for node in flat)
    else:
        assert not flat, f"FlatElemwise is C-only, found on {backend}"
    expected = [value.astype("float64") for value in start]
    for call in range(3):
        grad = rng.normal(size=shape).astype("float32")
        update(grad, np.float32(1e-2))
        expected = list(_adam_like_numpy(*expected, grad.astype("float64"), 1e-2))
        for shared, reference, name in zip((m, v, w), expected, "mvw"):
            assert_close(shared.get_value(), reference, rtol=1e-5, atol=1e-6, err_msg=f"{name} after call {call}")


@pytest.fixture(scope="module")
def composite_both_branches():
    """``x * y + exp(-x) * s`` on contiguous y, and on z.T (a view): the two C branches."""
    x, y, z = (pt.matrix(name, dtype="float32") for name in "xyz")
    s = pt.scalar("s", dtype="float32")
    # two functions: compiled together, fusion would make one node of both
    flat = dandelion.function([x, y, s], x * y + pt.exp(-x) * s, mode=C_MODE)
    strided = dandelion.function([x, z, s], x * z.T + pt.exp(-x) * s, mode=C_MODE)
    for function in (flat, strided):
        assert len(_flat_nodes(function)) == 1, "the expression should be one FlatElemwise node"
    return flat, strided


@settings(max_examples=8, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_flat_and_strided_branches_match_numpy(composite_both_branches, rows, cols, seed):
    rng = np.random.default_rng(seed)
    x, y = (rng.normal(size=(rows, cols)).astype("float32") for _ in range(2))
    z = rng.normal(size=(cols, rows)).astype("float32")
    s = np.float32(rng.normal())
    flat, strided = composite_both_branches
    assert_close(flat(x, y, s), x * y + np.exp(-x) * s)
    assert_close(strided(x, z, s), x * z.T + np.exp(-x) * s)


def test_strided_branch_on_a_view():
    """A transposed input (not C-contiguous) goes through PyTensor's strided loop, with the same values."""
    x, y = pt.matrix("x", dtype="float64"), pt.matrix("y", dtype="float64")
    function = dandelion.function([x, y], x.T * 2.5 + y, mode=C_MODE)
    assert _flat_nodes(function)
    rng = np.random.default_rng(1)
    x_val, y_val = rng.normal(size=(5, 3)), rng.normal(size=(3, 5))
    np.testing.assert_allclose(function(x_val, y_val), x_val.T * 2.5 + y_val, rtol=1e-15)


def test_an_input_used_twice():
    """One variable in two input positions passes the same buffer twice."""
    x = pt.vector("x", dtype="float64")
    twice = FlatElemwise(ps.mul)(x, x)
    function = pytensor.function([x], twice, mode=get_mode("CVM"))
    values = np.linspace(-2, 3, 11)
    np.testing.assert_array_equal(function(values), values * values)


def test_failing_scalar_code_raises_like_pytensor():
    """Integer division by a run-time zero: the flat loop fails the node as PyTensor's C loop does."""
    a, b = pt.vector("a", dtype="int32"), pt.vector("b", dtype="int32")
    function = dandelion.function([a, b], a // b + 1, mode=C_MODE)
    assert _flat_nodes(function)
    np.testing.assert_array_equal(function(np.array([7, -7, 9], "int32"), np.array([2, 2, 3], "int32")), [4, -3, 4])
    plain = pytensor.function([a, b], a // b + 1, mode=get_mode("CVM"))
    with pytest.raises(ZeroDivisionError) as from_pytensor:
        plain(np.array([1, 2], "int32"), np.array([1, 0], "int32"))
    with pytest.raises(ZeroDivisionError) as from_flat:
        function(np.array([1, 2], "int32"), np.array([1, 0], "int32"))
    assert str(from_flat.value) == str(from_pytensor.value)


def test_float32_constants_are_float32_arithmetic():
    """``x * 0.1 + 0.3`` in float32: equal to NumPy's float32 result bit for bit.

    PyTensor's C code writes the constants as double literals, so its loop computes in
    double and rounds once; that differs from float32 arithmetic (Numba, JAX, NumPy) in
    the last bit for some inputs, which this test finds (see the plain-mode check).
    """
    x = pt.vector("x", dtype="float32")
    expression = x * np.float32(0.1) + np.float32(0.3)
    function = dandelion.function([x], expression, mode=C_MODE)
    assert all(node.op.single_precision_constants for node in _flat_nodes(function))
    values = np.random.default_rng(2).normal(size=4096).astype("float32")
    float32_reference = values * np.float32(0.1) + np.float32(0.3)
    np.testing.assert_array_equal(function(values), float32_reference)
    plain = pytensor.function([x], expression, mode=get_mode("CVM"))
    assert not np.array_equal(plain(values), float32_reference), "PyTensor's own C loop no longer computes in double"


def test_single_precision_only_where_every_type_is_float32():
    """A float64 value anywhere in the node keeps the double constants."""
    x32, x64 = pt.vector("x32", dtype="float32"), pt.vector("x64", dtype="float64")
    mixed = dandelion.function([x32], pt.cast(pt.cast(x32, "float64") * 0.1, "float32") + 1, mode=C_MODE)
    wide = dandelion.function([x64], x64 * 0.1 + 1, mode=C_MODE)
    for function in (mixed, wide):
        nodes = _flat_nodes(function)
        assert nodes and not any(node.op.single_precision_constants for node in nodes)


def test_plain_pytensor_modes_are_left_alone():
    x = pt.matrix("x", dtype="float32")
    s = pt.scalar("s", dtype="float32")
    plain = pytensor.function([x, s], x * s + 1, mode=get_mode("CVM"))
    assert not _flat_nodes(plain)
    ours = pytensor.function([x, s], x * s + 1, mode=with_flat_elemwise(get_mode("CVM")))
    assert _flat_nodes(ours)
