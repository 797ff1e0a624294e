"""Adaptive pooling (the pooling Ops with ``output_size``, ``adaptive_pool_2d``): values and
gradients against naive NumPy loops on every backend, finite differences, shape inference
and errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.compile.mode import Mode

from dandelion.functional import adaptive_pool_2d
from dandelion.ops.pool import MaxPoolGatherOp, PoolGradOp, PoolOp
from tests.helpers import PY_MODE, assert_close, compile_fn, ftensor, verify_grad

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def adaptive_ref(x, output_size, mode, gy=None, g=None):
    """Pooled x, one bin at a time: bin i of d along an axis of n is [floor(i n/d), ceil((i+1) n/d)).

    With ``gy`` also d<gy, pool(x)>/dx (max: all of a bin's gy to its first maximum in
    row-major order); with ``g`` also g read at each bin's first maximum.
    """
    nd = len(output_size)
    lead, spatial = x.shape[:-nd], x.shape[-nd:]
    out = np.zeros(lead + tuple(output_size))
    grad = np.zeros(x.shape)
    gathered = np.zeros(out.shape)
    for li in np.ndindex(*lead):
        for oi in np.ndindex(*output_size):
            ranges = [range(math.floor(i * n / d), math.ceil((i + 1) * n / d)) for i, n, d in zip(oi, spatial, output_size)]
            cells = [li + c for c in itertools.product(*ranges)]  # row-major within the bin
            values = [x[c] for c in cells]
            if mode == "max":
                first = cells[int(np.argmax(values))]
                out[li + oi] = x[first]
                weights = {first: 1.0}
            else:
                scale = 1.0 if mode == "sum" else 1.0 / len(cells)
                out[li + oi] = sum(values) * scale
                weights = {c: scale for c in cells}
            if gy is not None:
                for c, wgt in weights.items():
                    grad[c] += wgt * gy[li + oi]
            if g is not None and mode == "max":
                gathered[li + oi] = g[first]
    return out, grad, gathered


def distinct_values(shape, rng):
    """A permutation of spaced values: no ties, so every bin has one maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 3.0).astype("float32")


# (input shape, output_size, mode), few graphs (each a C module to compile): per axis n > d
# non-divisible, n < d (repeated pixels), n == d, divisible; 1-, 2- and 3-D pooling
CASES = [
    ((2, 3, 7, 8), (3, 11), "max"),
    ((2, 3, 7, 8), (7, 4), "sum"),
    ((2, 5), (3,), "average_inc_pad"),
    ((1, 2, 3, 4, 5), (2, 5, 3), "average_exc_pad"),
]


def check_against_reference(outs, cases, values, rng_gys, rng_gs):
    for k, (shape, size, mode) in enumerate(cases):
        y, gx, gathered = outs[3 * k : 3 * k + 3]
        y_ref, gx_ref, gathered_ref = adaptive_ref(values[k].astype("float64"), size, mode, rng_gys[k], rng_gs[k])
        where = f"{shape} -> {size} {mode}"
        assert y.shape == y_ref.shape, where
        assert_close(y, y_ref, rtol=1e-5, atol=1e-5, err_msg=where)
        assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5, err_msg=where)
        if mode == "max":
            assert_close(gathered, gathered_ref, rtol=1e-5, atol=1e-5, err_msg=where)


def build(cases, values, rng, ties=False):
    """Inputs, outputs (pool, its gradient Op, the max gather) and the cotangents of ``cases``."""
    inputs, outs, gys, gs = [], [], [], []
    for k, (shape, size, mode) in enumerate(cases):
        nd = len(size)
        x = ftensor(f"x{k}", shape)
        op = PoolOp.adaptive(nd, size, mode)
        gy = rng.normal(size=shape[: len(shape) - nd] + size).astype("float32")
        g = rng.normal(size=shape).astype("float32")
        gather = MaxPoolGatherOp.adaptive(nd, size, "max")(x, pt.constant(g)) if mode == "max" else op(x)
        outs += [op(x), PoolGradOp.adaptive(nd, size, mode)(x, pt.constant(gy)), gather]
        inputs.append(x)
        gys.append(gy.astype("float64"))
        gs.append(g.astype("float64"))
    return inputs, outs, gys, gs


@pytest.fixture(scope="module")
def fixed_cases():
    rng = np.random.default_rng(0)
    values = [distinct_values(shape, rng) for shape, _, _ in CASES]
    # relu-like data: ties at zero go to the first maximum on every backend
    values[0] = np.maximum(values[0], 0).astype("float32")
    return values, build(CASES, values, rng)


def test_fixed_cases_match_naive_loops(backend, fixed_cases):
    values, (inputs, outs, gys, gs) = fixed_cases
    results = compile_fn(inputs, outs, backend)(*values)
    check_against_reference(results, CASES, values, gys, gs)


