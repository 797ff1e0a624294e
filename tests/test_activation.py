"""Activations against NumPy formulas, one compiled function per backend."""

import numpy as np
import pytensor
import pytest
from scipy.special import erf

from dandelion import activation as act
from tests.helpers import assert_close, compile_fn, ftensor, verify_grad


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x):
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


ELEMENTWISE = {
    "sigmoid": (act.sigmoid, _sigmoid),
    "tanh": (act.tanh, np.tanh),
    "relu": (act.relu, lambda x: np.maximum(x, 0)),
    "softplus": (act.softplus, lambda x: np.log1p(np.exp(x))),
    "scaled_tanh": (act.ScaledTanH(0.5, 2.0), lambda x: 2.0 * np.tanh(0.5 * x)),
    "scaled_tanh_alias": (act.ScaledTanh(1.5, 1.0), lambda x: np.tanh(1.5 * x)),
    "leaky": (act.LeakyRectify(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "leaky_default": (act.leaky_rectify, lambda x: np.where(x > 0, x, 0.01 * x)),
    "very_leaky": (act.very_leaky_rectify, lambda x: np.where(x > 0, x, x / 3)),
    "elu": (act.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    "selu": (act.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    "selu_custom": (act.SELU(2.0, 0.5), lambda x: 2.0 * np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    "linear": (act.linear, lambda x: x),
    "identity": (act.identity, lambda x: x),
    "softmax": (act.softmax, _softmax),
    "log_softmax": (act.log_softmax, lambda x: np.log(_softmax(x))),
    "gelu": (act.gelu, lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))),
    "gelu_tanh": (act.gelu_tanh, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    "silu": (act.silu, lambda x: x * _sigmoid(x)),
    "swish": (act.swish, lambda x: x / (1 + np.exp(-x))),
    "mish": (act.mish, lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    "hard_sigmoid": (act.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "hard_sigmoid_torch": (act.HardSigmoid(slope=1 / 6), lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6),
    "hard_tanh": (act.hard_tanh, lambda x: np.clip(x, -1, 1)),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return (4 * rng.standard_normal((2, 3, 5))).astype("float32")


def test_every_activation_matches_numpy(backend, data):
    x = ftensor("x", data.shape)
    names = list(ELEMENTWISE)
    f = compile_fn([x], [ELEMENTWISE[n][0](x) for n in names], backend)
    for name, out in zip(names, f(data)):
        assert out.dtype == np.float32, name
        assert out.shape == data.shape, name
        assert_close(out, ELEMENTWISE[name][1](data.astype("float64")), rtol=1e-5, atol=1e-5, err_msg=name)


def test_softmax_on_the_last_axis_for_any_ndim(backend):
    for shape in [(7,), (2, 7), (2, 3, 4, 7)]:
        data = np.random.randn(*shape).astype("float32") * 30  # large logits: stability
        x = ftensor("x", shape)
        out = compile_fn([x], act.softmax(x), backend)(data)
        assert_close(out, _softmax(data.astype("float64")))
        assert_close(out.sum(-1), np.ones(shape[:-1]))


def test_ultra_fast_sigmoid_approximates_sigmoid(backend, data):
    x = ftensor("x", data.shape)
    out = compile_fn([x], act.ultra_fast_sigmoid(x), backend)(data)
    assert np.abs(out - _sigmoid(data)).max() < 0.03
    assert np.all(np.diff(np.sort(data.ravel())) >= 0)
    order = np.argsort(data.ravel())
    assert np.all(np.diff(out.ravel()[order]) >= -1e-7)  # monotone


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "mish", "hard_sigmoid", "hard_tanh"])
def test_new_activations_have_finite_difference_gradients(name):
    # away from the kinks of the piecewise-linear ones, where differences are one-sided
    values = np.array([-4.1, -1.3, -0.4, 0.3, 1.7, 3.9])
    verify_grad(ELEMENTWISE[name][0], [values])


def test_gelu_tanh_is_close_to_exact_gelu(backend, data):
    x = ftensor("x", data.shape)
    exact, approximate = compile_fn([x], [act.gelu(x), act.gelu_tanh(x)], backend)(data)
    assert np.abs(exact - approximate).max() < 1e-3


def test_relu_takes_theanos_negative_slope(backend, data):
    """relu(x, alpha): x above 0, alpha * x below, alpha a number (positional or keyword)
    or a tensor (a learnable slope, with its gradient)."""
    x = ftensor("x", data.shape)
    slope = pytensor.shared(np.float32(0.25), name="slope")
    per_channel = pytensor.shared(np.array([0.5, -1.0, 2.0, 0.0, 0.1], dtype="float32"), name="per_channel")
    learned = act.relu(x, alpha=slope)
    outs = [act.relu(x, 0.2), act.relu(x, alpha=1 / 3), learned, act.relu(x, per_channel), pytensor.grad(learned.sum(), slope)]
    results = compile_fn([x], outs, backend)(data)
    xd = data.astype("float64")
    for out, alpha in zip(results[:4], (0.2, 1 / 3, 0.25, per_channel.get_value())):
        assert out.dtype == np.float32
        assert_close(out, np.where(xd > 0, xd, alpha * xd), rtol=1e-5, atol=1e-5)
    assert_close(results[4], xd[xd < 0].sum(), rtol=1e-5, atol=1e-4)  # d/dalpha of alpha * x over x < 0
