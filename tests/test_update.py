"""Optimizers of dandelion.update against independent NumPy implementations of their rules.

One compiled function per backend steps every optimizer at once from the same
gradient inputs; a second runs a table of optimizers through the same invariants.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion import update
from dandelion.update import optimizer_state
from tests.helpers import assert_close, compile_fn

SHAPES = [(3, 2), (2,)]
rng0 = np.random.default_rng(7)
INITIAL = [rng0.standard_normal(s).astype("float32") for s in SHAPES]


def shared_params(prefix):
    return [pytensor.shared(v.copy(), name=f"{prefix}{i}") for i, v in enumerate(INITIAL)]


# --------------------------------------------------------------- NumPy rules (float64)


class Ref:
    """One optimizer's update rule on a list of float64 arrays, state kept here."""

    def __init__(self, rule, **hyper):
        self.rule, self.hyper, self.state = rule, hyper, {}

    def step(self, params, grads):
        return [
            self.rule(self.state.setdefault(i, {}), p, g, **self.hyper) for i, (p, g) in enumerate(zip(params, grads))
        ]


def r_sgd(s, p, g, lr):
    return p - lr * g


def r_momentum(s, p, g, lr, mu):  # v <- mu v - lr g; p <- p + v
    s["v"] = mu * s.get("v", 0) - lr * g
    return p + s["v"]


def r_nesterov(s, p, g, lr, mu):  # v <- mu v - lr g; p <- p + mu v - lr g
    s["v"] = mu * s.get("v", 0) - lr * g
    return p + mu * s["v"] - lr * g


def r_adagrad(s, p, g, lr, eps):
    s["r"] = s.get("r", 0) + g * g
    return p - lr * g / np.sqrt(s["r"] + eps)


def r_rmsprop(s, p, g, lr, rho, eps):
    s["r"] = rho * s.get("r", 0) + (1 - rho) * g * g
    return p - lr * g / np.sqrt(s["r"] + eps)


def r_adadelta(s, p, g, lr, rho, eps):
    s["r"] = rho * s.get("r", 0) + (1 - rho) * g * g
    step = g * np.sqrt(s.get("d", 0) + eps) / np.sqrt(s["r"] + eps)
    s["d"] = rho * s.get("d", 0) + (1 - rho) * step * step
    return p - lr * step


def r_adam(s, p, g, lr, b1, b2, eps):
    s["t"] = s.get("t", 0) + 1
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    return p - lr * np.sqrt(1 - b2 ** s["t"]) / (1 - b1 ** s["t"]) * s["m"] / (np.sqrt(s["v"]) + eps)


def r_adamax(s, p, g, lr, b1, b2, eps):
    s["t"] = s.get("t", 0) + 1
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g))
    return p - lr / (1 - b1 ** s["t"]) * s["m"] / (s["u"] + eps)


def nonfinite_to_zero(rule):
    return lambda s, p, g, **h: rule(s, p, np.where(np.isfinite(g), g, 0), **h)


# (name, build(grads, params), reference, uses NaN gradients)
CASES = [
    ("sgd", lambda g, p: update.sgd(g, p, learning_rate=0.1), Ref(r_sgd, lr=0.1), False),
    ("momentum", lambda g, p: update.momentum(g, p, 0.1, momentum=0.8), Ref(r_momentum, lr=0.1, mu=0.8), False),
    ("nesterov", lambda g, p: update.nesterov_momentum(g, p, 0.1, 0.7), Ref(r_nesterov, lr=0.1, mu=0.7), False),
    ("apply_momentum", lambda g, p: update.apply_momentum(update.sgd(g, p, 0.1), momentum=0.8), Ref(r_momentum, lr=0.1, mu=0.8), False),
    ("apply_nesterov", lambda g, p: update.apply_nesterov_momentum(update.sgd(g, p, 0.1), p, 0.7), Ref(r_nesterov, lr=0.1, mu=0.7), False),
    ("adagrad", lambda g, p: update.adagrad(g, p, 0.1, 1e-6), Ref(r_adagrad, lr=0.1, eps=1e-6), False),
    ("rmsprop", lambda g, p: update.rmsprop(g, p, 0.01, 0.8, 1e-6), Ref(r_rmsprop, lr=0.01, rho=0.8, eps=1e-6), False),
    ("adadelta", lambda g, p: update.adadelta(g, p, 1.0, 0.9, 1e-6), Ref(r_adadelta, lr=1.0, rho=0.9, eps=1e-6), False),
    ("adam", lambda g, p: update.adam(g, p, 0.01), Ref(r_adam, lr=0.01, b1=0.9, b2=0.999, eps=1e-8), False),
    ("adamax", lambda g, p: update.adamax(g, p, 0.02, 0.8, 0.9), Ref(r_adamax, lr=0.02, b1=0.8, b2=0.9, eps=1e-8), False),
    # clear_nan: NaN, +inf and -inf gradient entries become 0 (dandelion.update.guard), on every optimizer
    ("sgd_nan", lambda g, p: update.sgd(g, p, 0.1, clear_nan=True), Ref(nonfinite_to_zero(r_sgd), lr=0.1), True),
    ("momentum_nan", lambda g, p: update.momentum(g, p, 0.1, 0.8, clear_nan=True), Ref(nonfinite_to_zero(r_momentum), lr=0.1, mu=0.8), True),
    ("nesterov_nan", lambda g, p: update.nesterov_momentum(g, p, 0.1, 0.7, clear_nan=True), Ref(nonfinite_to_zero(r_nesterov), lr=0.1, mu=0.7), True),
    ("adagrad_nan", lambda g, p: update.adagrad(g, p, 0.1, 1e-6, clear_nan=True), Ref(nonfinite_to_zero(r_adagrad), lr=0.1, eps=1e-6), True),
    ("rmsprop_nan", lambda g, p: update.rmsprop(g, p, 0.01, 0.8, 1e-6, clear_nan=True), Ref(nonfinite_to_zero(r_rmsprop), lr=0.01, rho=0.8, eps=1e-6), True),
    ("adadelta_nan", lambda g, p: update.adadelta(g, p, clear_nan=True), Ref(nonfinite_to_zero(r_adadelta), lr=1.0, rho=0.95, eps=1e-6), True),
    ("adam_nan", lambda g, p: update.adam(g, p, 0.01, clear_nan=True), Ref(nonfinite_to_zero(r_adam), lr=0.01, b1=0.9, b2=0.999, eps=1e-8), True),
    ("adamax_nan", lambda g, p: update.adamax(g, p, 0.02, 0.8, 0.9, clear_nan=True), Ref(nonfinite_to_zero(r_adamax), lr=0.02, b1=0.8, b2=0.9, eps=1e-8), True),
]  # fmt: skip