@st.composite
def adaptive_configs(draw):
    nd = draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    size = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    lead = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=2)))
    return lead + spatial, size, draw(st.sampled_from(MODES))


@settings(max_examples=12)
@given(cfg=adaptive_configs())
def test_random_sizes_match_naive_loops(cfg):
    """The NumPy kernels (``perform``) over random sizes; the backends run the fixed cases,
    since every distinct size is another module to compile on C."""
    rng = np.random.default_rng(len(cfg[0]) + sum(cfg[1]))
    values = [distinct_values(cfg[0], rng)]
    inputs, outs, gys, gs = build([cfg], values, rng)
    check_against_reference(pytensor.function(inputs, outs, mode=PY_MODE)(*values), [cfg], values, gys, gs)


def test_run_time_sizes_and_shape_inference(backend):
    """One compiled function serves every input size; shapes are inferred without pooling."""
    x = pt.tensor4("x")
    outs = [adaptive_pool_2d(x, (3, 2), mode) for mode in ("max", "average_exc_pad")]
    assert [o.type.shape for o in outs] == [(None, None, 3, 2)] * 2
    f = pytensor.function([x], [o.shape for o in outs], mode=Mode(linker="py", optimizer="fast_run"))
    assert not {type(n.op) for n in f.maker.fgraph.apply_nodes} & {PoolOp, PoolGradOp, MaxPoolGatherOp}
    assert [tuple(s) for s in f(np.zeros((2, 3, 5, 7)))] == [(2, 3, 3, 2)] * 2
    xf = pt.tensor4("xf", dtype="float32")
    fn = compile_fn([xf], [adaptive_pool_2d(xf, (3, 2), mode) for mode in ("max", "average_exc_pad")], backend)
    rng = np.random.default_rng(5)
    for shape in [(1, 2, 7, 5), (2, 1, 2, 1)]:
        value = distinct_values(shape, rng)
        for out, mode in zip(fn(value), ("max", "average_exc_pad")):
            assert_close(out, adaptive_ref(value.astype("float64"), (3, 2), mode)[0], rtol=1e-5, atol=1e-5, err_msg=f"{shape} {mode}")


@pytest.mark.parametrize("size, mode", [((3, 2), "max"), ((2, 4), "average_inc_pad"), ((4, 3), "sum")])
def test_gradients_first_and_second_order(size, mode):
    """Finite differences through the NumPy kernels (backends are compared above)."""
    x = distinct_values((2, 5, 3), np.random.default_rng(3)).astype("float64")
    op = PoolOp.adaptive(2, size, mode)
    verify_grad(lambda a: op(a), [x], mode=PY_MODE)
    # second order: PoolGradOp's own gradient (MaxPoolGatherOp for max)
    verify_grad(lambda a: (pytensor.grad((op(a) ** 2).sum(), a) ** 2).sum() * a.sum(), [x], mode=PY_MODE)
    gy = np.random.default_rng(4).normal(size=(2,) + size)
    verify_grad(lambda b: PoolGradOp.adaptive(2, size, mode)(pt.constant(x), b), [gy], mode=PY_MODE)


def test_errors_name_function_argument_and_values():
    x = ftensor("x", (2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"adaptive_pool_2d: output_size must be >= 1, got \(0, 2\)"):
        adaptive_pool_2d(x, (0, 2))
    with pytest.raises(TypeError, match=r"adaptive_pool_2d: output_size must be an int or a sequence of 2 ints, got 2.5"):
        adaptive_pool_2d(x, 2.5)
    with pytest.raises(TypeError, match=r"adaptive_pool_2d: output_size must be an int or a sequence of 2 ints, got \(2, 1.5\)"):
        adaptive_pool_2d(x, (2, 1.5))
    with pytest.raises(ValueError, match=r"adaptive_pool_2d: output_size must be an int or a sequence of 2 ints, got \(1, 2, 3\)"):
        adaptive_pool_2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"adaptive_pool_2d: input must have ndim >= 2, got ndim 1"):
        adaptive_pool_2d(ftensor("v", (5,)), 2)
    with pytest.raises(ValueError, match=r"adaptive_pool_2d: mode must be one of .*got 'median'"):
        adaptive_pool_2d(x, 2, mode="median")
    with pytest.raises(ValueError, match=r"adaptive_pool_2d: adaptive pooling needs every pooled axis non-empty, got spatial shape \(0, 5\)"):
        adaptive_pool_2d(ftensor("e", (1, 0, 5)), 2)
    with pytest.raises(ValueError, match=r"PoolOp: an adaptive pool \(output_size=\(2, 2\)\) takes no ws, stride or pad"):
        PoolOp(2, (2, 2), output_size=(2, 2))
