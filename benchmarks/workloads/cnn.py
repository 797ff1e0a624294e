"""W3: conv3x3(32, same)-BN-relu-maxpool2-conv3x3(64, same)-BN-relu-maxpool2-Dense(10), (64, 1, 28, 28).

Convolutions carry no bias (batch normalisation follows each one) in every framework.
"""

from __future__ import annotations

import numpy as np

from benchmarks.workloads.common import (
    Workload,
    dandelion_step_functions,
    fixed_batch,
    jax_step_functions,
    torch_step_functions,
)

CONFIG = {"batch": 64, "channels": (1, 32, 64), "size": 28, "classes": 10}


def flops(config, mode):
    batch, (c0, c1, c2), size = config["batch"], config["channels"], config["size"]
    conv1 = 2 * batch * size * size * c1 * c0 * 9
    conv2 = 2 * batch * (size // 2) ** 2 * c2 * c1 * 9
    dense = 2 * batch * c2 * (size // 4) ** 2 * config["classes"]
    forward = conv1 + conv2 + dense
    return forward if mode == "inference" else 3 * forward


def conv_forward_flops(config):
    """FLOPs of the two convolutions' forward pass alone (for the GFLOP/s report)."""
    batch, (c0, c1, c2), size = config["batch"], config["channels"], config["size"]
    return 2 * batch * size * size * c1 * c0 * 9 + 2 * batch * (size // 2) ** 2 * c2 * c1 * 9


def _data(config):
    c0, size = config["channels"][0], config["size"]
    return fixed_batch((config["batch"], c0, size, size), config["batch"], config["classes"])


def build_dandelion(config, mode, backend, warm=True):
    import pytensor.tensor as pt

    from dandelion.activation import relu, softmax
    from dandelion.functional import pool_2d
    from dandelion.module import BatchNorm, Conv2D, Dense, Module

    c0, c1, c2 = config["channels"]
    flat = c2 * (config["size"] // 4) ** 2

    class CNN(Module):
        def __init__(self):
            super().__init__(name="cnn")
            self.conv1 = Conv2D(c0, c1, kernel_size=3, pad="same", b=None)
            self.bn1 = BatchNorm(input_shape=(None, c1, None, None))
            self.conv2 = Conv2D(c1, c2, kernel_size=3, pad="same", b=None)
            self.bn2 = BatchNorm(input_shape=(None, c2, None, None))
            self.head = Dense(flat, config["classes"])

        def _run(self, x, train):
            call = (lambda module, v: module.forward(v)) if train else (lambda module, v: module.predict(v))
            x = pool_2d(relu(call(self.bn1, call(self.conv1, x))), ws=(2, 2))
            x = pool_2d(relu(call(self.bn2, call(self.conv2, x))), ws=(2, 2))
            return softmax(call(self.head, x.reshape((x.shape[0], flat))))

        def forward(self, x):
            return self._run(x, True)

        def predict(self, x):
            return self._run(x, False)

    model = CNN()
    x = pt.tensor("x", shape=(config["batch"], c0, config["size"], config["size"]), dtype="float32")
    y = pt.tensor("y", shape=(config["batch"],), dtype="int32")
    return dandelion_step_functions(
        lambda: model.forward(x), lambda: model.predict(x), model.collect_params(), model.collect_self_updates, x, y, mode, backend, _data(config),
        warm=warm,
    )


def build_torch(config, mode):
    import torch

    c0, c1, c2 = config["channels"]
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(c0, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * (config["size"] // 4) ** 2, config["classes"]),
    )
    return torch_step_functions(model, *_data(config), mode)


def build_jax(config, mode):
    import jax
    import jax.numpy as jnp

    c0, c1, c2 = config["channels"]
    flat = c2 * (config["size"] // 4) ** 2
    rng = np.random.default_rng(1)

    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6 / (fan_in + fan_out))
        return jnp.asarray(rng.uniform(-limit, limit, shape).astype("float32"))

    params = {
        "k1": glorot((c1, c0, 3, 3), c0 * 9, c1 * 9), "g1": jnp.ones(c1), "b1": jnp.zeros(c1),
        "k2": glorot((c2, c1, 3, 3), c1 * 9, c2 * 9), "g2": jnp.ones(c2), "b2": jnp.zeros(c2),
        "W": glorot((flat, config["classes"]), flat, config["classes"]), "bW": jnp.zeros(config["classes"]),
    }
    state = {"m1": jnp.zeros(c1), "v1": jnp.ones(c1), "m2": jnp.zeros(c2), "v2": jnp.ones(c2)}

    def conv(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def batch_norm(x, gamma, beta, mean, var, train, alpha=0.1, eps=1e-4):
        if train:
            batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            mean, var = (1 - alpha) * mean + alpha * batch_mean, (1 - alpha) * var + alpha * batch_var
            used_mean, used_var = batch_mean, batch_var
        else:
            used_mean, used_var = mean, var
        scale = (gamma / jnp.sqrt(used_var + eps))[None, :, None, None]
        return (x - used_mean[None, :, None, None]) * scale + beta[None, :, None, None], mean, var

    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def forward(p, s, x, train):
        x, m1, v1 = batch_norm(conv(x, p["k1"]), p["g1"], p["b1"], s["m1"], s["v1"], train)
        x = pool(jax.nn.relu(x))
        x, m2, v2 = batch_norm(conv(x, p["k2"]), p["g2"], p["b2"], s["m2"], s["v2"], train)
        x = pool(jax.nn.relu(x))
        return x.reshape(x.shape[0], flat) @ p["W"] + p["bW"], {"m1": m1, "v1": v1, "m2": m2, "v2": v2}

    return jax_step_functions(forward, params, *_data(config), mode, extra_state=state)


def workload():
    return Workload(CONFIG, flops, build_dandelion, build_torch, build_jax,
                    notes=["BatchNorm uses batch statistics in training and updates running statistics in every framework"])
