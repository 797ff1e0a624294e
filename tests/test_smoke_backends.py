"""The three backends compile and run a module graph, and agree."""

import numpy as np

from dandelion.activation import relu
from dandelion.module import Dense, Sequential
from tests.helpers import assert_close, compile_fn, ftensor, randn


def test_mlp_runs_on_backend(backend):
    model = Sequential([Dense(4, 6), Dense(6, 2)], activation=relu)
    x = ftensor("x", (3, 4))
    f = compile_fn([x], model.forward(x), backend)
    data = randn(3, 4)
    W0, b0 = model.submodule_0.W.get_value(), model.submodule_0.b.get_value()
    W1, b1 = model.submodule_1.W.get_value(), model.submodule_1.b.get_value()
    expected = np.maximum(np.maximum(data @ W0 + b0, 0) @ W1 + b1, 0)
    out = f(data)
    assert out.dtype == np.float32
    assert_close(out, expected)
