"""Initializers against their defining formulas, computed here independently."""

import os
import subprocess
import sys

import numpy as np
import pytensor
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import initialization as init

shapes_2d = st.tuples(st.integers(20, 60), st.integers(20, 60))
shapes_conv = st.tuples(st.integers(4, 12), st.integers(2, 6), st.integers(1, 4), st.integers(1, 4))


def test_all_initializers_return_float32_arrays_of_the_shape():
    for initializer in [
        init.Normal(),
        init.Uniform(),
        init.GlorotNormal(),
        init.GlorotUniform(),
        init.HeNormal(),
        init.HeUniform(),
        init.Constant(3.0),
        init.Sparse(),
        init.Orthogonal(),
    ]:
        value = initializer((60, 5))
        assert value.shape == (60, 5) and value.dtype == np.float32, initializer
        if not isinstance(initializer, init.Constant):
            assert not np.array_equal(value, initializer.sample((60, 5))), initializer  # fresh draws


def test_floatx_follows_an_explicit_user_choice():
    old = pytensor.config.floatX
    try:
        pytensor.config.floatX = "float16"
        assert init.Normal()((2, 2)).dtype == np.float16
    finally:
        pytensor.config.floatX = old
    assert init.Normal()((2, 2)).dtype == np.float32


def test_floatx_from_pytensor_flags_is_respected():
    code = "from dandelion import initialization as i; print(i.Normal()((2, 2)).dtype)"
    env = dict(os.environ, PYTENSOR_FLAGS="floatX=float64")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "float64"


def test_normal_moments():
    value = init.Normal(std=0.5, mean=2.0)((400, 250)).astype("float64")
    assert abs(value.mean() - 2.0) < 0.01 and abs(value.std() - 0.5) < 0.01


def test_uniform_range_forms():
    assert np.all(np.abs(init.Uniform(0.3)((100, 100))) <= 0.3)
    ranged = init.Uniform(range=(1.0, 2.0))((100, 100))
    assert ranged.min() >= 1.0 and ranged.max() <= 2.0 and ranged.min() < 1.05 and ranged.max() > 1.95
    with_std = init.Uniform(std=0.2, mean=1.0)((300, 300)).astype("float64")
    assert abs(with_std.std() - 0.2) < 0.005 and abs(with_std.mean() - 1.0) < 0.005
    assert with_std.max() <= 1.0 + np.sqrt(3) * 0.2 + 1e-6


@given(shape=st.one_of(shapes_2d, shapes_conv), gain=st.sampled_from([1.0, 0.5, "relu"]))
def test_glorot_and_he_standard_deviations(shape, gain):
    numeric_gain = np.sqrt(2) if gain == "relu" else gain
    receptive = int(np.prod(shape[2:]))
    glorot_std = numeric_gain * np.sqrt(2.0 / ((shape[0] + shape[1]) * receptive))
    fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
    he_std = numeric_gain * np.sqrt(1.0 / fan_in)
    for cls, std in [(init.GlorotNormal, glorot_std), (init.HeNormal, he_std)]:
        draws = np.concatenate([cls(gain=gain)(shape).ravel() for _ in range(8)]).astype("float64")
        assert abs(draws.std() / std - 1) < 0.1, (cls, shape)
    for cls, std in [(init.GlorotUniform, glorot_std), (init.HeUniform, he_std)]:
        draws = cls(gain=gain)(shape)
        assert np.abs(draws).max() <= np.sqrt(3) * std * (1 + 1e-5)


def test_c01b_layout_uses_first_and_last_axes():
    shape = (8, 3, 3, 16)  # (channels, rows, cols, batch-of-filters)
    std = np.sqrt(2.0 / ((8 + 16) * 9))
    draws = np.concatenate([init.GlorotNormal(c01b=True)(shape).ravel() for _ in range(20)]).astype("float64")
    assert abs(draws.std() / std - 1) < 0.1
    with pytest.raises(ValueError, match="c01b requires a 4-D shape"):
        init.GlorotNormal(c01b=True)((3, 3))


def test_constant_sparse_orthogonal():
    assert np.all(init.Constant(0.25)((3, 4)) == 0.25)
    sparse = init.Sparse(sparsity=0.2, std=1.0)((50, 7))
    np.testing.assert_array_equal((sparse != 0).sum(axis=0), [10] * 7)
    for shape in [(6, 6), (4, 9), (9, 4), (4, 2, 3)]:
        q = init.Orthogonal(gain=2.0)(shape).reshape(shape[0], -1).astype("float64") / 2.0
        small = min(q.shape)
        gram = q @ q.T if q.shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    with pytest.raises(ValueError, match="only 2-D shapes"):
        init.Sparse()((2, 2, 2))
    with pytest.raises(ValueError, match="gain must be a number or 'relu'"):
        init.Orthogonal(gain="tanh")


def test_numpy_seed_makes_draws_repeatable():
    np.random.seed(7)
    first = init.GlorotUniform()((5, 4))
    np.random.seed(7)
    np.testing.assert_array_equal(first, init.GlorotUniform()((5, 4)))
