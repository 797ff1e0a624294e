"""Which kernels dandelion's JAX LSTM lowers to, per platform (``dandelion.ops.jax.lstm``).

On CPU both fused LSTM Ops are XLA custom calls into the C kernels
(``dandelion.ops.jax.lstm_native``); any other platform, and CPU with
``DANDELION_NATIVE_KERNELS=0``, runs the ``lax.scan`` recursions. Lowering needs no GPU,
so the GPU path's graph is checked here; its values are the scans', which
``tests/test_lstm_team.py`` checks on CPU with the kernels off.
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.fg import FunctionGraph

from dandelion.ops.lstm import LSTMSequenceOp

T, B, D, H = 12, 3, 5, 4  # T above the scans' unroll, so that each stays a loop
TARGETS = ("dandelion_lstm_forward_float32", "dandelion_lstm_backward_float32")


@pytest.fixture
def lowered(backend):
    """``lowered(platform)``: StableHLO text of a float32 LSTM's outputs and gradients, lowered for ``platform``."""
    if backend != "jax":
        pytest.skip("the lowering of the JAX backend's functions")
    import jax
    from pytensor.link.jax.dispatch import jax_funcify

    gi = pt.tensor3("gi", dtype="float32")
    W, h0, c0 = (pt.matrix(n, dtype="float32") for n in ("W", "h0", "c0"))
    hs, cs, gates = LSTMSequenceOp()(gi, W, h0, c0)
    grads = pytensor.grad((hs**2).sum(), [gi, W])
    shapes = [(T, B, 4 * H), (H, 4 * H), (B, H), (B, H)]

    def lower(platform):
        fn = jax_funcify(FunctionGraph([gi, W, h0, c0], [hs, *grads], clone=True))
        args = [jax.ShapeDtypeStruct(shape, "float32") for shape in shapes]
        return jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()

    return lower


def test_cpu_calls_the_c_kernels(lowered):
    from dandelion.ops.jax.lstm_native import native_lstm_targets

    if native_lstm_targets() is None:
        pytest.skip("no C++ compiler or SciPy BLAS here: the scans run on CPU too")
    text = lowered("cpu")
    for target in TARGETS:
        assert f"custom_call @{target}" in text
    assert "stablehlo.while" not in text


@pytest.mark.parametrize("platform", ["cuda", "rocm"])
def test_other_platforms_run_the_scans(lowered, platform):
    text = lowered(platform)
    assert "dandelion_lstm" not in text
    assert text.count("stablehlo.while") == 2  # the forward recursion and the backward one


def test_cpu_runs_the_scans_with_the_kernels_off(lowered, monkeypatch):
    monkeypatch.setenv("DANDELION_NATIVE_KERNELS", "0")
    text = lowered("cpu")
    assert "dandelion_lstm" not in text
    assert text.count("stablehlo.while") == 2


@pytest.mark.parametrize("kernels", ["1", "0"], ids=["kernels", "scans"])
def test_bad_shapes_fail_in_tracing_naming_the_argument(backend, kernels, monkeypatch):
    """The kernels trust their buffers, so the JAX functions check the (static) shapes first; the scans too."""
    monkeypatch.setenv("DANDELION_NATIVE_KERNELS", kernels)
    if backend != "jax":
        pytest.skip("the JAX backend's trace-time check (C and Numba check at run time)")
    import numpy as np

    import dandelion
    from dandelion.ops.lstm import lstm_sequence

    gi, W, h0, c0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0"), pt.matrix("c0")
    fn = dandelion.function([gi, W, h0, c0], lstm_sequence(gi, W, h0, c0), mode="JAX")
    with pytest.raises(ValueError, match=r"lstm_sequence: h0 must have shape \(2, 3\) \(T=4, B=2, H=3\), got \(5, 3\)"):
        fn(*(np.zeros(s, pytensor.config.floatX) for s in [(4, 2, 12), (3, 12), (5, 3), (2, 3)]))


def test_a_jax_without_its_ffi_module_keeps_the_scans(backend, monkeypatch):
    """``jax>=0.4.30`` is allowed, older than ``jax.ffi``'s registration API: no kernels then, not an error."""
    if backend != "jax":
        pytest.skip("the JAX backend's choice of kernels")
    import jax

    from dandelion.ops.jax import lstm_native

    monkeypatch.delattr(jax.ffi, "register_ffi_target")
    assert lstm_native.native_lstm_targets.__wrapped__() is None
