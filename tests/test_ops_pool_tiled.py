"""2x2 max pooling with stride 2, the geometry with fixed-window Numba and C kernels
(``dandelion.ops.numba.pool_tiled``, ``dandelion.ops.c.pool.is_tiled_2x2``): values, gradients and the second-order gather
against naive loops on every backend, ties and odd sizes included."""

from __future__ import annotations

import itertools

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.op_harness import MaxPoolGatherOp, PoolGradOp, PoolOp, check_grad, compile_strict
from tests.pool_reference import pool_ref

OP_ARGS = (2, (2, 2), (2, 2), (0, 0), True, "max")


def first_max_index(window):
    """Row-major position of the first maximum of a window, by the same ``>`` scan as ``max``."""
    best, at = window[0], 0
    for i, value in enumerate(window):
        if value > best:
            best, at = value, i
    return at


def routed(x, values_of_window):
    """For each 2x2 window of x's last two axes, its flat (row, col) first maximum and the pooled index."""
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    for li in itertools.product(*(range(n) for n in lead)):
        for j, k in itertools.product(range(h // 2), range(w // 2)):
            cells = [(2 * j + a, 2 * k + b) for a in range(2) for b in range(2)]
            at = first_max_index([x[li + c] for c in cells])
            values_of_window(li, (j, k), cells[at])


def grad_ref(x, gy):
    gx = np.zeros(x.shape)
    routed(x, lambda li, o, cell: gx.__setitem__(li + cell, gy[li + o]))
    return gx


def gather_ref(x, g):
    out = np.zeros(x.shape[:-2] + (x.shape[-2] // 2, x.shape[-1] // 2))
    routed(x, lambda li, o, cell: out.__setitem__(li + o, g[li + cell]))
    return out


@pytest.fixture(scope="module")
def pool_functions(backend):
    """One compiled (pool, gradient, gather) function per backend and dtype, any 4-D shape."""
    compiled = {}

    def get(dtype):
        if dtype not in compiled:
            x, gy, g = (pt.tensor(name, shape=(None,) * 4, dtype=dtype) for name in ("x", "gy", "g"))
            outputs = [PoolOp(*OP_ARGS)(x), PoolGradOp(*OP_ARGS)(x, gy), MaxPoolGatherOp(*OP_ARGS)(x, g)]
            compiled[dtype] = compile_strict([x, gy, g], outputs, backend)
        return compiled[dtype]

    return get


@settings(max_examples=6)
@given(
    lead=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    hw=st.tuples(st.integers(2, 7), st.integers(2, 7)),
    dtype=st.sampled_from(["float32", "float64"]),
    levels=st.integers(2, 50),
)
def test_tiled_max_pool_matches_naive_loops(pool_functions, lead, hw, dtype, levels):
    """Few distinct levels give ties (as after relu); odd sizes leave a row or column unpooled."""
    rng = np.random.default_rng(sum(lead) * 31 + sum(hw))
    shape = lead + hw
    x = (rng.integers(0, levels, size=shape) - levels // 2).astype(dtype)
    gy = rng.normal(size=shape[:2] + (hw[0] // 2, hw[1] // 2)).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    y, gx, gathered = pool_functions(dtype)(x, gy, g)
    xd = x.astype("float64")
    tol = 1e-6 if dtype == "float64" else 1e-5
    for got, want in ((y, pool_ref(xd, (2, 2))), (gx, grad_ref(xd, gy)), (gathered, gather_ref(xd, g))):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_all_equal_windows_route_to_their_first_entry(pool_functions):
    """An all-zero image (a dead relu): every window's gradient goes to its top-left pixel."""
    x = np.zeros((1, 1, 4, 6), dtype="float32")
    gy = np.arange(1, 7, dtype="float32").reshape(1, 1, 2, 3)
    _, gx, _ = pool_functions("float32")(x, gy, x)
    expected = np.zeros_like(x)
    expected[0, 0, ::2, ::2] = gy[0, 0]
    np.testing.assert_array_equal(gx, expected)


@pytest.mark.parametrize("mode", ["numba", "c"])
def test_nan_follows_the_first_maximum_rule_on_numba_and_c(mode):
    """A NaN first entry wins its window, a later NaN never does (Python's ``max`` scan).

    The Numba and C fixed-window kernels define this rule; XLA's max propagates every NaN.
    """
    x = np.array([[[[np.nan, 1.0, 2.0, np.nan], [0.5, 3.0, 0.0, 1.0]]]], dtype="float32")
    xv, gyv, gv = (pt.tensor(n, shape=(None,) * 4, dtype="float32") for n in ("x", "gy", "g"))
    f = compile_strict([xv, gyv], [PoolOp(*OP_ARGS)(xv), PoolGradOp(*OP_ARGS)(xv, gyv)], mode)
    y, gx = f(x, np.ones((1, 1, 1, 2), dtype="float32"))
    np.testing.assert_array_equal(np.isnan(y), [[[[True, False]]]])
    assert y[0, 0, 0, 1] == 2.0
    np.testing.assert_array_equal(gx, [[[[1, 0, 1, 0], [0, 0, 0, 0]]]])


def test_gradient_on_numba_matches_finite_differences():
    """verify_grad through the Numba kernels (distinct values: no tie within the step)."""
    rng = np.random.default_rng(5)
    x = (rng.permutation(2 * 3 * 4 * 6).reshape(2, 3, 4, 6) * 0.1).astype("float64")
    op = PoolOp(*OP_ARGS)
    check_grad(lambda a: op(a) ** 2, [x], mode="numba")
