"""ChainCRF and dandelion.functional.crf against brute-force enumeration of every path."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import equal_computations

from dandelion.functional.crf import crf_nll, padded_transition_scores, split_padded
from dandelion.module import ChainCRF
from dandelion.update import adam
from tests.crf_reference import brute_force, transition_matrix
from tests.helpers import assert_close, compile_fn, verify_grad

B, N = 2, 3
STEPS = (3, 1)  # every check runs at T = 3 and at T = 1 (a single step)
# Each case: (state_pad, normalization, p_scale, l1). "pad_l1" shares "pad"'s parameter,
# so its scans merge with those of "pad" and cost no extra compilation.
CASES = {
    "pad": (True, True, 1.5, 0.0),
    "nopad": (False, False, 1.0, 0.0),
    "pad_l1": (True, True, 1.5, 0.01),
}
_compiled = {}


def _build(backend, steps):
    """One compiled function holding every case (loss, decode, d loss / d x).

    C and Numba take any T with one graph; JAX needs the length static, so it gets one
    graph per T.
    """
    static_steps = steps if backend == "jax" else None
    key = (backend, static_steps)
    if key in _compiled:
        return _compiled[key]
    rng = np.random.default_rng(7)
    x = pt.tensor("x", shape=(B, static_steps, N), dtype="float32")
    y = pt.tensor("y", shape=(B, static_steps), dtype="int32")
    modules, outputs = {}, []
    for case, (pad, normalization, p_scale, l1) in CASES.items():
        size = N + 2 if pad else N
        # Raw values on both sides of the [1e-4, 1] clip.
        raw = (
            modules["pad"].transitions
            if case == "pad_l1"
            else rng.uniform(-0.3, 1.3, size=(size, size)).astype("float32")
        )
        crf = ChainCRF(
            N,
            transitions=raw,
            p_scale=p_scale,
            l1_regularization=l1,
            state_pad=pad,
            transition_matrix_normalization=normalization,
            name=case,
        )
        loss = crf.forward(x, y)
        outputs += [loss, crf.predict(x), pytensor.grad(pt.sum(loss), x)]
        modules[case] = crf
    _compiled[key] = (modules, compile_fn([x, y], outputs, backend))
    return _compiled[key]


@given(seed=st.integers(0, 2**16))
def test_loss_decoding_and_gradient_match_brute_force(backend, seed):
    rng = np.random.default_rng(seed)
    for steps in STEPS:
        modules, fn = _build(backend, steps)
        x = rng.normal(0, 1.5, size=(B, steps, N)).astype("float32")
        y = rng.integers(0, N, size=(B, steps)).astype("int32")
        results = fn(x, y)
        for index, (key, (pad, normalization, p_scale, l1)) in enumerate(CASES.items()):
            loss, decoded, grad_x = results[3 * index : 3 * index + 3]
            where = f"{key}, T={steps}"
            scores = transition_matrix(modules[key].transitions.get_value(), pad, normalization)
            nll, best, grad = brute_force(p_scale * x.astype("float64"), y, scores, pad)
            if l1 > 0:
                assert loss.shape == ()  # a scalar like every other loss (the old port gave (1,))
                assert_close(loss, nll.sum() + l1 * np.abs(scores).sum(), err_msg=where)
            else:
                assert loss.shape == (B,)
                assert_close(loss, nll, err_msg=where)
            assert decoded.dtype == np.int32 and decoded.shape == y.shape
            np.testing.assert_array_equal(decoded, best, err_msg=where)
            assert decoded.min() >= 0 and decoded.max() < N  # never a padding label
            assert_close(grad_x, p_scale * grad, err_msg=where)


def test_gradients_against_finite_differences():
    """Both layouts in one graph (one compilation): padded and normalised, and plain."""
    rng = np.random.default_rng(3)
    T = 2
    labels = rng.integers(0, N, size=(B, T)).astype("int32")

    def nll(x, raw_padded, raw_plain):
        padded = split_padded(padded_transition_scores(raw_padded, True, True), True)
        plain = split_padded(padded_transition_scores(raw_plain, False, False), False)
        return crf_nll(x, labels, *padded) + 2 * crf_nll(x[:, ::-1], labels, *plain)

    # Inside (1e-4, 1): away from the clip's kinks.
    raws = [rng.uniform(0.1, 0.9, size=(size, size)) for size in (N + 2, N)]
    verify_grad(nll, [rng.normal(size=(B, T, N)), *raws])


def test_l1_regularized_loss_is_a_scalar_that_grad_and_optimizers_take():
    crf = ChainCRF(3, l1_regularization=0.01)
    loss = crf.forward(pt.tensor("x", shape=(2, 3, 3), dtype="float32"), pt.imatrix("y"))
    assert loss.ndim == 0
    # both refused a (1,) loss ("cost must be a scalar")
    assert pytensor.grad(loss, crf.transitions).type.shape == (5, 5)
    assert list(adam(loss, crf.params)) != []


def test_transitions_shape_names_and_order():
    padded = ChainCRF(4, name="crf")
    assert padded.transitions.get_value().shape == (6, 6)
    assert [name for _, name in padded.get_weights()] == ["transitions@ChainCRF|crf"]
    assert ChainCRF(4, state_pad=False).transitions.get_value().shape == (4, 4)


def test_building_graphs_does_not_mutate_the_module():
    crf = ChainCRF(3, name="crf")
    parameter = crf.transitions
    x, y = pt.tensor3("x"), pt.imatrix("y")
    first, first_decode = crf.forward(x, y), crf.predict(x)
    second, second_decode = crf.forward(x, y), crf.predict(x)
    assert crf.transitions is parameter and isinstance(parameter, SharedVariable)
    assert crf.params == [parameter]
    assert equal_computations([first, first_decode], [second, second_decode])


@pytest.mark.parametrize(
    "y, message",
    [
        (pt.ivector("y"), "ChainCRF.forward: y must have ndim 2"),
        (pt.itensor3("y"), "ChainCRF.forward: y must have ndim 2"),
        (pt.tensor("y", shape=(2, 4), dtype="int32"), r"ChainCRF.forward: y axis 1 \(time, as x\) must be 3, got 4"),
    ],
)
def test_bad_labels_are_rejected(y, message):
    crf = ChainCRF(3)
    with pytest.raises(ValueError, match=message):
        crf.forward(pt.tensor("x", shape=(2, 3, 3), dtype="float32"), y)


def test_bad_inputs_are_rejected():
    crf = ChainCRF(3)
    with pytest.raises(TypeError, match="y must be an integer tensor"):
        crf.forward(pt.tensor3("x"), pt.fmatrix("y"))
    with pytest.raises(ValueError, match=r"ChainCRF.predict: x axis 2 \(state_num\) must be 3, got 5"):
        crf.predict(pt.tensor("x", shape=(2, 3, 5)))
    with pytest.raises(ValueError, match="ChainCRF.predict: x must have ndim 3"):
        crf.predict(pt.matrix("x"))
    with pytest.raises(ValueError, match="state_num must be a positive int"):
        ChainCRF(0)
