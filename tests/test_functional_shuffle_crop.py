"""spatial_pyramid_pooling, channel_shuffle and align_crop against NumPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dandelion.functional import align_crop, channel_shuffle, spatial_pyramid_pooling
from tests.helpers import assert_close, compile_fn, ftensor, randn

REDUCE = {"max": np.max, "sum": np.sum, "average_exc_pad": np.mean}


def spp_ref(x, dims, mode, implementation):
    b, c, h, w = x.shape
    levels = []
    for d in dims:
        if implementation == "fast":
            wh, ww, sh, sw = math.ceil(h / d), math.ceil(w / d), h // d, w // d
            rows = [(i * sh, i * sh + wh) for i in range(d)]
            cols = [(j * sw, j * sw + ww) for j in range(d)]
        elif implementation == "stretch":
            rows = [(math.floor(i * h / d), math.ceil((i + 1) * h / d)) for i in range(d)]
            cols = [(math.floor(j * w / d), math.ceil((j + 1) * w / d)) for j in range(d)]
        else:
            rows = [(i * (h // d), h if i == d - 1 else (i + 1) * (h // d)) for i in range(d)]
            cols = [(j * (w // d), w if j == d - 1 else (j + 1) * (w // d)) for j in range(d)]
        level = np.zeros((b, c, d * d))
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                level[:, :, i * d + j] = REDUCE[mode](x[:, :, r0:r1, c0:c1], axis=(2, 3))
        levels.append(level)
    return np.concatenate(levels, axis=2).reshape(b, -1)


def test_spp_implementations_match_reference(backend):
    square, odd = randn(2, 3, 12, 12), randn(2, 3, 7, 9)
    xs, xo = ftensor("xs", square.shape), ftensor("xo", odd.shape)
    # small pyramids: every bin of 'fast_ls' / 'stretch' is its own graph node, and
    # each node costs a Numba compilation on a cold cache
    cases = [
        (xs, square, (4, 2, 1), "max", "fast"),
        (xs, square, (3,), "sum", "fast"),
        (xo, odd, (2, 1), "max", "fast_ls"),
        (xo, odd, (3,), "average_exc_pad", "stretch"),
    ]
    outs = [spatial_pyramid_pooling(x, dims, mode, impl) for x, _, dims, mode, impl in cases]
    results = compile_fn([xs, xo], outs, backend)(square, odd)
    for out, sym, (_, value, dims, mode, impl) in zip(results, outs, cases):
        expected = spp_ref(value.astype("float64"), dims, mode, impl)
        assert out.shape == expected.shape == sym.type.shape == (2, 3 * sum(d * d for d in dims))
        assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_channel_shuffle_and_align_crop(backend):
    x_val = randn(2, 6, 3, 4)
    a_val, b_val = randn(2, 3, 7, 8), randn(2, 3, 4, 5)
    x, a, b = ftensor("x", x_val.shape), ftensor("a", a_val.shape), ftensor("b", b_val.shape)
    shuffled = channel_shuffle(x, 3)
    lower = align_crop([a, b], [None, None, "lower", "upper"])
    center = align_crop([a, b], [None, None, "center", "center"])
    results = compile_fn([x, a, b], [shuffled, *lower, *center], backend)(x_val, a_val, b_val)
    order = [g * 2 + k for k in range(2) for g in range(3)]  # channel k*3 + g <- g*2 + k
    assert_close(results[0], x_val[:, order])
    assert_close(results[1], a_val[:, :, :4, 3:])
    assert_close(results[2], b_val)
    assert_close(results[3], a_val[:, :, 1:5, 1:6])
    assert_close(results[4], b_val)


def test_align_crop_without_rules_returns_the_tensors(backend):
    """The old align_crop(tensors, cropping=None) returned its inputs uncropped."""
    a_val, b_val = randn(2, 3, 7, 8), randn(1, 3, 4, 5)
    a, b = ftensor("a", a_val.shape), ftensor("b", b_val.shape)
    out = align_crop([a, b], None)
    assert out[0] is a and out[1] is b
    results = compile_fn([a, b], out, backend)(a_val, b_val)
    assert_close(results[0], a_val)
    assert_close(results[1], b_val)


def test_errors_name_function_argument_and_values():
    x = ftensor("x", (2, 6, 5, 5))
    with pytest.raises(ValueError, match=r"implementation 'fast' .* gives \(4, 4\) bins for a 5x5 input, expected \(3, 3\)"):
        spatial_pyramid_pooling(x, (3,), implementation="fast")
    with pytest.raises(ValueError, match=r"implementation must be one of \('fast', 'fast_ls', 'stretch'\), got 'kaiming'"):
        spatial_pyramid_pooling(x, implementation="kaiming")
    with pytest.raises(ValueError, match=r"channel_shuffle: channels \(6\) must be divisible by group_num \(4\)"):
        channel_shuffle(x, 4)
    with pytest.raises(ValueError, match=r"align_crop: cropping rules must be in \(None, 'lower', 'upper', 'center'\), got 'middle'"):
        align_crop([x, x], ["middle"])
