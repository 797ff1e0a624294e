"""BatchNorm against a NumPy reference: batch statistics, running-statistics updates, modes."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import equal_computations

import dandelion
from dandelion.functional.normalization import moments, normalize
from dandelion.module import BatchNorm
from tests.helpers import assert_close, compile_fn, verify_grad

EPS, ALPHA = 1e-4, 0.1


def reference(x, axes, gamma, beta, mean, inv_std, use_batch, eps=EPS):
    """Returns (output, batch mean, batch inv_std); None disables a term, as documented."""
    x = x.astype("float64")
    batch_mean = x.mean(axis=axes)
    batch_inv_std = 1.0 / np.sqrt(x.var(axis=axes) + eps)

    def spread(v):
        return None if v is None else np.expand_dims(v, axes)

    if use_batch:
        m = None if mean is None else batch_mean
        s = None if inv_std is None else batch_inv_std
    else:
        m, s = mean, inv_std
    out = x
    if m is not None:
        out = out - spread(m)
    if s is not None:
        out = out * spread(s)
    if gamma is not None:
        out = out * spread(gamma)
    if beta is not None:
        out = out + spread(beta)
    return out, batch_mean, batch_inv_std


# name: (input_shape, axes, data shape, mode, disabled arguments, normalised axes)
CONFIGS = {
    "dense": ((None, 5), "auto", (6, 5), "high_mem", (), (0,)),
    "conv_low_mem": ((None, 3, None, None), "auto", (2, 3, 4, 3), "low_mem", (), (0, 2, 3)),
    "axes_no_beta_inv_std": ((None, None, 3), (0, 1), (3, 2, 3), "high_mem", ("beta", "inv_std"), (0, 1)),
    "int_axis_low_mem_no_gamma_mean": ((4, None), -1, (4, 5), "low_mem", ("gamma", "mean"), (1,)),
}
_compiled = {}


def _make(name):
    input_shape, axes, data_shape, mode, disabled, norm_axes = CONFIGS[name]
    rng = np.random.default_rng(len(name))
    shape = tuple(s for i, s in enumerate(data_shape) if i not in norm_axes)
    values = {
        "beta": rng.normal(size=shape),
        "gamma": rng.uniform(0.5, 2, size=shape),
        "mean": rng.normal(size=shape),
        "inv_std": rng.uniform(0.5, 2, size=shape),
    }
    kwargs = {k: (None if k in disabled else v.astype("float32")) for k, v in values.items()}
    return BatchNorm(input_shape, axes=axes, eps=EPS, alpha=ALPHA, mode=mode, name=name, **kwargs)


def _build(backend):
    """One training function per backend for every configuration: forward with batch and
    running statistics, predict, and the recorded self-updates."""
    if backend not in _compiled:
        modules, inputs, outputs, updates = {}, [], [], {}
        for name, (*_, data_shape, _mode, _disabled, _axes) in CONFIGS.items():
            bn = _make(name)
            x = pt.tensor(f"x_{name}", shape=data_shape, dtype="float32")
            outputs += [bn.forward(x, use_input_mean=False), bn.predict(x), bn.forward(x)]
            inputs.append(x)
            updates.update(bn.collect_self_updates())
            modules[name] = bn
        _compiled[backend] = (modules, compile_fn(inputs, outputs, backend, updates=updates))
    return _compiled[backend]


def _state(bn):
    return {
        k: None if getattr(bn, k) is None else getattr(bn, k).get_value().astype("float64")
        for k in ("gamma", "beta", "mean", "inv_std")
    }


def test_forward_predict_and_running_statistics_over_several_steps(backend):
    modules, fn = _build(backend)
    rng = np.random.default_rng(0)
    for step in range(3):
        data = {name: rng.normal(1.0, 2.0, size=cfg[2]).astype("float32") for name, cfg in CONFIGS.items()}
        before = {name: _state(bn) for name, bn in modules.items()}
        results = fn(*data.values())
        for index, (name, (*_, norm_axes)) in enumerate(CONFIGS.items()):
            s = before[name]
            where = f"{name}, step {step}"
            running, _, _ = reference(
                data[name], norm_axes, s["gamma"], s["beta"], s["mean"], s["inv_std"], use_batch=False
            )
            batch, batch_mean, batch_inv_std = reference(
                data[name], norm_axes, s["gamma"], s["beta"], s["mean"], s["inv_std"], use_batch=True
            )
            out_running, out_predict, out_batch = results[3 * index : 3 * index + 3]
            assert out_batch.dtype == np.float32
            assert_close(out_running, running, rtol=1e-4, atol=1e-4, err_msg=where)
            assert_close(out_predict, running, rtol=1e-4, atol=1e-4, err_msg=where)
            assert_close(out_batch, batch, rtol=1e-4, atol=1e-4, err_msg=where)
            after = _state(modules[name])
            for key, batch_value in (("mean", batch_mean), ("inv_std", batch_inv_std)):
                if s[key] is not None:
                    assert_close(after[key], (1 - ALPHA) * s[key] + ALPHA * batch_value, err_msg=f"{where}, {key}")


def test_running_statistics_converge_to_the_data_statistics(backend):
    """A training loop (SGD on gamma and beta plus the self-updates) on N(mu, sigma) data."""
    rng = np.random.default_rng(1)
    mu, sigma = np.array([3.0, -1.0, 0.5]), np.array([2.0, 0.5, 1.0])
    bn = BatchNorm((None, 3), alpha=0.2, name="bn")
    x = pt.tensor("x", shape=(64, 3), dtype="float32")
    target = pt.tensor("t", shape=(64, 3), dtype="float32")
    loss = pt.mean((bn.forward(x) - target) ** 2)
    updates = {p: p - np.float32(0.1) * g for p, g in zip(bn.params, pytensor.grad(loss, bn.params))}
    updates.update(bn.collect_self_updates())
    train = compile_fn([x, target], loss, backend, updates=updates)
    for _ in range(60):
        train(rng.normal(mu, sigma, size=(64, 3)).astype("float32"), np.full((64, 3), 0.5, dtype="float32"))
    assert_close(bn.mean.get_value(), mu, rtol=0, atol=0.2)
    assert_close(bn.inv_std.get_value(), 1 / sigma, rtol=0.1, atol=0)
    assert_close(bn.beta.get_value(), [0.5] * 3, rtol=0, atol=0.05)  # the target's mean


def test_plain_pytensor_function_applies_the_self_updates(backend):
    bn = BatchNorm((None, 2), name="bn")
    x = pt.tensor("x", shape=(4, 2), dtype="float32")
    y = bn.forward(x)
    step = pytensor.function([x], y, updates=bn.collect_self_updates(), mode=dandelion.resolve_mode(backend))
    data = np.random.default_rng(2).normal(size=(4, 2)).astype("float32")
    step(data)
    assert_close(bn.mean.get_value(), ALPHA * data.mean(0))
    assert_close(bn.inv_std.get_value(), (1 - ALPHA) + ALPHA / np.sqrt(data.var(0) + EPS))


def test_low_mem_builds_the_same_graph_as_high_mem():
    """Documented: PyTensor's fusion leaves low_mem nothing to save (see the docstring)."""
    x = pt.tensor("x", shape=(3, 2, 4), dtype="float32")
    beta, gamma = pytensor.shared(np.zeros(2, "float32")), pytensor.shared(np.ones(2, "float32"))
    high, low = (
        BatchNorm((None, 2, None), mode=mode, beta=beta, gamma=gamma).forward(x) for mode in ("high_mem", "low_mem")
    )
    assert equal_computations([high], [low])


