"""Each PyTensor bug in ``dandelion._workarounds``: still present upstream, and worked around.

The ``*_still_present`` tests show the bug in the installed PyTensor while its
``Workaround`` is active. When one fails, PyTensor fixed the bug: give the workaround
its ``last`` affected line (or drop it) and this test's expectation with it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.link.utils import unique_name_generator

import dandelion
from dandelion import _workarounds
from dandelion._compat import PYTENSOR_VERSION, scan

from .conftest import HAS_JAX

# PyTensor's Python linker: the rewrites of a compiled graph without C or Numba compilation.
PY_FAST_RUN = Mode(linker="py", optimizer="fast_run")
# Names that the generated code's arguments get: 'W@Conv2D|conv5_1' first takes the name
# that PyTensor then gives the second 'W@Conv2D|conv5' (VGG16's conv5_1, conv5_2, ...).
COLLIDING_NAMES = ("W@Conv2D|conv5_1", "W@Conv2D|conv5", "W@Conv2D|conv5")


def test_every_workaround_names_its_versions_and_reason():
    for workaround in _workarounds.ALL:
        assert workaround.first <= PYTENSOR_VERSION and workaround.reason, workaround
        assert workaround.applies_to(workaround.first)
        if workaround.last is not None:
            assert not workaround.applies_to((workaround.last[0], workaround.last[1] + 1))
    assert not _workarounds.Workaround("x", "y", first=(3, 1), last=(3, 2)).applies_to((3, 0))


# ------------------------------------------------------------------ duplicate argument names
def _colliding_shared():
    return [pytensor.shared(np.full(2, k + 1.0, dtype="float32"), name=n) for k, n in enumerate(COLLIDING_NAMES)]


@pytest.mark.skipif(not _workarounds.DUPLICATE_ARGUMENT_NAMES.active, reason="not a bug of this PyTensor line")
def test_duplicate_argument_names_still_present():
    name = unique_name_generator(["fgraph"])
    names = [name(pt.vector(n)) for n in COLLIDING_NAMES]
    assert names == ["W_Conv2D_conv5_1", "W_Conv2D_conv5", "W_Conv2D_conv5_1"]
    a, b, c = _colliding_shared()
    with pytest.raises(SyntaxError, match="duplicate argument 'W_Conv2D_conv5_1'"):
        pytensor.function([], a + 2 * b + 3 * c, mode="NUMBA")


def test_collision_free_names_keep_pytensor_names_where_unique():
    name = _workarounds.collision_free_name_generator(["fgraph"])
    variables = [pt.vector(n) for n in ("x", "x", "x", "x_1", "fgraph", "W@Conv2D|conv5")]
    names = [name(v) for v in variables]
    assert names == ["x", "x_1", "x_2", "x_1_1", "fgraph_1", "W_Conv2D_conv5"]
    assert name(variables[0]) == "x" and name(variables[0], force_unique=True) == "x_3"


def test_colliding_parameter_names_compile(backend):
    a, b, c = _colliding_shared()
    f = dandelion.function([], a + 2 * b + 3 * c, mode=backend)
    np.testing.assert_array_equal(f(), np.full(2, 1 + 2 * 2 + 3 * 3, dtype="float32"))


def test_pytensor_modes_keep_pytensor_linkers():
    assert type(_workarounds.linker_for(pytensor.compile.mode.get_mode("NUMBA")).linker).__name__ == "DandelionNumbaLinker"
    assert type(pytensor.compile.mode.get_mode("NUMBA").linker).__name__ == "NumbaLinker"
    py = Mode(linker="py", optimizer="fast_compile")
    assert _workarounds.linker_for(py) is py


# ------------------------------------------------------------------ JAX reduction dtype
_PLAIN_JAX_SUM = (
    "import numpy as np, pytensor, pytensor.tensor as pt\n"
    "x = pt.fvector('x')\n"
    "print(pytensor.function([x], x.sum(), mode='JAX')(np.ones(3, 'float32')).dtype)\n"
)


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_reduce_accumulator_dtype_still_present_and_left_to_pytensor_graphs():
    """A plain PyTensor JAX graph gives what it gives without dandelion (float64), after dandelion ran."""
    x = pt.fvector("x")
    assert dandelion.function([x], x.sum(), mode="jax")(np.ones(3, "float32")).dtype == np.float32
    plain = pytensor.function([x], x.sum(), mode="JAX")(np.ones(3, "float32")).dtype
    without_dandelion = subprocess.run(
        [sys.executable, "-c", _PLAIN_JAX_SUM], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()[-1]
    assert str(plain) == without_dandelion
    if _workarounds.JAX_REDUCE_ACCUMULATOR_DTYPE.active:
        assert without_dandelion == "float64"


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_reductions_inside_scan_keep_float32():
    x = pt.tensor("x", shape=(4, 3), dtype="float32")
    totals = scan(
        lambda x_t, total: total + x_t.sum(), sequences=[x], outputs_info=[pt.constant(np.float32(0))], strict=True
    )
    values = np.arange(12, dtype="float32").reshape(4, 3)
    result = dandelion.function([x], totals, mode="jax")(values)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, np.cumsum(values.sum(axis=1)))


# ------------------------------------------------------------------ scan_pushout_add with truncation
def _truncated_two_state_gradient():
    """Theano #4652's graph with two masked states: the input product computed outside the scan."""
    x, mask, w_in, w_hid = pt.tensor3("x"), pt.matrix("mask"), pt.matrix("w_in"), pt.matrix("w_hid")

    def step(projected, m_t, h, c, w_hid):
        new = projected + pt.dot(h, w_hid)
        keep = m_t[:, None]
        return keep * new + (1 - keep) * h, keep * (c + new) + (1 - keep) * c

    h0 = pt.zeros((x.shape[1], 3))
    hs, cs = pytensor.scan(
        step, sequences=[pt.dot(x, w_in), mask], outputs_info=[h0, h0], non_sequences=[w_hid],
        truncate_gradient=2, strict=True, return_updates=False,
    )
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((5, 2, 2)), np.ones((5, 2)), rng.standard_normal((2, 3)), 0.3 * np.eye(3))
    return [x, mask, w_in, w_hid], pytensor.grad(hs.sum() + cs.sum(), [w_hid, w_in]), values


