"""``DenseDot``: matrix products that read transposed views in place on Numba (``dandelion.ops.dense_dot``).

Values against NumPy for every operand layout the backward pass produces (plain,
transposed, both) and for a strided view that no BLAS layout fits (copied), empty
dimensions included; the rewrite applies on Numba only; ``perform`` and the gradient
against NumPy and finite differences; bad input names the Op. Each layout compiles once
per module with dynamic shapes, and hypothesis feeds it arrays.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.compile.mode import Mode

import dandelion
from dandelion.ops.dense_dot import DenseDot, dense_dot
from tests.helpers import verify_grad

LAYOUTS = {
    "plain": lambda a, b: (a, b),
    "x.T": lambda a, b: (a.T, b),
    "y.T": lambda a, b: (a, b.T),
    "both.T": lambda a, b: (a.T, b.T),
    "strided": lambda a, b: (a[:, ::2], b[::2]),
}


def _dense_dots(function):
    return [node for node in function.maker.fgraph.apply_nodes if isinstance(node.op, DenseDot)]


@pytest.fixture(scope="module")
def numba_products():
    """One Numba function per layout, for float32 and float64 (dynamic shapes)."""
    functions = {}
    for dtype in ("float32", "float64"):
        a, b = pt.matrix("a", dtype=dtype), pt.matrix("b", dtype=dtype)
        for name, layout in LAYOUTS.items():
            x, y = layout(a, b)
            function = dandelion.function([a, b], pt.dot(x, y), mode="numba")
            assert len(_dense_dots(function)) == 1, f"{name}: the product should be a DenseDot on Numba"
            functions[dtype, name] = function
    return functions


def _operands(rng, name, m, k, n, dtype):
    """Arrays a, b whose layout view gives x (m, k) and y (k, n)."""
    shapes = {
        "plain": ((m, k), (k, n)),
        "x.T": ((k, m), (k, n)),
        "y.T": ((m, k), (n, k)),
        "both.T": ((k, m), (n, k)),
        "strided": ((m, 2 * k), (2 * k, n)),
    }[name]
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


@settings(max_examples=10, deadline=None)
@given(
    m=st.integers(0, 7),
    k=st.integers(0, 7),
    n=st.integers(0, 7),
    name=st.sampled_from(sorted(LAYOUTS)),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_every_layout_matches_numpy(numba_products, m, k, n, name, dtype, seed):
    a, b = _operands(np.random.default_rng(seed), name, m, k, n, dtype)
    x, y = LAYOUTS[name](a, b)
    expected = x.astype("float64") @ y.astype("float64")
    result = numba_products[dtype, name](a, b)
    assert result.shape == (m, n) and result.dtype == dtype
    np.testing.assert_allclose(result, expected, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


def test_a_large_transposed_product_is_exact_to_blas_rounding(numba_products):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 300)).astype("float32"), rng.standard_normal((200, 300)).astype("float32")
    np.testing.assert_allclose(numba_products["float32", "y.T"](a, b), a @ b.T, rtol=1e-4, atol=1e-4)


def test_rewrite_applies_on_numba_only(backend):
    """On C and JAX the graph keeps PyTensor's products; the values agree on every backend."""
    x = pt.tensor("x", shape=(5, 3), dtype="float32")
    w = pt.tensor("w", shape=(4, 3), dtype="float32")
    function = dandelion.function([x, w], pt.dot(x, w.T), mode=backend)
    graph = getattr(function, "function", function)
    assert bool(_dense_dots(graph)) == (backend == "numba")
    rng = np.random.default_rng(4)
    x_val, w_val = rng.standard_normal((5, 3)).astype("float32"), rng.standard_normal((4, 3)).astype("float32")
    np.testing.assert_allclose(function(x_val, w_val), x_val @ w_val.T, rtol=1e-5, atol=1e-6)


def test_pytensor_numba_mode_is_left_alone():
    x, w = pt.matrix("x"), pt.matrix("w")
    assert not _dense_dots(pytensor.function([x, w], pt.dot(x, w.T), mode="NUMBA"))


def test_perform_and_gradient():
    x, y = pt.matrix("x", dtype="float64"), pt.matrix("y", dtype="float64")
    function = pytensor.function([x, y], dense_dot(x, y), mode=Mode(linker="py", optimizer=None))
    rng = np.random.default_rng(5)
    x_val, y_val = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    np.testing.assert_allclose(function(x_val, y_val), x_val @ y_val, rtol=1e-12)
    verify_grad(dense_dot, [x_val, y_val])
    # infer_shape: the shape graph reads the inputs' shapes, not the product
    shape = pytensor.function([x, y], dense_dot(x, y).shape, mode=Mode(linker="py", optimizer="fast_run"))
    assert not any(isinstance(node.op, DenseDot) for node in shape.maker.fgraph.apply_nodes)
    assert tuple(shape(x_val, y_val)) == (3, 2)


def test_bad_input_names_the_op():
    with pytest.raises(TypeError, match="DenseDot: x and y must be matrices"):
        dense_dot(pt.vector("v"), pt.matrix("m"))
    with pytest.raises(TypeError, match="DenseDot: x and y must share one float dtype"):
        dense_dot(pt.matrix("a", dtype="float32"), pt.matrix("b", dtype="float64"))
    with pytest.raises(ValueError, match="DenseDot: x has 3 columns and y 4 rows"):
        dense_dot(pt.tensor("a", shape=(2, 3)), pt.tensor("b", shape=(4, 5)))
