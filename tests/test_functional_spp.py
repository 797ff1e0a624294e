"""spatial_pyramid_pooling against a NumPy reference of the old library's three
implementations: values and input gradients, static and run-time image sizes."""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.functional import spatial_pyramid_pooling
from tests.helpers import assert_close, compile_fn, ftensor, randn
from tests.spp_reference import spp_ref

SHAPES = {"map": (2, 3, 7, 6), "wide": (1, 2, 5, 9), "tiny": (1, 2, 2, 3)}
# (input, pyramid, mode, implementation, with gradient)
CASES = [
    ("map", (4, 2, 1), "max", "fast_ls", False),  # 21 features per channel (the old code: 35)
    ("map", (3, 2, 1), "max", "stretch", True),  # adaptive pooling, non-divisible bins
    ("wide", (3,), "sum", "fast", True),
    ("wide", (2, 1), "average_exc_pad", "fast_ls", False),
    ("tiny", (3, 1), "max", "fast", False),  # levels above min(H, W): zero bins
    ("tiny", (3,), "average_inc_pad", "stretch", False),  # ... or repeated pixels (adaptive pooling)
]


def test_every_implementation_matches_the_reference_with_gradients(backend):
    values = {key: randn(*shape) for key, shape in SHAPES.items()}
    inputs = {key: ftensor(key, shape) for key, shape in SHAPES.items()}
    outs, grads, out_grads = [], [], []
    for key, dims, mode, impl, with_grad in CASES:
        out = spatial_pyramid_pooling(inputs[key], dims, mode, impl)
        outs.append(out)
        if with_grad:
            out_grads.append(randn(*out.type.shape))
            grads.append(pytensor.grad(pt.sum(out * out_grads[-1]), inputs[key]))
    results = compile_fn(list(inputs.values()), outs + grads, backend)(*values.values())
    grad_results, out_grads = iter(results[len(outs) :]), iter(out_grads)
    for out, sym, (key, dims, mode, impl, with_grad) in zip(results, outs, CASES):
        where = f"{key} {dims} {mode} {impl}"
        x = values[key].astype("float64")
        b, c = x.shape[:2]
        assert out.shape == sym.type.shape == (b, c, sum(d * d for d in dims)), where
        if with_grad:
            expected, expected_grad = spp_ref(x, dims, mode, impl, next(out_grads).astype("float64"))
            assert_close(next(grad_results), expected_grad, rtol=1e-5, atol=1e-5, err_msg=where)
        else:
            expected = spp_ref(x, dims, mode, impl)
        assert_close(out, expected, rtol=1e-5, atol=1e-5, err_msg=where)


def test_image_size_known_only_at_run_time(backend):
    """The old code declared pt.tensor4(): one compiled function serves every size."""
    x = pt.tensor4("x", dtype="float32")
    # few cases: the mask reductions of run-time sizes cost the most to compile
    cases = [((2, 1), "max", "fast_ls"), ((2,), "average_exc_pad", "stretch")]
    outs = [spatial_pyramid_pooling(x, dims, mode, impl) for dims, mode, impl in cases]
    assert [o.type.shape for o in outs] == [(None, None, 5), (None, None, 4)]
    fn = compile_fn([x], outs, backend)
    for shape in [(2, 3, 7, 6), (1, 2, 3, 5)]:
        value = randn(*shape)
        for out, (dims, mode, impl) in zip(fn(value), cases):
            assert_close(out, spp_ref(value.astype("float64"), dims, mode, impl), rtol=1e-5, atol=1e-5, err_msg=f"{shape} {impl}")


def test_errors_name_function_argument_and_values():
    x = ftensor("x", (2, 6, 5, 5))
    with pytest.raises(ValueError, match=r"implementation must be one of \('fast', 'fast_ls', 'stretch'\), got 'kaiming'"):
        spatial_pyramid_pooling(x, implementation="kaiming")
    with pytest.raises(ValueError, match=r"pyramid_dims must be positive ints, got \(2, 0\)"):
        spatial_pyramid_pooling(x, (2, 0))
    with pytest.raises(ValueError, match=r"spatial_pyramid_pooling: input must be 4-D \(B, C, H, W\), got ndim 3"):
        spatial_pyramid_pooling(ftensor("x", (2, 5, 5)))
    with pytest.raises(ValueError, match=r"spatial_pyramid_pooling: mode must be one of"):
        spatial_pyramid_pooling(x, mode="median")


def test_stretch_with_static_sizes_is_one_adaptive_pool_per_level():
    """Every mode: no repeated pixels or bin masks, so few nodes to compile."""
    from pytensor.graph.traversal import ancestors

    from dandelion.ops.pool import PoolOp

    x = ftensor("x", SHAPES["map"])
    for mode in ("max", "sum", "average_inc_pad"):
        out = spatial_pyramid_pooling(x, (3, 2, 1), mode, "stretch")
        variables = list(ancestors([out]))
        pools = sorted(v.owner.op.output_size for v in variables if v.owner is not None and isinstance(v.owner.op, PoolOp))
        assert pools == [(1, 1), (2, 2), (3, 3)], mode
        # the old pixel repetition was 6-D, the bin masks 5-D
        assert max(getattr(v.type, "ndim", 0) for v in variables) == 4, mode