@pytest.mark.skipif(not _workarounds.SCAN_PUSHOUT_TRUNCATED.active, reason="not a bug of this PyTensor line")
def test_scan_pushout_add_with_truncation_still_present():
    inputs, grads, values = _truncated_two_state_gradient()
    with pytest.raises(ValueError, match="not aligned"):
        pytensor.function(inputs, grads, mode=PY_FAST_RUN)(*values)


def test_truncated_scan_gradient_compiles_without_scan_pushout_add():
    inputs, grads, values = _truncated_two_state_gradient()
    ours = dandelion.function(inputs, grads, mode=PY_FAST_RUN)(*values)
    reference = pytensor.function(inputs, grads, mode=Mode(linker="py", optimizer="fast_compile"))(*values)
    for got, expected in zip(ours, reference):
        np.testing.assert_allclose(got, expected, rtol=1e-10)


# ------------------------------------------------------------------ zero-step scan gradient
@pytest.mark.skipif(not _workarounds.ZERO_STEP_SCAN_GRADIENT.active, reason="not a bug of this PyTensor line")
def test_zero_step_scan_gradient_still_present():
    """The CRF forward recursion written with its first step before the scan; T = 1 runs zero steps.

    ``crf_log_partition`` takes the first step inside the scan instead; test_chaincrf checks
    it at T = 1 on every backend.
    """
    x, transitions = pt.tensor3("x"), pt.matrix("transitions")

    def logsumexp(a, axis):
        peak = pt.max(a, axis=axis, keepdims=True)
        return pt.log(pt.sum(pt.exp(a - peak), axis=axis)) + pt.squeeze(peak, axis=axis)

    def step(x_t, alpha, transitions):
        return logsumexp(alpha[:, :, None] + transitions[None], axis=1) + x_t

    alpha0 = x[:, 0, :]
    alphas = scan(step, sequences=[x.dimshuffle(1, 0, 2)[1:]], outputs_info=[alpha0], non_sequences=[transitions], strict=True)
    final = pt.concatenate([alpha0[None], alphas], axis=0)[-1]
    f = pytensor.function([x, transitions], pytensor.grad(logsumexp(final, axis=1).sum(), [x, transitions]), mode=PY_FAST_RUN)
    rng = np.random.default_rng(0)
    f(rng.standard_normal((2, 2, 3)), rng.standard_normal((3, 3)))  # T = 2: one step, fine
    with pytest.raises(ValueError, match="could not be broadcast"):
        f(rng.standard_normal((2, 1, 3)), rng.standard_normal((3, 3)))


