"""channel_shuffle and align_crop against NumPy references (spatial_pyramid_pooling: test_functional_spp.py)."""

from __future__ import annotations

import pytest

from dandelion.functional import align_crop, channel_shuffle
from tests.helpers import assert_close, compile_fn, ftensor, randn


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
    with pytest.raises(ValueError, match=r"channel_shuffle: channels \(6\) must be divisible by group_num \(4\)"):
        channel_shuffle(x, 4)
    with pytest.raises(ValueError, match=r"align_crop: cropping rules must be in \(None, 'lower', 'upper', 'center'\), got 'middle'"):
        align_crop([x, x], ["middle"])
