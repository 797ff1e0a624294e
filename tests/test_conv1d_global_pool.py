"""Conv1D / conv1d and global pooling against NumPy loops, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from dandelion.functional import conv1d, global_avg_pool, global_max_pool, global_pool
from dandelion.module import Conv1D
from tests.helpers import assert_close, compile_fn, verify_grad


def conv1d_reference(x, w, stride, pad, dilation, groups, flip):
    """Direct loops: out[b, o, i] = sum over c, j of x_pad[b, c, i*stride + j*dilation] * w[o, c, j]."""
    B, C, L = x.shape
    O, Cg, K = w.shape  # noqa: E741 - the reference names of the formula
    w = w[:, :, ::-1] if flip else w
    xp = np.pad(x.astype("float64"), ((0, 0), (0, 0), (pad, pad)))
    L_out = (L + 2 * pad - dilation * (K - 1) - 1) // stride + 1
    out = np.zeros((B, O, L_out))
    per_group = O // groups
    for o in range(O):
        g = o // per_group
        for i in range(L_out):
            for c in range(Cg):
                for j in range(K):
                    out[:, o, i] += xp[:, g * Cg + c, i * stride + j * dilation] * w[o, c, j]
    return out


CASES = [  # in, out, kernel, stride, pad, dilation, groups, flip
    (4, 6, 3, 1, "same", 1, 1, True),
    (4, 6, 3, 2, "valid", 2, 2, False),
    (4, 4, 2, 1, "full", 1, 4, True),
    (4, 3, 3, 3, 1, 1, 1, False),
]
X_SHAPE = (2, 4, 9)
_compiled = {}


def _build(backend):
    if backend not in _compiled:
        rng = np.random.default_rng(0)
        modules = [
            Conv1D(i, o, kernel_size=k, stride=s, pad=p, dilation=d, num_groups=g, flip_filters=f, b=rng.normal(size=o).astype("float32"))
            for i, o, k, s, p, d, g, f in CASES
        ]
        x = pt.tensor("x", shape=X_SHAPE, dtype="float32")
        grid = pt.tensor("grid", shape=(2, 3, 4, 5), dtype="float32")
        outputs = [m.forward(x) for m in modules] + [
            global_avg_pool(grid), global_max_pool(grid, axes=(1, 3), keepdims=True), global_pool(grid, axes=-1, mode="average"),
        ]
        _compiled[backend] = (compile_fn([x, grid], outputs, backend), modules)
    return _compiled[backend]


def test_conv1d_and_global_pooling_match_numpy(backend):
    fn, modules = _build(backend)
    rng = np.random.default_rng(1)
    x = rng.normal(size=X_SHAPE).astype("float32")
    grid = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    *convolved, average, maximum, last = fn(x, grid)
    for out, module, (_, _, _, s, _, d, g, f) in zip(convolved, modules, CASES):
        expected = conv1d_reference(x, module.W.get_value(), s, module.padding, d, g, f) + module.b.get_value()[:, None]
        assert out.shape == expected.shape
        assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert [m.padding for m in modules] == [1, 0, 1, 1]
    assert_close(average, grid.mean(axis=(2, 3)))
    assert_close(maximum, grid.max(axis=(1, 3), keepdims=True))
    assert_close(last, grid.mean(axis=-1))


def test_conv1d_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    values = [rng.normal(size=(2, 4, 7)), rng.normal(size=(4, 2, 3))]
    verify_grad(lambda x, w: conv1d(x, w, stride=2, pad="same", dilation=2, num_groups=2), values)


def test_global_pool_gradient_matches_finite_differences():
    values = [np.random.default_rng(3).normal(size=(2, 3, 4))]
    verify_grad(lambda x: global_avg_pool(x) + global_max_pool(x), values)


def test_bad_conv1d_and_pool_arguments_are_named():
    with pytest.raises(ValueError, match=r"Conv1D: num_groups \(3\) must divide in_channels \(4\)"):
        Conv1D(4, 6, num_groups=3)
    with pytest.raises(ValueError, match=r"Conv1D: pad must be one of"):
        Conv1D(4, 6, pad="wide")
    with pytest.raises(ValueError, match=r"Conv1D: input axis 1 \(in_channels\) must be 4, got 5"):
        Conv1D(4, 6).forward(pt.tensor("x", shape=(2, 5, 9), dtype="float32"))
    with pytest.raises(ValueError, match="conv1d: filters must be 3-D, got ndim 4"):
        conv1d(pt.tensor3("x"), pt.tensor4("w"))
    with pytest.raises(ValueError, match=r"global_pool: mode must be one of \('average', 'max'\), got 'sum'"):
        global_pool(pt.tensor4("x"), mode="sum")
    with pytest.raises(ValueError, match=r"global_pool: axes must be distinct axes of x \(ndim 4\), got \(2, -2\)"):
        global_pool(pt.tensor4("x"), axes=(2, -2))
