"""Pieces every workload shares: fixed data, Adam for hand-written JAX, compile timing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

LEARNING_RATE = 1e-3
SEED = 0


@dataclass
class Workload:
    """A model in three framework families, with its shapes and FLOP count."""

    config: dict
    flops: object  # (config, mode) -> float
    build_dandelion: object
    build_torch: object
    build_jax: object
    notes: list = field(default_factory=list)


def fixed_batch(input_shape, batch_size, num_classes, seed=SEED):
    """Standard-normal float32 inputs and uniform int32 labels, the same in every framework."""
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal(input_shape).astype("float32")
    labels = rng.integers(0, num_classes, size=batch_size).astype("int32")
    return inputs, labels


def dandelion_step_functions(model_forward, model_predict, params, self_updates, inputs_var, labels_var, mode, backend, data,
                             warm=True):
    """Compile a dandelion training or inference step; returns (compile_s, step).

    ``warm=False`` builds the training ``Function`` without calling it (for
    ``benchmarks.distributed``, which compiles the graph over a mesh itself).
    """
    import pytensor.tensor as pt

    import dandelion
    from dandelion.objective import categorical_crossentropy
    from dandelion.update import adam

    inputs, labels = data
    started = time.perf_counter()
    if mode == "train":
        loss = categorical_crossentropy(model_forward(), labels_var).mean()
        updates = adam(loss, params, learning_rate=LEARNING_RATE)
        updates.update(self_updates())
        function = dandelion.function([inputs_var, labels_var], loss, updates=updates, mode=backend)
        if warm:
            function(inputs, labels)

        def step():
            # np.asarray waits for the result: the JAX backend returns arrays still being computed.
            return np.asarray(function(inputs, labels))

        # For benchmarks.distributed, which runs the same compiled graph over a mesh.
        step.function, step.data, step.params = function, data, params
    else:
        function = dandelion.function([inputs_var], pt.argmax(model_predict(), axis=-1), mode=backend)
        function(inputs)

        def step():
            return np.asarray(function(inputs))
    return time.perf_counter() - started, step


def torch_step_functions(model, inputs, labels, mode):
    import torch

    x = torch.from_numpy(inputs)
    y = torch.from_numpy(labels.astype("int64"))
    started = time.perf_counter()
    if mode == "train":
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                return model(x).argmax(-1).numpy()

    step()
    return time.perf_counter() - started, step


def jax_adam_init(params):
    import jax
    import jax.numpy as jnp

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return {"m": zeros, "v": zeros, "t": jnp.zeros((), jnp.float32)}


def jax_adam_update(params, grads, state, learning_rate=LEARNING_RATE, beta1=0.9, beta2=0.999, epsilon=1e-8):
    import jax
    import jax.numpy as jnp

    t = state["t"] + 1
    m = jax.tree_util.tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, state["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: beta2 * v + (1 - beta2) * g * g, state["v"], grads)
    step_size = learning_rate * jnp.sqrt(1 - beta2**t) / (1 - beta1**t)
    params = jax.tree_util.tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) + epsilon), params, m, v)
    return params, {"m": m, "v": v, "t": t}


def jax_step_functions(forward, params, inputs, labels, mode, extra_state=None):
    """Hand-written JAX training (Adam) or inference step, jitted.

    ``forward(params, state, x, train) -> (logits, new_state)``; ``state`` carries e.g.
    batch-norm running statistics.
    """
    import jax
    import jax.numpy as jnp

    x, y = jnp.asarray(inputs), jnp.asarray(labels)
    state = extra_state if extra_state is not None else {}

    def loss_fn(p, s):
        logits, new_state = forward(p, s, x, True)
        log_probs = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1)), new_state

    started = time.perf_counter()
    if mode == "train":

        @jax.jit
        def train_step(p, s, opt):
            (loss, new_s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s)
            new_p, new_opt = jax_adam_update(p, grads, opt)
            return new_p, new_s, new_opt, loss

        carry = {"p": params, "s": state, "opt": jax_adam_init(params)}

        def step():
            carry["p"], carry["s"], carry["opt"], loss = train_step(carry["p"], carry["s"], carry["opt"])
            return loss.block_until_ready()
    else:

        @jax.jit
        def infer(p, s):
            return jnp.argmax(forward(p, s, x, False)[0], axis=-1)

        def step():
            return infer(params, state).block_until_ready()

    step()
    return time.perf_counter() - started, step
