"""W4: MLP 784-1024-1024-10 with ReLU on a (256, 784) batch."""

from __future__ import annotations

import numpy as np

from benchmarks.workloads.common import (
    Workload,
    dandelion_step_functions,
    fixed_batch,
    jax_step_functions,
    torch_step_functions,
)

CONFIG = {"batch": 256, "sizes": (784, 1024, 1024, 10)}


def flops(config, mode):
    sizes = config["sizes"]
    forward = 2 * config["batch"] * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return forward if mode == "inference" else 3 * forward


def _data(config):
    return fixed_batch((config["batch"], config["sizes"][0]), config["batch"], config["sizes"][-1])


def build_dandelion(config, mode, backend, warm=True):
    import pytensor.tensor as pt

    from dandelion.activation import relu, softmax
    from dandelion.module import Dense, Sequential

    sizes = config["sizes"]
    layers = [Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    model = Sequential(layers, activation=[relu] * (len(layers) - 1) + [softmax])
    x = pt.tensor("x", shape=(config["batch"], sizes[0]), dtype="float32")
    y = pt.tensor("y", shape=(config["batch"],), dtype="int32")
    return dandelion_step_functions(
        lambda: model.forward(x), lambda: model.predict(x), model.collect_params(), model.collect_self_updates, x, y, mode, backend, _data(config),
        warm=warm,
    )


def build_torch(config, mode):
    import torch

    sizes = config["sizes"]
    layers = []
    for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if index < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch_step_functions(torch.nn.Sequential(*layers), *_data(config), mode)


def build_jax(config, mode):
    import jax
    import jax.numpy as jnp

    sizes = config["sizes"]
    rng = np.random.default_rng(1)
    params = [
        (jnp.asarray(rng.uniform(-1, 1, (a, b)).astype("float32") * np.sqrt(6 / (a + b))), jnp.zeros(b, jnp.float32))
        for a, b in zip(sizes[:-1], sizes[1:])
    ]

    def forward(p, state, x, train):
        for index, (W, b) in enumerate(p):
            x = x @ W + b
            if index < len(p) - 1:
                x = jax.nn.relu(x)
        return x, state

    return jax_step_functions(forward, params, *_data(config), mode)


def workload():
    return Workload(CONFIG, flops, build_dandelion, build_torch, build_jax)