# apply_momentum / apply_nesterov_momentum share momentum's and nesterov_momentum's
# hyperparameters: identical graphs share compiled C kernels (cold-cache budget).


def test_each_optimizer_follows_its_update_rule_over_several_steps(backend):
    grads_in = [pt.tensor(f"g{i}", shape=s, dtype="float32") for i, s in enumerate(SHAPES)]
    nan_grads_in = [pt.tensor(f"n{i}", shape=s, dtype="float32") for i, s in enumerate(SHAPES)]
    params, updates = {}, {}
    for name, build, _, uses_nan in CASES:
        params[name] = shared_params(f"{name}.w")
        updates.update(build(nan_grads_in if uses_nan else grads_in, params[name]))
    step = compile_fn(grads_in + nan_grads_in, [], backend, updates=updates)

    rng = np.random.default_rng(1)
    refs = {name: [v.astype("float64") for v in INITIAL] for name, *_ in CASES}
    rules = {name: Ref(ref.rule, **ref.hyper) for name, _, ref, _ in CASES}  # fresh state per backend
    for _ in range(4):
        grads = [rng.standard_normal(s).astype("float32") for s in SHAPES]
        # about 30% of the entries NaN, +inf or -inf
        bad = [rng.choice(np.array([np.nan, np.inf, -np.inf], "float32"), size=s) for s in SHAPES]
        nan_grads = [np.where(rng.random(s) < 0.3, b, g).astype("float32") for s, g, b in zip(SHAPES, grads, bad)]
        step(*grads, *nan_grads)
        for name, _, _, uses_nan in CASES:
            refs[name] = rules[name].step(refs[name], [g.astype("float64") for g in (nan_grads if uses_nan else grads)])
    for name, *_ in CASES:
        for param, expected in zip(params[name], refs[name]):
            value = param.get_value()
            assert value.dtype == np.float32, name
            assert np.isfinite(value).all(), name
            assert_close(value, expected, rtol=2e-4, atol=2e-5, err_msg=name)


# --------------------------------------------------------------- invariants table

TABLE = {
    "sgd": lambda loss, p: update.sgd(loss, p, 0.05),
    "momentum": lambda loss, p: update.momentum(loss, p, 0.02),
    "nesterov_momentum": lambda loss, p: update.nesterov_momentum(loss, p, 0.02),
    "adagrad": lambda loss, p: update.adagrad(loss, p, 0.3),
    "rmsprop": lambda loss, p: update.rmsprop(loss, p, 0.05),
    "adadelta": lambda loss, p: update.adadelta(loss, p),
    "adam": lambda loss, p: update.adam(loss, p, 0.1),
    "adamax": lambda loss, p: update.adamax(loss, p, 0.1),
}
STATE_SLOTS = {
    "sgd": set(),
    "momentum": {"velocity"},
    "nesterov_momentum": {"velocity"},
    "adagrad": {"accu"},
    "rmsprop": {"accu"},
    "adadelta": {"accu", "delta_accu"},
    "adam": {"m", "v", "t"},
    "adamax": {"m", "u", "t"},
}


