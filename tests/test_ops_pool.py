"""The pooling Ops: values against naive loops on every backend, gradients (first and
second order) against finite differences, shape inference and errors."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ftensor
from tests.op_harness import (
    MaxPoolGatherOp,
    PoolGradOp,
    PoolOp,
    assert_static_shapes,
    check_grad,
    check_infer_shape,
    check_values,
)
from tests.pool_reference import pool_ref

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def distinct_values(shape, rng):
    """A permutation of spaced values: no ties, so every window has one maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 3.0).astype("float32")


@st.composite
def pool_configs(draw):
    nd = draw(st.integers(1, 3))
    ws = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    ignore_border = draw(st.booleans())
    pad = tuple(draw(st.integers(0, w - 1)) for w in ws) if ignore_border else (0,) * nd
    spatial = tuple(draw(st.integers(max(1, w - 2 * p), w + 3)) for w, p in zip(ws, pad))
    lead = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=2)))
    return {"shape": lead + spatial, "nd": nd, "ws": ws, "stride": stride, "pad": pad, "ignore_border": ignore_border, "mode": draw(st.sampled_from(MODES))}


@settings(max_examples=4)
@given(cfg=pool_configs())
def test_pool_ops_match_naive_loops(backend, cfg):
    rng = np.random.default_rng(len(cfg["shape"]))
    op_args = (cfg["nd"], cfg["ws"], cfg["stride"], cfg["pad"], cfg["ignore_border"], cfg["mode"])
    x_val = distinct_values(cfg["shape"], rng)
    y_ref = pool_ref(x_val.astype("float64"), cfg["ws"], cfg["stride"], cfg["pad"], cfg["ignore_border"], cfg["mode"])
    x = ftensor("x", x_val.shape)
    y = PoolOp(*op_args)(x)
    assert_static_shapes([y], [y_ref.shape])
    # PoolGradOp(x, gy) is the gradient of <gy, pool(x)>; the reference perturbs each input
    gy_val = rng.normal(size=y_ref.shape).astype("float32")
    gy = ftensor("gy", y_ref.shape)
    gx = PoolGradOp(*op_args)(x, gy)
    expected = [y_ref, reference_gradient(x_val, gy_val, cfg)]
    check_values([x, gy], [y, gx], [x_val, gy_val], expected, backend, rtol=(1e-5, 1e-4), atol=(1e-5, 1e-4))


def reference_gradient(x, gy, cfg):
    """d<gy, pool_ref(x)>/dx by exact unit perturbations (pool_ref is piecewise linear)."""
    base = pool_ref(x.astype("float64"), cfg["ws"], cfg["stride"], cfg["pad"], cfg["ignore_border"], cfg["mode"])
    grad = np.zeros(x.shape)
    flat = x.astype("float64").ravel()
    for i in range(flat.size):
        bumped = flat.copy()
        bumped[i] += 0.01  # smaller than the gap between distinct values: no max changes
        moved = pool_ref(bumped.reshape(x.shape), cfg["ws"], cfg["stride"], cfg["pad"], cfg["ignore_border"], cfg["mode"])
        grad.flat[i] = np.sum(gy * (moved - base)) / 0.01
    return grad


GRAD_CASES = [
    (2, (2, 3), (1, 2), (1, 1), True, "max"),
    (2, (3, 2), (2, 2), (0, 0), False, "average_inc_pad"),
    (1, (3,), (2,), (1,), True, "average_exc_pad"),
    (3, (2, 2, 2), (1, 2, 1), (1, 0, 1), True, "sum"),
    (2, (2, 2), (2, 2), (0, 0), True, "max"),  # tiling windows: the reshape fast path
    (1, (2,), (2,), (0,), True, "average_inc_pad"),
]