def test_normalize_gradients_against_finite_differences():
    """Batch statistics, both modes, two sets of axes, every term present: one graph."""
    rng = np.random.default_rng(5)
    shape = (3, 2, 2)

    def bn(x, gamma_0, beta_0, gamma_02, beta_02):
        outputs = []
        for axes, gamma, beta in (((0,), gamma_0, beta_0), ((0, 2), gamma_02, beta_02)):
            mean, inv_std = moments(x, axes, EPS)
            for mode in ("high_mem", "low_mem"):
                spread = [pt.expand_dims(v, axes) for v in (mean, inv_std, gamma, beta)]
                outputs.append(normalize(x, *spread, mode=mode).flatten())
        return pt.concatenate(outputs)

    verify_grad(
        bn,
        [
            rng.normal(size=shape),
            rng.uniform(0.5, 2, size=(2, 2)),
            rng.normal(size=(2, 2)),
            rng.uniform(0.5, 2, size=2),
            rng.normal(size=2),
        ],
    )


def test_parameters_shapes_names_and_order():
    bn = BatchNorm((None, 3, None, None), name="bn1")
    assert [(v.shape, n) for v, n in bn.get_weights()] == [
        ((3,), "beta@BatchNorm|bn1"),
        ((3,), "gamma@BatchNorm|bn1"),
        ((3,), "mean@BatchNorm|bn1"),
        ((3,), "inv_std@BatchNorm|bn1"),
    ]
    assert bn.params == [bn.beta, bn.gamma] and bn.self_updating_variables == [bn.mean, bn.inv_std]
    assert BatchNorm((2, 5, 7), axes=1).beta.get_value().shape == (2, 7)
    none = BatchNorm((None, 3), beta=None, gamma=None, mean=None, inv_std=None)
    assert none.get_weights() == []