# ------------------------------------------------------------------ softmax on C
def test_softmax_op_on_c():
    """3.0: the compiled C graph keeps Softmax / LogSoftmax, which have no C code (Python thunks).

    3.3 rewrites them into elementwise sums that all have C code; ``activation.softmax``
    keeps its logsumexp form on every line (every backend fuses it, and log(softmax)
    simplifies), so there is nothing to switch off.
    """
    from pytensor.tensor.special import LogSoftmax, Softmax

    x = pt.matrix("x")
    f = pytensor.function([x], [pt.special.softmax(x, axis=-1), pt.special.log_softmax(x, axis=-1)], mode="CVM")
    kept = [node.op for node in f.maker.fgraph.toposort() if isinstance(node.op, (Softmax, LogSoftmax))]
    if _workarounds.SOFTMAX_IN_PYTHON_ON_C.active:
        assert len(kept) == 2 and not any(hasattr(op, "c_code") for op in kept)
    else:
        assert kept == []


# ------------------------------------------------------------------ products folded with a scalar
def _products(function):
    return sum("Dot" in type(node.op).__name__ or "Gemm" in type(node.op).__name__ for node in function.maker.fgraph.apply_nodes)


def _gradient_and_scaled_gradient():
    """A weight gradient read twice, as Adam reads it: (1 - beta1) * g and g * g."""
    x, g, scale = _product_inputs()
    weight_gradient = x.T @ g
    return [x, g, scale], [scale * weight_gradient, weight_gradient * weight_gradient]


def _product_inputs():
    # a scalar variable: PyTensor folds variables, not constants, into Dot22Scalar
    return pt.tensor("x", shape=(5, 4), dtype="float32"), pt.tensor("g", shape=(5, 3), dtype="float32"), pt.fscalar("scale")


@pytest.mark.skipif(not _workarounds.DOT22SCALAR_DUPLICATES_PRODUCT.active, reason="not a bug of this PyTensor line")
def test_dot22scalar_duplicating_a_product_still_present():
    inputs, outputs = _gradient_and_scaled_gradient()
    assert _products(pytensor.function(inputs, outputs, mode=PY_FAST_RUN)) == 2


def test_shared_products_are_computed_once_on_c():
    inputs, outputs = _gradient_and_scaled_gradient()
    f = dandelion.function(inputs, outputs, mode=dandelion.compile.resolve_mode("c").clone(linker="py"))
    assert _products(f) == 1
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((5, 4), dtype="float32"), rng.standard_normal((5, 3), dtype="float32")
    scaled, squared = f(x, g, np.float32(0.1))
    np.testing.assert_allclose(scaled, np.float32(0.1) * (x.T @ g), rtol=1e-5)
    np.testing.assert_allclose(squared, (x.T @ g) ** 2, rtol=1e-5)


def test_a_product_read_once_still_takes_its_scalar():
    x, g, scale = _product_inputs()
    f = dandelion.function([x, g, scale], scale * (x.T @ g), mode=dandelion.compile.resolve_mode("c").clone(linker="py"))
    assert [type(node.op).__name__ for node in f.maker.fgraph.apply_nodes if "Dot" in type(node.op).__name__] == ["Dot22Scalar"]


# ------------------------------------------------------------------ SpecifyShape after fusion
def _one_hot_loss_and_gradient():
    from dandelion.objective import categorical_crossentropy

    p = pt.tensor("p", shape=(6, 4), dtype="float32")
    y = pt.tensor("y", shape=(6,), dtype="int32")
    loss = categorical_crossentropy(pt.special.softmax(p, axis=-1), y).mean()
    return [p, y], [loss, pytensor.grad(loss, p)]


def _specify_shapes(function):
    from pytensor.tensor.shape import SpecifyShape

    return [node for node in function.maker.fgraph.apply_nodes if isinstance(node.op, SpecifyShape)]


@pytest.mark.skipif(not _workarounds.SPECIFY_SHAPE_LEFT_AFTER_FUSION.active, reason="not a bug of this PyTensor line")
def test_specify_shape_left_after_fusion_still_present():
    inputs, outputs = _one_hot_loss_and_gradient()
    left = _specify_shapes(pytensor.function(inputs, outputs, mode=PY_FAST_RUN))
    assert left and all(None not in node.inputs[0].type.shape for node in left)


def test_useless_specify_shapes_are_gone_from_dandelion_graphs(backend):
    inputs, outputs = _one_hot_loss_and_gradient()
    f = dandelion.function(inputs, outputs, mode=backend)
    assert not _specify_shapes(getattr(f, "function", f))
    p = np.random.default_rng(0).standard_normal((6, 4)).astype("float32")
    y = np.array([0, 1, 2, 3, 0, 1], dtype="int32")
    loss, grad = f(p, y)
    probabilities = np.exp(p - p.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    np.testing.assert_allclose(loss, -np.log(probabilities[np.arange(6), y]).mean(), rtol=1e-5)
    one_hot = np.eye(4, dtype="float32")[y]
    np.testing.assert_allclose(grad, (probabilities - one_hot) / 6, rtol=1e-4, atol=1e-6)