def test_every_optimizer_decreases_a_quadratic_keeping_dtype_and_state_shapes(backend):
    target = [np.full(s, 0.5, "float32") for s in SHAPES]
    params, updates, losses = {}, {}, []
    for name, build in TABLE.items():
        params[name] = shared_params(f"{name}|p")
        loss = sum(pt.sum((p - t) ** 2 * (1 + i)) for i, (p, t) in enumerate(zip(params[name], target)))
        optimizer_updates = build(loss, params[name])
        state = optimizer_state(optimizer_updates)
        assert {key.split("@")[0].split(".", 1)[1] for key in state} == STATE_SLOTS[name], name
        assert all(key.startswith(name + ".") for key in state), name
        assert list(optimizer_updates)[: len(params[name])] == params[name], name
        updates.update(optimizer_updates)
        losses.append(loss)
    shapes_before = {v.name: v.get_value().shape for v in updates}
    step = compile_fn([], losses, backend, updates=updates)
    first = step()
    for _ in range(25):
        last = step()
    for name, before, after in zip(TABLE, first, last):
        assert after < 0.9 * before, name
    assert float(optimizer_state(updates)["adam.t"].get_value()) == 26.0
    for variable in updates:
        value = variable.get_value()
        assert value.dtype == np.float32, variable.name
        assert value.shape == shapes_before[variable.name], variable.name


# --------------------------------------------------------------- constraints


def ref_norm_constraint(x, max_norm, axes, eps=1e-7):
    norms = np.sqrt((x**2).sum(axis=axes, keepdims=True))
    return x * (np.clip(norms, 0, max_norm) / (eps + norms))


def test_norm_constraints_match_numpy(backend):
    rng = np.random.default_rng(2)
    values = [rng.standard_normal((4, 3)).astype("float32") * 3, rng.standard_normal((2, 3, 2, 2)).astype("float32")]
    dense, conv = (pt.tensor(f"x{i}", shape=v.shape, dtype="float32") for i, v in enumerate(values))
    scaled, norm = update.total_norm_constraint([dense, conv], 2.0, return_norm=True)
    f = compile_fn(
        [dense, conv],
        [update.norm_constraint(dense, 1.5), update.norm_constraint(conv, 1.0), update.norm_constraint(dense, 2.0, norm_axes=(1,)), *scaled, norm],
        backend,
    )  # fmt: skip
    out = f(*values)
    total = np.sqrt(sum((v.astype("float64") ** 2).sum() for v in values))
    expected = [
        ref_norm_constraint(values[0], 1.5, (0,)),
        ref_norm_constraint(values[1], 1.0, (1, 2, 3)),
        ref_norm_constraint(values[0], 2.0, (1,)),
        values[0] * min(total, 2.0) / (1e-7 + total),
        values[1] * min(total, 2.0) / (1e-7 + total),
        total,
    ]
    for got, want in zip(out, expected):
        assert_close(got, want)
    assert update.total_norm_constraint([dense], 1.0)[0].ndim == 2


# --------------------------------------------------------------- errors


def test_optimizer_errors_are_clear():
    w, b = shared_params("err")
    loss = (w**2).sum() + b.sum()
    with pytest.raises(TypeError, match=r"adam: params\[1\] must be a shared variable .* got TensorVariable 'x'"):
        update.adam(loss, [w, pt.fvector("x")])
    with pytest.raises(TypeError, match="sgd: params must be a list of shared variables, got a single"):
        update.sgd(loss, w)
    with pytest.raises(ValueError, match="rmsprop: got 1 gradient expressions for 2 parameters"):
        update.rmsprop([pt.fmatrix()], [w, b])
    with pytest.raises(ValueError, match="adagrad: gradient 0 has ndim 1, parameter 'err0' has ndim 2"):
        update.adagrad([pt.fvector(), pt.fvector()], [w, b])
    with pytest.raises(ValueError, match="adamax: loss_or_grads must be a scalar loss or a list of gradients"):
        update.adamax(w * 2, [w])
    with pytest.raises(ValueError, match="params lists a shared variable more than once"):
        update.sgd(loss, [w, w])
    with pytest.raises(KeyError, match="momentum: parameter 'err1' has no update"):
        update.apply_momentum(update.sgd(loss, [w]), [w, b])
    with pytest.raises(ValueError, match="norm_constraint: no default norm_axes for a tensor of ndim 1"):
        update.norm_constraint(b, 1.0)
    with pytest.raises(ValueError, match=r"norm_axes \(2,\) out of range"):
        update.norm_constraint(w, 1.0, norm_axes=(2,))
    other = shared_params("other")[0]
    both = {**update.adam(loss, [w, b]), **update.adam((other**2).sum(), [other])}
    with pytest.raises(ValueError, match="two optimizer state variables are named 'adam.t'"):
        optimizer_state(both)


def test_state_variables_of_unnamed_params_are_named_by_position():
    w = pytensor.shared(np.zeros((2, 2), "float32"))
    names = sorted(v.name for v in update.rmsprop((w**2).sum(), [w]) if v is not w)
    assert names == ["rmsprop.accu@param0"]