def test_predict_records_no_update():
    bn = BatchNorm((None, 3))
    bn.predict(pt.matrix("x"))
    assert bn.collect_self_updates() == {}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "BatchNorm: input_shape is required"),
        (
            {"input_shape": (None, None)},
            ValueError,
            r"BatchNorm: input_shape must give every length not normalised over \(axes \(0,\)\); got \(None, None\), unknown on axes \(1,\)",
        ),
        (
            {"input_shape": (None, 3), "axes": "all"},
            ValueError,
            "axes must be 'auto', an int or a tuple of ints, got 'all'",
        ),
        ({"input_shape": (None, 3), "axes": 2}, ValueError, "axes entry 2 is out of range"),
        (
            {"input_shape": (None, 3), "mode": "fast"},
            ValueError,
            r"BatchNorm: mode must be one of \('high_mem', 'low_mem'\), got 'fast'",
        ),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        BatchNorm(**kwargs)


def test_bad_input_is_rejected():
    bn = BatchNorm((None, 3, None, None))
    with pytest.raises(ValueError, match="BatchNorm: input must have ndim 4"):
        bn.forward(pt.matrix("x"))
    with pytest.raises(ValueError, match="BatchNorm: input axis 1 must have length 3"):
        bn.predict(pt.tensor("x", shape=(2, 5, 4, 4)))


def test_running_statistics_keep_their_last_finite_values_on_a_non_finite_batch(backend):
    bn = BatchNorm((None, 3), alpha=ALPHA, name="bn")
    x = pt.tensor("x", shape=(4, 3), dtype="float32")
    step = compile_fn([x], bn.forward(x), backend, updates=bn.collect_self_updates())
    rng = np.random.default_rng(5)
    first = rng.normal(size=(4, 3)).astype("float32")
    step(first)
    mean, inv_std = np.array(bn.mean.get_value()), np.array(bn.inv_std.get_value())  # JAX arrays are read-only
    bad = rng.normal(size=(4, 3)).astype("float32")
    bad[1, 0] = np.nan  # channel 0: NaN mean and variance
    bad[2, 1] = np.inf  # channel 1: infinite mean, NaN variance
    step(bad)
    expected_mean = mean.astype("float64").copy()
    expected_inv_std = inv_std.astype("float64").copy()
    expected_mean[2] = (1 - ALPHA) * mean[2] + ALPHA * bad[:, 2].mean()  # channel 2 is finite
    expected_inv_std[2] = (1 - ALPHA) * inv_std[2] + ALPHA / np.sqrt(bad[:, 2].var() + EPS)
    new_mean, new_inv_std = np.asarray(bn.mean.get_value()), np.asarray(bn.inv_std.get_value())
    assert np.isfinite(new_mean).all() and np.isfinite(new_inv_std).all()
    np.testing.assert_array_equal(new_mean[:2], mean[:2])
    np.testing.assert_array_equal(new_inv_std[:2], inv_std[:2])
    assert_close(bn.mean.get_value(), expected_mean)
    assert_close(bn.inv_std.get_value(), expected_inv_std)
    good = rng.normal(size=(4, 3)).astype("float32")
    step(good)  # the next finite batch updates every channel again
    assert_close(bn.mean.get_value(), (1 - ALPHA) * expected_mean + ALPHA * good.mean(0))
