"""pool_1d (any axis), pool_2d and pool_3d against naive loops on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from dandelion.functional import pool_1d, pool_2d, pool_3d
from tests.helpers import PY_MODE, assert_close, compile_fn, ftensor, verify_grad
from tests.pool_reference import pool_ref


def test_pool_1d_2d_3d_match_reference(backend):
    rng = np.random.default_rng(5)
    a, b, c = (rng.permutation(n).astype("float32") for n in (2 * 5 * 3, 2 * 3 * 5 * 7, 2 * 4 * 5 * 6))
    a, b, c = a.reshape(2, 5, 3), b.reshape(2, 3, 5, 7), c.reshape(2, 4, 5, 6)
    xa, xb, xc = ftensor("a", a.shape), ftensor("b", b.shape), ftensor("c", c.shape)
    outs = [
        pool_1d(xa, ws=2, ignore_border=False, axis=1),
        pool_1d(xa, ws=3, stride=1, pad=1, mode="average_exc_pad", axis=-1),
        pool_2d(xb, ws=(2, 3), stride=(1, 2), pad=(1, 1), mode="average_inc_pad"),
        pool_2d(xb),
        pool_3d(xc, ws=(2, 2, 3), ignore_border=False, mode="sum"),
    ]
    assert outs[0].type.shape == (2, 3, 3)  # size 5, ws 2, ignore_border False -> 3
    results = compile_fn([xa, xb, xc], outs, backend)(a, b, c)
    a64, b64, c64 = (v.astype("float64") for v in (a, b, c))
    expected = [
        pool_ref(a64.transpose(0, 2, 1), (2,), ignore_border=False).transpose(0, 2, 1),
        pool_ref(a64, (3,), (1,), (1,), True, "average_exc_pad"),
        pool_ref(b64, (2, 3), (1, 2), (1, 1), True, "average_inc_pad"),
        pool_ref(b64, (2, 2)),
        pool_ref(c64, (2, 2, 3), ignore_border=False, mode="sum"),
    ]
    for out, ref, sym in zip(results, expected, outs):
        assert out.shape == ref.shape == sym.type.shape
        assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_pool_1d_gradient_along_inner_axis():
    x = np.random.default_rng(6).permutation(24).reshape(2, 4, 3).astype("float64")
    verify_grad(lambda v: pool_1d(v, ws=2, stride=1, axis=1, mode="max"), [x], mode=PY_MODE)


def test_errors_name_function_argument_and_values():
    x = ftensor("x", (2, 3, 4))
    with pytest.raises(ValueError, match=r"pool_2d: mode must be one of \('max', 'sum', 'average_inc_pad', 'average_exc_pad'\), got 'mean'"):
        pool_2d(x, mode="mean")
    with pytest.raises(ValueError, match=r"pool_3d: input must have ndim >= 3, got ndim 2"):
        pool_3d(ftensor("y", (3, 4)))
    with pytest.raises(ValueError, match=r"pool_2d: window \(4, 4\) is larger than the padded input \(3, 4\)"):
        pool_2d(x, ws=(4, 4))
    with pytest.raises(ValueError, match=r"pool_1d: axis must be in \[-3, 3\), got 3"):
        pool_1d(x, axis=3)
    with pytest.raises(ValueError, match=r"pool_2d: ws must be an int or a sequence of 2 ints, got \(2, 2, 2\)"):
        pool_2d(x, ws=(2, 2, 2))
