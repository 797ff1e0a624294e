"""The fused BatchNorm Ops: values against a NumPy reference, gradients against finite
differences and against the graph path (``moments`` + ``normalize_over``), every backend
with ``perform`` disabled, shape inference, errors, and ``BatchNorm``'s use of them."""

from __future__ import annotations

import re
from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import types

from dandelion.module import BatchNorm
from dandelion.ops.batch_norm import fusable
from dandelion.ops.numba import batch_norm_kernels
from tests.batch_norm_reference import batch_norm_ref
from tests.helpers import PY_MODE, assert_close, ftensor
from tests.op_harness import (
    BatchNormTrainGradOp,
    BatchNormTrainOp,
    batch_norm_train,
    check_grad,
    check_infer_shape,
    check_values,
    compile_strict,
)

EPS = 1e-4
# name: (x shape, axes, gamma, beta, subtract_mean, scale_by_inv_std)
CASES = {
    "conv": ((4, 3, 5, 6), (0, 2, 3), True, True, True, True),
    "dense": ((9, 5), (0,), True, True, True, True),
    "sequence": ((3, 2, 4), (0, 1), True, False, True, True),
    "last_axis_no_mean": ((4, 5), (1,), False, True, False, True),
    "no_scale_no_params": ((6, 2, 3), (0, 2), False, False, True, False),
}


def kept_shape(shape, axes):
    return tuple(n for a, n in enumerate(shape) if a not in axes)


def case_values(name, rng):
    shape, axes, *_ = CASES[name]
    kept = kept_shape(shape, axes)
    # a mean far from zero checks the two-pass variance
    x = (rng.normal(size=shape) * 2 + 5).astype("float32")
    gamma, beta = rng.uniform(0.5, 2, size=kept).astype("float32"), rng.normal(size=kept).astype("float32")
    return x, gamma, beta


def case_graph(name, fused=True):
    """Inputs [x, gamma?, beta?, gy, gmean, ginv_std] and outputs [y, mean, inv_std, dx, dgamma?, dbeta?].

    The gradients pull back the cotangents of all three outputs (the statistics' enter dx).
    Fused: the two Ops and nothing else (no elementwise nodes to compile). Otherwise the
    same written with PyTensor's own reductions and differentiated by PyTensor (the
    module's graph path is compared in ``test_batch_norm_module_uses_the_op_...``).
    """
    shape, axes, has_gamma, has_beta, subtract_mean, scale = CASES[name]
    kept = kept_shape(shape, axes)
    x = ftensor(f"x_{name}", shape)
    gamma = ftensor(f"gamma_{name}", kept) if has_gamma else None
    beta = ftensor(f"beta_{name}", kept) if has_beta else None
    gy, gmean, ginv = ftensor(f"gy_{name}", shape), ftensor(f"gmean_{name}", kept), ftensor(f"ginv_{name}", kept)
    params = [v for v in (gamma, beta) if v is not None]
    if fused:
        y, mean, inv_std = batch_norm_train(x, axes, EPS, gamma, beta, subtract_mean, scale)
        grad_op = BatchNormTrainGradOp(axes, EPS, subtract_mean, scale, has_gamma, has_beta)
        dx, dgamma, dbeta = grad_op(x, *([gamma] if has_gamma else []), mean, inv_std, gy, gmean, ginv)
        grads = [dx] + ([dgamma] if has_gamma else []) + ([dbeta] if has_beta else [])
    else:
        mean = x.mean(axis=axes)
        inv_std = 1 / pt.sqrt(((x - pt.expand_dims(mean, axes)) ** 2).mean(axis=axes) + np.float32(EPS))
        y = x
        for v, present, apply in ((mean, subtract_mean, pt.sub), (inv_std, scale, pt.mul), (gamma, has_gamma, pt.mul), (beta, has_beta, pt.add)):
            if present:
                y = apply(y, pt.expand_dims(v, axes))
        cost = (y * gy).sum() + (mean * gmean).sum() + (inv_std * ginv).sum()
        grads = pytensor.grad(cost, [x, *params])
    return [x, *params, gy, gmean, ginv], [y, mean, inv_std, *grads]


