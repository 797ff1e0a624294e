"""The three convolution Ops: values against naive loops on every backend, gradients
(first and second order) against finite differences, shape inference and errors."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conv_reference import conv2d_filter_grad_ref, conv2d_ref, conv2d_transpose_ref
from tests.helpers import c_kernel_blas_flags, ftensor, randn
from tests.op_harness import (
    Conv2dGradFiltersOp,
    Conv2dGradInputOp,
    Conv2dOp,
    assert_static_shapes,
    check_grad,
    check_infer_shape,
    check_values,
)

CONV_OPS = (Conv2dOp, Conv2dGradInputOp, Conv2dGradFiltersOp)


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = []
    for k, d, p in zip(kernel, dilation, pad):
        reach = (k - 1) * d + 1
        size.append(draw(st.integers(max(1, reach - 2 * p), reach + 4)))
    return {
        "x_shape": (draw(st.integers(1, 2)), groups * cg, *size),
        "w_shape": (groups * og, cg, *kernel),
        "stride": stride,
        "pad": pad,
        "dilation": dilation,
        "groups": groups,
        "flip": draw(st.booleans()),
    }


def op_props(cfg):
    return {"stride": cfg["stride"], "pad": cfg["pad"], "dilation": cfg["dilation"], "num_groups": cfg["groups"], "flip": cfg["flip"]}


def ref_kwargs(cfg):
    return {"stride": cfg["stride"], "pad": cfg["pad"], "dilation": cfg["dilation"], "groups": cfg["groups"], "flip": cfg["flip"]}


def check_three_ops_against_naive_loops(backend, cfg):
    props = op_props(cfg)
    x_val, w_val = randn(*cfg["x_shape"]), randn(*cfg["w_shape"])
    y_ref = conv2d_ref(x_val, w_val, **ref_kwargs(cfg))
    gy_val = randn(*y_ref.shape)
    x, w, gy = ftensor("x", x_val.shape), ftensor("w", w_val.shape), ftensor("gy", y_ref.shape)
    outs = [
        Conv2dOp(**props)(x, w),
        Conv2dGradInputOp(**props)(w, gy, cfg["x_shape"][2:]),
        Conv2dGradFiltersOp(**props)(x, gy, cfg["w_shape"][2:]),
    ]
    assert_static_shapes(outs, [y_ref.shape, x_val.shape, w_val.shape])
    expected = [
        y_ref,
        conv2d_transpose_ref(gy_val, w_val, cfg["x_shape"][2:], **ref_kwargs(cfg)),
        conv2d_filter_grad_ref(x_val, gy_val, cfg["w_shape"][2:], **ref_kwargs(cfg)),
    ]
    check_values([x, w, gy], outs, [x_val, w_val, gy_val], expected, backend)


# each example compiles three Ops per backend (seconds each with Numba on a cold cache)
@settings(max_examples=3)
@given(cfg=conv_configs())
def test_conv_ops_match_naive_loops(backend, cfg):
    check_three_ops_against_naive_loops(backend, cfg)


def _cfg(x_shape, w_shape, stride, pad, dilation, groups=1, flip=True):
    return {"x_shape": x_shape, "w_shape": w_shape, "stride": stride, "pad": pad, "dilation": dilation,
            "groups": groups, "flip": flip}


# The C kernels copy each row of a receptive field in one piece between the first and the
# last input column it reaches; these put those bounds at every edge: taps that reach no
# column at all (pad 2, dilation 2 over a 2-wide input), strides that skip the padding
# unevenly, a tap whose first column lies inside the input (offset > 0), a tap one column
# past the input at stride 2 (where C's division rounds -1 / 2 up to 0).
EDGE_CASES = [
    _cfg((2, 2, 3, 2), (3, 2, 3, 3), stride=(1, 1), pad=(2, 2), dilation=(2, 2)),
    _cfg((2, 2, 3, 3), (3, 2, 3, 3), stride=(2, 2), pad=(1, 1), dilation=(2, 2)),
    _cfg((1, 2, 7, 8), (2, 2, 3, 4), stride=(3, 3), pad=(2, 3), dilation=(1, 1), flip=False),
    _cfg((2, 4, 5, 9), (4, 2, 2, 3), stride=(2, 2), pad=(0, 1), dilation=(2, 3), groups=2),
]


@pytest.mark.parametrize("cfg", EDGE_CASES)
def test_conv_ops_match_naive_loops_at_the_padding_edges(backend, cfg):
    check_three_ops_against_naive_loops(backend, cfg)


GRAD_CASES = [
    {"stride": (2, 1), "pad": (1, 2), "dilation": (1, 2), "num_groups": 2, "flip": True},
    {"stride": (1, 2), "pad": (0, 1), "dilation": (2, 1), "num_groups": 1, "flip": False},
]


@pytest.mark.parametrize("props", GRAD_CASES)
def test_conv2d_gradients_first_and_second_order(props):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 6, 5))
    w = rng.normal(size=(4, 4 // props["num_groups"], 3, 2))
    op = Conv2dOp(**props)
    check_grad(lambda a, b: op(a, b), [x, w])

    def squared_gradient_norm(a, b):
        ga, gb = pytensor.grad((op(a, b) ** 2).sum(), [a, b])
        return (ga**2).sum() + (gb**2).sum()

    check_grad(squared_gradient_norm, [x, w])


@pytest.mark.parametrize("props", GRAD_CASES)
def test_grad_ops_have_their_own_gradients(props):
    rng = np.random.default_rng(2)
    x_shape, w_shape = (2, 4, 6, 5), (4, 4 // props["num_groups"], 3, 2)
    y_shape = Conv2dOp(**props)(pt.tensor(shape=x_shape), pt.tensor(shape=w_shape)).type.shape
    w, gy, x = rng.normal(size=w_shape), rng.normal(size=y_shape), rng.normal(size=x_shape)
    grad_input = Conv2dGradInputOp(**props)
    grad_filters = Conv2dGradFiltersOp(**props)
    check_grad(lambda a, b: grad_input(a, b, x_shape[2:]), [w, gy])
    check_grad(lambda a, b: grad_filters(a, b, w_shape[2:]), [x, gy])
    # second order through the gradient Ops
    check_grad(lambda a, b: pytensor.grad((grad_input(a, b, x_shape[2:]) ** 2).sum(), a), [w, gy])
    check_grad(lambda a, b: pytensor.grad((grad_filters(a, b, w_shape[2:]) ** 2).sum(), b), [x, gy])


def test_infer_shape_without_computing(backend):
    """Shapes of all three Ops come from ``infer_shape`` (no Op left in the shape graph)."""
    props = GRAD_CASES[0]
    x, w = pt.tensor4("x"), pt.tensor4("w")
    gy, in_hw, k_hw = pt.tensor4("gy"), pt.lvector("in_hw"), pt.lvector("k_hw")
    outs = [Conv2dOp(**props)(x, w), Conv2dGradInputOp(**props)(w, gy, in_hw), Conv2dGradFiltersOp(**props)(x, gy, k_hw)]
    x_val, w_val = np.zeros((2, 4, 6, 5)), np.zeros((4, 2, 3, 2))
    y_shape = conv2d_ref(x_val, w_val, stride=(2, 1), pad=(1, 2), dilation=(1, 2), groups=2).shape
    values = [x_val, w_val, np.zeros(y_shape), [6, 5], [3, 2]]
    check_infer_shape([x, w, gy, in_hw, k_hw], outs, values, [y_shape, (2, 4, 6, 5), (4, 2, 3, 2)], CONV_OPS)
    # the compiled backends agree with the inferred shapes
    xs, ws = ftensor("x", x_val.shape), ftensor("w", w_val.shape)
    zeros = np.zeros(y_shape, dtype="float32")
    check_values([xs, ws], [Conv2dOp(**props)(xs, ws)], [x_val.astype("float32"), w_val.astype("float32")], [zeros], backend)


def test_errors_name_op_argument_and_values():
    x, w = ftensor("x", (2, 3, 8, 8)), ftensor("w", (4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels, expected filters.shape\[1\] \* num_groups = 2 \* 1 = 2"):
        Conv2dOp()(x, w)
    with pytest.raises(ValueError, match=r"num_groups=3 must divide the filters' output channels, got 4"):
        Conv2dOp(num_groups=3)(ftensor("x", (2, 6, 8, 8)), w)
    with pytest.raises(ValueError, match=r"conv2d: input must have ndim 4, got ndim 3"):
        Conv2dOp()(ftensor("x", (3, 8, 8)), w)
    with pytest.raises(ValueError, match=r"smaller than the dilated filter"):
        Conv2dOp(dilation=(4, 4))(ftensor("x", (2, 2, 8, 8)), w)
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        Conv2dOp(stride=0)
    with pytest.raises(ValueError, match=r"conv2d_grad_input: an input of size \(9, 9\)"):
        Conv2dGradInputOp()(w, ftensor("gy", (2, 4, 6, 6)), (9, 9))


BLAS_FLAGS = c_kernel_blas_flags()
C_BLAS_CASES = [
    # (x shape, w shape, props, dtype); P = 46 * 46 output pixels make chunks of 2 images: 3 = 2 + 1
    ((3, 1, 46, 46), (2, 1, 3, 3), {"pad": (1, 1)}, "float32"),
    ((2, 4, 5, 6), (4, 2, 3, 2), GRAD_CASES[0], "float64"),
]


@pytest.mark.skipif(BLAS_FLAGS is None, reason="no BLAS here (blas__ldflags unset, NumPy bundles none, no -lopenblas); the conv C code needs one")
@settings(max_examples=3)
@given(cfg=conv_configs())
def test_c_code_with_blas_matches_naive_loops(cfg):
    """The C backend's BLAS kernels (linking ``blas__ldflags`` or NumPy's bundled OpenBLAS),
    with ``perform`` disabled so that a silent fallback fails. Every
    configuration shares one compiled module per Op and dtype (run-time parameters)."""
    cases = [(cfg["x_shape"], cfg["w_shape"], op_props(cfg), "float32")] + C_BLAS_CASES
    rng = np.random.default_rng(len(cfg["x_shape"]))
    with pytensor.config.change_flags(blas__ldflags=BLAS_FLAGS):
        for x_shape, w_shape, props, dtype in cases:
            full = {"stride": (1, 1), "pad": (0, 0), "dilation": (1, 1), "num_groups": 1, "flip": True, **props}
            kwargs = {"stride": full["stride"], "pad": full["pad"], "dilation": full["dilation"], "groups": full["num_groups"], "flip": full["flip"]}
            x_val, w_val = rng.normal(size=x_shape).astype(dtype), rng.normal(size=w_shape).astype(dtype)
            y_ref = conv2d_ref(x_val, w_val, **kwargs)
            gy_val = rng.normal(size=y_ref.shape).astype(dtype)
            x, w, gy = (pt.tensor(n, shape=v.shape, dtype=dtype) for n, v in (("x", x_val), ("w", w_val), ("gy", gy_val)))
            outs = [Conv2dOp(**full)(x, w), Conv2dGradInputOp(**full)(w, gy, x_shape[2:]), Conv2dGradFiltersOp(**full)(x, gy, w_shape[2:])]
            expected = [
                y_ref,
                conv2d_transpose_ref(gy_val, w_val, x_shape[2:], **kwargs),
                conv2d_filter_grad_ref(x_val, gy_val, w_shape[2:], **kwargs),
            ]
            tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-10}
            # thunks bind ``perform`` when compiled, so compile under the patches
            with (
                mock.patch.object(Conv2dOp, "perform", side_effect=AssertionError("Conv2dOp ran perform")),
                mock.patch.object(Conv2dGradInputOp, "perform", side_effect=AssertionError("Conv2dGradInputOp ran perform")),
                mock.patch.object(Conv2dGradFiltersOp, "perform", side_effect=AssertionError("Conv2dGradFiltersOp ran perform")),
            ):
                check_values([x, w, gy], outs, [x_val, w_val, gy_val], expected, "c", **tol, err_msg=str(x_shape))


def test_batches_split_into_chunks_match_naive_loops(backend):
    """46 x 46 outputs make BLAS chunks of 2 images (C and Numba kernels): 3 images = 2 + 1."""
    rng = np.random.default_rng(12)
    x_val, w_val = rng.normal(size=(3, 2, 46, 46)).astype("float32"), rng.normal(size=(2, 2, 3, 3)).astype("float32")
    props = {"pad": (1, 1), "flip": False}
    kwargs = {"pad": (1, 1), "flip": False}
    y_ref = conv2d_ref(x_val, w_val, **kwargs)
    gy_val = rng.normal(size=y_ref.shape).astype("float32")
    x, w, gy = ftensor("x", x_val.shape), ftensor("w", w_val.shape), ftensor("gy", y_ref.shape)
    outs = [Conv2dOp(**props)(x, w), Conv2dGradInputOp(**props)(w, gy, x_val.shape[2:]), Conv2dGradFiltersOp(**props)(x, gy, w_val.shape[2:])]
    expected = [
        y_ref,
        conv2d_transpose_ref(gy_val, w_val, x_val.shape[2:], **kwargs),
        conv2d_filter_grad_ref(x_val, gy_val, w_val.shape[2:], **kwargs),
    ]
    check_values([x, w, gy], outs, [x_val, w_val, gy_val], expected, backend, atol=(1e-4, 1e-4, 1e-3))
