"""upsample_2d ('repeat', 'dilate') and upsample_2d_bilinear against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from dandelion.functional import upsample_2d, upsample_2d_bilinear
from tests.helpers import assert_close, compile_fn, ftensor, randn


def interpolate_axis(a, num, den, axis):
    """Linear interpolation at (i * den + 0.5) / num - 0.5, clamped to the edges (half-pixel centres)."""
    n = a.shape[axis]
    samples = []
    for i in range(-(-n * num // den)):
        src = min(max((i * den + 0.5) / num - 0.5, 0.0), n - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n - 1)
        t = src - lo
        samples.append((1 - t) * np.take(a, lo, axis) + t * np.take(a, hi, axis))
    return np.stack(samples, axis)


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
    """The 2-D kernel on an even ratio and the 1-D kernels on a fractional one, against the reference."""
    x_val = randn(1, 2, 3, 4)
    x = ftensor("x", x_val.shape)
    outs = [upsample_2d_bilinear(x, ratio=4, use_1D_kernel=False), upsample_2d_bilinear(x, frac_ratio=(3, 2))]
    results = compile_fn([x], outs, backend)(x_val)
    x64 = x_val.astype("float64")
    assert_close(results[0], interpolate_axis(interpolate_axis(x64, 4, 1, 2), 4, 1, 3), rtol=1e-5, atol=1e-5)
    assert_close(results[1], interpolate_axis(interpolate_axis(x64, 3, 2, 2), 3, 2, 3), rtol=1e-5, atol=1e-5)


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
