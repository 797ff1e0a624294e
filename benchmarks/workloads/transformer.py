"""W5: a 2-layer post-norm transformer encoder classifier on (32, 64, 128) inputs.

d_model 128, 4 heads, feed-forward 512 with ReLU, dropout 0.1 (PyTorch's default, in the
attention weights, the feed-forward hidden layer and both residual branches), layer-norm
epsilon 1e-5; the encoder's output is averaged over time and a Dense(128, 10) classifies.
The same model in dandelion (``TransformerEncoder``), PyTorch (``nn.TransformerEncoder``,
what a PyTorch user writes; its inference takes PyTorch's fused encoder fast path) and
hand-written JAX.
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

CONFIG = {"batch": 32, "steps": 64, "model_dim": 128, "heads": 4, "ff_dim": 512, "layers": 2, "classes": 10,
          "dropout": 0.1}


def flops(config, mode):
    """Matrix-product FLOPs (projections, scores, weighted sums, feed-forward, head)."""
    b, t, d, f = config["batch"], config["steps"], config["model_dim"], config["ff_dim"]
    per_layer = 2 * b * t * (4 * d * d + 2 * d * f) + 2 * 2 * b * t * t * d
    forward = config["layers"] * per_layer + 2 * b * d * config["classes"]
    return forward if mode == "inference" else 3 * forward


def _data(config):
    shape = (config["batch"], config["steps"], config["model_dim"])
    return fixed_batch(shape, config["batch"], config["classes"])


def build_dandelion(config, mode, backend, warm=True):
    import pytensor.tensor as pt

    from dandelion.activation import softmax
    from dandelion.module import Dense, Module, TransformerEncoder

    class Classifier(Module):
        def __init__(self):
            super().__init__(name="transformer")
            self.encoder = TransformerEncoder(
                config["layers"], config["model_dim"], config["heads"], ff_dim=config["ff_dim"],
                dropout_p=config["dropout"], seed=1,
            )
            self.head = Dense(config["model_dim"], config["classes"])

        def forward(self, x):
            return softmax(self.head.forward(self.encoder.forward(x).mean(axis=1)))

        def predict(self, x):
            return softmax(self.head.predict(self.encoder.predict(x).mean(axis=1)))

    model = Classifier()
    x = pt.tensor("x", shape=(config["batch"], config["steps"], config["model_dim"]), dtype="float32")
    y = pt.tensor("y", shape=(config["batch"],), dtype="int32")
    return dandelion_step_functions(
        lambda: model.forward(x), lambda: model.predict(x), model.collect_params(), model.collect_self_updates, x, y,
        mode, backend, _data(config), warm=warm,
    )


def build_torch(config, mode):
    import torch

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(
                config["model_dim"], config["heads"], config["ff_dim"], dropout=config["dropout"], batch_first=True,
            )
            self.encoder = torch.nn.TransformerEncoder(layer, config["layers"], enable_nested_tensor=False)
            self.head = torch.nn.Linear(config["model_dim"], config["classes"])

        def forward(self, x):
            return self.head(self.encoder(x).mean(dim=1))

    return torch_step_functions(Classifier(), *_data(config), mode)


def _jax_params(config, rng):
    import jax.numpy as jnp

    def dense(a, b):
        bound = np.sqrt(6 / (a + b))
        return jnp.asarray(rng.uniform(-bound, bound, (a, b)).astype("float32")), jnp.zeros(b, jnp.float32)

    d, f = config["model_dim"], config["ff_dim"]
    layers = [
        {"qkv": dense(d, 3 * d), "out": dense(d, d), "ff1": dense(d, f), "ff2": dense(f, d),
         "norm1": (jnp.ones(d, jnp.float32), jnp.zeros(d, jnp.float32)),
         "norm2": (jnp.ones(d, jnp.float32), jnp.zeros(d, jnp.float32))}
        for _ in range(config["layers"])
    ]
    return {"layers": layers, "head": dense(d, config["classes"])}


def build_jax(config, mode):
    import jax
    import jax.numpy as jnp

    heads, p_drop = config["heads"], config["dropout"]

    def layer_norm(x, scale_shift):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * scale_shift[0] + scale_shift[1]

    def drop(x, key, train):
        if not train or p_drop == 0:
            return x
        return jnp.where(jax.random.bernoulli(key, 1 - p_drop, x.shape), x / (1 - p_drop), 0)

    def attention(x, layer, keys, train):
        b, t, d = x.shape
        q, k, v = jnp.split(x @ layer["qkv"][0] + layer["qkv"][1], 3, axis=-1)
        split = lambda z: z.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)  # noqa: E731
        scores = split(q) @ split(k).transpose(0, 1, 3, 2) / np.sqrt(d // heads)
        weights = drop(jax.nn.softmax(scores, axis=-1), keys[0], train)
        merged = (weights @ split(v)).transpose(0, 2, 1, 3).reshape(b, t, d)
        return merged @ layer["out"][0] + layer["out"][1]

    def forward(p, state, x, train):
        keys = jax.random.split(jax.random.fold_in(state["key"], state["step"]), 4 * len(p["layers"]))
        for index, layer in enumerate(p["layers"]):
            k = keys[4 * index: 4 * index + 4]
            x = layer_norm(x + drop(attention(x, layer, k, train), k[1], train), layer["norm1"])
            hidden = drop(jax.nn.relu(x @ layer["ff1"][0] + layer["ff1"][1]), k[2], train)
            x = layer_norm(x + drop(hidden @ layer["ff2"][0] + layer["ff2"][1], k[3], train), layer["norm2"])
        logits = x.mean(axis=1) @ p["head"][0] + p["head"][1]
        return logits, {"key": state["key"], "step": state["step"] + 1}

    state = {"key": jax.random.PRNGKey(1), "step": jnp.zeros((), jnp.uint32)}
    return jax_step_functions(forward, _jax_params(config, np.random.default_rng(1)), *_data(config), mode,
                              extra_state=state)


def workload():
    return Workload(CONFIG, flops, build_dandelion, build_torch, build_jax)
