"""GRU and LSTM2D with ``truncate_gradient`` and a static length: the scan is split where
truncation starts, so every backend (JAX included) differentiates it, with the
gradients of PyTensor's truncated scan (the reference, on a graph of unknown length)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.scan.op import Scan

from dandelion.module import GRU, LSTM2D
from tests.helpers import assert_close, compile_fn
from tests.recurrent_harness import draw_mask, randomize_weights

T, B, K = 5, 2, 2  # GRU: steps, batch, truncate_gradient
H, W, K2D = 2, 3, 3  # LSTM2D: rows, columns (6 scanned positions), truncate_gradient


def _graph(gru, lstm2d, static):
    """Outputs and gradients of a masked backward GRU and a forward LSTM2D."""
    x = pt.tensor("x", shape=(T if static else None, B, 2), dtype="float32")
    m = pt.tensor("m", shape=(T if static else None, B), dtype="float32")
    grid = pt.tensor("grid", shape=(H, W, B, 2) if static else (None, None, B, 2), dtype="float32")
    # one direction each (the scans cost the time): the GRU backward (reversed split), masked
    outs = [gru.forward(x, seq_mask=m, backward=True), lstm2d.forward(grid)]
    rng = np.random.default_rng(3)
    shapes = [(T, B, 3), (H, W, B, 3)]
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
    checked = range(len(outputs))
    if backend == "numba":
        # Numba takes minutes per scan gradient on a cold cache; the split is one code
        # path (recurrent_scan) for both modules, so Numba checks the GRU's outputs and
        # gradients (LSTM2D runs split on C and JAX)
        checked = [0, 2, *range(4, 4 + len(gru.params))]
        outputs = [outputs[k] for k in checked]
    got = dict(zip(checked, compile_fn(inputs, outputs, backend)(*args)))
    for k, value in got.items():
        assert_close(value, expected[k], rtol=2e-4, atol=2e-5, err_msg=f"output {k}")
    # backward GRU: the last K scanned steps are the first K in time; LSTM2D forward: the
    # last K2D positions in row-major order
    g_x = got[2][:, 0]
    assert not g_x[K:].any() and np.abs(g_x[:K]).min() > 0
    if 3 in got:
        g_grid = got[3][:, :, 0].reshape(H * W, 2)
        assert not g_grid[: H * W - K2D].any() and np.abs(g_grid[H * W - K2D :]).min() > 0
