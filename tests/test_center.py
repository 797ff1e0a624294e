"""Center: the moving average of per-class batch means, against NumPy, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion.module import Center
from tests.helpers import assert_close, compile_fn

D, K, BATCH = 3, 4, 6
_compiled = {}


def reference_update(centers, features, labels, alpha):
    """Classes in the batch move to alpha * (their batch mean) + (1 - alpha) * old."""
    new = np.array(centers, dtype="float64")  # a copy (JAX returns immutable arrays)
    for c in np.unique(labels):
        new[c] = alpha * features[labels == c].mean(axis=0) + (1 - alpha) * centers[c]
    return new


def _build(backend):
    """Two modules: a fixed float alpha and a symbolic alpha."""
    if backend not in _compiled:
        rng = np.random.default_rng(0)
        fixed = Center(D, K, center=rng.normal(size=(K, D)).astype("float32"), name="fixed")
        free = Center(D, K, center=rng.normal(size=(K, D)).astype("float32"), name="free")
        features = pt.tensor("f", shape=(BATCH, D), dtype="float32")
        labels = pt.tensor("y", shape=(BATCH,), dtype="int32")
        alpha = pt.scalar("alpha", dtype="float32")
        outputs = [fixed.forward(features, labels, 0.3), free.forward(features, labels, alpha), fixed.predict()]
        updates = {**fixed.collect_self_updates(), **free.collect_self_updates()}
        _compiled[backend] = (fixed, free, compile_fn([features, labels, alpha], outputs, backend, updates=updates))
    return _compiled[backend]


def test_centres_follow_the_moving_average_over_several_steps(backend):
    fixed, free, fn = _build(backend)
    rng = np.random.default_rng(1)
    # Repeated labels, and class 3 absent in the first step (its centre must not move).
    batches = [np.array([0, 0, 1, 2, 0, 1]), rng.integers(0, K, BATCH), np.array([3, 3, 3, 3, 3, 3])]
    for step, labels in enumerate(batches):
        features = rng.normal(size=(BATCH, D)).astype("float32")
        alpha = np.float32(0.6)
        before_fixed, before_free = fixed.center.get_value(), free.center.get_value()
        out_fixed, out_free, stored = fn(features, labels.astype("int32"), alpha)
        assert_close(out_fixed, before_fixed, err_msg=f"step {step}")
        assert_close(stored, before_fixed, err_msg=f"step {step}")
        assert_close(out_free, before_free, err_msg=f"step {step}")
        assert_close(
            fixed.center.get_value(), reference_update(before_fixed, features, labels, 0.3), err_msg=f"step {step}"
        )
        assert_close(
            free.center.get_value(), reference_update(before_free, features, labels, alpha), err_msg=f"step {step}"
        )


def test_plain_pytensor_function_applies_the_update():
    center = Center(2, 3, center=np.zeros((3, 2), "float32"))
    features, labels = pt.fmatrix("f"), pt.ivector("y")
    center.forward(features, labels, alpha=0.5)
    step = pytensor.function([features, labels], [], updates=center.collect_self_updates(), mode="FAST_COMPILE")
    step(np.array([[2.0, 4.0], [4.0, 8.0]], "float32"), np.array([1, 1], "int32"))
    assert_close(center.predict().get_value(), [[0, 0], [1.5, 3.0], [0, 0]])


def test_weights_and_names():
    center = Center(5, 7, name="c")
    assert [(v.shape, n) for v, n in center.get_weights()] == [((7, 5), "center@Center|c")]
    assert center.params == [] and center.self_updating_variables == [center.center]


def test_bad_inputs_are_rejected():
    center = Center(3, 2)
    with pytest.raises(ValueError, match=r"Center.forward: features axis 1 \(feature_dim\) must be 3, got 4"):
        center.forward(pt.tensor("f", shape=(5, 4)), pt.ivector("y"))
    with pytest.raises(ValueError, match="Center.forward: features must have ndim 2"):
        center.forward(pt.tensor3("f"), pt.ivector("y"))
    with pytest.raises(ValueError, match="Center.forward: labels must have ndim 1"):
        center.forward(pt.fmatrix("f"), pt.imatrix("y"))
    with pytest.raises(TypeError, match="Center.forward: labels must be an integer tensor"):
        center.forward(pt.fmatrix("f"), pt.fvector("y"))
