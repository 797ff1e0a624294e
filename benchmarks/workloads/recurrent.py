"""W1 / W2: an LSTM(256) or GRU(256) classifier on (T=50, B=32, D=128).

The sequence's final hidden state feeds Dense(10). dandelion's LSTM runs without peepholes
(``peephole=False``) so that it computes what ``torch.nn.LSTM`` computes.
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

CONFIG = {"steps": 50, "batch": 32, "input_dim": 128, "hidden": 256, "classes": 10}
GATES = {"lstm": 4, "gru": 3}


def _flops(cell):
    def flops(config, mode):
        per_step = 2 * config["batch"] * GATES[cell] * config["hidden"] * (config["input_dim"] + config["hidden"])
        forward = config["steps"] * per_step + 2 * config["batch"] * config["hidden"] * config["classes"]
        return forward if mode == "inference" else 3 * forward

    return flops


def _data(config):
    shape = (config["steps"], config["batch"], config["input_dim"])
    return fixed_batch(shape, config["batch"], config["classes"])


def _build_dandelion(cell):
    def build(config, mode, backend, warm=True):
        import pytensor.tensor as pt

        from dandelion.activation import softmax
        from dandelion.module import GRU, LSTM, Dense, Module

        class Classifier(Module):
            def __init__(self):
                super().__init__(name="classifier")
                if cell == "lstm":
                    self.rnn = LSTM(config["input_dim"], config["hidden"], peephole=False)
                else:
                    self.rnn = GRU(config["input_dim"], config["hidden"])
                self.head = Dense(config["hidden"], config["classes"])

            def forward(self, x):
                return softmax(self.head.forward(self.rnn.forward(x, only_return_final=True)))

        model = Classifier()
        x = pt.tensor("x", shape=(config["steps"], config["batch"], config["input_dim"]), dtype="float32")
        y = pt.tensor("y", shape=(config["batch"],), dtype="int32")
        return dandelion_step_functions(
            lambda: model.forward(x), lambda: model.predict(x), model.collect_params(), model.collect_self_updates, x, y, mode, backend, _data(config),
            warm=warm,
        )

    return build


def _build_torch(cell):
    def build(config, mode):
        import torch

        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                rnn = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
                self.rnn = rnn(config["input_dim"], config["hidden"])
                self.head = torch.nn.Linear(config["hidden"], config["classes"])

            def forward(self, x):
                return self.head(self.rnn(x)[0][-1])

        return torch_step_functions(Classifier(), *_data(config), mode)

    return build


def _build_jax(cell):
    def build(config, mode):
        import jax
        import jax.numpy as jnp

        rng = np.random.default_rng(1)
        D, H, G = config["input_dim"], config["hidden"], GATES[cell]
        params = {
            "W_in": jnp.asarray(rng.normal(0, 0.1, (D, G * H)).astype("float32")),
            "b_in": jnp.zeros(G * H, jnp.float32),
            "W_hid": jnp.asarray(rng.normal(0, 0.1, (H, G * H)).astype("float32")),
            "W_out": jnp.asarray(rng.normal(0, 0.1, (H, config["classes"])).astype("float32")),
            "b_out": jnp.zeros(config["classes"], jnp.float32),
        }

        def lstm_step(p, carry, x_proj):
            h, c = carry
            gates = x_proj + h @ p["W_hid"]
            i, f, g, o = jnp.split(gates, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        def gru_step(p, carry, x_proj):
            (h,) = carry
            hidden = h @ p["W_hid"]
            xr, xu, xc = jnp.split(x_proj, 3, axis=-1)
            hr, hu, hc = jnp.split(hidden, 3, axis=-1)
            r, u = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xu + hu)
            h = (1 - u) * h + u * jnp.tanh(xc + r * hc)
            return (h,), None

        step_fn = lstm_step if cell == "lstm" else gru_step

        def forward(p, state, x, train):
            # The input projection of all steps is one matrix product outside the loop.
            x_proj = x @ p["W_in"] + p["b_in"]
            zeros = jnp.zeros((x.shape[1], H), jnp.float32)
            carry = (zeros, zeros) if cell == "lstm" else (zeros,)
            carry, _ = jax.lax.scan(lambda c, xp: step_fn(p, c, xp), carry, x_proj)
            return carry[0] @ p["W_out"] + p["b_out"], state

        return jax_step_functions(forward, params, *_data(config), mode)

    return build


def lstm_workload():
    return Workload(CONFIG, _flops("lstm"), _build_dandelion("lstm"), _build_torch("lstm"), _build_jax("lstm"),
                    notes=["LSTM without peepholes in every framework (torch.nn.LSTM has none)"])


def gru_workload():
    return Workload(CONFIG, _flops("gru"), _build_dandelion("gru"), _build_torch("gru"), _build_jax("gru"),
                    notes=["GRU with the reset gate applied after the hidden product, as torch.nn.GRU"])
