"""Which kernels dandelion's JAX LSTM and GRU lower to, per platform (``dandelion.ops.jax.lstm``, ``.gru``).

On CPU the fused recurrent Ops are XLA custom calls into the C kernels
(``dandelion.ops.jax.lstm_native``, ``.gru_native``); any other platform, and CPU with
``DANDELION_NATIVE_KERNELS=0``, runs the ``lax.scan`` recursions. Lowering needs no GPU,
so the GPU path's graph is checked here, and its values against the kernels' on CPU
(the kernels meet the NumPy reference in ``tests/test_ops_gru_sequence.py`` and
``tests/test_lstm_team.py``).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.fg import FunctionGraph

from dandelion.ops.gru import GRUSequenceOp, gru_sequence
from dandelion.ops.lstm import LSTMSequenceOp

T, B, D, H = 12, 3, 5, 4  # T above the scans' unroll, so that each stays a loop


def _lstm_graph():
    gi = pt.tensor3("gi", dtype="float32")
    W, h0, c0 = (pt.matrix(n, dtype="float32") for n in ("W", "h0", "c0"))
    hs, _, _ = LSTMSequenceOp()(gi, W, h0, c0)
    return [gi, W, h0, c0], hs, [(T, B, 4 * H), (H, 4 * H), (B, H), (B, H)]


def _gru_graph():
    gi = pt.tensor3("gi", dtype="float32")
    W, h0 = (pt.matrix(n, dtype="float32") for n in ("W", "h0"))
    hs, _ = GRUSequenceOp()(gi, W, h0)
    return [gi, W, h0], hs, [(T, B, 3 * H), (H, 3 * H), (B, H)]


FAMILIES = {"lstm": (_lstm_graph, "native_lstm_targets"), "gru": (_gru_graph, "native_gru_targets")}


def _targets(family):
    from dandelion.ops.jax import gru_native, lstm_native

    module = {"lstm": lstm_native, "gru": gru_native}[family]
    return getattr(module, FAMILIES[family][1])


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return request.param


@pytest.fixture
def lowered(backend, family):
    """``lowered(platform)``: StableHLO text of a float32 recurrence's outputs and gradients, lowered for ``platform``."""
    if backend != "jax":
        pytest.skip("the lowering of the JAX backend's functions")
    import jax
    from pytensor.link.jax.dispatch import jax_funcify

    inputs, hs, shapes = FAMILIES[family][0]()
    grads = pytensor.grad((hs**2).sum(), inputs[:2])

    def lower(platform):
        fn = jax_funcify(FunctionGraph(inputs, [hs, *grads], clone=True))
        args = [jax.ShapeDtypeStruct(shape, "float32") for shape in shapes]
        return jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()

    return lower


def test_cpu_calls_the_c_kernels(lowered, family):
    if _targets(family)() is None:
        pytest.skip("no C++ compiler or SciPy BLAS here: the scans run on CPU too")
    text = lowered("cpu")
    for entry in ("forward", "backward"):
        assert f"custom_call @dandelion_{family}_{entry}_float32" in text
    assert "stablehlo.while" not in text


@pytest.mark.parametrize("platform", ["cuda", "rocm"])
def test_other_platforms_run_the_scans(lowered, family, platform):
    text = lowered(platform)
    assert f"dandelion_{family}" not in text
    assert text.count("stablehlo.while") == 2  # the forward recursion and the backward one


def test_cpu_runs_the_scans_with_the_kernels_off(lowered, family, monkeypatch):
    monkeypatch.setenv("DANDELION_NATIVE_KERNELS", "0")
    text = lowered("cpu")
    assert f"dandelion_{family}" not in text
    assert text.count("stablehlo.while") == 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gru_scans_agree_with_the_kernels(backend, dtype, monkeypatch):
    """The GPU path's values: the scans (kernels off) against the kernels, masked, with a clip that binds."""
    if backend != "jax":
        pytest.skip("the JAX backend's two GRU paths")
    if _targets("gru")() is None:
        pytest.skip("no C++ compiler or SciPy BLAS here: the scans run on CPU too")
    import dandelion

    gi, W, h0, m, w = (pt.tensor(n, dtype=dtype, shape=(None,) * k) for n, k in [("gi", 3), ("W", 2), ("h0", 2), ("m", 2), ("w", 3)])
    hs = gru_sequence(gi, W, h0, mask=m, grad_clipping=0.05)
    outputs = [hs, *pytensor.grad((hs * w).sum(), [gi, W, h0])]
    rng = np.random.default_rng(3)
    values = [rng.standard_normal((T, B, 3 * H)), 0.6 * rng.standard_normal((H, 3 * H)), rng.standard_normal((B, H))]
    values += [(rng.random((T, B)) > 0.3).astype(dtype), rng.standard_normal((T, B, H))]
    values = [v.astype(dtype) for v in values]
    kernels = dandelion.function([gi, W, h0, m, w], outputs, mode="JAX")(*values)
    monkeypatch.setenv("DANDELION_NATIVE_KERNELS", "0")
    scans = dandelion.function([gi, W, h0, m, w], outputs, mode="JAX")(*values)
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    for k, (a, b) in enumerate(zip(kernels, scans, strict=True)):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance, err_msg=f"output {k}")
    unclipped = dandelion.function([gi, W, h0, m, w], pytensor.grad((gru_sequence(gi, W, h0, mask=m) * w).sum(), W), mode="JAX")
    assert not np.allclose(unclipped(*values), kernels[2], atol=1e-3)  # the clip binds


@pytest.mark.parametrize("kernels", ["1", "0"], ids=["kernels", "scans"])
def test_bad_shapes_fail_in_tracing_naming_the_argument(backend, kernels, monkeypatch):
    """The kernels trust their buffers, so the JAX functions check the (static) shapes first; the scans too."""
    monkeypatch.setenv("DANDELION_NATIVE_KERNELS", kernels)
    if backend != "jax":
        pytest.skip("the JAX backend's trace-time check (C and Numba check at run time)")
    import dandelion
    from dandelion.ops.lstm import lstm_sequence

    gi, W, h0, c0 = pt.tensor3("gi"), pt.matrix("W"), pt.matrix("h0"), pt.matrix("c0")
    fn = dandelion.function([gi, W, h0, c0], lstm_sequence(gi, W, h0, c0), mode="JAX")
    with pytest.raises(ValueError, match=r"lstm_sequence: h0 must have shape \(2, 3\) \(T=4, B=2, H=3\), got \(5, 3\)"):
        fn(*(np.zeros(s, pytensor.config.floatX) for s in [(4, 2, 12), (3, 12), (5, 3), (2, 3)]))
    hs = gru_sequence(gi, W, h0)
    fn = dandelion.function([gi, W, h0], pytensor.grad(hs.sum(), W), mode="JAX")
    with pytest.raises(ValueError, match=r"gru_sequence: h0 must have shape \(2, 3\) \(T=4, B=2, H=3\), got \(5, 3\)"):
        fn(*(np.zeros(s, pytensor.config.floatX) for s in [(4, 2, 9), (3, 9), (5, 3)]))


def test_a_jax_without_its_ffi_module_keeps_the_scans(backend, family, monkeypatch):
    """``jax>=0.4.30`` is allowed, older than ``jax.ffi``'s registration API: no kernels then, not an error."""
    if backend != "jax":
        pytest.skip("the JAX backend's choice of kernels")
    import jax

    monkeypatch.delattr(jax.ffi, "register_ffi_target")
    assert _targets(family).__wrapped__() is None
