"""scaled_dot_product_attention and MultiHeadAttention against NumPy, on every backend."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion.functional import scaled_dot_product_attention as sdpa
from dandelion.module import MultiHeadAttention
from tests import attention_reference as ref
from tests.helpers import assert_close, compile_fn, verify_grad

B, H, LQ, LK, E, EV = 2, 2, 4, 5, 3, 2
_compiled = {}


def _attention_function(backend):
    """Every mask kind and the gradients, in one function (each sdpa graph costs tens of
    seconds of C and Numba compilation): the boolean, causal and padding masks combined,
    whose reference is their intersection, and an additive mask with -inf entries."""
    if backend not in _compiled:
        q = pt.tensor("q", shape=(B, H, LQ, E), dtype="float32")
        k = pt.tensor("k", shape=(B, H, LK, E), dtype="float32")
        v = pt.tensor("v", shape=(B, H, LK, EV), dtype="float32")
        keep = pt.tensor("keep", shape=(B, 1, LQ, LK), dtype="bool")
        additive = pt.tensor("additive", shape=(LQ, LK), dtype="float32")
        padding = pt.tensor("padding", shape=(B, LK), dtype="float32")
        combined = sdpa(q, k, v, mask=keep, causal=True, key_padding_mask=padding)
        outputs = [sdpa(q, k, v, mask=additive, scale=0.7), combined, *pt.grad(pt.sum(combined**2), [q, k, v])]
        _compiled[backend] = compile_fn([q, k, v, keep, additive, padding], outputs, backend)
    return _compiled[backend]


@given(seed=st.integers(0, 2**16), keep_rate=st.sampled_from([0.2, 0.5, 0.9]))
def test_attention_masks_match_numpy(backend, seed, keep_rate):
    rng = np.random.default_rng(seed)
    q, k = (rng.normal(size=(B, H, n, E)).astype("float32") for n in (LQ, LK))
    v = rng.normal(size=(B, H, LK, EV)).astype("float32")
    keep = rng.random((B, 1, LQ, LK)) < keep_rate  # low rates leave rows fully masked
    additive = np.where(rng.random((LQ, LK)) < 0.3, -np.inf, rng.normal(size=(LQ, LK))).astype("float32")
    padding = (rng.random((B, LK)) < keep_rate).astype("float32")
    added, combined, *grads = _attention_function(backend)(q, k, v, keep, additive, padding)
    causal_keep = np.tril(np.ones((LQ, LK), bool))
    padding_keep = padding[:, None, None, :] != 0
    assert_close(added, ref.attention(q, k, v, additive=additive, scale=0.7))
    assert_close(combined, ref.attention(q, k, v, keep=keep & causal_keep & padding_keep))
    assert all(np.isfinite(g).all() for g in grads)


def test_fully_masked_rows_give_zeros_and_finite_gradients(backend):
    rng = np.random.default_rng(0)
    q, k = (rng.normal(size=(B, H, n, E)).astype("float32") for n in (LQ, LK))
    v = rng.normal(size=(B, H, LK, EV)).astype("float32")
    keep = np.ones((B, 1, LQ, LK), bool)
    keep[0, 0, 1] = False  # query 1 of sample 0 sees nothing
    additive = np.full((LQ, LK), -np.inf, "float32")  # every row masked
    padding = np.ones((B, LK), "float32")
    added, combined, gq, gk, gv = _attention_function(backend)(q, k, v, keep, additive, padding)
    assert np.all(combined[0, :, 1] == 0) and np.abs(combined[1]).sum() > 0
    assert np.all(added == 0)
    assert np.all(gq[0, :, 1] == 0)  # no key, no gradient to the query
    assert all(np.isfinite(g).all() for g in (gq, gk, gv))


def test_attention_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    keep = rng.random((1, 1, 3, 4)) < 0.6
    keep[0, 0, 2] = False  # a fully masked row too
    values = [rng.normal(size=(1, 2, 3, 2)), rng.normal(size=(1, 2, 4, 2)), rng.normal(size=(1, 2, 4, 3))]
    verify_grad(lambda q, k, v: sdpa(q, k, v, mask=keep, causal=True), values)


def _set_random(module, rng):
    for p in module.collect_params():
        p.set_value(rng.normal(scale=0.5, size=p.get_value().shape).astype("float32"))


def _weights(mha):
    return {name: (getattr(mha, name).W.get_value(), None if getattr(mha, name).b is None else getattr(mha, name).b.get_value())
            for name in ("q_proj", "k_proj", "v_proj", "out_proj")}


_mha = {}


def _mha_function(backend):
    if backend not in _mha:
        rng = np.random.default_rng(2)
        self_attention = MultiHeadAttention(8, 2)
        cross = MultiHeadAttention(8, 4, key_dim=6, value_dim=5, bias=False)
        for m in (self_attention, cross):
            _set_random(m, rng)
        x = pt.tensor("x", shape=(2, 4, 8), dtype="float32")
        key = pt.tensor("key", shape=(2, 3, 6), dtype="float32")
        value = pt.tensor("value", shape=(2, 3, 5), dtype="float32")
        padding = pt.tensor("padding", shape=(2, 4), dtype="float32")
        outputs = [self_attention.forward(x, key_padding_mask=padding, causal=True), cross.forward(x, key, value)]
        _mha[backend] = (compile_fn([x, key, value, padding], outputs, backend), self_attention, cross)
    return _mha[backend]


def test_multi_head_attention_matches_numpy(backend):
    fn, self_attention, cross = _mha_function(backend)
    rng = np.random.default_rng(4)
    x, key, value = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 3, 6)), rng.normal(size=(2, 3, 5))
    padding = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], "float32")
    x, key, value = (a.astype("float32") for a in (x, key, value))
    own, crossed = fn(x, key, value, padding)
    keep = np.tril(np.ones((4, 4), bool)) & (padding[:, None, None, :] != 0)
    assert_close(own, ref.multi_head_attention(x, x, x, _weights(self_attention), 2, keep), rtol=1e-4, atol=1e-4)
    assert_close(crossed, ref.multi_head_attention(x, key, value, _weights(cross), 4), rtol=1e-4, atol=1e-4)


def test_attention_dropout_only_in_forward():
    # One backend: this checks the wiring of the attention dropout; the Dropout module's
    # masks are checked on every backend in tests/test_dropout.py.
    dropped = MultiHeadAttention(8, 2, dropout_p=0.5, seed=3)
    _set_random(dropped, np.random.default_rng(2))
    x = pt.tensor("x", shape=(2, 4, 8), dtype="float32")
    fn = compile_fn([x], [dropped.forward(x), dropped.predict(x)], "jax", updates=dropped.collect_self_updates())
    data = np.random.default_rng(4).normal(size=(2, 4, 8)).astype("float32")
    first, predicted = fn(data)
    assert_close(predicted, ref.multi_head_attention(data, data, data, _weights(dropped), 2), rtol=1e-4, atol=1e-4)
    second = fn(data)[0]
    assert not np.allclose(first, predicted) and not np.allclose(first, second)  # new masks on every call


def test_multi_head_attention_parameters_are_named():
    paths = [path for path, _ in MultiHeadAttention(8, 2, key_dim=6, name="mha").named_params()]
    assert paths == [f"{proj}.{w}" for proj in ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("W", "b")]
    assert MultiHeadAttention(8, 2).k_proj.W.get_value().shape == (8, 8)
    assert MultiHeadAttention(8, 2, key_dim=6, bias=False).k_proj.W.get_value().shape == (6, 8)


def test_bad_attention_input_is_named():
    x = pt.tensor("x", shape=(2, 4, 8), dtype="float32")
    with pytest.raises(ValueError, match=r"MultiHeadAttention: num_heads must divide model_dim, got model_dim=8, num_heads=3"):
        MultiHeadAttention(8, 3)
    mha = MultiHeadAttention(8, 2, name="m")
    with pytest.raises(ValueError, match=r"MultiHeadAttention\('m'\): mask must broadcast to the scores' shape "
                                         r"\(batch, heads, query, key\) = \(2, 2, 4, 4\), got static shape \(3, 4, 4\)"):
        mha.forward(x, mask=pt.tensor("m", shape=(3, 4, 4), dtype="bool"))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(batch, key\) = \(2, 4\), got static shape \(2, 5\)"):
        mha.forward(x, key_padding_mask=pt.tensor("p", shape=(2, 5), dtype="float32"))
    with pytest.raises(ValueError, match=r"MultiHeadAttention\('m'\): key axis 2 \(key_dim\) must be 8, got 6"):
        mha.forward(x, key=pt.tensor("k", shape=(2, 4, 6), dtype="float32"))
    q = pt.tensor("q", shape=(2, 2, 4, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: mask must broadcast .* got static shape \(4, 5\)"):
        sdpa(q, q, q, mask=pt.tensor("m", shape=(4, 5), dtype="bool"))
    with pytest.raises(ValueError, match="q and k must have the same embedding length, got 3 and 2"):
        sdpa(q, q[..., :2], q)
    with pytest.raises(TypeError, match="mask must be boolean or floating point, got dtype int32"):
        sdpa(q, q, q, mask=pt.tensor("m", shape=(4, 4), dtype="int32"))
    with pytest.raises(ValueError, match="dropout_p > 0 needs dropout="):
        sdpa(q, q, q, dropout_p=0.1)
