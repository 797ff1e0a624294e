"""AdamW, learning-rate schedules and gradient clipping against NumPy, on every backend.

Every optimizer runs with clipped gradients and a scheduled learning rate in one
compiled function per backend, against the NumPy rules of tests/test_update.py.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from dandelion import update
from dandelion.module import Dense
from dandelion.update import optimizer_state
from dandelion.util import load_checkpoint, save_checkpoint
from tests.helpers import assert_close, compile_fn
from tests.test_update import (
    INITIAL,
    SHAPES,
    r_adadelta,
    r_adagrad,
    r_adam,
    r_adamax,
    r_momentum,
    r_nesterov,
    r_rmsprop,
    r_sgd,
)

# ------------------------------------------------------------------ NumPy references


def np_step(t, init, size, gamma):
    return init * gamma ** np.floor(t / size)


def np_exponential(t, init, rate, steps, staircase):
    return init * rate ** (np.floor(t / steps) if staircase else t / steps)


def np_cosine(t, init, steps, alpha):
    return init * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * min(t, steps) / steps)) + alpha)


def np_linear(t, start, end, steps):
    return end if t >= steps else start + (end - start) * t / steps


def np_warmup_cosine(t):
    return np_linear(t, 0.0, 0.1, 4) if t < 4 else np_cosine(t - 4, 0.1, 6, 0.1)


SCHEDULES = {
    "constant": (update.constant_schedule(0.3), lambda t: 0.3),
    "step": (update.step_schedule(0.5, step_size=3, gamma=0.5), lambda t: np_step(t, 0.5, 3, 0.5)),
    "exponential": (update.exponential_schedule(0.2, 0.8, transition_steps=2), lambda t: np_exponential(t, 0.2, 0.8, 2, False)),
    "staircase": (update.exponential_schedule(0.2, 0.8, 2, staircase=True), lambda t: np_exponential(t, 0.2, 0.8, 2, True)),
    "cosine": (update.cosine_schedule(0.1, decay_steps=8, alpha=0.2), lambda t: np_cosine(t, 0.1, 8, 0.2)),
    "linear": (update.linear_schedule(0.1, 0.02, transition_steps=5), lambda t: np_linear(t, 0.1, 0.02, 5)),
    "warmup": (update.linear_warmup(0.4, warmup_steps=3, init_value=0.1), lambda t: np_linear(t, 0.1, 0.4, 3)),
    "joined": (
        update.join_schedules([update.linear_warmup(0.1, 4), update.cosine_schedule(0.1, 6, alpha=0.1)], [4]),
        np_warmup_cosine,
    ),
}
STEPS = [0, 1, 2, 3, 4, 5, 7, 8, 10, 11, 30]


def test_schedules_values_over_steps(backend):
    step = pt.scalar("step", dtype="float32")
    names = list(SCHEDULES)
    outputs = [SCHEDULES[n][0](step) for n in names]
    assert all(o.dtype == "float32" for o in outputs)  # (JAX hands back a folded constant as float64)
    f = compile_fn([step], outputs, backend)
    for t in STEPS:
        for name, value in zip(names, f(np.float32(t))):
            assert_close(value, SCHEDULES[name][1](t), rtol=1e-5, atol=1e-7, err_msg=f"{name} at step {t}")
    # the same schedules evaluate on a plain int step
    assert_close(SCHEDULES["joined"][0](6).eval(), np_warmup_cosine(6), rtol=1e-6)


def np_clip_global(grads, max_norm):
    norm = np.sqrt(sum((g.astype("float64") ** 2).sum() for g in grads))
    return [g * (max_norm / norm if norm > max_norm else 1.0) for g in grads]


def np_clip_value(grads, limit):
    return [np.clip(g, -limit, limit) for g in grads]


def r_adamw_published(s, p, g, lr, b1, b2, eps, wd):
    """Loshchilov & Hutter (2019), Algorithm 2, with the decay scaled by the learning rate
    (PyTorch's AdamW); epsilon enters as dandelion's adam folds it: eps / sqrt(1 - b2^t)."""
    s["t"] = s.get("t", 0) + 1
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    m_hat = s["m"] / (1 - b1 ** s["t"])
    v_hat = s["v"] / (1 - b2 ** s["t"])
    eps_hat = eps / np.sqrt(1 - b2 ** s["t"])
    return p - lr * (m_hat / (np.sqrt(v_hat) + eps_hat) + wd * p)


class ScheduledRef:
    """A NumPy rule driven by a learning rate that depends on the number of steps done."""

    def __init__(self, rule, lr, decays=None, **hyper):
        self.rule, self.lr, self.decays, self.hyper, self.state, self.t = rule, lr, decays, hyper, {}, 0

    def step(self, params, grads):
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            hyper = dict(self.hyper)
            if self.decays is not None:
                hyper["wd"] = hyper["wd"] if self.decays[i] else 0.0
            new.append(self.rule(self.state.setdefault(i, {}), p, g, lr=self.lr(self.t), **hyper))
        self.t += 1
        return new


step_lr = SCHEDULES["step"][1]
cos_lr = SCHEDULES["cosine"][1]
warm_lr = SCHEDULES["joined"][1]
S_STEP, S_COS, S_JOIN = SCHEDULES["step"][0], SCHEDULES["cosine"][0], SCHEDULES["joined"][0]

# (name, optimizer(grads, params), reference, clipping: ("norm" | "value", limit))
CASES = [
    ("sgd", lambda g, p: update.sgd(g, p, S_STEP), ScheduledRef(r_sgd, step_lr), ("norm", 1.0)),
    ("momentum", lambda g, p: update.momentum(g, p, S_COS, 0.8), ScheduledRef(r_momentum, cos_lr, mu=0.8), ("value", 0.5)),
    ("nesterov", lambda g, p: update.nesterov_momentum(g, p, S_COS, 0.7), ScheduledRef(r_nesterov, cos_lr, mu=0.7), ("norm", 1.0)),
    ("adagrad", lambda g, p: update.adagrad(g, p, S_STEP, 1e-6), ScheduledRef(r_adagrad, step_lr, eps=1e-6), ("value", 0.5)),
    ("rmsprop", lambda g, p: update.rmsprop(g, p, S_JOIN, 0.8, 1e-6), ScheduledRef(r_rmsprop, warm_lr, rho=0.8, eps=1e-6), ("norm", 1.0)),
    ("adadelta", lambda g, p: update.adadelta(g, p, S_STEP, 0.9, 1e-6), ScheduledRef(r_adadelta, step_lr, rho=0.9, eps=1e-6), ("value", 0.5)),
    ("adam", lambda g, p: update.adam(g, p, S_JOIN), ScheduledRef(r_adam, warm_lr, b1=0.9, b2=0.999, eps=1e-8), ("norm", 1.0)),
    ("adamax", lambda g, p: update.adamax(g, p, S_COS, 0.8, 0.9), ScheduledRef(r_adamax, cos_lr, b1=0.8, b2=0.9, eps=1e-8), ("value", 0.5)),
    (
        "adamw",
        lambda g, p: update.adamw(g, p, S_JOIN, 0.8, 0.9, epsilon=1e-3, weight_decay=0.3, decay_mask=[True, False]),
        ScheduledRef(r_adamw_published, warm_lr, decays=[True, False], b1=0.8, b2=0.9, eps=1e-3, wd=0.3),
        ("norm", 1.0),
    ),
]  # fmt: skip


def _clip(kind, limit, grads, params):
    if kind == "norm":
        return update.clip_by_global_norm(grads, params, max_norm=limit)
    return update.clip_by_value(grads, params, max_value=limit)


def test_every_optimizer_with_clipping_and_a_schedule_follows_numpy(backend):
    grads_in = [pt.tensor(f"g{i}", shape=s, dtype="float32") for i, s in enumerate(SHAPES)]
    params, updates = {}, {}
    for name, build, _, (kind, limit) in CASES:
        params[name] = [pytensor.shared(v.copy(), name=f"{name}.w{i}") for i, v in enumerate(INITIAL)]
        updates.update(build(_clip(kind, limit, grads_in, params[name]), params[name]))
    step = compile_fn(grads_in, [], backend, updates=updates)
    rng = np.random.default_rng(1)
    refs = {name: [v.astype("float64") for v in INITIAL] for name, *_ in CASES}
    rules = {name: ScheduledRef(r.rule, r.lr, r.decays, **r.hyper) for name, _, r, _ in CASES}  # fresh state per backend
    for _ in range(7):  # past the warm-up boundary of the joined schedule
        grads = [(rng.standard_normal(s) * 1.5).astype("float32") for s in SHAPES]
        step(*grads)
        for name, _, _, (kind, limit) in CASES:
            clipped = np_clip_global(grads, limit) if kind == "norm" else np_clip_value(grads, limit)
            refs[name] = rules[name].step(refs[name], [g.astype("float64") for g in clipped])
    for name, *_ in CASES:
        for param, expected in zip(params[name], refs[name]):
            assert_close(param.get_value(), expected, rtol=2e-4, atol=2e-5, err_msg=name)
    state = optimizer_state(updates)
    # a schedule gives SGD-like optimizers a step counter and reuses Adam's
    assert float(state["sgd.t"].get_value()) == 7.0 and float(state["adamw.t"].get_value()) == 7.0
    assert "adagrad.t" in state and "momentum.t" in state


def test_adamw_without_decay_is_adam_and_clipping_below_the_limit_is_identity():
    grads_in = [pt.tensor(f"g{i}", shape=s, dtype="float32") for i, s in enumerate(SHAPES)]
    a = [pytensor.shared(v.copy(), name=f"a{i}") for i, v in enumerate(INITIAL)]
    w = [pytensor.shared(v.copy(), name=f"w{i}") for i, v in enumerate(INITIAL)]
    clipped, norm = update.clip_by_global_norm(grads_in, a, max_norm=100.0, return_norm=True)
    updates = update.adam(grads_in, a, 0.01)
    updates.update(update.adamw(grads_in, w, 0.01, weight_decay=0.0))
    # one backend: these compare two graphs' results, not backend numerics
    f = compile_fn(grads_in, clipped + [norm], "jax", updates=updates)
    grads = [np.random.default_rng(2).standard_normal(s).astype("float32") for s in SHAPES]
    for _ in range(3):
        *out, got_norm = f(*grads)
    assert all(np.array_equal(o, g) for o, g in zip(out, grads))
    assert_close(got_norm, np.sqrt(sum((g.astype("float64") ** 2).sum() for g in grads)))
    for pa, pw in zip(a, w):
        np.testing.assert_array_equal(pa.get_value(), pw.get_value())


def test_adamw_decay_mask_by_callable_leaves_biases_alone():
    params = [pytensor.shared(v.copy(), name=f"p{i}") for i, v in enumerate(INITIAL)]
    zero = [pt.zeros(s, dtype="float32") for s in SHAPES]
    updates = update.adamw(zero, params, learning_rate=0.1, weight_decay=0.5, decay_mask=lambda p: p.ndim > 1)
    compile_fn([], [], "jax", updates=updates)()
    assert_close(params[0].get_value(), INITIAL[0] * (1 - 0.1 * 0.5))  # zero gradient: decay only
    assert_close(params[1].get_value(), INITIAL[1])


def test_a_resumed_run_with_a_schedule_continues_exactly(backend, tmp_path):
    model = Dense(3, 2, W=INITIAL[0].copy(), b=INITIAL[1].copy(), name="model")
    params = model.collect_params()
    x = np.random.default_rng(3).standard_normal((4, 3)).astype("float32")
    loss = pt.sum((model.forward(pt.as_tensor_variable(x)) - 0.5) ** 2)
    schedule = update.join_schedules([update.linear_warmup(0.2, 3), update.cosine_schedule(0.2, 5)], [3])
    updates = update.adamw(update.clip_by_global_norm(loss, params, 0.5), params, schedule, weight_decay=0.1)
    step = compile_fn([], loss, backend, updates=updates)
    for _ in range(2):
        step()
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, model, updates)
    uninterrupted = [float(step()) for _ in range(4)]
    after = [p.get_value().copy() for p in params]
    load_checkpoint(path, model, updates)
    assert float(optimizer_state(updates)["adamw.t"].get_value()) == 2.0
    resumed = [float(step()) for _ in range(4)]
    assert resumed == uninterrupted
    for p, expected in zip(params, after):
        np.testing.assert_array_equal(p.get_value(), expected)


def test_bad_schedule_and_clipping_arguments_are_named():
    with pytest.raises(ValueError, match=r"step_schedule: step_size must be an int >= 1 \(a step count\), got 0"):
        update.step_schedule(0.1, step_size=0)
    with pytest.raises(ValueError, match=r"cosine_schedule: decay_steps must be an int >= 1 \(a step count\), got -5"):
        update.cosine_schedule(0.1, decay_steps=-5)
    with pytest.raises(ValueError, match=r"linear_warmup: warmup_steps must be an int >= 0 \(a step count\), got -1"):
        update.linear_warmup(0.1, warmup_steps=-1)
    with pytest.raises(ValueError, match=r"exponential_schedule: transition_steps must be an int >= 1"):
        update.exponential_schedule(0.1, 0.9, transition_steps=-2)
    with pytest.raises(ValueError, match=r"join_schedules: boundaries\[1\] must be an int >= 1 \(a step count\), got -3"):
        update.join_schedules([S_STEP, S_COS, S_STEP], [2, -3])
    with pytest.raises(ValueError, match=r"join_schedules: boundaries must increase, got \[5, 2\]"):
        update.join_schedules([S_STEP, S_COS, S_STEP], [5, 2])
    with pytest.raises(ValueError, match="join_schedules: needs one schedule more than boundaries"):
        update.join_schedules([S_STEP], [2])
    with pytest.raises(ValueError, match="step_schedule: step must be >= 0, got -1"):
        S_STEP(-1)
    w = pytensor.shared(np.ones(2, "float32"), name="w")
    with pytest.raises(ValueError, match="clip_by_global_norm: max_norm must be > 0, got 0"):
        update.clip_by_global_norm((w**2).sum(), [w], 0)
    with pytest.raises(ValueError, match="clip_by_value: min_value must be <= max_value, got min_value=2, max_value=1"):
        update.clip_by_value((w**2).sum(), [w], 1, min_value=2)
    with pytest.raises(ValueError, match=r"adamw: decay_mask must have one entry per parameter \(1\), got 2"):
        update.adamw((w**2).sum(), [w], decay_mask=[True, False])
