"""GRU and LSTM2D with ``truncate_gradient`` and a static length: the scan is split where
truncation starts, so every backend (JAX included) differentiates it, with the
gradients of PyTensor's truncated scan (the reference, on a graph of unknown length)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.scan.op import Scan

from dandelion.module import GRU, LSTM2D
from pytensor.compile.mode import Mode

from tests.helpers import assert_close, compile_fn
from tests.recurrent_harness import draw_mask, randomize_weights

T, B, K = 5, 2, 2  # GRU: steps, batch, truncate_gradient
H, W, K2D = 2, 3, 3  # LSTM2D: rows, columns (6 scanned positions), truncate_gradient


def _graph(gru, lstm2d, static):
    """Outputs and gradients of both modules in both directions, the GRU masked."""
    x = pt.tensor("x", shape=(T if static else None, B, 2), dtype="float32")
    m = pt.tensor("m", shape=(T if static else None, B), dtype="float32")
    grid = pt.tensor("grid", shape=(H, W, B, 2) if static else (None, None, B, 2), dtype="float32")
    # LSTM2D one way: the split itself (shared with the GRU) is checked both ways
    outs = [gru.forward(x, seq_mask=m, backward=True), gru.forward(x, seq_mask=m), lstm2d.forward(grid, backward=True)]
    rng = np.random.default_rng(3)
    shapes = [(T, B, 3)] * 2 + [(H, W, B, 3)]
    loss = sum(pt.sum(o * rng.standard_normal(shape).astype("float32")) for o, shape in zip(outs, shapes))
    return [x, m, grid], outs + pytensor.grad(loss, [x, grid, *gru.params, *lstm2d.params])


@pytest.fixture(scope="module")
def modules_and_reference():
    rng = np.random.default_rng(12)
    gru, lstm2d = GRU(2, 3, truncate_gradient=K, learn_ini=True), LSTM2D(2, 3, truncate_gradient=K2D)
    randomize_weights(gru, rng)
    randomize_weights(lstm2d, rng)
    inputs, outputs = _graph(gru, lstm2d, static=False)
    truncated_scans = {n.op.truncate_gradient for n in pytensor.graph.traversal.applys_between(inputs, outputs) if isinstance(n.op, Scan)}
    assert truncated_scans == {K, K2D}  # the reference really is PyTensor's truncated scan
    args = [
        rng.standard_normal((T, B, 2)).astype("float32"),
        draw_mask(rng, T, B),
        rng.standard_normal((H, W, B, 2)).astype("float32"),
    ]
    args[1][:, 0] = 1  # one full-length sequence: each of its steps could get a gradient
    # the Python linker without rewrites: no compilation of the reference at all
    return gru, lstm2d, args, pytensor.function(inputs, outputs, mode=Mode(linker="py", optimizer=None))(*args)


def test_split_truncation_equals_the_truncated_scan(backend, modules_and_reference):
    gru, lstm2d, args, expected = modules_and_reference
    inputs, outputs = _graph(gru, lstm2d, static=True)
    assert all(n.op.truncate_gradient == -1 for n in pytensor.graph.traversal.applys_between(inputs, outputs) if isinstance(n.op, Scan))
    got = compile_fn(inputs, outputs, backend)(*args)
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert_close(a, b, rtol=2e-4, atol=2e-5, err_msg=f"output {k}")
    g_x = got[3][:, 0]
    # The GRU's backward pass reaches the first K steps, its forward pass the last K.
    assert not g_x[K : T - K].any()
    assert np.abs(g_x[:K]).min() > 0 and np.abs(g_x[T - K :]).min() > 0
