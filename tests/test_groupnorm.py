"""GroupNorm against NumPy group, layer and instance normalisation."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from dandelion.functional.normalization import group_norm
from dandelion.module import GroupNorm
from tests.helpers import assert_close, compile_fn, verify_grad

EPS = 1e-5


def group_reference(x, groups, gamma, beta, eps=EPS):
    B, C, H, W = x.shape
    g = x.astype("float64").reshape(B, groups, C // groups, H, W)
    out = (g - g.mean(axis=(2, 3, 4), keepdims=True)) / np.sqrt(g.var(axis=(2, 3, 4), keepdims=True) + eps)
    return out.reshape(x.shape) * gamma + beta


def layer_norm(x, eps=EPS):
    return (x - x.mean(axis=(1, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(1, 2, 3), keepdims=True) + eps)


def instance_norm(x, eps=EPS):
    return (x - x.mean(axis=(2, 3), keepdims=True)) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + eps)


SHAPE = (2, 6, 3, 4)
_compiled = {}


def _build(backend):
    """One function per backend: groups of 2 channels (random gamma, beta), layer norm
    (group_num=1) and instance norm (group_num=C, no gamma/beta)."""
    if backend not in _compiled:
        rng = np.random.default_rng(0)
        modules = {
            "groups": GroupNorm(
                6, group_num=3, gamma=rng.uniform(0.5, 2, (1, 6, 1, 1)), beta=rng.normal(size=(1, 6, 1, 1))
            ),
            "layer": GroupNorm(6, group_num=1),
            "instance": GroupNorm(6, group_num=6, gamma=None, beta=None),
        }
        x = pt.tensor("x", shape=SHAPE, dtype="float32")
        outputs = [m.forward(x) for m in modules.values()] + [modules["groups"].predict(x)]
        _compiled[backend] = (modules, compile_fn([x], outputs, backend))
    return _compiled[backend]


def test_group_layer_and_instance_normalisation(backend):
    modules, fn = _build(backend)
    x = np.random.default_rng(1).normal(2.0, 3.0, size=SHAPE).astype("float32")
    grouped, layer, instance, predicted = fn(x)
    g = modules["groups"]
    expected = group_reference(x, 3, g.gamma.get_value(), g.beta.get_value())
    assert grouped.dtype == np.float32 and grouped.shape == SHAPE
    assert_close(grouped, expected, rtol=1e-4, atol=1e-4)
    assert_close(predicted, expected, rtol=1e-4, atol=1e-4)
    assert_close(layer, layer_norm(x.astype("float64")), rtol=1e-4, atol=1e-4)
    assert_close(instance, instance_norm(x.astype("float64")), rtol=1e-4, atol=1e-4)


def test_gradients_against_finite_differences():
    rng = np.random.default_rng(2)

    def fn(x, gamma, beta):
        return group_norm(x, 2, EPS, pt.specify_broadcastable(gamma, 0, 2, 3), pt.specify_broadcastable(beta, 0, 2, 3))

    verify_grad(fn, [rng.normal(size=(2, 4, 2, 3)), rng.uniform(0.5, 2, (1, 4, 1, 1)), rng.normal(size=(1, 4, 1, 1))])


def test_parameters_are_broadcastable_and_named():
    gn = GroupNorm(8, group_num=4, name="gn")
    assert [(v.shape, n) for v, n in gn.get_weights()] == [
        ((1, 8, 1, 1), "beta@GroupNorm|gn"),
        ((1, 8, 1, 1), "gamma@GroupNorm|gn"),
    ]
    for p in gn.params:
        assert p.type.broadcastable == (True, False, True, True)
    assert GroupNorm(8, 4, beta=None, gamma=None).params == []


def test_bad_arguments_and_inputs_are_rejected():
    with pytest.raises(
        ValueError, match="GroupNorm: channel_num must be divisible by group_num, got channel_num=6, group_num=4"
    ):
        GroupNorm(6, group_num=4)
    with pytest.raises(ValueError, match="GroupNorm: group_num must be a positive int, got 0"):
        GroupNorm(6, group_num=0)
    gn = GroupNorm(6, group_num=3)
    with pytest.raises(ValueError, match="GroupNorm: input must have ndim 4"):
        gn.forward(pt.tensor3("x"))
    with pytest.raises(ValueError, match=r"GroupNorm: input axis 1 \(channel_num\) must be 6, got 4"):
        gn.forward(pt.tensor("x", shape=(2, 4, 3, 3)))
    with pytest.raises(ValueError, match="group_norm: channel number 5 of x is not divisible by group_num 2"):
        group_norm(pt.tensor("x", shape=(1, 5, 2, 2)), 2)
