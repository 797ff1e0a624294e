"""conv2d / conv2d_transpose with filters from a plain ``pytensor.shared(W)`` (no static
shape, the Theano-era habit): values and gradients on every backend, JAX included."""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.functional import conv2d, conv2d_transpose
from tests.conv_reference import conv2d_filter_grad_ref, conv2d_ref, conv2d_transpose_ref
from tests.helpers import assert_close, compile_fn, ftensor, randn


def test_shared_filters_without_static_shape(backend):
    w_val = randn(4, 3, 3, 2)
    W = pytensor.shared(w_val, name="W")
    assert W.type.shape == (None, None, None, None)
    x_val, z_val = randn(2, 3, 6, 5), randn(2, 4, 3, 4)
    x, z = ftensor("x", x_val.shape), ftensor("z", z_val.shape)
    y = conv2d(x, W, stride=(1, 2), pad="same")
    up = conv2d_transpose(z, W, stride=(2, 1))
    gy, gu = randn(*y.type.shape), randn(*up.type.shape)
    grads = pytensor.grad(pt.sum(y * gy) + pt.sum(up * gu), [x, z, W])
    results = compile_fn([x, z], [y, up, *grads], backend)(x_val, z_val)
    xd, zd, wd = (v.astype("float64") for v in (x_val, z_val, w_val))
    up_hw = (3 - 1) * 2 + 3, (4 - 1) * 1 + 2
    expected = [
        conv2d_ref(xd, wd, stride=(1, 2), pad=(1, 1)),
        conv2d_transpose_ref(zd, wd, up_hw, stride=(2, 1)),
        conv2d_transpose_ref(gy.astype("float64"), wd, (6, 5), stride=(1, 2), pad=(1, 1)),
        conv2d_ref(gu.astype("float64"), wd, stride=(2, 1)),
        conv2d_filter_grad_ref(xd, gy.astype("float64"), (3, 2), stride=(1, 2), pad=(1, 1))
        + conv2d_filter_grad_ref(gu.astype("float64"), zd, (3, 2), stride=(2, 1)),
    ]
    for out, ref in zip(results, expected):
        assert out.shape == ref.shape
        assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_jax_error_names_the_filters():
    pytest.importorskip("jax", reason="the JAX backend needs jax")
    W = pytensor.shared(randn(4, 3, 3, 3), name="W")
    x = ftensor("x", (2, 3, 6, 6))
    y = conv2d(x, 2 * W)  # an expression of W: its shape is unknown until run time
    with pytest.raises(NotImplementedError, match=r"JAX needs the static filter size \(kh, kw\) .* declare the filters with a static shape"):
        compile_fn([x], pytensor.grad(y.sum(), W), "jax")
