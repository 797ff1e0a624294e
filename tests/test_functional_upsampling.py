"""upsample_2d ('repeat', 'dilate') and upsample_2d_bilinear against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from dandelion.functional import upsample_2d, upsample_2d_bilinear
from tests.helpers import assert_close, compile_fn, ftensor, randn
from tests.upsampling_reference import interpolate_axis, theano_bilinear_axis


def repeat_ref(x, rh, rw):
    out = np.zeros(x.shape[:-2] + (x.shape[-2] * rh, x.shape[-1] * rw), x.dtype)
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            out[..., i, j] = x[..., i // rh, j // rw]
    return out


def dilate_ref(x, rh, rw):
    out = np.zeros(x.shape[:-2] + (x.shape[-2] * rh, x.shape[-1] * rw), x.dtype)
    for i in range(x.shape[-2]):
        for j in range(x.shape[-1]):
            out[..., i * rh, j * rw] = x[..., i, j]
    return out


def test_upsampling_matches_references(backend):
    x_val = randn(2, 3, 4, 5)
    x = ftensor("x", x_val.shape)
    outs = [
        upsample_2d(x, 2),
        upsample_2d(x, (3, 2), mode="dilate"),
        upsample_2d_bilinear(x, ratio=(3, 2)),
        upsample_2d_bilinear(x, frac_ratio=((5, 2), (4, 6)), use_1D_kernel=False),
    ]
    x64 = x_val.astype("float64")
    expected = [
        repeat_ref(x64, 2, 2),
        dilate_ref(x64, 3, 2),
        interpolate_axis(interpolate_axis(x64, 3, 1, 2), 2, 1, 3),
        interpolate_axis(interpolate_axis(x64, 5, 2, 2), 2, 3, 3),  # 4/6 reduces to 2/3
    ]
    results = compile_fn([x], outs, backend)(x_val)
    for out, ref, sym in zip(results, expected, outs):
        assert out.shape == ref.shape == sym.type.shape
        assert out.dtype == np.float32
        assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_kernel_methods_and_fractional_ratio(backend):
    """Even ratios and even numerators as Theano's kernel algorithm computes them, both kernel forms."""
    x_val = randn(1, 2, 3, 4)
    x = ftensor("x", x_val.shape)
    hand = ftensor("hand", (1, 1, 2, 2))
    outs = [
        upsample_2d_bilinear(x, ratio=4, use_1D_kernel=False),
        upsample_2d_bilinear(x, ratio=(2, 3)),
        upsample_2d_bilinear(x, frac_ratio=(3, 2)),
        upsample_2d_bilinear(x, frac_ratio=((4, 3), (6, 4)), use_1D_kernel=False),  # 6/4 reduces to 3/2
        upsample_2d_bilinear(hand, ratio=2),
    ]
    results = compile_fn([x, hand], outs, backend)(x_val, np.array([[[[1, 2], [3, 4]]]], "float32"))
    x64 = x_val.astype("float64")
    expected = [
        theano_bilinear_axis(theano_bilinear_axis(x64, 4, 2), 4, 3),
        theano_bilinear_axis(theano_bilinear_axis(x64, 2, 2), 3, 3),
        theano_bilinear_axis(theano_bilinear_axis(x64, 3, 2, subsample=2), 3, 3, subsample=2),
        theano_bilinear_axis(theano_bilinear_axis(x64, 4, 2, subsample=3), 3, 3, subsample=2),
    ]
    for out, ref, sym in zip(results, expected, outs):
        assert out.shape == ref.shape == sym.type.shape
        assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # the two references agree: Theano's kernel samples (o - (r - 1) // 2) / r, clamped
    assert_close(expected[0], interpolate_axis(interpolate_axis(x64, 4, 1, 2), 4, 1, 3), rtol=1e-12, atol=1e-12)
    assert_close(expected[3], interpolate_axis(interpolate_axis(x64, 4, 3, 2), 3, 2, 3), rtol=1e-12, atol=1e-12)
    # by hand: rows and columns sample at 0, 0.5, 1 and 1.5, clamped to 1
    assert_close(results[4][0, 0], [[1, 1.5, 2, 2], [2, 2.5, 3, 3], [3, 3.5, 4, 4], [3, 3.5, 4, 4]])


def test_errors_name_function_argument_and_values():
    x = ftensor("x", (1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"upsample_2d: mode must be one of \('repeat', 'dilate'\), got 'nearest'"):
        upsample_2d(x, 2, mode="nearest")
    with pytest.raises(ValueError, match=r"give exactly one of ratio and frac_ratio"):
        upsample_2d_bilinear(x, ratio=2, frac_ratio=(3, 2))
    with pytest.raises(ValueError, match=r"upsample_2d_bilinear: input must be 4-D"):
        upsample_2d_bilinear(ftensor("y", (2, 3, 4)), ratio=2)
    with pytest.raises(ValueError, match=r"upsample_2d: ratio must be >= 1"):
        upsample_2d(x, 0)