def case_inputs(name, rng):
    shape, axes, has_gamma, has_beta, *_ = CASES[name]
    x, gamma, beta = case_values(name, rng)
    kept = kept_shape(shape, axes)
    cotangents = [rng.normal(size=s).astype("float32") for s in (shape, kept, kept)]
    return [x] + ([gamma] if has_gamma else []) + ([beta] if has_beta else []) + cotangents


def no_perform():
    """Both Ops' ``perform`` raising; thunks bind it when compiled, so compile under this."""
    return (
        mock.patch.object(BatchNormTrainOp, "perform", side_effect=AssertionError("BatchNormTrainOp ran perform")),
        mock.patch.object(BatchNormTrainGradOp, "perform", side_effect=AssertionError("BatchNormTrainGradOp ran perform")),
    )


@pytest.fixture(scope="module")
def references():
    """Every case's input values, NumPy forward reference and PyTensor's autodiff gradients (Python linker)."""
    rng = np.random.default_rng(0)
    result = {}
    for name, (_, axes, has_gamma, has_beta, subtract_mean, scale) in CASES.items():
        values = case_inputs(name, rng)
        gamma = values[1] if has_gamma else None
        beta = values[1 + has_gamma] if has_beta else None
        forward = batch_norm_ref(values[0], axes, EPS, gamma, beta, subtract_mean, scale)
        inputs, outputs = case_graph(name, fused=False)
        graph = pytensor.function(inputs, outputs[3:], mode=PY_MODE, on_unused_input="ignore")(*values)
        result[name] = (values, [*forward, *graph])
    return result


def test_every_case_matches_the_reference_and_autodiff(backend, references):
    """One compiled function for all cases, ``perform`` disabled (a silent fallback fails)."""
    inputs, outputs, values, expected = [], [], [], []
    for name in CASES:
        case_in, case_out = case_graph(name)
        inputs += case_in
        outputs += case_out
        values += references[name][0]
        expected += references[name][1]
    patches = no_perform()
    with patches[0], patches[1]:
        check_values(inputs, outputs, values, expected, backend, rtol=2e-4, atol=2e-4)


def test_the_gradient_of_a_loss_holds_one_node_of_each_op():
    x, gamma = ftensor("x", (4, 3, 2, 2)), ftensor("gamma", (3,))
    y, mean, inv_std = batch_norm_train(x, (0, 2, 3), EPS, gamma)
    grads = pytensor.grad((y * y).sum() + mean.sum() + inv_std.sum(), [x, gamma])
    f = pytensor.function([x, gamma], grads, mode=PY_MODE)
    ops = [type(node.op) for node in f.maker.fgraph.apply_nodes]
    assert ops.count(BatchNormTrainOp) == 1 and ops.count(BatchNormTrainGradOp) == 1


@st.composite
def layouts(draw):
    """x shapes with a contiguous block of kept axes; the rest reduced."""
    ndim = draw(st.integers(2, 4))
    start = draw(st.integers(0, ndim - 1))
    stop = draw(st.integers(start + 1, ndim))
    if stop - start == ndim:
        start = 1  # keep at least one reduced axis
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    axes = tuple(a for a in range(ndim) if not start <= a < stop)
    flags = tuple(draw(st.booleans()) for _ in range(4))
    return shape, axes, flags