@pytest.mark.parametrize("op_args", GRAD_CASES, ids=[f"{c[-1]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_pool_gradients_first_and_second_order(op_args):
    rng = np.random.default_rng(3)
    nd = op_args[0]
    x = distinct_values((2, 3, 5, 6, 4)[-(nd + 1) :], rng).astype("float64")
    op = PoolOp(*op_args)
    check_grad(lambda a: op(a), [x])
    # second order: the gradient graph holds PoolGradOp (and MaxPoolGatherOp for max)
    check_grad(lambda a: (pytensor.grad((op(a) ** 2).sum(), a) ** 2).sum() * a.sum(), [x])


@pytest.mark.parametrize("op_args", GRAD_CASES, ids=[f"{c[-1]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_pool_grad_ops_have_their_own_gradients(op_args):
    rng = np.random.default_rng(4)
    nd = op_args[0]
    x = distinct_values((2, 3, 5, 6, 4)[-(nd + 1) :], rng).astype("float64")
    pooled = PoolOp(*op_args)(pt.tensor(shape=x.shape)).type.shape
    gy = rng.normal(size=pooled)
    grad_op = PoolGradOp(*op_args)
    check_grad(lambda b: grad_op(pt.constant(x), b), [gy])
    if op_args[-1] == "max":
        gather = MaxPoolGatherOp(*op_args)
        check_grad(lambda g: gather(pt.constant(x), g), [rng.normal(size=x.shape)])


def test_infer_shape_without_computing(backend):
    x = pt.tensor4("x")
    ops = [PoolOp(*GRAD_CASES[0]), PoolOp(*GRAD_CASES[1])]
    outs = [ops[0](x), ops[1](x), PoolGradOp(*GRAD_CASES[0])(x, ops[0](x)), MaxPoolGatherOp(*GRAD_CASES[0])(x, x)]
    x_val = np.zeros((2, 3, 5, 7))
    expected_0 = pool_ref(x_val, (2, 3), (1, 2), (1, 1), True).shape
    expected_1 = pool_ref(x_val, (3, 2), (2, 2), (0, 0), False).shape
    check_infer_shape([x], outs, [x_val], [expected_0, expected_1, x_val.shape, expected_0], (PoolOp, PoolGradOp, MaxPoolGatherOp))
    xs = ftensor("x", x_val.shape)
    zeros = np.zeros(expected_1, dtype="float32")
    check_values([xs], [ops[1](xs)], [x_val.astype("float32")], [zeros], backend)


def test_float64_and_ties_agree_across_backends(backend):
    """Ties (as after relu) route the gradient to the first maximum on every backend."""
    x_val = np.zeros((1, 1, 4, 4))
    x_val[0, 0, 1, 1] = x_val[0, 0, 2, 3] = 1.0
    x = pt.tensor("x", shape=x_val.shape, dtype="float64")
    op_args = (2, (2, 2), (2, 2), (0, 0), True, "max")
    gx = PoolGradOp(*op_args)(x, pt.ones((1, 1, 2, 2), dtype="float64"))
    expected = np.zeros((1, 1, 4, 4))
    # windows: max at (1, 1); all-zero ties at (0, 2) and (2, 0); max at (2, 3)
    expected[0, 0, 1, 1] = expected[0, 0, 0, 2] = expected[0, 0, 2, 0] = expected[0, 0, 2, 3] = 1.0
    check_values([x], [gx], [x_val], [expected], backend, rtol=1e-4, atol=1e-5)


def test_errors_name_op_argument_and_values():
    with pytest.raises(ValueError, match=r"mode must be one of \('max', 'sum', 'average_inc_pad', 'average_exc_pad'\), got 'avg'"):
        PoolOp(2, (2, 2), mode="avg")
    with pytest.raises(ValueError, match=r"pad must be smaller than ws"):
        PoolOp(2, (2, 2), pad=(2, 0))
    with pytest.raises(ValueError, match=r"padding needs ignore_border=True"):
        PoolOp(2, (2, 2), pad=(1, 0), ignore_border=False)
    with pytest.raises(ValueError, match=r"window \(4, 4\) is larger than the padded input \(3, 3\)"):
        PoolOp(2, (4, 4))(ftensor("x", (1, 3, 3)))
    with pytest.raises(ValueError, match=r"input must have ndim >= 3, got ndim 2"):
        PoolOp(3, (2, 2, 2))(ftensor("x", (3, 3)))


def tiled_gradient_ref(x, gy, ws, mode):
    """Naive loops: each window's gy to its first maximum in row-major window order (max),
    or spread evenly (sum, averages); rows and columns past the last whole window get none."""
    nd = len(ws)
    grad = np.zeros(x.shape)
    out = gy.shape[-nd:]
    for li in np.ndindex(*x.shape[:-nd]):
        for oi in np.ndindex(*out):
            cells = [tuple(o * w + k for o, w, k in zip(oi, ws, offset)) for offset in np.ndindex(*ws)]
            g = gy[li + oi]
            if mode == "max":
                values = [x[li + c] for c in cells]
                grad[li + cells[int(np.argmax(values))]] += g
            else:
                for c in cells:
                    grad[li + c] += g if mode == "sum" else g / len(cells)
    return grad


@st.composite
def tiling_configs(draw):
    nd = draw(st.integers(1, 3))
    ws = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    # lengths past the last whole window exercise the zero border of the reshaping kernels
    spatial = tuple(w * draw(st.integers(1, 3)) + draw(st.integers(0, w - 1)) for w in ws)
    lead = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=2)))
    return {"shape": lead + spatial, "nd": nd, "ws": ws, "mode": draw(st.sampled_from(MODES))}


@settings(max_examples=4)
@given(cfg=tiling_configs())
def test_tiling_windows_with_ties_match_naive_loops(backend, cfg):
    """stride == ws without padding: the reshaping kernels (JAX's PoolGradOp) against loops,
    on relu-like data whose windows tie at zero."""
    rng = np.random.default_rng(len(cfg["shape"]) + cfg["nd"])
    op_args = (cfg["nd"], cfg["ws"], cfg["ws"], (0,) * cfg["nd"], True, cfg["mode"])
    x_val = np.maximum(rng.normal(size=cfg["shape"]), 0).round(1).astype("float32")
    y_ref = pool_ref(x_val.astype("float64"), cfg["ws"], cfg["ws"], None, True, cfg["mode"])
    gy_val = rng.normal(size=y_ref.shape).astype("float32")
    x, gy = ftensor("x", x_val.shape), ftensor("gy", y_ref.shape)
    expected = [y_ref, tiled_gradient_ref(x_val.astype("float64"), gy_val.astype("float64"), cfg["ws"], cfg["mode"])]
    check_values([x, gy], [PoolOp(*op_args)(x), PoolGradOp(*op_args)(x, gy)], [x_val, gy_val], expected, backend, rtol=1e-5, atol=1e-5)
