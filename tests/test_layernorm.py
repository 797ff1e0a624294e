"""LayerNorm and RMSNorm (module and functional) against NumPy, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytensor.graph.traversal import apply_ancestors

from dandelion.functional import layer_norm, rms_norm
from dandelion.module import LayerNorm, RMSNorm
from dandelion.ops.batch_norm import BatchNormTrainOp
from tests.helpers import assert_close, compile_fn, verify_grad


def layer_norm_reference(x, n_axes, gamma, beta, eps):
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    x = x.astype("float64")
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps) * gamma + beta


def rms_norm_reference(x, n_axes, gamma, eps):
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    x = x.astype("float64")
    return x / np.sqrt((x**2).mean(axis=axes, keepdims=True) + eps) * gamma


_compiled = {}
MODULE_SHAPE = (2, 3, 4)


def _modules():
    rng = np.random.default_rng(0)
    modules = {
        "affine": LayerNorm(4), "plain": LayerNorm((3, 4), elementwise_affine=False),
        "no_bias": LayerNorm(4, bias=False), "rms": RMSNorm(4),
    }
    for module in modules.values():
        for p in module.params:
            p.set_value(rng.uniform(0.5, 2, p.get_value().shape).astype("float32"))
    return modules


def _functions(backend):
    """One function per backend (C compiles slowly): both norms over the last axis and
    over the last two of (B, T, D) input of any lengths, gamma and beta as inputs, and
    the modules on a second input."""
    if backend not in _compiled:
        x, y = pt.tensor3("x", dtype="float32"), pt.tensor3("y", dtype="float32")
        g1, b1 = pt.vector("g1", dtype="float32"), pt.vector("b1", dtype="float32")
        g2, b2 = pt.matrix("g2", dtype="float32"), pt.matrix("b2", dtype="float32")
        # normalized_shape is checked against static lengths only; these are unknown here
        functional = [
            layer_norm(x, 1, g1, b1, eps=1e-5), layer_norm(x, (1, 1), g2, b2, eps=1e-3),
            rms_norm(x, 1, g1, eps=1e-6), rms_norm(x, (1, 1), g2, eps=1e-2),
        ]
        modules = _modules()
        m = modules
        by_modules = [
            m["affine"].forward(y), m["affine"].predict(y), m["plain"].forward(y), m["no_bias"].forward(y), m["rms"].forward(y)
        ]
        fn = compile_fn([x, g1, b1, g2, b2, y], functional + by_modules, backend)
        _compiled[backend] = (fn, modules)
    return _compiled[backend]


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(2, 6)),
    offset=st.floats(-50, 50),
    spread=st.floats(0.1, 10),
    seed=st.integers(0, 2**16),
)
def test_norms_match_numpy_over_shapes(backend, shape, offset, spread, seed):
    rng = np.random.default_rng(seed)
    x = (offset + spread * rng.standard_normal(shape)).astype("float32")
    g1, b1 = (rng.uniform(0.5, 2, shape[-1:]).astype("float32") for _ in range(2))
    g2, b2 = (rng.uniform(0.5, 2, shape[-2:]).astype("float32") for _ in range(2))
    fn, _ = _functions(backend)
    ln1, ln2, rms1, rms2 = fn(x, g1, b1, g2, b2, np.zeros(MODULE_SHAPE, "float32"))[:4]
    assert ln1.dtype == np.float32 and ln1.shape == shape
    # float32 statistics of data with |mean| >> std: tolerance relative to the spread
    assert_close(ln1, layer_norm_reference(x, 1, g1, b1, 1e-5), rtol=1e-3, atol=2e-3)
    assert_close(ln2, layer_norm_reference(x, 2, g2, b2, 1e-3), rtol=1e-3, atol=2e-3)
    assert_close(rms1, rms_norm_reference(x, 1, g1, 1e-6), rtol=1e-4, atol=1e-4)
    assert_close(rms2, rms_norm_reference(x, 2, g2, 1e-2), rtol=1e-4, atol=1e-4)


def test_modules_apply_their_parameters_and_options(backend):
    fn, modules = _functions(backend)
    affine, plain, no_bias, rms = modules.values()
    assert [p.name for p in affine.params] == ["gamma@LayerNorm", "beta@LayerNorm"]
    assert plain.params == [] and [p.name for p in no_bias.params] == ["gamma@LayerNorm"]
    data = np.random.default_rng(1).normal(size=MODULE_SHAPE).astype("float32")
    x, g1, g2 = np.zeros((1, 1, 2), "float32"), np.ones(2, "float32"), np.ones((1, 2), "float32")
    out_affine, predicted, out_plain, out_no_bias, out_rms = fn(x, g1, g1, g2, g2, data)[4:]
    g, b = affine.gamma.get_value(), affine.beta.get_value()
    assert_close(out_affine, layer_norm_reference(data, 1, g, b, 1e-5))
    assert_close(predicted, out_affine)
    assert_close(out_plain, layer_norm_reference(data, 2, 1.0, 0.0, 1e-5))
    assert_close(out_no_bias, layer_norm_reference(data, 1, no_bias.gamma.get_value(), 0.0, 1e-5))
    assert_close(out_rms, rms_norm_reference(data, 1, rms.gamma.get_value(), 1e-6))


@pytest.mark.parametrize("norm", ["layer", "rms"])
def test_norm_gradients_match_finite_differences(norm):
    rng = np.random.default_rng(2)
    x, g, b = rng.normal(size=(2, 3, 4)), rng.uniform(0.5, 2, (3, 4)), rng.normal(size=(3, 4))
    if norm == "layer":
        verify_grad(lambda x, g, b: layer_norm(x, (3, 4), g, b), [x, g, b])
    else:
        verify_grad(lambda x, g: rms_norm(x, (3, 4), g), [x, g])


def test_bad_normalized_shapes_are_named():
    x = pt.tensor("x", shape=(2, 5, 8), dtype="float32")
    with pytest.raises(ValueError, match=r"LayerNorm: input's trailing axes must have shape normalized_shape \(5, 7\), got \(5, 8\)"):
        LayerNorm((5, 7)).forward(x)
    with pytest.raises(ValueError, match=r"RMSNorm: input's trailing axes must have shape normalized_shape \(6,\), got \(8,\)"):
        RMSNorm(6).forward(x)
    with pytest.raises(ValueError, match=r"layer_norm: input must have at least 4 axes .* got ndim 3"):
        layer_norm(x, (1, 2, 5, 8))
    with pytest.raises(ValueError, match=r"LayerNorm: normalized_shape must be a positive int or a tuple of positive ints, got \(4, 0\)"):
        LayerNorm((4, 0))
    with pytest.raises(ValueError, match="rms_norm: normalized_shape must be a positive int"):
        rms_norm(x, ())


def test_layer_norm_is_the_fused_op_where_it_applies(backend):
    """Over trailing axes with others kept: the fused BatchNorm Op (statistics per kept
    position); over every axis of x: the graph path. Both against NumPy."""
    x = pt.tensor("x", shape=(3, 5), dtype="float32")
    g, b = pt.tensor("g", shape=(5,), dtype="float32"), pt.tensor("b", shape=(5,), dtype="float32")
    over_trailing, over_all = layer_norm(x, 5, g, b), layer_norm(x, (3, 5))
    assert any(isinstance(n.op, BatchNormTrainOp) for n in apply_ancestors([over_trailing]))
    assert not any(isinstance(n.op, BatchNormTrainOp) for n in apply_ancestors([over_all]))
    rng = np.random.default_rng(4)
    xv, gv, bv = rng.normal(size=(3, 5)).astype("float32"), rng.uniform(0.5, 2, 5).astype("float32"), rng.normal(size=5).astype("float32")
    trailing, everything = compile_fn([x, g, b], [over_trailing, over_all], backend)(xv, gv, bv)
    assert_close(trailing, layer_norm_reference(xv, 1, gv, bv, 1e-5), rtol=1e-5, atol=1e-5)
    assert_close(everything, layer_norm_reference(xv, 2, 1.0, 0.0, 1e-5), rtol=1e-5, atol=1e-5)
