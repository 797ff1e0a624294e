"""``sum_over`` / ``broadcast_over`` (BatchNorm's reductions) against NumPy on every backend, and their lowering."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dandelion.functional.normalization import moments, normalize_over
from dandelion.ops.axis_sum import broadcast_over, kept_block, sum_over
from tests.helpers import GRAD_MODE, assert_close, compile_fn, ftensor
from tests.op_harness import SumOver, assert_static_shapes, check_grad, check_values


@st.composite
def shapes_and_axes(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    axes = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim))))
    return shape, axes


def test_kept_block_finds_one_contiguous_run_of_kept_axes():
    assert kept_block(4, (0, 2, 3)) == (1, 2)
    assert kept_block(2, (0,)) == (1, 2)
    assert kept_block(3, (2,)) == (0, 2)
    assert kept_block(4, (1,)) is None  # kept (0, 2, 3): two runs, so pt.sum is used
    assert kept_block(2, (0, 1)) is None  # nothing kept


@settings(max_examples=4)
@given(case=shapes_and_axes())
def test_sum_broadcast_and_their_gradients_match_numpy(backend, case):
    """Values and the adjoint pair: d/dx sum_over(x * x) . w and d/dv of broadcast_over(v) . u."""
    shape, axes = case
    rng = np.random.default_rng(len(shape) + len(axes))
    kept_shape = tuple(n for a, n in enumerate(shape) if a not in axes)
    x_val = rng.normal(size=shape).astype("float32")
    v_val, w_val = (rng.normal(size=kept_shape).astype("float32") for _ in range(2))
    u_val = rng.normal(size=shape).astype("float32")
    x, u = ftensor("x", shape), ftensor("u", shape)
    v, w = ftensor("v", kept_shape), ftensor("w", kept_shape)
    total = sum_over(x, axes)
    spread = broadcast_over(v, axes, x)
    grad_x = pytensor.grad((sum_over(x * x, axes) * w).sum(), x)
    grad_v = pytensor.grad((spread * u).sum(), v)
    x64 = x_val.astype("float64")
    expected = [
        x64.sum(axis=axes),
        np.broadcast_to(np.expand_dims(v_val, axes), shape),
        2 * x64 * np.expand_dims(w_val, axes),
        u_val.astype("float64").sum(axis=axes),
    ]
    assert_static_shapes([total], [kept_shape])
    check_values(
        [x, v, w, u], [total, spread, grad_x, grad_v], [x_val, v_val, w_val, u_val], expected, backend,
        rtol=(1e-5, 1e-4, 1e-5, 1e-5), atol=1e-5,
    )


def test_gradients_against_finite_differences_fast_and_general_paths():
    """(B, C, H, W) over (0, 2, 3) (BLAS path) and (0, 1) of a (2, 3, 2) array (pt.sum path), second order too."""
    rng = np.random.default_rng(7)
    for shape, axes in (((2, 3, 2, 2), (0, 2, 3)), ((2, 3, 2), (0, 1)), ((3, 2), (0,))):
        kept = tuple(n for a, n in enumerate(shape) if a not in axes)

        def fn(x, v, axes=axes):
            total = sum_over(x * x, axes)
            return (total * v).sum() + (broadcast_over(v * total, axes, x) * x).sum()

        check_grad(fn, [rng.normal(size=shape), rng.normal(size=kept)], mode=GRAD_MODE)


def test_normalize_over_matches_the_broadcast_formula(backend):
    """Every combination of present terms in one graph; None terms are skipped."""
    rng = np.random.default_rng(9)
    shape, axes = (3, 2, 2, 3), (0, 2, 3)
    x_val = rng.normal(2.0, 3.0, size=shape).astype("float32")
    terms = {
        "mean": rng.normal(size=2),
        "inv_std": rng.uniform(0.5, 2, size=2),
        "gamma": rng.uniform(0.5, 2, size=2),
        "beta": rng.normal(size=2),
    }
    combos = [("mean", "inv_std", "gamma", "beta"), ("mean",), ("inv_std", "beta"), ("gamma",), ()]
    x = ftensor("x", shape)
    outs = [
        normalize_over(x, axes, **{k: terms[k].astype("float32") for k in combo}) for combo in combos
    ]
    results = compile_fn([x], outs, backend)(x_val)
    for combo, out in zip(combos, results):
        expected = x_val.astype("float64")
        spread = {k: np.expand_dims(v, axes) for k, v in terms.items()}
        if "mean" in combo:
            expected = expected - spread["mean"]
        for k in ("inv_std", "gamma"):
            if k in combo:
                expected = expected * spread[k]
        if "beta" in combo:
            expected = expected + spread["beta"]
        assert out.dtype == np.float32
        assert_close(out, expected, rtol=1e-5, atol=1e-5, err_msg=str(combo))


def test_normalize_over_rejects_statistics_of_the_wrong_ndim():
    with pytest.raises(ValueError, match=r"normalize_over: mean must have ndim 1 .*got ndim 2"):
        normalize_over(pt.tensor4("x"), (0, 2, 3), mean=pt.matrix("m"))


def test_batch_normalisation_gradients_against_finite_differences():
    """moments + normalize_over (BatchNorm's training graph) on the BLAS and pt.sum paths."""
    rng = np.random.default_rng(11)
    for shape, axes in (((3, 2, 2, 2), (0, 2, 3)), ((2, 3, 2), (1,))):
        kept = tuple(n for a, n in enumerate(shape) if a not in axes)

        def fn(x, gamma, beta, axes=axes):
            mean, inv_std = moments(x, axes, 1e-4)
            return normalize_over(x, axes, mean, inv_std, gamma, beta)

        check_grad(fn, [rng.normal(1.0, 2.0, size=shape), rng.uniform(0.5, 2, size=kept), rng.normal(size=kept)], mode=GRAD_MODE)


def test_lowering_is_blas_on_c_and_a_plain_sum_on_numba_and_jax(backend):
    """C reduces (B, C, H, W) over (0, 2, 3) with matrix-vector products (its own ``Sum`` is
    slow there); Numba and JAX keep PyTensor's ``Sum``, which they fuse with producers."""
    x = ftensor("x", (2, 3, 4, 5))
    fn = compile_fn([x], sum_over(x * x, (0, 2, 3)), backend)
    kinds = {type(node.op).__name__ for node in fn.maker.fgraph.apply_nodes}
    assert not any(isinstance(node.op, SumOver) for node in fn.maker.fgraph.apply_nodes)
    if backend == "c":
        assert "Sum" not in kinds and kinds & {"CGemv", "Gemv", "Dot", "Dot22"}, kinds
    else:  # a Sum, or (PyTensor 3.3's Numba) a Sum fused with its producer
        assert not kinds & {"CGemv", "Gemv", "Dot", "Dot22"}, kinds
    x_val = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype("float32")
    assert_close(fn(x_val), (x_val.astype("float64") ** 2).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)
