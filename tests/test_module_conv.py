"""Conv2D and ConvTransposed2D modules: shapes, values against naive loops on every backend,
parameters (order, shapes, names), bias options, convOP and errors."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

from dandelion.functional import conv2d
from dandelion.module import Conv2D, ConvTransposed2D
from tests.conv_reference import conv2d_ref, conv2d_transpose_ref
from tests.helpers import assert_close, compile_fn, ftensor, randn


def random_bias(module):
    module.b.set_value(randn(*module.b.get_value().shape))
    return module.b.get_value().astype("float64")


def test_conv_modules_match_naive_loops(backend):
    x_val = randn(2, 4, 9, 8)
    same = Conv2D(4, 6, kernel_size=3, pad="same", num_groups=2, name="same")
    full = Conv2D(4, 3, kernel_size=(2, 3), pad="full", stride=(2, 1), flip_filters=False, b=None)
    tied = Conv2D(4, 2, kernel_size=(3, 2), pad=(1, 0), dilation=(2, 1), input_shape=(9, 8), untie_bias=True)
    up = ConvTransposed2D(4, 6, kernel_size=(4, 3), stride=(2, 2), pad=(1, 1), num_groups=2)
    up_nobias = ConvTransposed2D(4, 2, kernel_size=3, pad="same", b=None)
    biases = {id(m): random_bias(m) for m in (same, tied, up)}
    x = ftensor("x", x_val.shape)
    outs = [m.forward(x) for m in (same, full, tied, up, up_nobias)]
    results = compile_fn([x], outs, backend)(x_val)
    xd = x_val.astype("float64")

    def weights(module):
        return module.W.get_value().astype("float64")

    expected = [
        conv2d_ref(xd, weights(same), pad=(1, 1), groups=2) + biases[id(same)][:, None, None],
        conv2d_ref(xd, weights(full), stride=(2, 1), pad=(1, 2), flip=False),
        conv2d_ref(xd, weights(tied), pad=(1, 0), dilation=(2, 1)) + biases[id(tied)],
        conv2d_transpose_ref(xd, weights(up), (18, 15), stride=(2, 2), pad=(1, 1), groups=2) + biases[id(up)][:, None, None],
        conv2d_transpose_ref(xd, weights(up_nobias), (9, 8), pad=(1, 1)),
    ]
    for out, ref, sym in zip(results, expected, outs):
        assert out.shape == ref.shape == sym.type.shape
        assert out.dtype == np.float32
        assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_conv_transposed_flip_filters_has_the_old_meaning_and_default(backend):
    """Old Dandelion: flip_filters=True scatters the kernel as given (PyTorch's
    conv_transpose2d with the same weight), False (the default) scatters it flipped."""
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="float32")
    x_val = randn(2, 3, 4, 5)
    one = ftensor("one", (1, 1, 1, 1))
    x = ftensor("x", x_val.shape)
    given = ConvTransposed2D(1, 1, kernel_size=2, W=kernel[None, None], b=None, flip_filters=True)
    flipped = ConvTransposed2D(1, 1, kernel_size=2, W=kernel[None, None], b=None, flip_filters=False)
    default = ConvTransposed2D(1, 1, kernel_size=2, W=kernel[None, None], b=None)
    strided = ConvTransposed2D(3, 2, kernel_size=(3, 2), stride=(2, 3), pad=(1, 0), b=None, flip_filters=True)
    outs = [m.forward(one) for m in (given, flipped, default)] + [strided.forward(x)]
    results = compile_fn([one, x], outs, backend)(np.ones((1, 1, 1, 1), "float32"), x_val)
    assert_close(results[0][0, 0], kernel)
    assert_close(results[1][0, 0], kernel[::-1, ::-1])
    assert_close(results[2][0, 0], kernel[::-1, ::-1])
    # every input pixel scatters W[c_in, c_out] unflipped at (i * stride - pad)
    weights = strided.W.get_value().astype("float64")
    expected = conv2d_transpose_ref(x_val.astype("float64"), weights, (7, 14), stride=(2, 3), pad=(1, 0), flip=False)
    assert results[3].shape == expected.shape == outs[3].type.shape
    assert_close(results[3], expected, rtol=1e-4, atol=1e-4)


def test_output_shape_formulas():
    x = ftensor("x", (4, 1, 32, 33))
    assert Conv2D(1, 3, stride=(2, 2)).forward(x).type.shape == (4, 3, 15, 16)  # (32 - 3) // 2 + 1
    assert Conv2D(1, 3, pad="full").forward(x).type.shape == (4, 3, 34, 35)
    assert Conv2D(1, 3, kernel_size=5, pad="half").forward(x).type.shape == (4, 3, 32, 33)
    up = ConvTransposed2D(1, 2, kernel_size=(3, 5), stride=(3, 2), pad=(1, 2))
    # H = (H_in - 1) * stride + kernel - 2 * pad
    assert up.forward(x).type.shape == (4, 2, 31 * 3 + 3 - 2, 32 * 2 + 5 - 4)


def test_parameters_order_shapes_and_names():
    conv = Conv2D(4, 6, kernel_size=(3, 2), num_groups=2, name="conv1")
    assert [(v.shape, n) for v, n in conv.get_weights()] == [((6, 2, 3, 2), "W@Conv2D|conv1"), ((6,), "b@Conv2D|conv1")]
    untied = Conv2D(2, 3, input_shape=(7, 6), untie_bias=True, pad="same")
    assert untied.b.get_value().shape == (3, 7, 6)
    up = ConvTransposed2D(4, 6, kernel_size=3, num_groups=2, b=None, name="up")
    assert [(v.shape, n) for v, n in up.get_weights()] == [((4, 3, 3, 3), "W@ConvTransposed2D|up")]
    up_untied = ConvTransposed2D(2, 3, stride=2, input_shape=(4, 5), untie_bias=True)
    assert up_untied.b.get_value().shape == (3, 9, 11)
    assert conv.W.dtype == "float32"


def test_gradients_reach_parameters():
    conv = Conv2D(2, 3, kernel_size=3, pad="same", stride=2)
    up = ConvTransposed2D(3, 2, kernel_size=3, stride=2, pad=(1, 1))
    x = pt.tensor("x", shape=(2, 2, 5, 5), dtype="float32")
    loss = (up.forward(conv.forward(x)) ** 2).sum()
    params = [conv.W, conv.b, up.W, up.b]
    grads = pytensor.grad(loss, params)
    values = pytensor.function([x], grads, mode=Mode(linker="py", optimizer="fast_compile"))(randn(2, 2, 5, 5))
    assert all(g.shape == p.get_value().shape and np.abs(g).sum() > 0 for g, p in zip(values, params))


def test_conv_op_callable_gets_theano_keywords(backend):
    calls = []

    def my_conv(input, filters, input_shape, filter_shape, border_mode, subsample, filter_flip, filter_dilation, num_groups):
        calls.append((input_shape, filter_shape, border_mode, subsample, filter_flip, filter_dilation, num_groups))
        return conv2d(input, filters, subsample, border_mode, filter_dilation, num_groups, filter_flip)

    module = Conv2D(2, 4, kernel_size=3, pad="same", convOP=my_conv, input_shape=(5, 6))
    x_val = randn(1, 2, 5, 6)
    x = ftensor("x", x_val.shape)
    out = compile_fn([x], module.forward(x), backend)(x_val)
    assert calls == [((None, 2, 5, 6), (4, 2, 3, 3), (1, 1), (1, 1), True, (1, 1), 1)]
    assert_close(out, conv2d_ref(x_val.astype("float64"), module.W.get_value().astype("float64"), pad=(1, 1)), rtol=1e-4, atol=1e-4)


def test_errors_name_module_argument_and_values():
    conv = Conv2D(3, 4)
    with pytest.raises(ValueError, match=r"Conv2D: input must have ndim 4, got ndim 3"):
        conv.forward(ftensor("x", (3, 8, 8)))
    with pytest.raises(ValueError, match=r"Conv2D: input axis 1 \(in_channels\) must be 3, got 2"):
        conv.forward(ftensor("x", (1, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"Conv2D: num_groups \(2\) must divide in_channels \(3\)"):
        Conv2D(3, 4, num_groups=2)
    with pytest.raises(ValueError, match=r"Conv2D: pad must be one of \('valid', 'full', 'half', 'same'\) or a pair of ints, got 'wide'"):
        Conv2D(3, 4, pad="wide")
    with pytest.raises(ValueError, match=r"ConvTransposed2D: untie_bias=True needs input_shape"):
        ConvTransposed2D(3, 4, untie_bias=True)
    with pytest.raises(ValueError, match=r"Conv2D: input axis 2 must be 7 \(input_shape\), got 8"):
        Conv2D(3, 4, input_shape=(7, 7)).forward(ftensor("x", (1, 3, 8, 7)))