@settings(max_examples=20)
@given(layout=layouts())
def test_numpy_kernels_match_the_reference_over_layouts(layout):
    """``perform`` (run by the Python linker: no compilation) over random layouts and flags."""
    shape, axes, (has_gamma, has_beta, subtract_mean, scale) = layout
    rng = np.random.default_rng(len(shape))
    kept = kept_shape(shape, axes)
    x_val = rng.normal(size=shape).astype("float32") + 3
    g_val, b_val = rng.uniform(0.5, 2, size=kept).astype("float32"), rng.normal(size=kept).astype("float32")
    x = ftensor("x", shape)
    gamma, beta = (ftensor("gamma", kept) if has_gamma else None), (ftensor("beta", kept) if has_beta else None)
    outs = batch_norm_train(x, axes, EPS, gamma, beta, subtract_mean, scale)
    inputs = [x] + ([gamma] if has_gamma else []) + ([beta] if has_beta else [])
    values = [x_val] + ([g_val] if has_gamma else []) + ([b_val] if has_beta else [])
    got = pytensor.function(inputs, outs, mode=PY_MODE)(*values)
    want = batch_norm_ref(x_val, axes, EPS, g_val if has_gamma else None, b_val if has_beta else None, subtract_mean, scale)
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        # a single reduced element has zero variance: inv_std 100 = 1 / sqrt(eps)
        assert_close(g, w, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_against_finite_differences(name):
    shape, axes, has_gamma, has_beta, subtract_mean, scale = CASES[name]
    rng = np.random.default_rng(3)
    values = [v.astype("float64") for v in case_inputs(name, rng)[:-3]]
    probe_y, probe_m, probe_s = (rng.normal(size=s) for s in (shape, kept_shape(shape, axes), kept_shape(shape, axes)))

    def f(x, *params):
        gamma = params[0] if has_gamma else None
        beta = params[-1] if has_beta else None
        y, mean, inv_std = batch_norm_train(x, axes, EPS, gamma, beta, subtract_mean, scale)
        return (y * probe_y).sum() + (mean * probe_m).sum() + (inv_std * probe_s).sum()

    check_grad(f, values)


def test_infer_shape():
    x = pt.tensor("x", shape=(None, 3, None, None), dtype="float32")
    gamma = pt.vector("gamma", dtype="float32")
    y, mean, inv_std = batch_norm_train(x, (0, 2, 3), EPS, gamma)
    grads = pytensor.grad(y.sum() + mean.sum() + inv_std.sum(), [x, gamma])
    values = [np.ones((2, 3, 4, 5), "float32"), np.ones(3, "float32")]
    check_infer_shape([x, gamma], [y, mean, inv_std, *grads], values, [(2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5), (3,)], [BatchNormTrainOp, BatchNormTrainGradOp])
    assert mean.type.shape == (3,) and y.type.shape == (None, 3, None, None)


def test_second_derivatives_are_reported_as_not_implemented():
    x = ftensor("x", (4, 3))
    y, _, _ = batch_norm_train(x, (0,), EPS)
    g = pytensor.grad((y * y).sum(), x)
    with pytest.raises(Exception, match="second derivatives of batch_norm_train"):
        pytensor.grad(g.sum(), x)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: batch_norm_train(ftensor("x", (2, 3, 4)), (1,), EPS), ValueError, r"batch_norm_train: x of ndim 3 cannot be normalised over axes \(1,\)"),
        (lambda: batch_norm_train(ftensor("x", (2, 3)), (0, 1), EPS), ValueError, "not all of x's"),
        (lambda: batch_norm_train(pt.imatrix("x"), (0,), EPS), TypeError, "batch_norm_train: x must have a float dtype, got int32"),
        (lambda: batch_norm_train(ftensor("x", (2, 3)), (0,), EPS, gamma=ftensor("g", (4,))), ValueError, r"batch_norm_train: gamma must have shape \(3,\)"),
        (lambda: batch_norm_train(ftensor("x", (2, 3)), (0,), EPS, beta=pt.fmatrix("b")), ValueError, "batch_norm_train: beta must have ndim 1"),
        (lambda: BatchNormTrainOp((0,), EPS)(ftensor("x", (2, 3))), TypeError, "batch_norm_train: expected inputs x, gamma, beta"),
        (lambda: BatchNormTrainOp((0,), -1.0), ValueError, "BatchNormTrainOp: eps must be a number >= 0, got -1.0"),
        (lambda: BatchNormTrainOp((2, 0), EPS), ValueError, r"BatchNormTrainOp: axes must be sorted, distinct, non-negative ints, got \(2, 0\)"),
    ],
)
def test_bad_inputs_are_rejected(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_fusable_layouts():
    assert fusable(4, (0, 2, 3)) and fusable(2, (0,)) and fusable(3, (0, 1)) and fusable(2, (1,))
    assert not fusable(3, (1,)) and not fusable(2, (0, 1))


def test_batch_norm_module_uses_the_op_where_fusable_and_matches_the_graph_path():
    """Fused and graph-path BatchNorm agree on outputs, updates and gradients (same module state)."""
    rng = np.random.default_rng(7)
    x = ftensor("x", (4, 3, 2, 2))
    bn = BatchNorm((None, 3, None, None), gamma=rng.uniform(0.5, 2, 3).astype("float32"), beta=rng.normal(size=3).astype("float32"))
    fused = bn.forward(x)
    fused_updates = list(bn.collect_self_updates().values())
    with mock.patch("dandelion.module.batchnorm.fusable", return_value=False):
        graph = bn.forward(x)
    graph_updates = list(bn.collect_self_updates().values())
    outputs = []
    for y, updates in ((fused, fused_updates), (graph, graph_updates)):
        outputs += [y, *updates, *pytensor.grad((y * y * pt.arange(48).reshape((4, 3, 2, 2))).sum(), bn.params)]
    f = pytensor.function([x], outputs, mode=PY_MODE)
    ops = {type(node.op) for node in f.maker.fgraph.apply_nodes}
    assert BatchNormTrainOp in ops and BatchNormTrainGradOp in ops
    results = f(rng.normal(size=(4, 3, 2, 2)).astype("float32"))
    half = len(results) // 2
    for got, want in zip(results[:half], results[half:]):
        assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_batch_norm_module_keeps_the_graph_path_for_other_layouts():
    bn = BatchNorm((2, None, 3), axes=(1,))
    x = ftensor("x", (2, 4, 3))
    square = BatchNorm((None, 3))
    x2 = ftensor("x2", (4, 3))
    # the kept axes (0, 2) are not contiguous; normalising with the running statistics
    # needs the batch statistics only for the updates
    f = pytensor.function([x, x2], [bn.forward(x), square.forward(x2, use_input_mean=False)], mode=PY_MODE)
    assert BatchNormTrainOp not in {type(node.op) for node in f.maker.fgraph.apply_nodes}


# Numba kernel: argument kinds (3: a (P, K, S) float32 array, 1: float32 (K,), d: float64 (K,), b: bool, f: float64)
KERNELS = {
    "channel_sums": "3dbd",
    "channel_products": "33ddd",
    "forward": "311311fbbbb",
    "backward": "3111311311bbb",
}


@pytest.mark.parametrize("name, element", [("channel_sums", "double"), ("channel_products", "double"), ("forward", "float"), ("backward", "float")])
def test_numba_kernels_vectorise(name, element):
    """The float64 sums (vectorised by PyTensor's reassociating fastmath flags) and the float32 output passes."""
    kinds = {"3": types.Array(types.float32, 3, "C"), "1": types.Array(types.float32, 1, "C"), "d": types.Array(types.float64, 1, "C"), "b": types.boolean, "f": types.float64}
    signature = tuple(kinds[k] for k in KERNELS[name])
    dispatcher = getattr(batch_norm_kernels, name)
    dispatcher.compile(signature)
    lanes = [int(n) for n in re.findall(rf"<(\d+) x {element}>", dispatcher.inspect_llvm(signature))]
    assert lanes and max(lanes) >= 4, f"{name}: no vector instructions on {element}"


def test_a_gamma_of_the_wrong_run_time_length_is_rejected(backend):
    """Shapes unknown until run time: the C and Numba kernels check them (JAX's shapes are static)."""
    if backend == "jax":
        pytest.skip("JAX traces static shapes: a mismatch fails in tracing, not in the kernel")
    x, gamma = pt.tensor("x", shape=(None, None), dtype="float32"), pt.tensor("gamma", shape=(None,), dtype="float32")
    y, _, _ = batch_norm_train(x, (0,), EPS, gamma)
    patches = no_perform()
    with patches[0], patches[1]:
        f = compile_strict([x, gamma], y, backend)
    with pytest.raises(ValueError, match="batch_norm_train: gamma"):
        f(np.ones((4, 3), "float32"), np.ones(2, "float32"))
